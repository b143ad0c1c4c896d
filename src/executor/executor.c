/*
 * executor.c - the executor registry and the run helpers every driver
 * shares (cancellation, capped output, ${VAR} expansion).
 */
#include "executor/executor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

/* The registry: one line per driver. */
static const struct cod_executor_ops *const registry[] = {
    &cod_executor_noop,
    &cod_executor_docker,
};

const struct cod_executor_ops *cod_executor_find(const char *type)
{
	if (!type)
		return NULL;
	cleanup_free char *t = cod_str_trim(xstrdup(type));
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (!strcasecmp(registry[i]->name, t))
			return registry[i];
	return NULL;
}

int cod_executor_configure(const struct cod_config *cfg, struct cod_error **err)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (registry[i]->configure && registry[i]->configure(cfg, err) < 0)
			return cod_error_wrap(err, "engine \"%s\"", registry[i]->name);
	return 0;
}

void cod_executor_release(void)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (registry[i]->release)
			registry[i]->release();
}

const struct cod_executor_ops *const *cod_executor_all(size_t *n)
{
	*n = COD_ARRAY_SIZE(registry);
	return registry;
}

void cod_executor_installed(struct cod_strlist *out)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (!registry[i]->is_installed || registry[i]->is_installed())
			cod_strlist_add(out, registry[i]->name);
}

void cod_executor_run_init(struct cod_executor_run *run, size_t output_cap)
{
	memset(run, 0, sizeof(*run));
	pthread_mutex_init(&run->lock, NULL);
	/* Deadlines are on the monotonic clock, as cod_mono_ms(). */
	cod_cond_init_mono(&run->cond);
	cod_buf_init(&run->out.buf, output_cap);
	cod_buf_init(&run->err.buf, output_cap);
	run->out.fd = -1;
	run->err.fd = -1;
}

void cod_mount_release(struct cod_mount *m)
{
	free(m->source);
	free(m->target);
	m->source = NULL;
	m->target = NULL;
}

void cod_executor_run_release(struct cod_executor_run *run)
{
	cod_buf_release(&run->out.buf);
	cod_buf_release(&run->err.buf);
	pthread_mutex_destroy(&run->lock);
	pthread_cond_destroy(&run->cond);
}

void cod_executor_cancel(const struct cod_executor_ops *ops, struct cod_executor_run *run)
{
	pthread_mutex_lock(&run->lock);
	run->cancelled = true;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
	if (ops && ops->cancel)
		ops->cancel(run);
}

bool cod_executor_cancelled(struct cod_executor_run *run)
{
	pthread_mutex_lock(&run->lock);
	bool c = run->cancelled;
	pthread_mutex_unlock(&run->lock);
	return c;
}

bool cod_executor_wait(struct cod_executor_run *run, int64_t deadline_ms)
{
	pthread_mutex_lock(&run->lock);
	while (!run->cancelled) {
		if (deadline_ms < 0) {
			pthread_cond_wait(&run->cond, &run->lock);
			continue;
		}
		int64_t left = deadline_ms - cod_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		cod_mono_deadline(&ts, left);
		pthread_cond_timedwait(&run->cond, &run->lock, &ts);
	}
	bool c = run->cancelled;
	pthread_mutex_unlock(&run->lock);
	return c;
}

void cod_executor_output_add(struct cod_executor_output *o, const char *data, size_t len)
{
	if (!len)
		return;
	size_t room = len;
	if (o->buf.max) {
		room = o->buf.max > o->buf.len ? o->buf.max - o->buf.len : 0;
		if (room > len)
			room = len;
	}
	if (room)
		cod_buf_add(&o->buf, data, room);
	if (room < len)
		o->truncated = true;
	if (o->fd < 0 && o->open && !o->open_tried) {
		o->open_tried = true;
		o->fd = o->open(o->open_arg, o);
	}
	if (o->fd < 0 || o->file_truncated)
		return;
	size_t take = len;
	if (o->written + take > COD_LOG_FILE_MAX) {
		take = (size_t)(COD_LOG_FILE_MAX - o->written);
		o->file_truncated = true;
	}
	const char *p = data;
	while (take) {
		ssize_t w = write(o->fd, p, take);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->file_truncated = true; /* disk full or closed: stop logging */
			return;
		}
		p += w;
		take -= (size_t)w;
		o->written += (uint64_t)w;
	}
	if (o->on_write && p > data)
		o->on_write(o->on_write_arg, o);
}

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

char *cod_executor_expand(const char *text, const struct cod_kvlist *env)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (const char *p = text ? text : ""; *p;) {
		if (p[0] == '$' && p[1] == '{') {
			const char *end = p + 2;
			while (name_char(*end))
				end++;
			if (*end == '}' && end > p + 2) {
				cleanup_free char *name = xstrndup(p + 2, (size_t)(end - p - 2));
				const char *v = env ? cod_kvlist_get(env, name) : NULL;
				cod_buf_addstr(&b, v ? v : "");
				p = end + 1;
				continue;
			}
		}
		cod_buf_addch(&b, *p++);
	}
	return cod_buf_detach(&b, NULL);
}
