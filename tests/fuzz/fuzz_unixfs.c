/*
 * fuzz_unixfs.c - what an IPFS node hands cod: CID strings, binary CIDs,
 * dag-pb blocks and the UnixFS data inside them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "storage/unixfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct cod_cid cid, again;
	struct cod_error *err = NULL;
	if (cod_cid_parse(text, &cid, &err) == 0) {
		/* the canonical form parses to the same CID */
		char *s = cod_cid_string(&cid);
		if (cod_cid_parse(s, &again, NULL) < 0 || !cod_cid_equal(&cid, &again))
			abort();
		free(s);
	} else {
		cod_error_free(err);
	}
	free(text);
	err = NULL;
	if (cod_cid_decode(data, size, &cid, &err) == 0) {
		struct cod_buf b = COD_BUF_INIT;
		cod_cid_encode(&cid, &b);
		if (b.len != size || memcmp(b.buf, data, size))
			abort();
		cod_buf_release(&b);
	} else {
		cod_error_free(err);
	}
	err = NULL;
	struct cod_pb_node node;
	if (cod_pb_decode(data, size, &node, &err) == 0) {
		/* what decodes re-encodes and decodes to as many links */
		struct cod_buf b = COD_BUF_INIT;
		cod_pb_encode(&node, &b);
		struct cod_pb_node node2;
		if (cod_pb_decode((const uint8_t *)(b.buf ? b.buf : ""), b.len, &node2, NULL) < 0 ||
		    node2.n_links != node.n_links)
			abort();
		cod_pb_node_release(&node2);
		cod_buf_release(&b);
		struct cod_unixfs u;
		if (node.data && cod_unixfs_decode(node.data, node.data_len, &u, NULL) == 0)
			cod_unixfs_release(&u);
		cod_pb_node_release(&node);
	} else {
		cod_error_free(err);
	}
	struct cod_unixfs u;
	if (cod_unixfs_decode(data, size, &u, NULL) == 0)
		cod_unixfs_release(&u);
	return 0;
}
