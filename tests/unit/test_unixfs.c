/*
 * test_unixfs.c - content addressing without an IPFS node: varints,
 * base58btc and base32, CID parsing in every supported spelling and the
 * errors for the rest, block verification, dag-pb/UnixFS decoding of good
 * and malformed blocks, and the builder's CIDs against reference values
 * computed by other implementations (go-ipfs's well-known CIDs, Debian's
 * ipfs_cid, js-ipfs's `add --cid-version=1`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/mem.h"
#include "common/util.h"
#include "storage/http.h"
#include "storage/unixfs.h"

static char *tmp_dir(void)
{
	char tmpl[] = "/tmp/cod-unixfs-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* The CID string of path built with the defaults of a version. */
static char *cid_of_path(const char *path, unsigned version, bool raw_leaves)
{
	struct cod_unixfs_opts o = cod_unixfs_defaults(version);
	o.raw_leaves = raw_leaves;
	struct cod_cid c;
	struct cod_error *err = NULL;
	assert_int_equal(cod_unixfs_add(path, &o, &c, NULL, &err), 0);
	return cod_cid_string(&c);
}

static void test_varint(void **state)
{
	(void)state;
	uint8_t b[10];
	const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
	for (size_t i = 0; i < COD_ARRAY_SIZE(values); i++) {
		size_t n = cod_varint_put(b, values[i]);
		const uint8_t *p = b;
		uint64_t v = 0;
		assert_int_equal(cod_varint_get(&p, b + n, &v), 0);
		assert_true(v == values[i]);
		assert_ptr_equal(p, b + n);
		/* truncated */
		p = b;
		if (n > 1)
			assert_int_equal(cod_varint_get(&p, b + n - 1, &v), -1);
	}
	assert_int_equal(cod_varint_put(b, 300), 2);
	assert_int_equal(b[0], 0xac);
	assert_int_equal(b[1], 0x02);
	/* 0 written in two bytes is not minimal: refused */
	const uint8_t padded[] = {0x80, 0x00};
	const uint8_t *q = padded;
	uint64_t w;
	assert_int_equal(cod_varint_get(&q, padded + 2, &w), -1);
	/* more than 64 bits */
	const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
	const uint8_t *p = big;
	uint64_t v;
	assert_int_equal(cod_varint_get(&p, big + sizeof(big), &v), -1);
}

static void test_multibase(void **state)
{
	(void)state;
	cleanup_free char *s = cod_base58btc_encode((const uint8_t *)"hello world", 11);
	assert_string_equal(s, "StV1DL6CwTryKyV");
	const uint8_t zeros[] = {0, 0, 1};
	cleanup_free char *z = cod_base58btc_encode(zeros, 3);
	assert_string_equal(z, "112");
	size_t len = 0;
	cleanup_free uint8_t *d = cod_base58btc_decode("112", &len);
	assert_int_equal(len, 3);
	assert_memory_equal(d, zeros, 3);
	assert_null(cod_base58btc_decode("0OIl", &len)); /* not in the alphabet */

	cleanup_free char *b = cod_base32_encode((const uint8_t *)"foobar", 6);
	assert_string_equal(b, "mzxw6ytboi");
	cleanup_free uint8_t *f = cod_base32_decode("MZXW6YTBOI", &len);
	assert_int_equal(len, 6);
	assert_memory_equal(f, "foobar", 6);
	assert_null(cod_base32_decode("mzxw6ytbo1", &len)); /* '1' is not base32 */
	assert_null(cod_base32_decode("mzxw6ytboj", &len)); /* non-zero padding bits */
}

