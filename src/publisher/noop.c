/*
 * noop.c - the `noop` publisher: results stay on the node; clients see
 * them only in the execution's RunOutput and its logs.
 */
#include "publisher/publisher.h"

#include "common/mem.h"
#include "common/banned.h"

static int publish(const struct cod_publish_ctx *ctx, struct cod_spec_config *result, struct cod_error **err)
{
	(void)ctx;
	(void)err;
	result->type = xstrdup("noop");
	result->params = NULL;
	return 0;
}

const struct cod_publisher_ops cod_publisher_noop = {
	.name = "noop",
	.publishes_nothing = true,
	.publish = publish,
};
