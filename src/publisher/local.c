/*
 * local.c - the `local` publisher: the results directory becomes
 * DataDir/compute/results/<executionID>.tar.gz, served by the node's result
 * server (src/compute/results_http.c). The published result is a
 * urlDownload SpecConfig whose URL clients fetch (`cod job get`), with the
 * archive's size and sha256 so that they can check what they got.
 */
#include <errno.h>
#include <string.h>

#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "storage/http.h"
#include "common/banned.h"

static bool is_installed(const struct cod_config *cfg)
{
	/* the result server runs on every compute node that does not
	 * disable this publisher */
	return cfg && cfg->publisher_local_port >= 0;
}

static int publish(const struct cod_publish_ctx *ctx, struct cod_spec_config *result, struct cod_error **err)
{
	if (cod_str_empty(ctx->results_url))
		return cod_error_set(err, COD_E_CONFIG, "the local publisher's result server is not running on this node");
	cleanup_free char *dir = xasprintf("%s/compute/results", ctx->cfg->data_dir);
	if (cod_mkdir_p(dir, 0755, err) < 0)
		return -1;
	const char *id = ctx->execution->id;
	cleanup_free char *path = xasprintf("%s/%s.tar.gz", dir, id);
	uint64_t bytes = 0;
	if (cod_archive_targz(ctx->results_dir, path, &bytes, err) < 0)
		return -1;
	char hex[65];
	if (cod_sha256_file(path, hex, NULL, err) < 0)
		return -1;
	cleanup_free char *url = xasprintf("%s/%s.tar.gz", ctx->results_url, id);
	result->type = xstrdup("urlDownload");
	result->params = json_pack("{s:s, s:I, s:s}", "URL", url, "Size", (json_int_t)bytes, "SHA256", hex);
	return 0;
}

const struct cod_publisher_ops cod_publisher_local = {
	.name = "local",
	.is_installed = is_installed,
	.publish = publish,
};
