/*
 * publisher.c - the publisher registry.
 */
#include "publisher/publisher.h"

#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static const struct cod_publisher_ops *const registry[] = {
	&cod_publisher_noop,
	&cod_publisher_local,
	&cod_publisher_s3,
	&cod_publisher_ipfs,
};

bool cod_publisher_disabled(const struct cod_config *cfg, const char *type)
{
	for (size_t i = 0; cfg && i < cfg->publisher_disabled.n; i++)
		if (!strcasecmp(cfg->publisher_disabled.items[i], type))
			return true;
	return false;
}

const struct cod_publisher_ops *cod_publisher_find(const char *type)
{
	if (cod_str_empty(type))
		return &cod_publisher_noop;
	cleanup_free char *t = cod_str_trim(xstrdup(type));
	if (!*t)
		return &cod_publisher_noop;
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (!strcasecmp(registry[i]->name, t))
			return registry[i];
	return NULL;
}

const struct cod_publisher_ops *const *cod_publisher_all(size_t *n)
{
	*n = COD_ARRAY_SIZE(registry);
	return registry;
}

void cod_publisher_installed(const struct cod_config *cfg, struct cod_strlist *out)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (!cod_publisher_disabled(cfg, registry[i]->name) &&
		    (!registry[i]->is_installed || registry[i]->is_installed(cfg)))
			cod_strlist_add(out, registry[i]->name);
}
