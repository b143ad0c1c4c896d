/*
 * image.c - `cod image ls|rm|prune|import|pull`: the image store of the
 * compute node whose data dir this is (DataDir/compute/images, --data-dir
 * or $COD_DIR). These commands work on the files directly, not through
 * the API, so they run on the compute node's machine; a running node may
 * share the store (pulls and GC coordinate through file locks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

static int start(struct cod_cli *cli, int argc, char **argv, const struct cod_flag *flags, const char *usage,
		 const char *help, const char **pos, int *npos, int min_pos, int max_pos, const char *formats)
{
	int rc = cod_cli_parse(cli, argc, argv, flags, usage, help, pos, npos, max_pos);
	if (rc)
		return cli->help ? 0 : rc;
	const char *name = usage;
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "%.*s", (int)strcspn(name + 6, " ") + 6, name);
	if (*npos < min_pos)
		return cod_cli_usage_error(cmd, "missing argument");
	if (formats && cod_output_check(&cli->out, formats, cmd) < 0)
		return 2;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0 || cod_oci_configure(&cli->cfg, &err) < 0)
		return cod_cli_fail(err);
	return -1;
}

static char *canonical(const char *text, struct cod_error **err)
{
	struct cod_oci_ref ref;
	if (cod_oci_ref_parse(text, &ref, err) < 0)
		return NULL;
	char *s = cod_oci_ref_string(&ref);
	cod_oci_ref_release(&ref);
	return s;
}

/* ------------------------------------------------------------------ ls */

static const char ls_help[] =
    "List the images in this node's store: reference, manifest digest, platform,\n"
    "size on disk (blobs and unpacked root file system), when pulled and last used.\n";

static int cmd_ls(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {COD_OUTPUT_FLAGS(cli), COD_FLAGS_END};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "image ls [flags]", ls_help, pos, &npos, 0, 0,
		       "table,csv,json,yaml");
	if (rc >= 0)
		return rc;
	struct cod_error *err = NULL;
	struct cod_oci_store_entry *list = NULL;
	size_t n = 0;
	if (cod_oci_store_list(&list, &n, &err) < 0)
		return cod_cli_fail(err);
	if (cod_output_structured(&cli->out)) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(
			    arr, json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I}", "Ref", list[i].ref,
					   "Manifest", list[i].manifest_digest, "Index", list[i].index_digest,
					   "Platform", list[i].platform, "Size", (json_int_t)list[i].size,
					   "Pulled", (json_int_t)list[i].pulled_ns, "LastUsed",
					   (json_int_t)list[i].used_ns));
		cod_print_value(arr, &cli->out, stdout);
		json_decref(arr);
	} else {
		static const char *const headers[] = {"IMAGE", "DIGEST", "PLATFORM",
						      "SIZE",  "PULLED", "LAST USED"};
		struct cod_table t;
		cod_table_init(&t, 6, headers);
		for (size_t i = 0; i < n; i++) {
			cleanup_free char *dg = xasprintf("%.19s", list[i].manifest_digest);
			cleanup_free char *size = cod_format_bytes(list[i].size);
			cleanup_free char *pulled = cod_fmt_age(list[i].pulled_ns);
			cleanup_free char *used =
			    list[i].used_ns ? cod_fmt_age(list[i].used_ns) : xstrdup("never");
			const char *cells[] = {list[i].ref, dg,	    list[i].platform ? list[i].platform : "",
					       size,	    pulled, used};
			cod_table_add(&t, cells);
		}
		cod_table_print(&t, &cli->out, stdout);
		cod_table_release(&t);
	}
	cod_oci_store_list_free(list, n);
	return 0;
}

/* ------------------------------------------------------------------ rm */

static const char rm_help[] = "Remove images from this node's store, then the blobs and root file systems\n"
			      "no other image uses (those of running executions stay until they end).\n";

