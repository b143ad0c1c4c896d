/*
 * ws.c - WebSocket handshake key and framing (RFC 6455 §1.3, §5).
 */
#include "api/ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool cod_ws_key_valid(const char *key)
{
	if (!key)
		return false;
	size_t n = strlen(key);
	/* 16 bytes in base64: 22 characters and "==" */
	if (n != 24 || key[22] != '=' || key[23] != '=')
		return false;
	unsigned char out[32];
	int len = EVP_DecodeBlock(out, (const unsigned char *)key, 24);
	return len == 18; /* EVP_DecodeBlock counts the padding as bytes */
}

char *cod_ws_accept(const char *key)
{
	char *joined = xasprintf("%s" WS_GUID, key ? key : "");
	unsigned char digest[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)joined, strlen(joined), digest);
	free(joined);
	char *out = xcalloc(1, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
	return out;
}

void cod_ws_frame(struct cod_buf *out, enum cod_ws_opcode op, const void *data, size_t len,
		  const uint8_t *mask)
{
	uint8_t head[14];
	size_t n = 0;
	head[n++] = (uint8_t)(0x80 | (op & 0x0f));
	uint8_t mbit = mask ? 0x80 : 0;
	if (len < 126) {
		head[n++] = (uint8_t)(mbit | len);
	} else if (len <= 0xffff) {
		head[n++] = (uint8_t)(mbit | 126);
		head[n++] = (uint8_t)(len >> 8);
		head[n++] = (uint8_t)len;
	} else {
		head[n++] = (uint8_t)(mbit | 127);
		for (int i = 7; i >= 0; i--)
			head[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (mask) {
		memcpy(head + n, mask, 4);
		n += 4;
	}
	cod_buf_add(out, head, n);
	size_t start = out->len;
	cod_buf_add(out, data, len);
	if (mask)
		for (size_t i = 0; i < len; i++)
			out->buf[start + i] ^= (char)mask[i % 4];
}

void cod_ws_close_frame(struct cod_buf *out, uint16_t code, const char *reason, const uint8_t *mask)
{
	uint8_t body[125];
	body[0] = (uint8_t)(code >> 8);
	body[1] = (uint8_t)code;
	size_t rlen = reason ? strlen(reason) : 0;
	if (rlen > sizeof(body) - 2)
		rlen = sizeof(body) - 2;
	/* do not cut a UTF-8 sequence in two */
	while (rlen && rlen < strlen(reason) && ((unsigned char)reason[rlen] & 0xc0) == 0x80)
		rlen--;
	if (rlen)
		memcpy(body + 2, reason, rlen);
	cod_ws_frame(out, COD_WS_CLOSE, body, 2 + rlen, mask);
}

ssize_t cod_ws_parse(uint8_t *buf, size_t len, size_t max_payload, bool require_mask,
		     struct cod_ws_frame *out, const char **why)
{
	if (len < 2)
		return 0;
	uint8_t b0 = buf[0], b1 = buf[1];
	if (b0 & 0x70) {
		*why = "reserved bits set (no extension was negotiated)";
		return -1;
	}
	int op = b0 & 0x0f;
	if (op != COD_WS_CONTINUATION && op != COD_WS_TEXT && op != COD_WS_BINARY && op != COD_WS_CLOSE &&
	    op != COD_WS_PING && op != COD_WS_PONG) {
		*why = "unknown opcode";
		return -1;
	}
	bool fin = b0 & 0x80, masked = b1 & 0x80;
	uint64_t plen = b1 & 0x7f;
	size_t n = 2;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = ((uint64_t)buf[2] << 8) | buf[3];
		n = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = (plen << 8) | buf[2 + i];
		n = 10;
		if (plen >> 63) {
			*why = "payload length has its top bit set";
			return -1;
		}
	}
	if (op >= 0x8 && (!fin || plen > 125)) {
		*why = "control frames must be unfragmented and at most 125 bytes";
		return -1;
	}
	if (plen > max_payload) {
		*why = "frame too large";
		return -1;
	}
	if (require_mask && !masked) {
		*why = "client frames must be masked";
		return -1;
	}
	uint8_t key[4] = {0};
	if (masked) {
		if (len < n + 4)
			return 0;
		memcpy(key, buf + n, 4);
		n += 4;
	}
	if (len - n < plen)
		return 0;
	uint8_t *payload = buf + n;
	if (masked)
		for (size_t i = 0; i < plen; i++)
			payload[i] ^= key[i % 4];
	out->opcode = (enum cod_ws_opcode)op;
	out->fin = fin;
	out->masked = masked;
	out->payload = payload;
	out->len = (size_t)plen;
	return (ssize_t)(n + plen);
}
