/*
 * unixfs.c - CIDs, dag-pb, UnixFS and the builder (see unixfs.h).
 *
 * Formats, as the multiformats and IPLD specifications define them:
 *   CIDv0   = the multihash <0x12 0x20 digest>, written in base58btc
 *   CIDv1   = <varint 1><varint codec><multihash>, written with a
 *             one-character multibase prefix
 *   PBNode  = repeated PBLink Links = 2; optional bytes Data = 1
 *             (canonical order: links first)
 *   PBLink  = optional bytes Hash = 1; optional string Name = 2;
 *             optional uint64 Tsize = 3
 *   UnixFS  = Type = 1; Data = 2; filesize = 3; repeated blocksizes = 4;
 *             hashType = 5; fanout = 6; mode = 7; mtime = 8
 */
#include "storage/unixfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define MAX_LINKS 174	       /* per node in the balanced layout */
#define DEFAULT_CHUNK 262144

/* ------------------------------------------------------------- varints */

size_t cod_varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int cod_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (*p >= end)
			return -1;
		uint8_t c = *(*p)++;
		if (i == 9 && c > 1)
			return -1; /* more than 64 bits */
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			if (c == 0 && i > 0)
				return -1; /* not minimal, as multiformats require */
			*v = x;
			return 0;
		}
	}
	return -1;
}

static void buf_varint(struct cod_buf *out, uint64_t v)
{
	uint8_t b[10];
	cod_buf_add(out, b, cod_varint_put(b, v));
}

/* ----------------------------------------------------------- multibase */

static const char B58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";

char *cod_base58btc_encode(const uint8_t *b, size_t len)
{
	size_t zeros = 0;
	while (zeros < len && !b[zeros])
		zeros++;
	size_t cap = (len - zeros) * 138 / 100 + 1;
	cleanup_free uint8_t *digits = xcalloc(cap, 1);
	size_t n = 0; /* digits used, little end first */
	for (size_t i = zeros; i < len; i++) {
		unsigned carry = b[i];
		for (size_t j = 0; j < n; j++) {
			carry += (unsigned)digits[j] << 8;
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
		}
		while (carry) {
			digits[n++] = (uint8_t)(carry % 58);
			carry /= 58;
		}
	}
	char *s = xmalloc(zeros + n + 1);
	size_t k = 0;
	for (size_t i = 0; i < zeros; i++)
		s[k++] = '1';
	for (size_t i = n; i > 0; i--)
		s[k++] = B58[digits[i - 1]];
	s[k] = '\0';
	return s;
}

uint8_t *cod_base58btc_decode(const char *s, size_t *len)
{
	size_t sl = strlen(s), zeros = 0;
	while (zeros < sl && s[zeros] == '1')
		zeros++;
	size_t cap = sl * 733 / 1000 + 1;
	cleanup_free uint8_t *bytes = xcalloc(cap, 1);
	size_t n = 0; /* little end first */
	for (size_t i = zeros; i < sl; i++) {
		const char *d = strchr(B58, s[i]);
		if (!d || !s[i])
			return NULL;
		unsigned carry = (unsigned)(d - B58);
		for (size_t j = 0; j < n; j++) {
			carry += (unsigned)bytes[j] * 58;
			bytes[j] = (uint8_t)carry;
			carry >>= 8;
		}
		while (carry) {
			bytes[n++] = (uint8_t)carry;
			carry >>= 8;
		}
	}
	uint8_t *out = xmalloc(zeros + n + 1);
	memset(out, 0, zeros);
	for (size_t i = 0; i < n; i++)
		out[zeros + i] = bytes[n - 1 - i];
	*len = zeros + n;
	return out;
}

char *cod_base32_encode(const uint8_t *b, size_t len)
{
	char *s = xmalloc(len * 8 / 5 + 2);
	size_t k = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | b[i];
		bits += 8;
		while (bits >= 5) {
			s[k++] = B32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits)
		s[k++] = B32[(acc << (5 - bits)) & 31];
	s[k] = '\0';
	return s;
}

