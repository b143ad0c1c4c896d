/*
 * buffer.c - the executor buffer: executions waiting for capacity, kept
 * sorted by Job.Priority (higher first) and arrival, and the usage of the
 * ones running. A node holds tens of queued executions, not millions, so a
 * sorted array is the priority queue: insertion is a memmove, and
 * cod_buffer_next() scans for the first item that fits (Bacalhau lets a
 * small job skip ahead of a big one that has to wait).
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "compute/compute_int.h"
#include "common/banned.h"

void cod_buffer_init(struct cod_buffer *b, const struct cod_resources *max)
{
	memset(b, 0, sizeof(*b));
	b->max = *max;
}

void cod_buffer_release(struct cod_buffer *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->items[i].execution_id);
	free(b->items);
	memset(b, 0, sizeof(*b));
}

static bool before(const struct cod_buffer_item *a, const struct cod_buffer_item *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return a->order < b->order;
}

bool cod_buffer_contains(const struct cod_buffer *b, const char *execution_id)
{
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(b->items[i].execution_id, execution_id))
			return true;
	return false;
}

int cod_buffer_enqueue(struct cod_buffer *b, const char *execution_id, int64_t priority,
		       const struct cod_resources *need, struct cod_error **err)
{
	static const struct cod_resources none = {0};
	char *why = NULL;
	if (!cod_resources_fit(need, &none, &b->max) && (why = cod_resources_exceeds(need, &b->max))) {
		cod_error_set(err, COD_E_EXHAUSTED, "execution needs %s", why);
		free(why);
		return -1;
	}
	if (cod_buffer_contains(b, execution_id))
		return 0;
	struct cod_buffer_item item = {
	    .execution_id = xstrdup(execution_id),
	    .priority = priority,
	    .order = b->next_order++,
	    .need = *need,
	};
	COD_GROW(b->items, b->alloc, b->n + 1);
	size_t at = b->n;
	while (at > 0 && before(&item, &b->items[at - 1]))
		at--;
	memmove(&b->items[at + 1], &b->items[at], (b->n - at) * sizeof(*b->items));
	b->items[at] = item;
	b->n++;
	cod_resources_add(&b->queued, need);
	return 0;
}

static void take(struct cod_buffer *b, size_t i)
{
	cod_resources_sub(&b->queued, &b->items[i].need);
	memmove(&b->items[i], &b->items[i + 1], (b->n - i - 1) * sizeof(*b->items));
	b->n--;
}

bool cod_buffer_next(struct cod_buffer *b, char **execution_id, struct cod_resources *need)
{
	for (size_t i = 0; i < b->n; i++) {
		if (!cod_resources_fit(&b->items[i].need, &b->running, &b->max))
			continue;
		*execution_id = b->items[i].execution_id;
		*need = b->items[i].need;
		cod_resources_add(&b->running, need);
		b->nrunning++;
		take(b, i);
		return true;
	}
	return false;
}

void cod_buffer_done(struct cod_buffer *b, const struct cod_resources *need)
{
	cod_resources_sub(&b->running, need);
	if (b->nrunning)
		b->nrunning--;
}

bool cod_buffer_remove(struct cod_buffer *b, const char *execution_id)
{
	for (size_t i = 0; i < b->n; i++) {
		if (!strcmp(b->items[i].execution_id, execution_id)) {
			free(b->items[i].execution_id);
			take(b, i);
			return true;
		}
	}
	return false;
}

void cod_buffer_available(const struct cod_buffer *b, struct cod_resources *out)
{
	*out = b->max;
	cod_resources_sub(out, &b->running);
}
