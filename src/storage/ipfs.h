/*
 * ipfs.h - cod's IPFS client: talks to an IPFS node's HTTP RPC API
 * (kubo, js-ipfs) and trusts nothing it says.
 *
 * Fetching walks the DAG block by block (/api/v0/block/get) and checks each
 * block against the CID that names it before using it, so a node that
 * serves tampered content is caught at the first wrong block. Adding
 * builds the blocks in cod (unixfs.h), computes the root CID itself,
 * imports them as one CAR file (/api/v0/dag/import, which pins the root),
 * and refuses a node that reports a different root.
 *
 * Endpoints are a multiaddr (/ip4/127.0.0.1/tcp/5001, /dns4/host/tcp/5001,
 * /ip6/::1/tcp/5001, optionally ending in /http or /https) or a URL.
 */
#ifndef COD_STORAGE_IPFS_H
#define COD_STORAGE_IPFS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "storage/unixfs.h"

/* The API's base URL ("http://127.0.0.1:5001") of an endpoint. Heap. */
char *cod_ipfs_api_url(const char *endpoint, struct cod_error **err);

struct cod_ipfs_get_opts {
	const char *endpoint;
	int64_t timeout_ms;  /* per request; 0 = 60 s */
	uint64_t max_bytes;  /* file bytes written; 0 = no cap */
	/* dest is an existing directory: a directory's entries go into it,
	 * a single file becomes dest/<CID>. Otherwise dest must not exist and
	 * becomes the file or directory. */
	bool into_dir;
	bool (*cancelled)(void *arg);
	void *cancel_arg;
	/* Called after each block with the file bytes written so far. */
	void (*progress)(void *arg, uint64_t done);
	void *progress_arg;
};

/* Fetch and verify CID into dest; *bytes = file bytes written (also on
 * failure, what was written before it). A block that does not match its
 * CID is COD_E_VALIDATION naming both. */
int cod_ipfs_get(const struct cod_ipfs_get_opts *o, const char *cid, const char *dest, uint64_t *bytes,
		 struct cod_error **err);

/* Add path (file or directory) to the node with the builder options
 * (sink ignored); *root = the CID cod computed and the node confirmed,
 * *bytes = the DAG's cumulative size. tmp_dir holds the CAR file while it
 * is sent. */
int cod_ipfs_add(const char *endpoint, const char *path, const struct cod_unixfs_opts *uo, const char *tmp_dir,
		 int64_t timeout_ms, struct cod_cid *root, uint64_t *bytes, struct cod_error **err);

#endif
