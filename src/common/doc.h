/*
 * doc.h - documents: YAML and JSON text <-> jansson trees.
 *
 * Job specs, config files and API bodies all become one jansson tree, so the
 * typed decoders in src/model see one representation whatever the syntax.
 *
 * YAML plain scalars are typed the YAML 1.2 core way: integers, floats,
 * true/false, null/~ and empty; quoted scalars are always strings. Aliases
 * are expanded with a node budget (no "billion laughs"), nesting is bounded.
 */
#ifndef COD_DOC_H
#define COD_DOC_H

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/error.h"

/* Parse JSON (text starting with '{' or '[') or YAML. An empty document is
 * an error ("empty document"). Returns a new reference or NULL with *err
 * naming line and column. */
json_t *cod_doc_parse(const char *text, size_t len, struct cod_error **err);
json_t *cod_yaml_parse(const char *text, size_t len, struct cod_error **err);
json_t *cod_json_parse(const char *text, size_t len, struct cod_error **err);

/* Emit a tree as block YAML (keys in tree order). */
void cod_yaml_emit(const json_t *value, struct cod_buf *out);
/* Emit JSON; pretty = indented. Never escapes '/' or HTML characters. */
void cod_json_emit(const json_t *value, int pretty, struct cod_buf *out);
char *cod_json_dumps(const json_t *value, int pretty);

/* Case-insensitive object lookup (Bacalhau accepts any key case). */
json_t *cod_json_iget(const json_t *obj, const char *key);

#endif
