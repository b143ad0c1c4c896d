/* Ordered string maps and string lists. */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "model/model.h"
#include "common/banned.h"

static struct cod_kv *kv_find(const struct cod_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].key, key))
			return &l->items[i];
	return NULL;
}

void cod_kvlist_set(struct cod_kvlist *l, const char *key, const char *value)
{
	struct cod_kv *kv = kv_find(l, key);
	if (kv) {
		char *v = xstrdup(value ? value : "");
		free(kv->value);
		kv->value = v;
		return;
	}
	l->items = xrealloc(l->items, cod_mul_size(l->n + 1, sizeof(*l->items)));
	l->items[l->n].key = xstrdup(key);
	l->items[l->n].value = xstrdup(value ? value : "");
	l->n++;
}

const char *cod_kvlist_get(const struct cod_kvlist *l, const char *key)
{
	struct cod_kv *kv = kv_find(l, key);
	return kv ? kv->value : NULL;
}

bool cod_kvlist_del(struct cod_kvlist *l, const char *key)
{
	struct cod_kv *kv = kv_find(l, key);
	if (!kv)
		return false;
	free(kv->key);
	free(kv->value);
	size_t i = (size_t)(kv - l->items);
	memmove(kv, kv + 1, (l->n - i - 1) * sizeof(*kv));
	l->n--;
	return true;
}

void cod_kvlist_copy(struct cod_kvlist *dst, const struct cod_kvlist *src)
{
	if (dst == src)
		return;
	for (size_t i = 0; i < src->n; i++)
		cod_kvlist_set(dst, src->items[i].key, src->items[i].value);
}

void cod_kvlist_release(struct cod_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void cod_strlist_add(struct cod_strlist *l, const char *s)
{
	l->items = xrealloc(l->items, cod_mul_size(l->n + 1, sizeof(*l->items)));
	l->items[l->n++] = xstrdup(s ? s : "");
}

void cod_strlist_copy(struct cod_strlist *dst, const struct cod_strlist *src)
{
	if (dst == src)
		return;
	for (size_t i = 0; i < src->n; i++)
		cod_strlist_add(dst, src->items[i]);
}

void cod_strlist_release(struct cod_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}
