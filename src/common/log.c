#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/banned.h"

static enum cod_log_level current = COD_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void cod_log_set_level(enum cod_log_level level)
{
	current = level;
}

enum cod_log_level cod_log_get_level(void)
{
	return current;
}

int cod_log_parse_level(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i <= COD_LOG_OFF; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	if (!strcasecmp(s, "warning"))
		return COD_LOG_WARN;
	return -1;
}

void cod_log(enum cod_log_level level, const char *component, const char *fmt, ...)
{
	if (level < current || level >= COD_LOG_OFF)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ %-5s %s: ", when, ts.tv_nsec / 1000000, names[level], component);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
	va_end(ap);
}
