/*
 * ipfs.h - cod's IPFS client.
 *
 * Not implemented yet: the ipfs input source, the ipfs publisher and
 * fetching CIDs for `cod job get` are the next step of issue 5 (the plan:
 * blocks fetched from the node's HTTP RPC API /api/v0/block/get and checked
 * against their CIDs - CIDv0/CIDv1, dag-pb UnixFS, raw leaves - so that a
 * lying node is caught). Until then `cod job get` says so for ipfs results.
 */
#ifndef COD_STORAGE_IPFS_H
#define COD_STORAGE_IPFS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct cod_ipfs_get_opts {
	const char *endpoint; /* multiaddr or URL of the node's HTTP RPC API */
	int64_t timeout_ms;
	uint64_t max_bytes;
	bool (*cancelled)(void *arg);
	void *cancel_arg;
};
/* Fetch CID into dest, verifying it. COD_E_NOT_IMPLEMENTED for now. */
int cod_ipfs_get(const struct cod_ipfs_get_opts *o, const char *cid, const char *dest, uint64_t *bytes,
		 struct cod_error **err);

#endif
