/*
 * schema.h - the table-driven codec behind model.h.
 *
 * Each model struct has one `struct cod_schema`: a table of fields, each
 * with its JSON name, kind, offset into the struct and, where it applies, a
 * sub-schema, an array count offset, an enum table or custom callbacks. Four
 * generic walks use the tables: decode (jansson tree -> struct), encode
 * (struct -> tree), copy and release. Nothing else in src/model knows how a
 * field is spelled in JSON.
 *
 * Decoding is strict for job specs (unknown keys are problems with a "did
 * you mean" hint) and lenient for server objects (a schema with `lenient`
 * set ignores keys it does not know, so newer peers can add fields). Keys
 * match case-insensitively. Every problem is collected, each prefixed with
 * its field path ("Tasks[0].Count: expected an integer, got string"), and
 * reported at once as one COD_E_VALIDATION error.
 *
 * Leniency that users rely on: string fields accept numbers and booleans
 * (YAML `CPU: 1`), map values are stringified, null means "unset".
 */
#ifndef COD_MODEL_SCHEMA_H
#define COD_MODEL_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"

enum cod_field_kind {
	COD_F_STRING,  /* char * */
	COD_F_INT,     /* int64_t */
	COD_F_UINT,    /* uint64_t */
	COD_F_DOUBLE,  /* double */
	COD_F_BOOL,    /* bool */
	COD_F_ENUM,    /* int-sized enum; see struct cod_enum */
	COD_F_STRLIST, /* struct cod_strlist, a JSON array of strings */
	COD_F_KVLIST,  /* struct cod_kvlist, a JSON object of strings */
	COD_F_JSON,    /* json_t * holding an object (SpecConfig.Params) */
	COD_F_OBJECT,  /* an embedded struct described by `sub` */
	COD_F_ARRAY,   /* T * of `sub` structs with a size_t count at count_off */
	COD_F_PTR,     /* T * to one heap `sub` struct, NULL when absent */
	COD_F_CUSTOM,  /* callbacks in `custom` */
};

/* Flags of a field. */
#define COD_FF_OMITEMPTY 0x1u /* encode: leave out a zero/empty value */
#define COD_FF_PRESENT 0x2u   /* a bool at present_off records "key was given" */

/* How an enum is spelled: names[value]; as_int encodes the integer (decode
 * then accepts the integer or the name). `what` names the set in messages
 * ("a job type"); `parse` optionally replaces the name lookup (aliases). */
struct cod_enum {
	const char *const *names;
	size_t n;
	const char *what;
	bool as_int;
	int (*parse)(const char *s);
};

struct cod_decoder;
struct cod_schema;

/* Callbacks for fields that do not fit a kind. They work on the whole
 * struct (`base`) because such a field often fills several members. */
struct cod_custom {
	void (*decode)(struct cod_decoder *d, const json_t *v, void *base);
	json_t *(*encode)(const void *base); /* NULL = omit the key */
	/* Optional: write the value's JSON text, the same as dumping what
	 * encode returns (never omitted), for cod_schema_dumps(). */
	void (*dump)(struct cod_buf *b, const void *base);
	void (*copy)(void *dst, const void *src); /* dst is a shallow copy */
	void (*release)(void *base);
};

struct cod_field {
	const char *name;
	enum cod_field_kind kind;
	size_t off;
	unsigned flags;
	const struct cod_schema *sub;
	size_t count_off;
	const struct cod_enum *enm;
	size_t present_off;
	const struct cod_custom *custom;
};

struct cod_schema {
	const char *name;
	size_t size;
	const struct cod_field *fields;
	size_t nfields;
	bool lenient; /* ignore unknown keys (objects a server sends) */
};

/* Table rows. T is the struct type, m the member, fl the flags. */
#define COD_FIELD(n, k, T, m, fl) {.name = (n), .kind = (k), .off = offsetof(T, m), .flags = (fl)}
#define COD_STR(n, T, m, fl) COD_FIELD(n, COD_F_STRING, T, m, fl)
#define COD_INT(n, T, m, fl) COD_FIELD(n, COD_F_INT, T, m, fl)
#define COD_UINT(n, T, m, fl) COD_FIELD(n, COD_F_UINT, T, m, fl)
#define COD_DOUBLE(n, T, m, fl) COD_FIELD(n, COD_F_DOUBLE, T, m, fl)
#define COD_BOOL(n, T, m, fl) COD_FIELD(n, COD_F_BOOL, T, m, fl)
#define COD_STRLIST(n, T, m, fl) COD_FIELD(n, COD_F_STRLIST, T, m, fl)
#define COD_KVLIST(n, T, m, fl) COD_FIELD(n, COD_F_KVLIST, T, m, fl)
#define COD_JSONF(n, T, m, fl) COD_FIELD(n, COD_F_JSON, T, m, fl)
#define COD_ENUMF(n, T, m, fl, e)                                                                    \
	{.name = (n), .kind = COD_F_ENUM, .off = offsetof(T, m), .flags = (fl), .enm = (e)}
#define COD_OBJ(n, T, m, fl, s)                                                                      \
	{.name = (n), .kind = COD_F_OBJECT, .off = offsetof(T, m), .flags = (fl), .sub = (s)}