static int cmd_rm(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {COD_FLAGS_END};
	const char *pos[64];
	int npos;
	int rc = start(cli, argc, argv, flags, "image rm IMAGE... [flags]", rm_help, pos, &npos, 1, 64, NULL);
	if (rc >= 0)
		return rc;
	rc = 0;
	for (int i = 0; i < npos; i++) {
		struct cod_error *err = NULL;
		cleanup_free char *ref = canonical(pos[i], &err);
		if (!ref || cod_oci_store_remove(ref, &err) < 0) {
			rc = cod_cli_fail(err);
			continue;
		}
		printf("Removed %s\n", ref);
	}
	uint64_t freed = 0;
	struct cod_error *err = NULL;
	if (cod_oci_store_gc(0, NULL, &freed, &err) < 0)
		return cod_cli_fail(err);
	cleanup_free char *f = cod_format_bytes(freed);
	printf("Freed %s\n", f);
	return rc;
}

/* --------------------------------------------------------------- prune */

static const char prune_help[] = "Remove what no image in this node's store uses: blobs, unpacked root file\n"
				 "systems, stale partial downloads. With --max-size, also remove the least\n"
				 "recently used images (not those in use) until the store fits.\n";

static int cmd_prune(struct cod_cli *cli, int argc, char **argv)
{
	const char *max_text = NULL;
	struct cod_flag flags[] = {
	    {"max-size", 0, COD_FLAG_STR, &max_text, "SIZE", "shrink the store to this size (e.g. 5GB)",
	     NULL},
	    COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "image prune [flags]", prune_help, pos, &npos, 0, 0, NULL);
	if (rc >= 0)
		return rc;
	uint64_t max = 0;
	if (max_text && cod_parse_bytes(max_text, &max) < 0)
		return cod_cli_usage_error("image prune", "flag --max-size: \"%s\" is not a size", max_text);
	uint64_t freed = 0;
	struct cod_error *err = NULL;
	if (cod_oci_store_gc(max, NULL, &freed, &err) < 0)
		return cod_cli_fail(err);
	cleanup_free char *f = cod_format_bytes(freed), *now = cod_format_bytes(cod_oci_store_size());
	printf("Freed %s; the image store now holds %s\n", f, now);
	return 0;
}

/* -------------------------------------------------------------- import */

static const char import_help[] =
    "Import images without a registry: an OCI image layout (a directory or a tar\n"
    "of one, e.g. from `skopeo copy IMAGE oci-archive:FILE:name:tag`) or a\n"
    "`docker save` tarball. Every blob is checked against its digest.\n";

static int cmd_import(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {COD_FLAGS_END};
	const char *pos[16];
	int npos;
	int rc = start(cli, argc, argv, flags, "image import FILE... [flags]", import_help, pos, &npos, 1, 16,
		       NULL);
	if (rc >= 0)
		return rc;
	for (int i = 0; i < npos; i++) {
		struct cod_strlist names = {0};
		struct cod_error *err = NULL;
		if (cod_oci_import(pos[i], &names, &err) < 0) {
			cod_strlist_release(&names);
			return cod_cli_fail(err);
		}
		for (size_t k = 0; k < names.n; k++)
			printf("Imported %s\n", names.items[k]);
		if (!names.n)
			printf("Imported nothing from %s (no named images)\n", pos[i]);
		cod_strlist_release(&names);
	}
	return 0;
}

/* ---------------------------------------------------------------- pull */

static const char pull_help[] =
    "Pull an image into this node's store (always asking the registry), for this\n"
    "node's platform, and unpack it.\n";

static int cmd_pull(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {COD_FLAGS_END};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "image pull IMAGE [flags]", pull_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	struct cod_oci_image img;
	struct cod_error *err = NULL;
	if (cod_oci_pull_refresh(pos[0], &img, &err) < 0)
		return cod_cli_fail(err);
	printf("Pulled %s (%s, %s)\n", img.ref, img.manifest_digest, img.platform ? img.platform : "");
	cod_oci_image_release(&img);
	return 0;
}

static const struct cod_command image_commands[] = {
    {"ls", cmd_ls, "list the images in this node's store"},
    {"rm", cmd_rm, "remove images from this node's store"},
    {"prune", cmd_prune, "remove unused blobs and root file systems; shrink the store"},
    {"import", cmd_import, "import an OCI layout or a docker save tarball"},
    {"pull", cmd_pull, "pull an image into this node's store"},
    {NULL, NULL, NULL},
};

int cod_cmd_image(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "image", image_commands, NULL, argc, argv);
}
