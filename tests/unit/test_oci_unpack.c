/*
 * test_oci_unpack.c - layers applied to a directory: files, dirs, symlinks,
 * hard links, modes; whiteouts and opaque directories across layers;
 * gzip and zstd; and the refusals: "../", absolute names, symlinked
 * parents, hard links out of the root. Layers are written here with
 * libarchive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

struct entry {
	const char *name;
	char type;	  /* f file, d dir, l symlink, h hardlink */
	const char *data; /* file content, link target */
	int mode;
};

static char *tmpdir;

static int setup(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/cod-test-unpack.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	tmpdir = xstrdup(d);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cod_oci_rmtree(tmpdir);
	free(tmpdir);
	return 0;
}

/* Write a layer tar; compression "gzip", "zstd" or NULL. */
static char *write_layer(const char *name, const struct entry *e, size_t n, const char *compression)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (compression && !strcmp(compression, "gzip"))
		archive_write_add_filter_gzip(a);
	else if (compression && !strcmp(compression, "zstd"))
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_mtime(ae, 1000, 0);
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, e[i].mode ? (mode_t)e[i].mode : 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data ? e[i].data : ""));
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, e[i].mode ? (mode_t)e[i].mode : 0755);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].data);
			archive_entry_set_size(ae, 0);
			break;
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == 'f' && e[i].data)
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

static char *root_dir(const char *name)
{
	char *r = xasprintf("%s/%s", tmpdir, name);
	assert_int_equal(mkdir(r, 0755), 0);
	return r;
}

static char *read_at(const char *root, const char *rel)
{
	cleanup_free char *p = xasprintf("%s/%s", root, rel);
	char *text = NULL;
	size_t len = 0;
	if (cod_read_file(p, 0, &text, &len, NULL) < 0)
		return NULL;
	return text;
}

