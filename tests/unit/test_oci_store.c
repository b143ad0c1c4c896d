/*
 * test_oci_store.c - the content-addressed image store: verified puts and
 * reads, one download per blob however many callers want it at once,
 * resumable partial files, reference records, unpacking an image, holds,
 * garbage collection and the size cap; bid-time resolution from the
 * local store (platform match and mismatch); config validation.
 */
#include <pthread.h>
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

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "config/config.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

static char *tmpdir;
static struct cod_config cfg;

static int setup(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/cod-test-store.XXXXXX";
	tmpdir = xstrdup(mkdtemp(tmpl));
	cod_config_init(&cfg);
	assert_int_equal(cod_config_set(&cfg, "DataDir", tmpdir, "test", NULL), 0);
	assert_int_equal(cod_oci_configure(&cfg, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cod_oci_rmtree(tmpdir);
	free(tmpdir);
	cod_config_release(&cfg);
	cod_oci_reset();
	return 0;
}

static char *digest_of(const char *data)
{
	char *d = NULL;
	/* store_put computes it */
	assert_int_equal(cod_oci_store_put(data, strlen(data), NULL, &d, NULL), 0);
	return d;
}

static void test_put_read(void **state)
{
	(void)state;
	cleanup_free char *d = digest_of("hello blob");
	assert_true(cod_oci_digest_valid(d));
	assert_true(cod_oci_blob_exists(d));
	struct cod_buf b;
	assert_int_equal(cod_oci_store_read(d, &b, NULL), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.buf, "hello blob", 10);
	cod_buf_release(&b);
	/* a wrong digest is refused */
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_store_put("other", 5, d, NULL, &err), -1);
	assert_int_equal(err->code, COD_E_VALIDATION);
	cod_error_free(err);
	/* corruption on disk is detected when read */
	cleanup_free char *path = cod_oci_blob_path(d);
	assert_int_equal(cod_write_file_atomic(path, "hello BLOB", 10, NULL), 0);
	err = NULL;
	assert_int_equal(cod_oci_store_read(d, &b, &err), -1);
	assert_non_null(strstr(err->message, "corrupt"));
	cod_error_free(err);
	unlink(path);
	assert_false(cod_oci_blob_exists(d));
}

struct fetcher {
	const char *data;
	int calls;
	pthread_mutex_t lock;
};

static int fetch(void *arg, const char *partial, struct cod_error **err)
{
	struct fetcher *f = arg;
	pthread_mutex_lock(&f->lock);
	f->calls++;
	pthread_mutex_unlock(&f->lock);
	usleep(100 * 1000); /* long enough for the others to queue up */
	return cod_write_file_atomic(partial, f->data, strlen(f->data), err);
}

struct worker {
	struct fetcher *f;
	const char *digest;
	int rc;
};

static void *pull_one(void *arg)
{
	struct worker *w = arg;
	w->rc = cod_oci_store_blob(w->digest, fetch, w->f, NULL, NULL, NULL);
	return NULL;
}

static void test_dedupe(void **state)
{
	(void)state;
	static const char data[] = "a blob many executions want at once";
	cleanup_free char *d = digest_of(data);
	cleanup_free char *path = cod_oci_blob_path(d);
	unlink(path); /* known digest, not stored */
	struct fetcher f = {.data = data};
	pthread_mutex_init(&f.lock, NULL);
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.f = &f, .digest = d};
		pthread_create(&t[i], NULL, pull_one, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
	}
	assert_int_equal(f.calls, 1);
	assert_true(cod_oci_blob_exists(d));
	pthread_mutex_destroy(&f.lock);
}

static char *write_layer(const char *name, const char *file, const char *content)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	archive_write_open_filename(a, path);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, file);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(content));
	archive_write_header(a, e);
	archive_write_data(a, content, strlen(content));
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

