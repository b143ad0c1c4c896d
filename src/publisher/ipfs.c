/*
 * ipfs.c - the `ipfs` publisher: the results directory is added to the
 * configured IPFS node (Publishers.Types.IPFS.Endpoint, else
 * InputSources.Types.IPFS.Endpoint) and the result is its CID.
 *
 * cod lays out the blocks itself (CIDv1, raw leaves, 256 KiB chunks: what
 * `ipfs add --cid-version=1` makes), so the CID it reports is one it
 * computed, not one it was told; the node must confirm the same root when
 * it imports them (storage/ipfs.h).
 */
#include "publisher/publisher.h"

#include <jansson.h>

#include "common/mem.h"
#include "common/util.h"
#include "storage/ipfs.h"
#include "common/banned.h"

static const char *endpoint_of(const struct cod_config *cfg)
{
	if (!cfg)
		return NULL;
	return !cod_str_empty(cfg->publisher_ipfs_endpoint) ? cfg->publisher_ipfs_endpoint : cfg->input_ipfs_endpoint;
}

static bool is_installed(const struct cod_config *cfg)
{
	return !cod_str_empty(endpoint_of(cfg));
}

static int publish(const struct cod_publish_ctx *ctx, struct cod_spec_config *result, struct cod_error **err)
{
	struct cod_unixfs_opts o = cod_unixfs_defaults(1);
	struct cod_cid root;
	if (cod_ipfs_add(endpoint_of(ctx->cfg), ctx->results_dir, &o, ctx->exec_dir, 0, &root, NULL, err) < 0)
		return -1;
	cleanup_free char *cid = cod_cid_string(&root);
	result->type = xstrdup("ipfs");
	result->params = json_pack("{s:s}", "CID", cid);
	return 0;
}

const struct cod_publisher_ops cod_publisher_ipfs = {
	.name = "ipfs",
	.is_installed = is_installed,
	.publish = publish,
};