/* An object whose members live in the parent struct itself (the sub-schema
 * then uses the parent's offsets): Event{...} of a history event. */
#define COD_INLINE(n, fl, s) {.name = (n), .kind = COD_F_OBJECT, .off = 0, .flags = (fl), .sub = (s)}
#define COD_PTRF(n, T, m, fl, s)                                                                     \
	{.name = (n), .kind = COD_F_PTR, .off = offsetof(T, m), .flags = (fl), .sub = (s)}
#define COD_ARR(n, T, m, cnt, fl, s)                                                                 \
	{.name = (n), .kind = COD_F_ARRAY, .off = offsetof(T, m), .flags = (fl), .sub = (s),         \
	 .count_off = offsetof(T, cnt)}
#define COD_CUSTOMF(n, c) {.name = (n), .kind = COD_F_CUSTOM, .custom = (c)}
#define COD_SCHEMA(nm, T, tbl, len)                                                            \
	{.name = (nm), .size = sizeof(T), .fields = (tbl), .nfields = COD_ARRAY_SIZE(tbl), .lenient = (len)}

/* ------------------------------------------------------------ problems */

/* A list of problems that becomes one VALIDATION error: the message is the
 * first problem plus " (and N more problems)", every problem is a detail. */
struct cod_problems {
	struct cod_error *err;
	size_t n;
};

void cod_problem_add(struct cod_problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when there were no problems; else -1 and the error moves to *err. */
int cod_problems_finish(struct cod_problems *p, struct cod_error **err);
void cod_problems_release(struct cod_problems *p);

/* ------------------------------------------------------------- decoder */

struct cod_decoder {
	struct cod_buf path; /* "Tasks[0].Engine" */
	struct cod_problems problems;
};

/* A problem at the current path: "<path>: <message>". */
void cod_decoder_problem(struct cod_decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Push a path segment ("Key" or "[3]"); returns the length to pop back to. */
size_t cod_decoder_push(struct cod_decoder *d, const char *seg);
void cod_decoder_pop(struct cod_decoder *d, size_t len);
/* Decode an object into a zeroed struct at out, at the current path. */
void cod_decoder_object(struct cod_decoder *d, const struct cod_schema *s, const json_t *v, void *out);
/* A string the way a string field reads it; NULL (and a problem) if v is an
 * object or array; NULL without problem for null. Heap string. */
char *cod_decoder_string(struct cod_decoder *d, const json_t *v);

/* Decode v into out (zeroed first). On problems, out is released again and
 * -1 returned with every problem in *err. */
int cod_schema_decode(const struct cod_schema *s, const json_t *v, void *out, struct cod_error **err);
json_t *cod_schema_encode(const struct cod_schema *s, const void *in);
/* The compact JSON text of in (heap): the same text as json_dumps() of
 * cod_schema_encode() with JSON_COMPACT, written directly, without building
 * the tree (documents are encoded for every write of the stores). */
char *cod_schema_dumps(const struct cod_schema *s, const void *in);
/* For custom dump callbacks: append in's text to b; append a string as an
 * object key ("key":), returning false (nothing appended) when jansson
 * would refuse it as a key (not UTF-8). */
void cod_schema_dump_to(struct cod_buf *b, const struct cod_schema *s, const void *in);
bool cod_schema_dump_key(struct cod_buf *b, const char *key);
void cod_schema_copy(const struct cod_schema *s, void *dst, const void *src);
void cod_schema_release(const struct cod_schema *s, void *obj);

/* JSON type of v in words ("string", "integer", "object"...). */
const char *cod_json_type_name(const json_t *v);
/* The closest of n candidate names to `name`, or NULL when none is close. */
const char *cod_did_you_mean(const char *name, const char *const *candidates, size_t n);

/* ------------------------------------------------------------- schemas */

extern const struct cod_schema cod_job_schema;
extern const struct cod_schema cod_task_schema;
extern const struct cod_schema cod_input_source_schema;
extern const struct cod_schema cod_execution_schema;
extern const struct cod_schema cod_evaluation_schema;
extern const struct cod_schema cod_history_schema;
extern const struct cod_schema cod_node_state_schema;
extern const struct cod_schema cod_node_info_schema;
extern const struct cod_schema cod_resources_schema;

extern const struct cod_enum cod_enum_job_type;
extern const struct cod_enum cod_enum_job_state;
extern const struct cod_enum cod_enum_exec_state;
extern const struct cod_enum cod_enum_exec_desired;
extern const struct cod_enum cod_enum_network;
extern const struct cod_enum cod_enum_membership;
extern const struct cod_enum cod_enum_connection;
extern const struct cod_enum cod_enum_history_type;
extern const struct cod_enum cod_enum_selector_op;

/* Canonical spelling of a known engine/publisher/source type ("Docker" ->
 * "docker", "urldownload" -> "urlDownload"), or NULL if unknown. */
const char *cod_canonical_spec_type(const char *type);
/* Whether a spec type equals name, ignoring case and surrounding space. */
bool cod_spec_type_is(const char *type, const char *name);

#endif
