/*
 * Resource strings: CPU as a k8s quantity, memory and disk the way
 * go-humanize's ParseBytes reads them (what Bacalhau uses), GPU a count.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

struct unit {
	const char *suffix;
	double mult;
};

/* A decimal number without sign or exponent: digits with at most one dot
 * and at least one digit. Returns the length consumed, 0 if none. */
static size_t scan_decimal(const char *s)
{
	size_t i = 0, digits = 0;
	bool dot = false;
	for (;; i++) {
		if (isdigit((unsigned char)s[i])) {
			digits++;
		} else if (s[i] == '.' && !dot) {
			dot = true;
		} else {
			break;
		}
	}
	return digits ? i : 0;
}

int cod_parse_cpu(const char *s, double *out)
{
	static const struct unit units[] = {
		{"", 1},       {"m", 1e-3},   {"k", 1e3},    {"M", 1e6},    {"G", 1e9},
		{"T", 1e12},   {"P", 1e15},   {"E", 1e18},   {"Ki", 1024.0}, {"Mi", 1048576.0},
		{"Gi", 1073741824.0}, {"Ti", 1099511627776.0}, {"Pi", 1125899906842624.0},
		{"Ei", 1152921504606846976.0},
	};
	if (!s)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '+')
		s++;
	size_t n = scan_decimal(s);
	if (!n || n > 64)
		return -1;
	char num[65];
	memcpy(num, s, n);
	num[n] = '\0';
	const char *rest = s + n;
	double exp_mult = 1;
	/* k8s also allows a decimal exponent: "1e3", "5E-1". */
	if ((rest[0] == 'e' || rest[0] == 'E') &&
	    (isdigit((unsigned char)rest[1]) ||
	     ((rest[1] == '-' || rest[1] == '+') && isdigit((unsigned char)rest[2])))) {
		char *end;
		errno = 0;
		long e = strtol(rest + 1, &end, 10);
		if (errno || e > 30 || e < -30)
			return -1;
		exp_mult = pow(10, (double)e);
		rest = end;
	}
	size_t rlen = strlen(rest);
	while (rlen && isspace((unsigned char)rest[rlen - 1]))
		rlen--;
	for (size_t i = 0; i < COD_ARRAY_SIZE(units); i++) {
		if (strlen(units[i].suffix) != rlen || strncmp(units[i].suffix, rest, rlen))
			continue;
		if (exp_mult != 1 && rlen)
			return -1; /* "1e3m" is not a quantity */
		double v = strtod(num, NULL) * exp_mult * units[i].mult;
		if (!isfinite(v) || v < 0)
			return -1;
		*out = v;
		return 0;
	}
	return -1;
}

int cod_parse_bytes(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
		{"", 1},
		{"b", 1},
		{"k", 1e3},
		{"kb", 1e3},
		{"ki", 1024.0},
		{"kib", 1024.0},
		{"m", 1e6},
		{"mb", 1e6},
		{"mi", 1048576.0},
		{"mib", 1048576.0},
		{"g", 1e9},
		{"gb", 1e9},
		{"gi", 1073741824.0},
		{"gib", 1073741824.0},
		{"t", 1e12},
		{"tb", 1e12},
		{"ti", 1099511627776.0},
		{"tib", 1099511627776.0},
		{"p", 1e15},
		{"pb", 1e15},
		{"pi", 1125899906842624.0},
		{"pib", 1125899906842624.0},
		{"e", 1e18},
		{"eb", 1e18},
		{"ei", 1152921504606846976.0},
		{"eib", 1152921504606846976.0},
	};
	if (!s)
		return -1;
	/* Bacalhau lowercases and removes spaces first; commas group digits
	 * in humanize ("1,000 MB"). */
	size_t len = strlen(s);
	if (len > 128)
		return -1;
	char norm[129];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isspace(c))
			continue;
		norm[n++] = (char)tolower(c);
	}
	norm[n] = '\0';
	size_t lastdigit = 0;
	for (size_t i = 0; i < n; i++)
		if (isdigit((unsigned char)norm[i]) || norm[i] == '.' || norm[i] == ',')
			lastdigit = i + 1;
		else
			break;
	if (!lastdigit)
		return -1;
	char num[129];
	size_t k = 0;
	for (size_t i = 0; i < lastdigit; i++)
		if (norm[i] != ',')
			num[k++] = norm[i];
	num[k] = '\0';
	if (scan_decimal(num) != k)
		return -1;
	const char *unit = norm + lastdigit;
	for (size_t i = 0; i < COD_ARRAY_SIZE(units); i++) {
		if (strcmp(units[i].suffix, unit))
			continue;
		double v = strtod(num, NULL) * units[i].mult;
		/* 2^64 is exactly representable; anything at or above it overflows. */
		if (!isfinite(v) || v < 0 || v >= 18446744073709551616.0)
			return -1;
		*out = (uint64_t)v;
		return 0;
	}
	return -1;
}

char *cod_format_bytes(uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (bytes < 1024)
		return xasprintf("%llu B", (unsigned long long)bytes);
	double v = (double)bytes / 1024.0;
	size_t i = 0;
	while (v >= 1024.0 && i + 1 < COD_ARRAY_SIZE(units)) {
		v /= 1024.0;
		i++;
	}
	return xasprintf("%.1f %s", v, units[i]);
}

static int parse_gpu(const char *s, uint64_t *out)
{
	int64_t v;
	if (cod_parse_i64(s, &v) < 0 || v < 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int cod_task_resources(const struct cod_task *task, struct cod_resources *out, struct cod_error **err)
{
	const struct cod_resources_config *rc = &task->resources;
	memset(out, 0, sizeof(*out));
	if (!cod_str_empty(rc->cpu) && cod_parse_cpu(rc->cpu, &out->cpu) < 0)
		return cod_error_set(err, COD_E_VALIDATION,
				     "Resources.CPU: \"%s\" is not a CPU quantity; use e.g. 500m or 2", rc->cpu);
	if (!cod_str_empty(rc->memory) && cod_parse_bytes(rc->memory, &out->memory) < 0)
		return cod_error_set(err, COD_E_VALIDATION,
				     "Resources.Memory: \"%s\" is not a size; use e.g. 512Mb or 2Gi", rc->memory);
	if (!cod_str_empty(rc->disk) && cod_parse_bytes(rc->disk, &out->disk) < 0)
		return cod_error_set(err, COD_E_VALIDATION,
				     "Resources.Disk: \"%s\" is not a size; use e.g. 512Mb or 2Gi", rc->disk);
	if (!cod_str_empty(rc->gpu) && parse_gpu(rc->gpu, &out->gpu) < 0)
		return cod_error_set(err, COD_E_VALIDATION,
				     "Resources.GPU: \"%s\" is not a GPU count; use a whole number such as 1",
				     rc->gpu);
	return 0;
}
