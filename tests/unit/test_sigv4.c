/*
 * test_sigv4.c - AWS Signature Version 4 against the worked examples of
 * AWS's S3 documentation ("Signature Calculations for the Authorization
 * Header" and "Authenticating Requests: Using Query Parameters"): the same
 * example credentials, bucket, dates and headers, the documented
 * signatures. Also the canonical query encoding and the credential chain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/mem.h"
#include "common/util.h"
#include "storage/s3api.h"
#include "common/banned.h"

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* 2013-05-24T00:00:00Z */
static const time_t WHEN = 1369353600;

static struct cod_aws_creds example_creds(void)
{
	struct cod_aws_creds c = {.access_key = (char *)"AKIAIOSFODNN7EXAMPLE",
				  .secret_key = (char *)"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
	return c;
}

static void expect_signature(const char *auth, const char *signed_headers, const char *sig)
{
	cleanup_free char *want = xasprintf("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
					    "aws4_request, SignedHeaders=%s, Signature=%s",
					    signed_headers, sig);
	assert_string_equal(auth, want);
}

/* GET Object with a Range header. */
static void test_get_object(void **state)
{
	(void)state;
	struct cod_aws_creds c = example_creds();
	struct cod_kvlist h = {0};
	cod_kvlist_set(&h, "range", "bytes=0-9");
	struct cod_sigv4_request r = {.method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
				      .query = "", .headers = &h, .payload_hash = EMPTY_SHA, .region = "us-east-1",
				      .service = "s3", .when = WHEN};
	char *canonical = NULL, *sts = NULL;
	cleanup_free char *auth = cod_sigv4_authorization(&r, &c, &canonical, &sts);
	expect_signature(auth, "host;range;x-amz-content-sha256;x-amz-date",
			 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(canonical, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
				       "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:20130524T000000Z\n\n"
				       "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
				 "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	free(canonical);
	free(sts);
	cod_kvlist_release(&h);
}

/* PUT Object: an encoded key, a signed payload and extra headers. */
static void test_put_object(void **state)
{
	(void)state;
	struct cod_aws_creds c = example_creds();
	struct cod_kvlist h = {0};
	cod_kvlist_set(&h, "date", "Fri, 24 May 2013 00:00:00 GMT");
	cod_kvlist_set(&h, "x-amz-storage-class", "REDUCED_REDUNDANCY");
	struct cod_sigv4_request r = {
	    .method = "PUT", .host = "examplebucket.s3.amazonaws.com", .path = "/test%24file.text", .query = "",
	    .headers = &h, .payload_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	    .region = "us-east-1", .service = "s3", .when = WHEN};
	cleanup_free char *auth = cod_sigv4_authorization(&r, &c, NULL, NULL);
	expect_signature(auth, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
			 "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	cod_kvlist_release(&h);
}

/* GET Bucket lifecycle: a query parameter without a value. */
static void test_get_lifecycle(void **state)
{
	(void)state;
	struct cod_aws_creds c = example_creds();
	cleanup_free char *q = cod_sigv4_canonical_query("lifecycle");
	assert_string_equal(q, "lifecycle=");
	struct cod_sigv4_request r = {.method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/",
				      .query = q, .payload_hash = EMPTY_SHA, .region = "us-east-1", .service = "s3",
				      .when = WHEN};
	cleanup_free char *auth = cod_sigv4_authorization(&r, &c, NULL, NULL);
	expect_signature(auth, "host;x-amz-content-sha256;x-amz-date",
			 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

/* List objects: query parameters sorted by name. */
static void test_list_objects(void **state)
{
	(void)state;
	struct cod_aws_creds c = example_creds();
	cleanup_free char *q = cod_sigv4_canonical_query("prefix=J&max-keys=2");
	assert_string_equal(q, "max-keys=2&prefix=J");
	struct cod_sigv4_request r = {.method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/",
				      .query = q, .payload_hash = EMPTY_SHA, .region = "us-east-1", .service = "s3",
				      .when = WHEN};
	cleanup_free char *auth = cod_sigv4_authorization(&r, &c, NULL, NULL);
	expect_signature(auth, "host;x-amz-content-sha256;x-amz-date",
			 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* A pre-signed GET valid for 24 hours. */
static void test_presigned_url(void **state)
{
	(void)state;
	struct cod_aws_creds c = example_creds();
	struct cod_sigv4_request r = {.method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
				      .query = "", .region = "us-east-1", .service = "s3", .when = WHEN};
	cleanup_free char *url = cod_sigv4_presign(&r, &c, "https", 86400);
	assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
				 "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
				 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
				 "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

static void test_canonical_query_encoding(void **state)
{
	(void)state;
	cleanup_free char *q = cod_sigv4_canonical_query("prefix=a b/c&list-type=2&continuation-token=x%2By%3D");
	assert_string_equal(q, "continuation-token=x%2By%3D&list-type=2&prefix=a%20b%2Fc");
	cleanup_free char *e = cod_sigv4_canonical_query("");
	assert_string_equal(e, "");
}

static void test_credential_chain(void **state)
{
	(void)state;
	char dir[] = "/tmp/cod-sigv4-XXXXXX";
	assert_non_null(mkdtemp(dir));
	cleanup_free char *cred = xasprintf("%s/credentials", dir);
	cleanup_free char *conf = xasprintf("%s/config", dir);
	const char *ctext = "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = secretdefault\n"
			    "[other]\naws_access_key_id=AKOTHER\naws_secret_access_key=secretother\n"
			    "aws_session_token=tok\n";
	const char *gtext = "[default]\nregion = eu-west-3\n[profile other]\nregion=ap-south-1\n";
	assert_int_equal(cod_write_file_atomic(cred, ctext, strlen(ctext), NULL), 0);
	assert_int_equal(cod_write_file_atomic(conf, gtext, strlen(gtext), NULL), 0);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_PROFILE");

	struct cod_aws_creds c;
	assert_true(cod_aws_creds_load(&c));
	assert_string_equal(c.access_key, "AKDEFAULT");
	assert_string_equal(c.region, "eu-west-3");
	assert_null(c.session_token);
	cod_aws_creds_release(&c);

	setenv("AWS_PROFILE", "other", 1);
	assert_true(cod_aws_creds_load(&c));
	assert_string_equal(c.access_key, "AKOTHER");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(c.region, "ap-south-1");
	cod_aws_creds_release(&c);

	/* the environment wins */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_REGION", "us-west-2", 1);
	assert_true(cod_aws_creds_load(&c));
	assert_string_equal(c.access_key, "AKENV");
	assert_string_equal(c.region, "us-west-2");
	cod_aws_creds_release(&c);

	/* nothing anywhere */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	assert_false(cod_aws_creds_load(&c));
	assert_string_equal(c.region, "us-west-2");
	cod_aws_creds_release(&c);
	unsetenv("AWS_REGION");
	unlink(cred);
	unlink(conf);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_object),
	    cmocka_unit_test(test_put_object),
	    cmocka_unit_test(test_get_lifecycle),
	    cmocka_unit_test(test_list_objects),
	    cmocka_unit_test(test_presigned_url),
	    cmocka_unit_test(test_canonical_query_encoding),
	    cmocka_unit_test(test_credential_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
