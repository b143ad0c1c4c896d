/*
 * inline.c - the `inline` input source: a small payload carried in the job
 * spec itself as a data: URI (RFC 2397), base64 or percent-encoded, written
 * to a file and mounted read-only at the input's Target.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/storage.h"
#include "common/banned.h"

static int too_large(const struct cod_buf *out, struct cod_error **err)
{
	return cod_error_set(err, COD_E_TOO_LARGE,
			     "data: URI is larger than %zu bytes; put a larger input behind a URL or in S3",
			     out->max);
}

/* Decode a data: URI into out. Whitespace inside base64 data is ignored
 * (YAML block scalars fold long URIs over lines). */
int cod_data_uri_decode(const char *uri, struct cod_buf *out, struct cod_error **err)
{
	if (strncasecmp(uri, "data:", 5))
		return cod_error_set(err, COD_E_VALIDATION, "\"URL\" is not a data: URI; use data:[<type>][;base64],<data>");
	const char *comma = strchr(uri, ',');
	if (!comma)
		return cod_error_set(
		    err, COD_E_VALIDATION,
		    "data: URI has no ',' before its data; use data:[<type>][;base64],<data>");
	bool base64 = false;
	for (const char *p = uri + 5; p < comma; p++)
		if (!strncasecmp(p, ";base64", 7) && (p + 7 == comma))
			base64 = true;
	const char *d = comma + 1;
	if (base64) {
		struct cod_base64 b64 = {0};
		for (; *d; d++) {
			if (isspace((unsigned char)*d) || *d == '=')
				continue;
			int v = cod_base64_digit((unsigned char)*d);
			if (v < 0)
				return cod_error_set(err, COD_E_VALIDATION,
						     "data: URI has a character '%c' that is not base64; "
						     "encode the data with base64 (A-Z a-z 0-9 + / or - _)",
						     *d);
			unsigned char byte;
			if (cod_base64_push(&b64, v, &byte) && cod_buf_add(out, &byte, 1) < 0)
				return too_large(out, err);
		}
		return 0;
	}
	for (; *d; d++) {
		char ch = *d;
		if (ch == '%' && cod_hex_digit((unsigned char)d[1]) >= 0 && cod_hex_digit((unsigned char)d[2]) >= 0) {
			ch = (char)(cod_hex_digit((unsigned char)d[1]) * 16 + cod_hex_digit((unsigned char)d[2]));
			d += 2;
		}
		if (cod_buf_add(out, &ch, 1) < 0)
			return too_large(out, err);
	}
	return 0;
}

static const char *url_param(const struct cod_input_source *in)
{
	json_t *v = cod_json_iget(in->source.params, "URL");
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool bid_check(const struct cod_config *cfg, const struct cod_input_source *in, char **reason)
{
	(void)cfg;
	if (!url_param(in)) {
		*reason = xstrdup("inline input has no URL parameter; set Params.URL to a data: URI");
		return false;
	}
	return true;
}

static int64_t local_bytes(const struct cod_config *cfg, const struct cod_input_source *in)
{
	(void)cfg;
	const char *url = url_param(in);
	/* the payload travels with the job: it is always local */
	return url ? (int64_t)strlen(url) : 0;
}

static int prepare(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err)
{
	const char *url = url_param(ctx->input);
	if (!url)
		return cod_error_set(err, COD_E_VALIDATION,
				     "inline input has no URL parameter; set Params.URL to a data: URI");
	struct cod_buf data;
	cod_buf_init(&data, 64u << 20);
	if (cod_data_uri_decode(url, &data, err) < 0) {
		cod_buf_release(&data);
		return -1;
	}
	const char *target = ctx->input->target ? ctx->input->target : "/input";
	const char *base = strrchr(target, '/');
	base = base && base[1] ? base + 1 : "data";
	cleanup_free char *path = xasprintf("%s/%s", ctx->work_dir, base);
	int rc = cod_write_file_atomic(path, data.buf ? data.buf : "", data.len, err);
	cod_buf_release(&data);
	if (rc < 0)
		return -1;
	chmod(path, 0644);
	mount->source = steal_pointer(&path);
	mount->target = xstrdup(target);
	mount->read_only = true;
	return 0;
}

const struct cod_storage_ops cod_storage_inline = {
	.name = "inline",
	.bid_check = bid_check,
	.local_bytes = local_bytes,
	.prepare = prepare,
};