/* An image of one layer in the store, recorded under ref. */
static void add_image(const char *ref, const char *platform, const char *content, char **manifest_out)
{
	cleanup_free char *layer = write_layer("layer.tgz", "hello.txt", content);
	char *ltext = NULL;
	size_t llen = 0;
	assert_int_equal(cod_read_file(layer, 0, &ltext, &llen, NULL), 0);
	char *ld = NULL;
	assert_int_equal(cod_oci_store_put(ltext, llen, NULL, &ld, NULL), 0);
	cleanup_free char *config =
	    xasprintf("{\"os\":\"linux\",\"architecture\":\"%s\",\"config\":{\"Cmd\":[\"sh\"]}}",
		      strchr(platform, '/') + 1);
	cleanup_free char *cd = digest_of(config);
	cleanup_free char *manifest = xasprintf(
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
	    "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	    "\"digest\":\"%s\",\"size\":%zu}]}",
	    COD_MT_OCI_MANIFEST, COD_MT_OCI_CONFIG, cd, strlen(config), ld, llen);
	char *md = digest_of(manifest);
	struct cod_oci_store_entry e = {.ref = (char *)ref,
					.manifest_digest = md,
					.platform = (char *)platform,
					.size = llen,
					.pulled_ns = cod_now_ns()};
	assert_int_equal(cod_oci_store_put_ref(&e, NULL), 0);
	free(ltext);
	free(ld);
	if (manifest_out)
		*manifest_out = md;
	else
		free(md);
}

/* The progress messages of a pull, one per line. */
static void on_message(void *arg, const char *message)
{
	struct cod_buf *b = arg;
	cod_buf_add(b, message, strlen(message));
	cod_buf_add(b, "\n", 1);
}

static void test_refs_unpack_gc(void **state)
{
	(void)state;
	char *m1 = NULL;
	add_image("docker.io/library/one:latest", "linux/amd64", "one", &m1);
	add_image("docker.io/library/two:latest", "linux/amd64", "two", NULL);
	struct cod_oci_store_entry *list = NULL;
	size_t n = 0;
	assert_int_equal(cod_oci_store_list(&list, &n, NULL), 0);
	assert_int_equal(n, 2);
	cod_oci_store_list_free(list, n);

	/* pull from the store (no registry): unpacked and held */
	struct cod_oci_image img;
	struct cod_error *err = NULL;
	struct cod_buf said = COD_BUF_INIT;
	int rc = cod_oci_pull("one", NULL, NULL, on_message, &said, &img, &err);
	if (rc < 0)
		print_message("pull: %s\n", err->message);
	assert_int_equal(rc, 0);
	assert_string_equal(cod_buf_str(&said), "unpacking image one\n");
	assert_string_equal(img.manifest_digest, m1);
	cleanup_free char *hello = xasprintf("%s/hello.txt", img.rootfs);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(cod_read_file(hello, 0, &text, &len, NULL), 0);
	assert_string_equal(text, "one");
	free(text);
	assert_true(img.hold_fd >= 0);
	struct cod_oci_store_entry e;
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/one:latest", &e, NULL), 0);
	assert_true(e.used_ns > 0);
	assert_true(e.size > 3);

	/* used again within a minute: the record stays as it is (no rewrite
	 * per job); used again later: it gets the new time */
	int64_t used = e.used_ns;
	struct cod_oci_image again;
	cod_buf_release(&said);
	said = (struct cod_buf)COD_BUF_INIT;
	assert_int_equal(cod_oci_pull("one", NULL, NULL, on_message, &said, &again, NULL), 0);
	cod_oci_image_release(&again);
	/* unpacked already: nothing to say (a progress message would report
	 * the execution's phase at once) */
	assert_int_equal(said.len, 0);
	cod_buf_release(&said);
	struct cod_oci_store_entry e2;
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/one:latest", &e2, NULL), 0);
	assert_true(e2.used_ns == used);
	assert_true(e2.size == e.size);
	cod_oci_store_entry_release(&e2);
	e.used_ns -= 120 * 1000000000LL;
	assert_int_equal(cod_oci_store_put_ref(&e, NULL), 0);
	assert_int_equal(cod_oci_pull("one", NULL, NULL, NULL, NULL, &again, NULL), 0);
	cod_oci_image_release(&again);
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/one:latest", &e2, NULL), 0);
	assert_true(e2.used_ns > used);
	assert_true(e2.size == e.size);
	cod_oci_store_entry_release(&e2);
	cod_oci_store_entry_release(&e);

	/* an unreferenced blob goes; referenced ones stay */
	cleanup_free char *stray = digest_of("stray");
	uint64_t freed = 0;
	assert_int_equal(cod_oci_store_gc(0, NULL, &freed, NULL), 0);
	assert_false(cod_oci_blob_exists(stray));
	assert_true(freed > 0);
	assert_true(cod_oci_blob_exists(m1));

	/* removing a held image: its record goes, its rootfs stays while held */
	assert_int_equal(cod_oci_store_remove("docker.io/library/one:latest", NULL), 0);
	assert_int_equal(cod_oci_store_gc(0, NULL, NULL, NULL), 0);
	assert_false(cod_oci_blob_exists(m1));
	assert_int_equal(access(img.rootfs, F_OK), 0);
	cleanup_free char *rootfs = xstrdup(img.rootfs);
	cod_oci_image_release(&img);
	assert_int_equal(cod_oci_store_gc(0, NULL, NULL, NULL), 0);
	assert_int_not_equal(access(rootfs, F_OK), 0);

	/* the cap evicts what is left */
	assert_int_equal(cod_oci_store_gc(1, NULL, NULL, NULL), 0);
	assert_int_equal(cod_oci_store_list(&list, &n, NULL), 0);
	assert_int_equal(n, 0);
	cod_oci_store_list_free(list, n);
	err = NULL;
	assert_int_equal(cod_oci_store_remove("docker.io/library/two:latest", &err), -1);
	assert_int_equal(err->code, COD_E_NOT_FOUND);
	cod_error_free(err);
	free(m1);
}

