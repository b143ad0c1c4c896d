/*
 * test_lazylib.c - libraries loaded on first use (src/common/lazylib.c and
 * the lazy_*.c shims): a library and its symbols resolve once; a missing
 * library or symbol is an error that names it, remembered, never a crash;
 * the shims forward variadic calls with their arguments intact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <archive.h>
#include <string.h>
#include <unistd.h>

#include "common/lazylib.h"
#include "common/banned.h"

static pid_t (*fn_getpid)(void);
static void *fn_missing;

static void test_load(void **state)
{
	(void)state;
	static const struct cod_lazy_sym syms[] = {{"getpid", (void **)&fn_getpid}};
	static struct cod_lazylib lib = {.soname = "libc.so.6", .syms = syms, .nsyms = 1};
	assert_true(cod_lazylib_load(&lib));
	assert_null(cod_lazylib_error(&lib));
	assert_non_null(fn_getpid);
	assert_int_equal(fn_getpid(), getpid());
}

static void test_missing_library(void **state)
{
	(void)state;
	static const struct cod_lazy_sym syms[] = {{"anything", &fn_missing}};
	static struct cod_lazylib lib = {.soname = "libcod-no-such-library.so.0", .syms = syms, .nsyms = 1};
	assert_false(cod_lazylib_load(&lib));
	const char *e = cod_lazylib_error(&lib);
	assert_non_null(e);
	assert_non_null(strstr(e, "libcod-no-such-library.so.0 cannot be loaded"));
	assert_non_null(strstr(e, "install-deps.sh"));
	assert_false(cod_lazylib_load(&lib)); /* remembered */
	assert_null(fn_missing);
}

static void test_missing_symbol(void **state)
{
	(void)state;
	static const struct cod_lazy_sym syms[] = {{"getpid", (void **)&fn_getpid},
						   {"cod_no_such_function", &fn_missing}};
	static struct cod_lazylib lib = {.soname = "libc.so.6", .syms = syms, .nsyms = 2};
	assert_false(cod_lazylib_load(&lib));
	assert_non_null(strstr(cod_lazylib_error(&lib), "lacks cod_no_such_function"));
	assert_null(fn_missing);
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Every argument class of curl_easy_setopt and a getinfo pointer. */
static void test_curl_shim(void **state)
{
	(void)state;
	assert_null(cod_lazy_curl_error());
	CURL *c = curl_easy_init();
	assert_non_null(c);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40), CURLE_OK);
	/* a long where libcurl checks the range: garbage would be refused */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_HTTP_VERSION, -5L), CURLE_BAD_FUNCTION_ARGUMENT);
	long code = -1;
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
	assert_int_equal(code, 0);
	char *e = curl_easy_escape(c, "a b/c", 0);
	assert_string_equal(e, "a%20b%2Fc");
	curl_free(e);
	assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
	curl_easy_cleanup(c);
}

static enum MHD_Result no_requests(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				   const char *version, const char *data, size_t *size, void **con_cls)
{
	(void)cls, (void)conn, (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
	return MHD_NO;
}

/* MHD_start_daemon's options reach the library through the va_list. */
static void test_mhd_shim(void **state)
{
	(void)state;
	assert_null(cod_lazy_mhd_error());
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, no_requests, NULL,
						MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
						MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
	assert_non_null(d);
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	assert_true(info->port > 0);
	MHD_stop_daemon(d);
}

static void test_archive_shim(void **state)
{
	(void)state;
	assert_null(cod_lazy_archive_error());
	struct archive *a = archive_read_new();
	assert_non_null(a);
	assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
	assert_int_equal(archive_read_open_filename(a, "/nonexistent/cod-test.tar", 10240), ARCHIVE_FATAL);
	assert_non_null(strstr(archive_error_string(a), "/nonexistent/cod-test.tar"));
	assert_int_equal(archive_read_free(a), ARCHIVE_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load),	   cmocka_unit_test(test_missing_library),
	    cmocka_unit_test(test_missing_symbol), cmocka_unit_test(test_curl_shim),
	    cmocka_unit_test(test_mhd_shim),	   cmocka_unit_test(test_archive_shim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
