#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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
	/* One write per line: lines from several threads or processes
	 * sharing the file never interleave, and a line costs one system
	 * call. Longer lines are cut (a log line is not a data channel). */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s %s: ", when, ts.tv_nsec / 1000000, names[level],
			 component);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	len += n < 0 ? 0 : (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (len == sizeof(line) - 1)
		memcpy(line + len - 3, "...", 3);
	line[len++] = '\n';
	pthread_mutex_lock(&log_lock);
	fflush(stderr);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}