static bool exists_at(const char *root, const char *rel)
{
	cleanup_free char *p = xasprintf("%s/%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static void test_basic_and_whiteouts(void **state)
{
	(void)state;
	cleanup_free char *root = root_dir("r1");
	static const struct entry l1[] = {
	    {"./", 'd', NULL, 0},
	    {"bin/", 'd', NULL, 0},
	    {"bin/tool", 'f', "#!/bin/sh\n", 0755},
	    {"bin/link", 'l', "tool", 0},
	    {"etc/conf", 'f', "v1", 0},
	    {"etc/hard", 'h', "etc/conf", 0},
	    {"gone/file", 'f', "x", 0},
	    {"gone2", 'f', "y", 0},
	    {"opq/old1", 'f', "o", 0},
	    {"opq/olddir/deep", 'f', "o", 0},
	    {"replaced", 'd', NULL, 0},
	    {"replaced/inner", 'f', "z", 0},
	};
	static const struct entry l2[] = {
	    {"etc/conf", 'f', "v2", 0},	       {"gone/.wh.file", 'f', "", 0},
	    {".wh.gone2", 'f', "", 0},	       {"opq/new", 'f', "n", 0},
	    {"opq/.wh..wh..opq", 'f', "", 0},  {"replaced", 'f', "now a file", 0},
	    {".wh.never-existed", 'f', "", 0}, {"missing-parent/.wh.x", 'f', "", 0},
	};
	cleanup_free char *t1 = write_layer("l1.tar.gz", l1, COD_ARRAY_SIZE(l1), "gzip");
	cleanup_free char *t2 = write_layer("l2.tar.zst", l2, COD_ARRAY_SIZE(l2), "zstd");
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_unpack_layer(t1, root, NULL, NULL, &err), 0);
	char *v = read_at(root, "etc/hard");
	assert_string_equal(v, "v1");
	free(v);
	assert_int_equal(cod_oci_unpack_layer(t2, root, NULL, NULL, &err), 0);

	v = read_at(root, "etc/conf");
	assert_string_equal(v, "v2");
	free(v);
	cleanup_free char *tool = xasprintf("%s/bin/tool", root);
	struct stat st;
	assert_int_equal(stat(tool, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	cleanup_free char *link = xasprintf("%s/bin/link", root);
	char target[64] = {0};
	assert_int_equal(readlink(link, target, sizeof(target) - 1), 4);
	assert_string_equal(target, "tool");
	assert_false(exists_at(root, "gone/file"));
	assert_true(exists_at(root, "gone"));
	assert_false(exists_at(root, "gone2"));
	assert_true(exists_at(root, "opq/new"));   /* same layer as the opaque marker */
	assert_false(exists_at(root, "opq/old1")); /* lower layer: hidden */
	assert_false(exists_at(root, "opq/olddir"));
	assert_false(exists_at(root, "opq/.wh..wh..opq"));
	v = read_at(root, "replaced");
	assert_string_equal(v, "now a file");
	free(v);
	assert_false(exists_at(root, "missing-parent"));
	/* the hard link still holds the old content (a distinct inode now) */
	v = read_at(root, "etc/hard");
	assert_string_equal(v, "v1");
	free(v);
}

static void expect_refused(const char *layer_name, const struct entry *e, size_t n, const char *why)
{
	cleanup_free char *rname = xasprintf("root-%s", layer_name);
	cleanup_free char *root = root_dir(rname);
	cleanup_free char *t = write_layer(layer_name, e, n, NULL);
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_unpack_layer(t, root, NULL, NULL, &err), -1);
	assert_int_equal(err->code, COD_E_VALIDATION);
	if (!strstr(err->message, why))
		print_message("%s: %s\n", layer_name, err->message);
	assert_non_null(strstr(err->message, why));
	cod_error_free(err);
}

static void test_refusals(void **state)
{
	(void)state;
	cleanup_free char *outside = xasprintf("%s/outside", tmpdir);
	assert_int_equal(mkdir(outside, 0755), 0);

	static const struct entry dotdot[] = {{"ok", 'f', "x", 0}, {"../../escape", 'f', "x", 0}};
	expect_refused("dotdot.tar", dotdot, 2, "leaves the image root");
	static const struct entry inner[] = {{"a/../../escape", 'f', "x", 0}};
	expect_refused("inner.tar", inner, 1, "leaves the image root");
	static const struct entry abs[] = {{"/etc/cod-escape", 'f', "x", 0}};
	expect_refused("abs.tar", abs, 1, "absolute paths");
	struct entry sym[] = {{"evil", 'l', outside, 0}, {"evil/pwned", 'f', "x", 0}};
	expect_refused("sym.tar", sym, 2, "is a symlink");
	static const struct entry relsym[] = {{"up", 'l', "..", 0}, {"up/pwned", 'f', "x", 0}};
	expect_refused("relsym.tar", relsym, 2, "is a symlink");
	static const struct entry deep[] = {
	    {"d/", 'd', NULL, 0}, {"d/s", 'l', "/", 0}, {"d/s/etc/x", 'f', "x", 0}};
	expect_refused("deep.tar", deep, 3, "is a symlink");
	static const struct entry hl[] = {{"h", 'h', "../outside/secret", 0}};
	expect_refused("hardlink.tar", hl, 1, "leaves the image root");
	static const struct entry wh[] = {{"../.wh.x", 'f', "", 0}};
	expect_refused("whiteout.tar", wh, 1, "leaves the image root");
	/* nothing was written outside */
	cleanup_free char *pwned = xasprintf("%s/pwned", outside);
	assert_int_not_equal(access(pwned, F_OK), 0);
	cleanup_free char *esc = xasprintf("%s/../escape", tmpdir);
	assert_int_not_equal(access(esc, F_OK), 0);
}

static void test_not_a_tar(void **state)
{
	(void)state;
	cleanup_free char *root = root_dir("r-bad");
	cleanup_free char *p = xasprintf("%s/garbage", tmpdir);
	assert_int_equal(
	    cod_write_file_atomic(p, "this is not a tar archive at all, not even close.....", 52, NULL), 0);
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_unpack_layer(p, root, NULL, NULL, &err), -1);
	cod_error_free(err);
}

static bool always(void *arg)
{
	(void)arg;
	return true;
}

static void test_abort(void **state)
{
	(void)state;
	cleanup_free char *root = root_dir("r-abort");
	static const struct entry e[] = {{"a", 'f', "x", 0}};
	cleanup_free char *t = write_layer("abort.tar", e, 1, NULL);
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_unpack_layer(t, root, always, NULL, &err), -1);
	assert_string_equal(err->message, "cancelled");
	cod_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic_and_whiteouts),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_not_a_tar),
	    cmocka_unit_test(test_abort),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
