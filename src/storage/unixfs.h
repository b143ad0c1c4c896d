/*
 * unixfs.h - content addressing as IPFS does it, without an IPFS node:
 * CIDs (v0 and v1, multibase, multihash), dag-pb blocks, UnixFS nodes,
 * and a builder that turns a file or directory tree into blocks.
 *
 * cod uses it to check every block an IPFS node hands over against the
 * CID that names it (so a lying node is caught), and to compute the CID
 * of published results itself instead of trusting the node's answer.
 *
 * Supported: codecs dag-pb (0x70) and raw (0x55); hashes sha2-256 (0x12)
 * and identity (0x00); multibases base58btc (CIDv0 "Qm..." and 'z'),
 * base32 ('b', 'B') and base16 ('f', 'F'); UnixFS files (raw or dag-pb
 * leaves, any layout), directories, HAMT-sharded directories and
 * symlinks. Everything else is refused with an error that names it.
 *
 * The builder lays files out as `ipfs add` does: fixed-size chunks
 * (262144 bytes by default), a balanced tree of at most 174 links per
 * node, a single chunk standing for itself, directory links sorted by
 * name. CIDv0 uses dag-pb leaves; CIDv1 uses raw leaves unless told
 * otherwise - so its CIDs match `ipfs add` and `ipfs add --cid-version=1`.
 */
#ifndef COD_STORAGE_UNIXFS_H
#define COD_STORAGE_UNIXFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

#define COD_CODEC_RAW 0x55
#define COD_CODEC_DAG_PB 0x70
#define COD_MH_IDENTITY 0x00
#define COD_MH_SHA2_256 0x12
#define COD_MH_MAX_DIGEST 128 /* identity CIDs inline at most this much */

struct cod_cid {
	unsigned version; /* 0 or 1 */
	uint64_t codec;	  /* COD_CODEC_* */
	uint64_t mh_code; /* COD_MH_* */
	size_t digest_len;
	uint8_t digest[COD_MH_MAX_DIGEST];
};

/* ---- varints (unsigned LEB128, at most 9 bytes as multiformats allow) ---- */

/* Append v; returns the bytes written into out (room for 10). */
size_t cod_varint_put(uint8_t *out, uint64_t v);
/* Read a varint at *p (< end); advances *p. -1 when truncated, too long or
 * not minimally encoded. */
int cod_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* ---- CIDs ---- */

/* Parse a CID string. Errors (COD_E_VALIDATION) name what is wrong. */
int cod_cid_parse(const char *s, struct cod_cid *cid, struct cod_error **err);
/* Parse a binary CID of exactly len bytes (as in a dag-pb link). */
int cod_cid_decode(const uint8_t *b, size_t len, struct cod_cid *cid, struct cod_error **err);
/* Binary form appended to out. */
void cod_cid_encode(const struct cod_cid *cid, struct cod_buf *out);
/* Canonical string: base58btc for v0, base32 ('b') for v1. Heap. */
char *cod_cid_string(const struct cod_cid *cid);
bool cod_cid_equal(const struct cod_cid *a, const struct cod_cid *b);
/* The sha2-256 CID of a block. */
void cod_cid_of(unsigned version, uint64_t codec, const void *block, size_t len, struct cod_cid *cid);
/* Whether block is what cid names (its hash matches). */
bool cod_cid_verify(const struct cod_cid *cid, const void *block, size_t len);

/* ---- multibase pieces (exposed for tests) ---- */

char *cod_base58btc_encode(const uint8_t *b, size_t len);
/* Heap bytes, *len set; NULL on a character outside the alphabet. */
uint8_t *cod_base58btc_decode(const char *s, size_t *len);
char *cod_base32_encode(const uint8_t *b, size_t len); /* lower case, no padding */
uint8_t *cod_base32_decode(const char *s, size_t *len); /* either case, no padding */

/* ---- dag-pb and UnixFS ---- */

struct cod_pb_link {
	struct cod_cid cid;
	char *name; /* heap; "" when absent */
	bool has_name;
	uint64_t tsize;
	bool has_tsize;
};

struct cod_pb_node {
	struct cod_pb_link *links;
	size_t n_links;
	const uint8_t *data; /* into the block; NULL when absent */
	size_t data_len;
};

/* Decode a dag-pb block (links and data point into or copy from block,
 * which must outlive the node). */
int cod_pb_decode(const uint8_t *block, size_t len, struct cod_pb_node *node, struct cod_error **err);
void cod_pb_node_release(struct cod_pb_node *node);
/* Encode canonically: links in the given order, then data. */
void cod_pb_encode(const struct cod_pb_node *node, struct cod_buf *out);

enum cod_unixfs_type {
	COD_UNIXFS_RAW = 0,
	COD_UNIXFS_DIRECTORY = 1,
	COD_UNIXFS_FILE = 2,
	COD_UNIXFS_METADATA = 3,
	COD_UNIXFS_SYMLINK = 4,
	COD_UNIXFS_HAMT = 5,
};

struct cod_unixfs {
	int type;
	const uint8_t *data; /* NULL when absent */
	size_t data_len;
	uint64_t filesize;
	bool has_filesize;
	uint64_t *blocksizes; /* heap */
	size_t n_blocksizes;
	uint64_t hash_type;
	uint64_t fanout;
};

int cod_unixfs_decode(const uint8_t *b, size_t len, struct cod_unixfs *u, struct cod_error **err);
void cod_unixfs_release(struct cod_unixfs *u);
/* Type, Data (when data != NULL and data_len > 0), filesize (when
 * has_filesize), blocksizes. */
void cod_unixfs_encode(const struct cod_unixfs *u, struct cod_buf *out);

/* ---- the builder ---- */

struct cod_unixfs_opts {
	unsigned cid_version; /* 0 or 1 */
	bool raw_leaves;      /* only with cid_version 1 */
	size_t chunk_size;    /* 0 = 262144 */
	/* Receives every block once, children before parents. */
	int (*sink)(void *arg, const struct cod_cid *cid, const uint8_t *block, size_t len, struct cod_error **err);
	void *sink_arg;
};

/* The default options for a CID version: v0 = dag-pb leaves, v1 = raw. */
struct cod_unixfs_opts cod_unixfs_defaults(unsigned cid_version);

/*
 * Add path (a regular file, a symlink or a directory tree; other kinds of
 * file are an error naming them) and set *root to its CID; *total = the
 * bytes of all blocks (the root's cumulative size) when not NULL.
 */
int cod_unixfs_add(const char *path, const struct cod_unixfs_opts *o, struct cod_cid *root, uint64_t *total,
		   struct cod_error **err);

#endif