uint8_t *cod_base32_decode(const char *s, size_t *len)
{
	size_t sl = strlen(s);
	uint8_t *out = xmalloc(sl * 5 / 8 + 1);
	size_t k = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < sl; i++) {
		char c = s[i];
		unsigned v;
		if (c >= 'a' && c <= 'z')
			v = (unsigned)(c - 'a');
		else if (c >= 'A' && c <= 'Z')
			v = (unsigned)(c - 'A');
		else if (c >= '2' && c <= '7')
			v = (unsigned)(c - '2') + 26;
		else {
			free(out);
			return NULL;
		}
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			out[k++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* leftover bits must be zero padding */
	if (bits >= 5 || (acc & ((1u << bits) - 1))) {
		free(out);
		return NULL;
	}
	*len = k;
	return out;
}

static uint8_t *base16_decode(const char *s, size_t *len)
{
	size_t sl = strlen(s);
	if (sl % 2)
		return NULL;
	uint8_t *out = xmalloc(sl / 2 + 1);
	for (size_t i = 0; i < sl; i += 2) {
		int hi = cod_hex_digit(s[i]), lo = cod_hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = sl / 2;
	return out;
}

/* ---------------------------------------------------------------- CIDs */

static int multihash_decode(const uint8_t **p, const uint8_t *end, struct cod_cid *cid, const char *what,
			    struct cod_error **err)
{
	uint64_t code, dlen;
	if (cod_varint_get(p, end, &code) < 0 || cod_varint_get(p, end, &dlen) < 0)
		return cod_error_set(err, COD_E_VALIDATION, "%s: truncated multihash", what);
	if (code != COD_MH_SHA2_256 && code != COD_MH_IDENTITY) {
		cod_error_set(err, COD_E_VALIDATION, "%s: hash function 0x%llx is not one cod can verify", what,
			      (unsigned long long)code);
		cod_error_hint(err ? *err : NULL, "add the data with sha2-256, IPFS's default hash");
		return -1;
	}
	if ((code == COD_MH_SHA2_256 && dlen != 32) || dlen > COD_MH_MAX_DIGEST || dlen > (uint64_t)(end - *p))
		return cod_error_set(err, COD_E_VALIDATION, "%s: multihash digest of %llu bytes does not fit", what,
				     (unsigned long long)dlen);
	cid->mh_code = code;
	cid->digest_len = (size_t)dlen;
	memcpy(cid->digest, *p, cid->digest_len);
	*p += cid->digest_len;
	return 0;
}

static int cid_from_bytes(const uint8_t *b, size_t len, struct cod_cid *cid, const char *what,
			  struct cod_error **err)
{
	memset(cid, 0, sizeof(*cid));
	const uint8_t *p = b, *end = b + len;
	if (len == 34 && b[0] == 0x12 && b[1] == 0x20) {
		cid->version = 0;
		cid->codec = COD_CODEC_DAG_PB;
		return multihash_decode(&p, end, cid, what, err);
	}
	uint64_t version, codec;
	if (cod_varint_get(&p, end, &version) < 0 || cod_varint_get(&p, end, &codec) < 0)
		return cod_error_set(err, COD_E_VALIDATION, "%s: truncated CID", what);
	if (version != 1)
		return cod_error_set(err, COD_E_VALIDATION, "%s: CID version %llu is not 0 or 1", what,
				     (unsigned long long)version);
	if (codec != COD_CODEC_DAG_PB && codec != COD_CODEC_RAW) {
		cod_error_set(err, COD_E_VALIDATION, "%s: codec 0x%llx is not UnixFS data (dag-pb or raw)", what,
			      (unsigned long long)codec);
		cod_error_hint(err ? *err : NULL, "cod fetches files and directories added with `ipfs add`");
		return -1;
	}
	cid->version = 1;
	cid->codec = codec;
	if (multihash_decode(&p, end, cid, what, err) < 0)
		return -1;
	if (p != end)
		return cod_error_set(err, COD_E_VALIDATION, "%s: %zu stray bytes after the CID", what,
				     (size_t)(end - p));
	return 0;
}

int cod_cid_decode(const uint8_t *b, size_t len, struct cod_cid *cid, struct cod_error **err)
{
	return cid_from_bytes(b, len, cid, "link", err);
}

int cod_cid_parse(const char *s, struct cod_cid *cid, struct cod_error **err)
{
	if (cod_str_empty(s))
		return cod_error_set(err, COD_E_VALIDATION, "CID is empty");
	size_t sl = strlen(s);
	cleanup_free uint8_t *b = NULL;
	size_t len = 0;
	if (sl == 46 && s[0] == 'Q' && s[1] == 'm') {
		b = cod_base58btc_decode(s, &len);
		if (b && !(len == 34 && b[0] == 0x12 && b[1] == 0x20)) {
			free(b);
			b = NULL;
		}
	} else if (s[0] == 'b' || s[0] == 'B') {
		b = cod_base32_decode(s + 1, &len);
	} else if (s[0] == 'z') {
		b = cod_base58btc_decode(s + 1, &len);
	} else if (s[0] == 'f' || s[0] == 'F') {
		b = base16_decode(s + 1, &len);
	} else if (s[0] == 'Q') {
		cod_error_set(err, COD_E_VALIDATION, "CID %s: a CIDv0 is 46 base58btc characters starting with Qm", s);
		return -1;
	} else {
		cod_error_set(err, COD_E_VALIDATION, "CID %s: unknown multibase prefix '%c'", s, s[0]);
		cod_error_hint(err ? *err : NULL, "use a CIDv0 (Qm...) or a CIDv1 in base32 (bafy...) or base58btc (z...)");
		return -1;
	}
	if (!b) {
		cod_error_set(err, COD_E_VALIDATION, "CID %s: not valid %s", s,
			      s[0] == 'Q' ? "CIDv0 base58btc" : "multibase text");
		return -1;
	}
	cleanup_free char *what = xasprintf("CID %s", s);
	if (len && b[0] == 0x12 && s[0] != 'Q')
		return cod_error_set(err, COD_E_VALIDATION, "%s: a CIDv0 must be written in base58btc (Qm...)", what);
	return cid_from_bytes(b, len, cid, what, err);
}

void cod_cid_encode(const struct cod_cid *cid, struct cod_buf *out)
{
	if (cid->version == 1) {
		buf_varint(out, 1);
		buf_varint(out, cid->codec);
	}
	buf_varint(out, cid->mh_code);
	buf_varint(out, cid->digest_len);
	cod_buf_add(out, cid->digest, cid->digest_len);
}

char *cod_cid_string(const struct cod_cid *cid)
{
	cleanup_buf struct cod_buf b = COD_BUF_INIT;
	cod_cid_encode(cid, &b);
	if (cid->version == 0)
		return cod_base58btc_encode((const uint8_t *)b.buf, b.len);
	cleanup_free char *s = cod_base32_encode((const uint8_t *)b.buf, b.len);
	return xasprintf("b%s", s);
}

bool cod_cid_equal(const struct cod_cid *a, const struct cod_cid *b)
{
	return a->version == b->version && a->codec == b->codec && a->mh_code == b->mh_code &&
	       a->digest_len == b->digest_len && !memcmp(a->digest, b->digest, a->digest_len);
}

void cod_cid_of(unsigned version, uint64_t codec, const void *block, size_t len, struct cod_cid *cid)
{
	memset(cid, 0, sizeof(*cid));
	cid->version = version;
	cid->codec = version == 0 ? COD_CODEC_DAG_PB : codec;
	cid->mh_code = COD_MH_SHA2_256;
	cid->digest_len = 32;
	SHA256(block, len, cid->digest);
}

bool cod_cid_verify(const struct cod_cid *cid, const void *block, size_t len)
{
	if (cid->mh_code == COD_MH_IDENTITY)
		return len == cid->digest_len && !memcmp(block, cid->digest, len);
	if (cid->mh_code != COD_MH_SHA2_256 || cid->digest_len != 32)
		return false;
	uint8_t d[32];
	SHA256(block, len, d);
	return !memcmp(d, cid->digest, 32);
}

/* ------------------------------------------------------------ protobuf */

struct pb_field {
	uint64_t num;
	unsigned wire;	      /* 0 varint, 2 bytes */
	uint64_t v;	      /* wire 0 */
	const uint8_t *bytes; /* wire 2 */
	size_t len;
};

/* Next field at *p; 1 = got one, 0 = end, -1 = malformed. */
static int pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
	if (*p == end)
		return 0;
	uint64_t key;
	if (cod_varint_get(p, end, &key) < 0)
		return -1;
	f->num = key >> 3;
	f->wire = (unsigned)(key & 7);
	if (f->wire == 0)
		return cod_varint_get(p, end, &f->v) < 0 ? -1 : 1;
	if (f->wire == 2) {
		uint64_t n;
		if (cod_varint_get(p, end, &n) < 0 || n > (uint64_t)(end - *p))
			return -1;
		f->bytes = *p;
		f->len = (size_t)n;
		*p += n;
		return 1;
	}
	return -1; /* dag-pb and UnixFS use no other wire types */
}

static void pb_key(struct cod_buf *out, unsigned num, unsigned wire)
{
	buf_varint(out, (uint64_t)num << 3 | wire);
}

static void pb_bytes(struct cod_buf *out, unsigned num, const void *b, size_t len)
{
	pb_key(out, num, 2);
	buf_varint(out, len);
	cod_buf_add(out, b, len);
}

static void pb_uint(struct cod_buf *out, unsigned num, uint64_t v)
{
	pb_key(out, num, 0);
	buf_varint(out, v);
}

static int decode_link(const uint8_t *b, size_t len, struct cod_pb_link *l, struct cod_error **err)
{
	const uint8_t *p = b, *end = b + len;
	struct pb_field f;
	int r;
	bool has_hash = false;
	while ((r = pb_next(&p, end, &f)) == 1) {
		if (f.num == 1 && f.wire == 2 && !has_hash) {
			if (cod_cid_decode(f.bytes, f.len, &l->cid, err) < 0)
				return -1;
			has_hash = true;
		} else if (f.num == 2 && f.wire == 2 && !l->has_name) {
			if (memchr(f.bytes, '\0', f.len))
				return cod_error_set(err, COD_E_VALIDATION, "dag-pb link name holds a NUL byte");
			l->name = xstrndup((const char *)f.bytes, f.len);
			l->has_name = true;
		} else if (f.num == 3 && f.wire == 0 && !l->has_tsize) {
			l->tsize = f.v;
			l->has_tsize = true;
		} else {
			return cod_error_set(err, COD_E_VALIDATION, "dag-pb link: unexpected field %llu",
					     (unsigned long long)f.num);
		}
	}
	if (r < 0 || !has_hash)
		return cod_error_set(err, COD_E_VALIDATION, "dag-pb link is malformed");
	if (!l->name)
		l->name = xstrdup("");
	return 0;
}

int cod_pb_decode(const uint8_t *block, size_t len, struct cod_pb_node *node, struct cod_error **err)
{
	memset(node, 0, sizeof(*node));
	const uint8_t *p = block, *end = block + len;
	struct pb_field f;
	int r;
	size_t alloc = 0;
	bool has_data = false;
	while ((r = pb_next(&p, end, &f)) == 1) {
		if (f.num == 2 && f.wire == 2 && !has_data) {
			if (node->n_links == alloc) {
				alloc = alloc ? alloc * 2 : 8;
				node->links = xrealloc(node->links, alloc * sizeof(*node->links));
			}
			struct cod_pb_link *l = &node->links[node->n_links];
			memset(l, 0, sizeof(*l));
			node->n_links++;
			if (decode_link(f.bytes, f.len, l, err) < 0) {
				cod_pb_node_release(node);
				return -1;
			}
		} else if (f.num == 1 && f.wire == 2 && !has_data) {
			node->data = f.bytes;
			node->data_len = f.len;
			has_data = true;
		} else {
			r = -1;
			break;
		}
	}
	if (r < 0) {
		cod_pb_node_release(node);
		return cod_error_set(err, COD_E_VALIDATION, "malformed dag-pb block");
	}
	return 0;
}

void cod_pb_node_release(struct cod_pb_node *node)
{
	for (size_t i = 0; i < node->n_links; i++)
		free(node->links[i].name);
	free(node->links);
	memset(node, 0, sizeof(*node));
}

void cod_pb_encode(const struct cod_pb_node *node, struct cod_buf *out)
{
	cleanup_buf struct cod_buf link = COD_BUF_INIT;
	cleanup_buf struct cod_buf hash = COD_BUF_INIT;
	for (size_t i = 0; i < node->n_links; i++) {
		const struct cod_pb_link *l = &node->links[i];
		cod_buf_reset(&link);
		cod_buf_reset(&hash);
		cod_cid_encode(&l->cid, &hash);
		pb_bytes(&link, 1, hash.buf, hash.len);
		if (l->has_name)
			pb_bytes(&link, 2, l->name ? l->name : "", l->name ? strlen(l->name) : 0);
		if (l->has_tsize)
			pb_uint(&link, 3, l->tsize);
		pb_bytes(out, 2, link.buf, link.len);
	}
	if (node->data)
		pb_bytes(out, 1, node->data, node->data_len);
}

int cod_unixfs_decode(const uint8_t *b, size_t len, struct cod_unixfs *u, struct cod_error **err)
{
	memset(u, 0, sizeof(*u));
	u->type = -1;
	const uint8_t *p = b, *end = b + len;
	struct pb_field f;
	int r;
	size_t alloc = 0;
	while ((r = pb_next(&p, end, &f)) == 1) {
		if (f.num == 1 && f.wire == 0) {
			u->type = f.v <= COD_UNIXFS_HAMT ? (int)f.v : -2;
		} else if (f.num == 2 && f.wire == 2) {
			u->data = f.bytes;
			u->data_len = f.len;
		} else if (f.num == 3 && f.wire == 0) {
			u->filesize = f.v;
			u->has_filesize = true;
		} else if (f.num == 4) {
			/* unpacked (wire 0) as go and js write it, or packed */
			const uint8_t *q = f.bytes, *qe = f.bytes + f.len;
			uint64_t v = f.v;
			do {
				if (f.wire == 2 && cod_varint_get(&q, qe, &v) < 0) {
					r = -1;
					break;
				}
				if (u->n_blocksizes == alloc) {
					alloc = alloc ? alloc * 2 : 8;
					u->blocksizes = xrealloc(u->blocksizes, alloc * sizeof(uint64_t));
				}
				u->blocksizes[u->n_blocksizes++] = v;
			} while (f.wire == 2 && q < qe);
			if (r < 0)
				break;
		} else if (f.num == 5 && f.wire == 0) {
			u->hash_type = f.v;
		} else if (f.num == 6 && f.wire == 0) {
			u->fanout = f.v;
		}
		/* mode (7), mtime (8) and unknown fields are ignored */
	}
	if (r < 0 || u->type == -1) {
		cod_unixfs_release(u);
		return cod_error_set(err, COD_E_VALIDATION, "malformed UnixFS data in a dag-pb block");
	}
	if (u->type == -2) {
		cod_unixfs_release(u);
		return cod_error_set(err, COD_E_VALIDATION, "unknown UnixFS node type");
	}
	return 0;
}

void cod_unixfs_release(struct cod_unixfs *u)
{
	free(u->blocksizes);
	memset(u, 0, sizeof(*u));
}

void cod_unixfs_encode(const struct cod_unixfs *u, struct cod_buf *out)
{
	pb_uint(out, 1, (uint64_t)u->type);
	if (u->data && u->data_len)
		pb_bytes(out, 2, u->data, u->data_len);
	if (u->has_filesize)
		pb_uint(out, 3, u->filesize);
	for (size_t i = 0; i < u->n_blocksizes; i++)
		pb_uint(out, 4, u->blocksizes[i]);
	if (u->hash_type)
		pb_uint(out, 5, u->hash_type);
	if (u->fanout)
		pb_uint(out, 6, u->fanout);
}

/* ------------------------------------------------------------- builder */

struct cod_unixfs_opts cod_unixfs_defaults(unsigned cid_version)
{
	return (struct cod_unixfs_opts){
		.cid_version = cid_version ? 1 : 0,
		.raw_leaves = cid_version != 0,
		.chunk_size = DEFAULT_CHUNK,
	};
}

/* A built node as its parent links to it. */
struct built {
	struct cod_cid cid;
	uint64_t tsize;	   /* cumulative: this block and everything under it */
	uint64_t filesize; /* file bytes under it (files only) */
};

static int emit(const struct cod_unixfs_opts *o, uint64_t codec, const struct cod_buf *block, struct built *b,
		struct cod_error **err)
{
	cod_cid_of(o->cid_version, codec, block->buf ? block->buf : "", block->len, &b->cid);
	b->tsize += block->len;
	return o->sink ? o->sink(o->sink_arg, &b->cid, (const uint8_t *)(block->buf ? block->buf : ""), block->len,
				 err)
		       : 0;
}

/* A dag-pb node holding the UnixFS u and links to children. */
static int emit_node(const struct cod_unixfs_opts *o, struct cod_unixfs *u, const struct built *kids,
		     const char *const *names, size_t n, struct built *out, struct cod_error **err)
{
	cleanup_buf struct cod_buf data = COD_BUF_INIT;
	cod_unixfs_encode(u, &data);
	cleanup_free struct cod_pb_link *links = n ? xcalloc(n, sizeof(*links)) : NULL;
	memset(out, 0, sizeof(*out));
	out->filesize = u->has_filesize ? u->filesize : 0;
	for (size_t i = 0; i < n; i++) {
		links[i].cid = kids[i].cid;
		links[i].name = (char *)(names ? names[i] : "");
		links[i].has_name = true;
		links[i].tsize = kids[i].tsize;
		links[i].has_tsize = true;
		out->tsize += kids[i].tsize;
	}
	struct cod_pb_node node = {.links = links, .n_links = n, .data = (const uint8_t *)data.buf,
				   .data_len = data.len};
	cleanup_buf struct cod_buf block = COD_BUF_INIT;
	cod_pb_encode(&node, &block);
	return emit(o, COD_CODEC_DAG_PB, &block, out, err);
}

static int emit_leaf(const struct cod_unixfs_opts *o, const uint8_t *chunk, size_t len, struct built *out,
		     struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (o->raw_leaves && o->cid_version == 1) {
		struct cod_buf block = {.buf = (char *)chunk, .len = len};
		out->filesize = len;
		return emit(o, COD_CODEC_RAW, &block, out, err);
	}
	struct cod_unixfs u = {.type = COD_UNIXFS_FILE, .data = chunk, .data_len = len, .filesize = len,
			       .has_filesize = true};
	return emit_node(o, &u, NULL, NULL, 0, out, err);
}

/* Parents of kids[0..n), MAX_LINKS at a time, into kids[0..*m). */
static int emit_level(const struct cod_unixfs_opts *o, struct built *kids, size_t n, size_t *m,
		      struct cod_error **err)
{
	size_t k = 0;
	uint64_t sizes[MAX_LINKS];
	for (size_t i = 0; i < n; i += MAX_LINKS) {
		size_t c = n - i < MAX_LINKS ? n - i : MAX_LINKS;
		struct cod_unixfs u = {.type = COD_UNIXFS_FILE, .has_filesize = true, .blocksizes = sizes,
				       .n_blocksizes = c};
		for (size_t j = 0; j < c; j++) {
			sizes[j] = kids[i + j].filesize;
			u.filesize += kids[i + j].filesize;
		}
		struct built parent;
		if (emit_node(o, &u, kids + i, NULL, c, &parent, err) < 0)
			return -1;
		kids[k++] = parent;
	}
	*m = k;
	return 0;
}

static int add_file(const char *path, const struct cod_unixfs_opts *o, struct built *out, struct cod_error **err)
{
	size_t chunk = o->chunk_size ? o->chunk_size : DEFAULT_CHUNK;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	cleanup_free uint8_t *buf = xmalloc(chunk);
	cleanup_free struct built *leaves = NULL;
	size_t n = 0, alloc = 0;
	for (;;) {
		size_t got = 0;
		while (got < chunk) {
			ssize_t r = read(fd, buf + got, chunk - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return cod_error_set(err, COD_E_IO, "read \"%s\": %s", path, strerror(errno));
			if (r == 0)
				break;
			got += (size_t)r;
		}
		if (got == 0 && n > 0)
			break;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			leaves = xrealloc(leaves, alloc * sizeof(*leaves));
		}
		if (emit_leaf(o, buf, got, &leaves[n++], err) < 0)
			return -1;
		if (got < chunk)
			break;
	}
	while (n > 1)
		if (emit_level(o, leaves, n, &n, err) < 0)
			return -1;
	*out = leaves[0];
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_path(const char *path, const struct cod_unixfs_opts *o, struct built *out, unsigned depth,
		    struct cod_error **err);

static int add_dir(const char *path, const struct cod_unixfs_opts *o, struct built *out, unsigned depth,
		   struct cod_error **err)
{
	DIR *d = opendir(path);
	if (!d)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	struct cod_strlist names = {0};
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			cod_strlist_add(&names, de->d_name);
	closedir(d);
	if (names.n)
		qsort(names.items, names.n, sizeof(char *), cmp_names);
	cleanup_free struct built *kids = names.n ? xcalloc(names.n, sizeof(*kids)) : NULL;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		cleanup_free char *sub = xasprintf("%s/%s", path, names.items[i]);
		rc = add_path(sub, o, &kids[i], depth + 1, err);
	}
	if (rc == 0) {
		struct cod_unixfs u = {.type = COD_UNIXFS_DIRECTORY};
		rc = emit_node(o, &u, kids, (const char *const *)names.items, names.n, out, err);
	}
	cod_strlist_release(&names);
	return rc;
}

static int add_path(const char *path, const struct cod_unixfs_opts *o, struct built *out, unsigned depth,
		    struct cod_error **err)
{
	if (depth > 256)
		return cod_error_set(err, COD_E_VALIDATION, "\"%s\": directories nested too deep", path);
	struct stat st;
	if (lstat(path, &st) < 0)
		return cod_error_set(err, COD_E_IO, "stat \"%s\": %s", path, strerror(errno));
	if (S_ISREG(st.st_mode))
		return add_file(path, o, out, err);
	if (S_ISDIR(st.st_mode))
		return add_dir(path, o, out, depth, err);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target));
		if (n < 0 || (size_t)n >= sizeof(target))
			return cod_error_set(err, COD_E_IO, "readlink \"%s\": %s", path,
					     n < 0 ? strerror(errno) : "target too long");
		struct cod_unixfs u = {.type = COD_UNIXFS_SYMLINK, .data = (const uint8_t *)target,
				       .data_len = (size_t)n};
		return emit_node(o, &u, NULL, NULL, 0, out, err);
	}
	cod_error_set(err, COD_E_VALIDATION, "\"%s\" is neither a file, a directory nor a symlink", path);
	cod_error_hint(err ? *err : NULL, "IPFS stores files, directories and symlinks only; remove sockets, fifos and devices");
	return -1;
}

int cod_unixfs_add(const char *path, const struct cod_unixfs_opts *o, struct cod_cid *root, uint64_t *total,
		   struct cod_error **err)
{
	struct cod_unixfs_opts opts = *o;
	if (opts.cid_version != 1)
		opts.raw_leaves = false;
	struct built b;
	if (add_path(path, &opts, &b, 0, err) < 0)
		return -1;
	*root = b.cid;
	if (total)
		*total = b.tsize;
	return 0;
}