static void test_cid_parse(void **state)
{
	(void)state;
	struct cod_cid a, b;
	struct cod_error *err = NULL;
	assert_int_equal(cod_cid_parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", &a, &err), 0);
	assert_int_equal(a.version, 0);
	assert_true(a.codec == COD_CODEC_DAG_PB);
	cleanup_free char *s = cod_cid_string(&a);
	assert_string_equal(s, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
	/* one raw CIDv1 in base32, base32 upper, base58btc and base16 */
	const char *spellings[] = {
	    "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
	    "BAFKREIFJJCIE6LYPI6NY7AMXNFFTAGCLBUXNDQONFIPMB64F2KM2DEVEI4",
	    "zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY",
	    "f01551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447",
	};
	assert_int_equal(cod_cid_parse(spellings[0], &a, &err), 0);
	assert_true(a.codec == COD_CODEC_RAW);
	for (size_t i = 1; i < COD_ARRAY_SIZE(spellings); i++) {
		assert_int_equal(cod_cid_parse(spellings[i], &b, &err), 0);
		assert_true(cod_cid_equal(&a, &b));
		cleanup_free char *c = cod_cid_string(&b);
		assert_string_equal(c, spellings[0]);
	}
	/* the content of "hello world\n" as a raw block */
	assert_true(cod_cid_verify(&a, "hello world\n", 12));
	assert_false(cod_cid_verify(&a, "hello world!", 12));

	struct {
		const char *text, *want;
	} bad[] = {
	    {"", "empty"},
	    {"Qm", "46 base58btc characters"},
	    {"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff50", "not valid"},
	    {"xyz", "unknown multibase prefix 'x'"},
	    {"b!!", "not valid"},
	    /* dag-cbor codec */
	    {"bafyreib7ujxqgtvzicm6ydrdtpsj7esnotodjvowfykswauuq3tdrqsqo4", "not UnixFS data"},
	    /* blake2b-256 */
	    {"bafk2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4", "hash function 0xb220"},
	    /* CIDv0 bytes in a multibase */
	    {"f12209139839e65fabea9efd230898ad8b574509147e48d7c1e87a33d6da70fd2efbf", "must be written in base58btc"},
	    /* version 2 */
	    {"f02701220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447", "version 2"},
	    /* digest shorter than it says */
	    {"f015512200102", "does not fit"},
	    /* trailing bytes */
	    {"f01551220a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44700", "stray bytes"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		err = NULL;
		assert_int_equal(cod_cid_parse(bad[i].text, &a, &err), -1);
		assert_non_null(err);
		if (!strstr(err->message, bad[i].want))
			fail_msg("%s: %s (want %s)", bad[i].text, err->message, bad[i].want);
		cod_error_free(err);
	}
	/* no error object wanted: no crash */
	assert_int_equal(cod_cid_parse("xyz", &a, NULL), -1);
	assert_int_equal(cod_cid_parse("bafk2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4", &a, NULL), -1);

	/* identity CIDs carry their content */
	assert_int_equal(cod_cid_parse("f01550003616263", &a, &err), 0);
	assert_true(cod_cid_verify(&a, "abc", 3));
	assert_false(cod_cid_verify(&a, "abd", 3));
}

static void test_pb(void **state)
{
	(void)state;
	/* the block of "hello world\n" as go-ipfs adds it */
	const uint8_t block[] = {0x0a, 0x12, 0x08, 0x02, 0x12, 0x0c, 'h', 'e', 'l', 'l', 'o', ' ',
				 'w',  'o',  'r',  'l',  'd',  '\n', 0x18, 0x0c};
	struct cod_cid c;
	cod_cid_of(0, COD_CODEC_DAG_PB, block, sizeof(block), &c);
	cleanup_free char *s = cod_cid_string(&c);
	assert_string_equal(s, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
	struct cod_pb_node node;
	struct cod_error *err = NULL;
	assert_int_equal(cod_pb_decode(block, sizeof(block), &node, &err), 0);
	assert_int_equal(node.n_links, 0);
	struct cod_unixfs u;
	assert_int_equal(cod_unixfs_decode(node.data, node.data_len, &u, &err), 0);
	assert_int_equal(u.type, COD_UNIXFS_FILE);
	assert_int_equal(u.data_len, 12);
	assert_memory_equal(u.data, "hello world\n", 12);
	assert_true(u.has_filesize && u.filesize == 12);
	/* encoding it again gives the same bytes */
	cleanup_buf struct cod_buf data = COD_BUF_INIT;
	cod_unixfs_encode(&u, &data);
	struct cod_pb_node again = {.data = (const uint8_t *)data.buf, .data_len = data.len};
	cleanup_buf struct cod_buf out = COD_BUF_INIT;
	cod_pb_encode(&again, &out);
	assert_int_equal(out.len, sizeof(block));
	assert_memory_equal(out.buf, block, sizeof(block));
	cod_unixfs_release(&u);
	cod_pb_node_release(&node);

	/* malformed blocks are errors, never crashes */
	const uint8_t *bad[] = {
	    (const uint8_t *)"\x0a\x12\x08",	  /* length past the end */
	    (const uint8_t *)"\x0d\x00\x00\x00\x00", /* wire type 5 */
	    (const uint8_t *)"\x12\x02\x0a\x00",	  /* a link whose Hash is empty */
	    (const uint8_t *)"\x12\x01\x18",	  /* a link without Hash */
	    (const uint8_t *)"\x0a\x00\x12\x00",	  /* a link after Data */
	};
	const size_t lens[] = {3, 5, 4, 3, 4};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		err = NULL;
		assert_int_equal(cod_pb_decode(bad[i], lens[i], &node, &err), -1);
		assert_non_null(err);
		cod_error_free(err);
	}
	err = NULL;
	assert_int_equal(cod_unixfs_decode((const uint8_t *)"\x12\x00", 2, &u, &err), -1); /* no Type */
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_unixfs_decode((const uint8_t *)"\x08\x09", 2, &u, &err), -1); /* Type 9 */
	cod_error_free(err);
	/* packed blocksizes decode too */
	assert_int_equal(cod_unixfs_decode((const uint8_t *)"\x08\x02\x22\x02\x05\x07", 6, &u, &err), 0);
	assert_int_equal(u.n_blocksizes, 2);
	assert_true(u.blocksizes[0] == 5 && u.blocksizes[1] == 7);
	cod_unixfs_release(&u);
}

static int count_blocks(void *arg, const struct cod_cid *cid, const uint8_t *block, size_t len,
			struct cod_error **err)
{
	(void)err;
	assert_true(cod_cid_verify(cid, block, len));
	(*(size_t *)arg)++;
	return 0;
}

static void test_builder(void **state)
{
	(void)state;
	cleanup_free char *dir = tmp_dir();
	cleanup_free char *hello = xasprintf("%s/hello.txt", dir);
	write_bytes(hello, "hello world\n", 12);
	cleanup_free char *h0 = cid_of_path(hello, 0, false);
	assert_string_equal(h0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
	cleanup_free char *h1 = cid_of_path(hello, 1, true);
	assert_string_equal(h1, "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");

	cleanup_free char *empty = xasprintf("%s/empty", dir);
	write_bytes(empty, "", 0);
	cleanup_free char *e0 = cid_of_path(empty, 0, false);
	assert_string_equal(e0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
	cleanup_free char *e1 = cid_of_path(empty, 1, true);
	assert_string_equal(e1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");

	cleanup_free char *edir = xasprintf("%s/emptydir", dir);
	assert_int_equal(mkdir(edir, 0755), 0);
	cleanup_free char *d0 = cid_of_path(edir, 0, false);
	assert_string_equal(d0, "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
	cleanup_free char *d1 = cid_of_path(edir, 1, true);
	assert_string_equal(d1, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");

	/* 1,000,000 bytes (i * 7 mod 251): four chunks under one node;
	 * references from Debian's ipfs_cid and js-ipfs add --cid-version=1 */
	cleanup_free uint8_t *big = xmalloc(1000000);
	for (size_t i = 0; i < 1000000; i++)
		big[i] = (uint8_t)(i * 7 % 251);
	cleanup_free char *bigp = xasprintf("%s/det.bin", dir);
	write_bytes(bigp, big, 1000000);
	cleanup_free char *b0 = cid_of_path(bigp, 0, false);
	assert_string_equal(b0, "QmR9uePmpXvdC4JuwrmTJgi2iPgjJpyLyRSvEihUiGxUf6");
	cleanup_free char *b1 = cid_of_path(bigp, 1, true);
	struct cod_cid js, ours;
	assert_int_equal(cod_cid_parse("zdj7WeNouJhgTu9tgkRpoyfAcodu1GcSrJAz2N6KCYs9DaGxj", &js, NULL), 0);
	assert_int_equal(cod_cid_parse(b1, &ours, NULL), 0);
	assert_true(cod_cid_equal(&js, &ours));

	/* a deeper tree: 175 chunks of 16 bytes need two levels */
	struct cod_unixfs_opts o = cod_unixfs_defaults(1);
	o.chunk_size = 16;
	size_t blocks = 0;
	o.sink = count_blocks;
	o.sink_arg = &blocks;
	cleanup_free char *deep = xasprintf("%s/deep.bin", dir);
	write_bytes(deep, big, 175 * 16);
	struct cod_cid root;
	uint64_t total = 0;
	struct cod_error *err = NULL;
	assert_int_equal(cod_unixfs_add(deep, &o, &root, &total, &err), 0);
	assert_int_equal(blocks, 175 + 2 + 1); /* leaves, two parents, the root */
	assert_true(total > 175 * 16);

	/* sockets are refused with a message naming the path */
	cleanup_free char *sdir = xasprintf("%s/withsock", dir);
	assert_int_equal(mkdir(sdir, 0755), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", sdir);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	err = NULL;
	assert_int_equal(cod_unixfs_add(sdir, &o, &root, NULL, &err), -1);
	assert_non_null(strstr(err->message, "neither a file"));
	cod_error_free(err);
	close(fd);
	err = NULL;
	cleanup_free char *missing = xasprintf("%s/missing", dir);
	assert_int_equal(cod_unixfs_add(missing, &o, &root, NULL, &err), -1);
	assert_non_null(strstr(err->message, "missing"));
	cod_error_free(err);
	cod_remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_varint), cmocka_unit_test(test_multibase), cmocka_unit_test(test_cid_parse),
	    cmocka_unit_test(test_pb),	   cmocka_unit_test(test_builder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
