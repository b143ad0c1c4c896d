/*
 * test_ws.c - WebSocket handshake key and framing (src/api/ws.c) against
 * RFC 6455's own examples: the accept key of §1.3, the frames of §5.7
 * (unmasked and masked "Hello", a ping, 256 and 65536 byte lengths), and
 * every protocol error the parser promises.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/ws.h"
#include "common/buf.h"
#include "common/mem.h"
#include "common/banned.h"

static void test_accept_key(void **state)
{
	(void)state;
	char *a = cod_ws_accept("dGhlIHNhbXBsZSBub25jZQ==");
	assert_string_equal(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	free(a);
	assert_true(cod_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
	assert_false(cod_ws_key_valid(NULL));
	assert_false(cod_ws_key_valid(""));
	assert_false(cod_ws_key_valid("not-a-key"));
	assert_false(cod_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));   /* no padding */
	assert_false(cod_ws_key_valid("dGhlIHNhbXBsZSBub25j!Q==")); /* not base64 */
	assert_false(cod_ws_key_valid("dGhlIHNhbXBsZSBub25jZXM=")); /* 17 bytes */
}

static void test_encode(void **state)
{
	(void)state;
	struct cod_buf b = COD_BUF_INIT;
	cod_ws_frame(&b, COD_WS_TEXT, "Hello", 5, NULL);
	static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	assert_int_equal(b.len, sizeof(unmasked));
	assert_memory_equal(b.buf, unmasked, sizeof(unmasked));
	cod_buf_reset(&b);
	static const uint8_t key[] = {0x37, 0xfa, 0x21, 0x3d};
	cod_ws_frame(&b, COD_WS_TEXT, "Hello", 5, key);
	static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	assert_int_equal(b.len, sizeof(masked));
	assert_memory_equal(b.buf, masked, sizeof(masked));
	cod_buf_reset(&b);
	char *big = xcalloc(1, 65536);
	cod_ws_frame(&b, COD_WS_BINARY, big, 256, NULL);
	static const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
	assert_memory_equal(b.buf, h256, 4);
	assert_int_equal(b.len, 4 + 256);
	cod_buf_reset(&b);
	cod_ws_frame(&b, COD_WS_BINARY, big, 65536, NULL);
	static const uint8_t h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
	assert_memory_equal(b.buf, h64k, 10);
	assert_int_equal(b.len, 10 + 65536);
	free(big);
	cod_buf_reset(&b);
	cod_ws_close_frame(&b, 1000, "bye", NULL);
	static const uint8_t close[] = {0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'};
	assert_memory_equal(b.buf, close, sizeof(close));
	cod_buf_release(&b);
}

static void test_parse(void **state)
{
	(void)state;
	struct cod_ws_frame f;
	const char *why = NULL;
	uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	/* incomplete at every length */
	for (size_t n = 0; n < sizeof(masked); n++) {
		uint8_t copy[sizeof(masked)];
		memcpy(copy, masked, sizeof(masked));
		assert_int_equal(cod_ws_parse(copy, n, 1024, true, &f, &why), 0);
	}
	assert_int_equal(cod_ws_parse(masked, sizeof(masked), 1024, true, &f, &why), (ssize_t)sizeof(masked));
	assert_int_equal(f.opcode, COD_WS_TEXT);
	assert_true(f.fin);
	assert_true(f.masked);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.payload, "Hello", 5);
	/* a ping, as a client sends it */
	struct cod_buf b = COD_BUF_INIT;
	static const uint8_t key[] = {1, 2, 3, 4};
	cod_ws_frame(&b, COD_WS_PING, "Hello", 5, key);
	cod_ws_frame(&b, COD_WS_CLOSE, "\x03\xe8", 2, key);
	ssize_t used = cod_ws_parse((uint8_t *)b.buf, b.len, 1024, true, &f, &why);
	assert_int_equal(used, 11);
	assert_int_equal(f.opcode, COD_WS_PING);
	assert_memory_equal(f.payload, "Hello", 5);
	assert_int_equal(cod_ws_parse((uint8_t *)b.buf + used, b.len - (size_t)used, 1024, true, &f, &why),
			 8);
	assert_int_equal(f.opcode, COD_WS_CLOSE);
	assert_int_equal(f.payload[0] << 8 | f.payload[1], 1000);
	cod_buf_release(&b);
	/* 16-bit length */
	cod_buf_init(&b, 0);
	char *big = xcalloc(1, 300);
	cod_ws_frame(&b, COD_WS_BINARY, big, 300, key);
	assert_int_equal(cod_ws_parse((uint8_t *)b.buf, b.len, 1024, true, &f, &why), (ssize_t)b.len);
	assert_int_equal(f.len, 300);
	/* above the limit */
	assert_int_equal(cod_ws_parse((uint8_t *)b.buf, b.len, 100, true, &f, &why), -1);
	assert_string_equal(why, "frame too large");
	free(big);
	cod_buf_release(&b);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct cod_ws_frame f;
	const char *why = NULL;
	uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
	assert_int_equal(cod_ws_parse(unmasked, sizeof(unmasked), 1024, true, &f, &why), -1);
	assert_string_equal(why, "client frames must be masked");
	assert_int_equal(cod_ws_parse(unmasked, sizeof(unmasked), 1024, false, &f, &why), 4);
	uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
	assert_int_equal(cod_ws_parse(rsv, sizeof(rsv), 1024, true, &f, &why), -1);
	assert_non_null(strstr(why, "reserved"));
	uint8_t opcode[] = {0x83, 0x80, 0, 0, 0, 0};
	assert_int_equal(cod_ws_parse(opcode, sizeof(opcode), 1024, true, &f, &why), -1);
	assert_string_equal(why, "unknown opcode");
	uint8_t frag_ping[] = {0x09, 0x80, 0, 0, 0, 0};
	assert_int_equal(cod_ws_parse(frag_ping, sizeof(frag_ping), 1024, true, &f, &why), -1);
	assert_non_null(strstr(why, "control frames"));
	uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e};
	assert_int_equal(cod_ws_parse(long_ping, sizeof(long_ping), 1024, true, &f, &why), -1);
	uint8_t top_bit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(cod_ws_parse(top_bit, sizeof(top_bit), SIZE_MAX, true, &f, &why), -1);
	/* a fragment is reported as such */
	uint8_t first[] = {0x01, 0x81, 0, 0, 0, 0, 'a'};
	assert_int_equal(cod_ws_parse(first, sizeof(first), 1024, true, &f, &why), 7);
	assert_false(f.fin);
	assert_int_equal(f.opcode, COD_WS_TEXT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_key),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