/* ImageStore.MaxSize is enforced after a pull that grew the store and at
 * the first pull after the settings are taken (a start); an image found
 * unpacked in the store (every job of a cached image) otherwise leaves the
 * store unmeasured and uncollected. */
static void test_cap_after_growth(void **state)
{
	(void)state;
	struct cod_config c;
	cod_config_init(&c);
	assert_int_equal(cod_config_set(&c, "DataDir", tmpdir, "test", NULL), 0);
	assert_int_equal(cod_config_set(&c, "Engines.Types.Docker.ImageStore.MaxSize", "1KB", "test", NULL), 0);
	assert_int_equal(cod_oci_configure(&c, NULL), 0);
	struct cod_oci_store_entry e;
	struct cod_oci_image img;
	add_image("docker.io/library/three:latest", "linux/amd64", "three", NULL);
	add_image("docker.io/library/four:latest", "linux/amd64", "four", NULL);
	/* three is unpacked, the first pull since the settings measures:
	 * over the cap, the unused four goes */
	assert_int_equal(cod_oci_pull("three", NULL, NULL, NULL, NULL, &img, NULL), 0);
	cod_oci_image_release(&img);
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/four:latest", &e, NULL), -1);
	/* three again, from the store: four, back, stays although over the cap */
	add_image("docker.io/library/four:latest", "linux/amd64", "four", NULL);
	assert_int_equal(cod_oci_pull("three", NULL, NULL, NULL, NULL, &img, NULL), 0);
	cod_oci_image_release(&img);
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/four:latest", &e, NULL), 0);
	cod_oci_store_entry_release(&e);
	assert_true(cod_oci_store_size() > 1024);
	/* a restart: the first pull measures again, and four goes */
	assert_int_equal(cod_oci_configure(&c, NULL), 0);
	assert_int_equal(cod_oci_pull("three", NULL, NULL, NULL, NULL, &img, NULL), 0);
	cod_oci_image_release(&img);
	assert_int_equal(cod_oci_store_get_ref("docker.io/library/four:latest", &e, NULL), -1);
	assert_int_equal(cod_oci_store_gc(0, NULL, NULL, NULL), 0);
	cod_config_release(&c);
	/* back to the test's settings */
	assert_int_equal(cod_oci_configure(&cfg, NULL), 0);
}

