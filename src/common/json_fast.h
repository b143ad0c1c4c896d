/*
 * json_fast.h - read JSON text into a jansson tree, faster than
 * json_loadb for the documents cod writes itself, with the same result.
 */
#ifndef COD_JSON_FAST_H
#define COD_JSON_FAST_H

#include <jansson.h>
#include <stddef.h>

/* As json_loadb(text, len, flags, error): the same tree on success, and
 * jansson's own error on failure. New reference or NULL. */
json_t *cod_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error);
/* The one-pass reader alone: NULL where it leaves the text to jansson
 * (anything outside what cod writes, and every error). */
json_t *cod_json_read_fast(const char *text, size_t len, size_t flags);
/* As json_loads(text, flags, error). */
json_t *cod_json_loads(const char *text, size_t flags, json_error_t *error);

#endif
