#include "common/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/banned.h"

static const struct {
	int http;
	const char *code;
	int exit_code;
	const char *desc;
} table[] = {
#define COD_ERR_ROW(name, http, code, exitc, desc) {http, code, exitc, desc},
	COD_ERROR_TABLE(COD_ERR_ROW)
#undef COD_ERR_ROW
};

static unsigned idx(enum cod_errcode code)
{
	return (unsigned)code < COD_E__COUNT ? (unsigned)code : COD_E_INTERNAL;
}

const char *cod_strerror(enum cod_errcode code)
{
	return table[idx(code)].desc;
}

int cod_error_http_status(enum cod_errcode code)
{
	return table[idx(code)].http;
}

const char *cod_error_code_name(enum cod_errcode code)
{
	return table[idx(code)].code;
}

int cod_error_exit_code(enum cod_errcode code)
{
	return table[idx(code)].exit_code;
}

enum cod_errcode cod_error_code_from_name(const char *name)
{
	if (!name)
		return COD_E_BAD_REQUEST;
	for (unsigned i = 0; i < COD_E__COUNT; i++)
		if (!strcasecmp(table[i].code, name))
			return (enum cod_errcode)i;
	return COD_E_BAD_REQUEST;
}

int cod_error_setv(struct cod_error **err, enum cod_errcode code, const char *fmt, va_list ap)
{
	if (!err)
		return -1;
	struct cod_error *e = xcalloc(1, sizeof(*e));
	e->code = code;
	e->message = xvasprintf(fmt, ap);
	cod_error_free(*err);
	*err = e;
	return -1;
}

int cod_error_set(struct cod_error **err, enum cod_errcode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cod_error_setv(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

void cod_error_hint(struct cod_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	free(err->hint);
	err->hint = xvasprintf(fmt, ap);
	va_end(ap);
}

int cod_error_wrap(struct cod_error **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *prefix = xvasprintf(fmt, ap);
	va_end(ap);
	char *msg = xasprintf("%s: %s", prefix, (*err)->message);
	free(prefix);
	free((*err)->message);
	(*err)->message = msg;
	return -1;
}

void cod_error_add_detail(struct cod_error *err, const char *detail)
{
	if (!err)
		return;
	err->details = xrealloc(err->details, cod_mul_size(err->ndetails + 1, sizeof(char *)));
	err->details[err->ndetails++] = xstrdup(detail);
}

void cod_error_free(struct cod_error *err)
{
	if (!err)
		return;
	free(err->message);
	free(err->hint);
	for (size_t i = 0; i < err->ndetails; i++)
		free(err->details[i]);
	free(err->details);
	free(err);
}

void cod_error_move(struct cod_error **dst, struct cod_error **src)
{
	if (!dst) {
		cod_error_free(*src);
	} else {
		cod_error_free(*dst);
		*dst = *src;
	}
	*src = NULL;
}

void cod_cleanup_error(struct cod_error **err)
{
	cod_error_free(*err);
}
