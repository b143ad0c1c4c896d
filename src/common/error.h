/*
 * error.h - cod's one error type.
 *
 * Every error code is declared once in COD_ERROR_TABLE, which generates the
 * enum, cod_strerror(), the HTTP status, the Bacalhau error `Code` string used
 * in REST error bodies, and the CLI exit code.
 *
 * A fallible function returns < 0 (or NULL) and, when its `err` argument is
 * not NULL, stores a newly allocated struct cod_error there. The caller owns
 * it and frees it with cod_error_free(). Errors climb with context added by
 * cod_error_wrap(): "submit job: store: disk I/O error".
 *
 * Messages are lowercase, without a full stop, name what failed first and the
 * subject in quotes; a hint says how the user can fix it.
 */
#ifndef COD_ERROR_H
#define COD_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/*       name            http  Bacalhau code          exit  description */
#define COD_ERROR_TABLE(X)                                                                        \
	X(BAD_REQUEST, 400, "BadRequest", 1, "bad request")                                       \
	X(VALIDATION, 400, "ValidationError", 1, "validation failed")                             \
	X(USAGE, 400, "BadRequest", 2, "usage error")                                             \
	X(NOT_FOUND, 404, "NotFound", 1, "not found")                                             \
	X(METHOD, 405, "BadRequest", 1, "method not allowed")                                     \
	X(CONFLICT, 409, "ResourceInUse", 1, "conflict")                                          \
	X(TOO_LARGE, 413, "BadRequest", 1, "request too large")                                   \
	X(UNAUTHORIZED, 401, "Unauthorized", 1, "unauthorized")                                   \
	X(FORBIDDEN, 403, "Forbidden", 1, "forbidden")                                            \
	X(TIMEOUT, 408, "TimeOut", 1, "timed out")                                                \
	X(EXHAUSTED, 429, "ResourceExhausted", 1, "resource exhausted")                           \
	X(CONFIG, 400, "ConfigurationError", 1, "configuration error")                            \
	X(INTERNAL, 500, "InternalError", 1, "internal error")                                    \
	X(DATASTORE, 500, "DatastoreFailure", 1, "datastore failure")                             \
	X(IO, 500, "IOError", 1, "i/o error")                                                     \
	X(NOT_IMPLEMENTED, 501, "NotImplemented", 1, "not implemented")                           \
	X(NETWORK, 502, "NetworkFailure", 1, "network failure")                                   \
	X(UNAVAILABLE, 503, "ServiceUnavailable", 1, "service unavailable")

enum cod_errcode {
#define COD_ERR_ENUM(name, http, code, exitc, desc) COD_E_##name,
	COD_ERROR_TABLE(COD_ERR_ENUM)
#undef COD_ERR_ENUM
	COD_E__COUNT
};

struct cod_error {
	enum cod_errcode code;
	char *message; /* one line, owned */
	char *hint;    /* optional, owned; how the user can fix it */
	const char *component; /* static string, e.g. "Jobs", "Store" */
	char **details;        /* optional list of problems (validation), owned */
	size_t ndetails;
};

const char *cod_strerror(enum cod_errcode code);
int cod_error_http_status(enum cod_errcode code);
const char *cod_error_code_name(enum cod_errcode code);
int cod_error_exit_code(enum cod_errcode code);
/* Map a Bacalhau `Code` string back to an error code (BAD_REQUEST if unknown). */
enum cod_errcode cod_error_code_from_name(const char *name);

/* Fill *err with a new error and return -1. With err == NULL only return -1. */
int cod_error_set(struct cod_error **err, enum cod_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int cod_error_setv(struct cod_error **err, enum cod_errcode code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Set the hint of an existing error (replacing any earlier one). */
void cod_error_hint(struct cod_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the message: "<context>: <message>". Returns -1. Safe on NULL. */
int cod_error_wrap(struct cod_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append one problem to details. */
void cod_error_add_detail(struct cod_error *err, const char *detail);
void cod_error_free(struct cod_error *err);
/* Move the error out of *err into *dst (freeing what *dst held). */
void cod_error_move(struct cod_error **dst, struct cod_error **src);

#define cleanup_error __attribute__((cleanup(cod_cleanup_error)))
void cod_cleanup_error(struct cod_error **err);

#endif