static void test_resolve_local(void **state)
{
	(void)state;
	cleanup_free char *platform = cod_oci_node_platform();
	const char *other = strcmp(platform, "linux/amd64") ? "linux/amd64" : "linux/arm64";
	add_image("docker.io/library/here:latest", platform, "x", NULL);
	add_image("docker.io/library/elsewhere:latest", other, "y", NULL);
	struct cod_error *err = NULL;
	assert_int_equal(cod_oci_resolve("here", &err), 0);
	assert_int_equal(cod_oci_resolve("elsewhere", &err), -1);
	assert_int_equal(err->code, COD_E_VALIDATION);
	cleanup_free char *want = xasprintf("has no %s variant; available: %s", platform, other);
	assert_non_null(strstr(err->message, want));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_oci_resolve("Bad Ref", &err), -1);
	assert_non_null(strstr(err->message, "invalid image reference"));
	cod_error_free(err);
	/* an unreachable registry is a network error, not a rejection */
	err = NULL;
	assert_int_equal(cod_oci_resolve("127.0.0.1:1/nothing:here", &err), -1);
	assert_int_equal(err->code, COD_E_NETWORK);
	cod_error_free(err);
}

static void test_config_checks(void **state)
{
	(void)state;
	struct cod_config c;
	cod_config_init(&c);
	struct cod_error *err = NULL;
	assert_int_equal(cod_config_set(&c, "Engines.Types.Docker.Runtime", "docker", "test", NULL), 0);
	assert_int_equal(cod_oci_configure(&c, &err), -1);
	assert_non_null(strstr(err->message, "auto, crun or runc"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&c, "Engines.Types.Docker.Runtime", "auto", "test", NULL), 0);
	assert_int_equal(cod_config_set(&c, "Engines.Types.Docker.ImageStore.MaxSize", "lots", "test", NULL),
			 0);
	assert_int_equal(cod_oci_configure(&c, &err), -1);
	assert_non_null(strstr(err->message, "MaxSize"));
	cod_error_free(err);
	cod_config_release(&c);
	/* back to the test's settings */
	assert_int_equal(cod_oci_configure(&cfg, NULL), 0);
}

static void test_credentials(void **state)
{
	(void)state;
	struct cod_config c;
	cod_config_init(&c);
	cleanup_free char *dcfg = xasprintf("%s/docker-config.json", tmpdir);
	/* "dXNlcjI6cGFzczI=" is base64("user2:pass2") */
	static const char json[] =
	    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjI6cGFzczI=\"},"
	    "\"reg.example:5000\":{\"username\":\"u3\",\"password\":\"p3\"}}}";
	assert_int_equal(cod_write_file_atomic(dcfg, json, strlen(json), NULL), 0);
	assert_int_equal(cod_config_set(&c, "DataDir", tmpdir, "test", NULL), 0);
	assert_int_equal(
	    cod_config_set(&c, "Engines.Types.Docker.Credentials", "ghcr.io=u1:p:1", "test", NULL), 0);
	assert_int_equal(cod_config_set(&c, "Engines.Types.Docker.ConfigFile", dcfg, "test", NULL), 0);
	assert_int_equal(cod_oci_configure(&c, NULL), 0);
	char *u = NULL, *p = NULL;
	assert_true(cod_oci_credentials("ghcr.io", &u, &p));
	assert_string_equal(u, "u1");
	assert_string_equal(p, "p:1");
	free(u);
	free(p);
	assert_true(cod_oci_credentials("docker.io", &u, &p));
	assert_string_equal(u, "user2");
	assert_string_equal(p, "pass2");
	free(u);
	free(p);
	assert_true(cod_oci_credentials("reg.example:5000", &u, &p));
	assert_string_equal(u, "u3");
	free(u);
	free(p);
	assert_false(cod_oci_credentials("other.example", &u, &p));
	cod_config_release(&c);
	assert_int_equal(cod_oci_configure(&cfg, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_read),	   cmocka_unit_test(test_dedupe),
	    cmocka_unit_test(test_refs_unpack_gc), cmocka_unit_test(test_cap_after_growth),
	    cmocka_unit_test(test_resolve_local),
	    cmocka_unit_test(test_config_checks),  cmocka_unit_test(test_credentials),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
