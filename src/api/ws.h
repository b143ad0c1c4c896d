/*
 * ws.h - the parts of WebSocket (RFC 6455) the logs endpoint needs: the
 * opening handshake's accept key, and framing. Servers send unmasked
 * frames; clients must mask theirs (cod_ws_parse() rejects unmasked ones
 * when asked to). No extensions, no fragmented messages are produced;
 * fragments received are reported frame by frame.
 */
#ifndef COD_API_WS_H
#define COD_API_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

enum cod_ws_opcode {
	COD_WS_CONTINUATION = 0x0,
	COD_WS_TEXT = 0x1,
	COD_WS_BINARY = 0x2,
	COD_WS_CLOSE = 0x8,
	COD_WS_PING = 0x9,
	COD_WS_PONG = 0xA,
};

/* Close status codes used here. */
#define COD_WS_CLOSE_NORMAL 1000
#define COD_WS_CLOSE_GOING_AWAY 1001
#define COD_WS_CLOSE_PROTOCOL 1002
#define COD_WS_CLOSE_TOO_BIG 1009
#define COD_WS_CLOSE_INTERNAL 1011

/* Whether key is a valid Sec-WebSocket-Key: base64 of 16 bytes. */
bool cod_ws_key_valid(const char *key);
/* Sec-WebSocket-Accept for key: base64(SHA-1(key + RFC 6455 GUID)). Heap. */
char *cod_ws_accept(const char *key);

/* Append one frame (FIN set) to out; mask NULL for a server frame, else
 * the client's 4-byte masking key. */
void cod_ws_frame(struct cod_buf *out, enum cod_ws_opcode op, const void *data, size_t len,
		  const uint8_t *mask);
/* A close frame with a status code and a reason (cut to fit 125 bytes). */
void cod_ws_close_frame(struct cod_buf *out, uint16_t code, const char *reason, const uint8_t *mask);

struct cod_ws_frame {
	enum cod_ws_opcode opcode;
	bool fin;
	bool masked;
	uint8_t *payload; /* inside the parsed buffer, unmasked in place */
	size_t len;
};

/*
 * Parse one frame at the start of buf (len bytes). Returns the bytes it
 * takes (the payload is unmasked in place), 0 when the frame is not
 * complete yet, or -1 for a protocol error with *why set: reserved bits
 * set, an unknown opcode, a control frame that is fragmented or longer
 * than 125 bytes, a payload above max_payload, or (require_mask) an
 * unmasked frame.
 */
ssize_t cod_ws_parse(uint8_t *buf, size_t len, size_t max_payload, bool require_mask,
		     struct cod_ws_frame *out, const char **why);

#endif
