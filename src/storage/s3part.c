/*
 * s3part.c - S3 object partitioning, exactly as Bacalhau's
 * pkg/s3/partitioning (reference/bacalhau.md §5.2): each execution of a
 * Count=N job downloads only the objects of its PartitionIndex.
 *
 *   none       every execution gets every object
 *   object     FNV-1a (32 bit) of the full key, mod Count
 *   regex      Pattern on the prefix-trimmed key: capture groups joined
 *              with 0x1F (non-empty ones), else the whole match; no match -> 0
 *   substring  runes [StartIndex, EndIndex) of the prefix-trimmed key;
 *              too short -> 0
 *   date       DateFormat (a Go layout) parsed from the start of the
 *              prefix-trimmed key, formatted back and hashed; failure -> 0
 *
 * Patterns are Go (RE2) syntax; cod runs them as POSIX extended regular
 * expressions after translating the Perl classes RE2 users write (\d \w \s
 * and their negations), which covers the partitioning patterns in practice.
 */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/s3api.h"
#include "common/banned.h"

uint32_t cod_fnv1a32(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* ------------------------------------------------------------- regexes */

/* RE2 -> POSIX ERE for the common Perl classes. Heap. */
static char *translate_re(const char *re)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	bool in_class = false;
	for (const char *p = re; *p; p++) {
		if (*p == '\\' && p[1]) {
			const char *rep = NULL;
			switch (p[1]) {
			case 'd':
				rep = in_class ? "0-9" : "[0-9]";
				break;
			case 'D':
				rep = in_class ? NULL : "[^0-9]";
				break;
			case 'w':
				rep = in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]";
				break;
			case 'W':
				rep = in_class ? NULL : "[^A-Za-z0-9_]";
				break;
			case 's':
				rep = in_class ? "[:space:]" : "[[:space:]]";
				break;
			case 'S':
				rep = in_class ? NULL : "[^[:space:]]";
				break;
			default:
				break;
			}
			if (rep) {
				cod_buf_addstr(&b, rep);
			} else {
				cod_buf_addch(&b, p[0]);
				cod_buf_addch(&b, p[1]);
			}
			p++;
			continue;
		}
		if (*p == '[' && !in_class)
			in_class = true;
		else if (*p == ']' && in_class)
			in_class = false;
		cod_buf_addch(&b, *p);
	}
	return cod_buf_detach(&b, NULL);
}

int cod_go_regcomp(regex_t *re, const char *pattern, struct cod_error **err)
{
	cleanup_free char *posix = translate_re(pattern);
	int rc = regcomp(re, posix, REG_EXTENDED);
	if (rc) {
		char msg[256];
		regerror(rc, re, msg, sizeof(msg));
		return cod_error_set(err, COD_E_VALIDATION, "invalid regex pattern \"%s\": %s", pattern, msg);
	}
	return 0;
}

/* ----------------------------------------------------- Go time layouts */

static const char *const months[] = {"January", "February", "March",     "April",   "May",      "June",
				     "July",    "August",   "September", "October", "November", "December"};
static const char *const days[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

enum chunk {
	C_NONE,
	C_LONG_MONTH,
	C_MONTH,
	C_NUM_MONTH,
	C_ZERO_MONTH,
	C_LONG_WEEKDAY,
	C_WEEKDAY,
	C_DAY,
	C_UNDER_DAY,
	C_ZERO_DAY,
	C_YEARDAY,
	C_HOUR,
	C_HOUR12,
	C_ZERO_HOUR12,
	C_MINUTE,
	C_ZERO_MINUTE,
	C_SECOND,
	C_ZERO_SECOND,
	C_LONG_YEAR,
	C_YEAR,
	C_PM,
	C_pm,
	C_TZ,
	C_ISO_TZ, /* Z07:00 etc.: parsed, taken as UTC */
	C_NUM_TZ, /* -0700 etc. */
	C_FRAC,	  /* .000 or .999 (n digits) */
};

struct chunk_def {
	const char *text;
	enum chunk kind;
};

/* Longest first where prefixes overlap, as Go's nextStdChunk decides. */
static const struct chunk_def chunks[] = {
    {"January", C_LONG_MONTH}, {"Jan", C_MONTH},	   {"Monday", C_LONG_WEEKDAY}, {"Mon", C_WEEKDAY},
    {"MST", C_TZ},	       {"2006", C_LONG_YEAR},	   {"2", C_DAY},	       {"_2", C_UNDER_DAY},
    {"002", C_YEARDAY},	       {"01", C_ZERO_MONTH},	   {"02", C_ZERO_DAY},	       {"03", C_ZERO_HOUR12},
    {"04", C_ZERO_MINUTE},     {"05", C_ZERO_SECOND},	   {"06", C_YEAR},	       {"15", C_HOUR},
    {"1", C_NUM_MONTH},	       {"3", C_HOUR12},		   {"4", C_MINUTE},	       {"5", C_SECOND},
    {"PM", C_PM},	       {"pm", C_pm},		   {"Z07:00:00", C_ISO_TZ},    {"Z0700", C_ISO_TZ},
    {"Z07:00", C_ISO_TZ},      {"Z07", C_ISO_TZ},	   {"-07:00:00", C_NUM_TZ},    {"-0700", C_NUM_TZ},
    {"-07:00", C_NUM_TZ},      {"-07", C_NUM_TZ},
};

/* The chunk at p, or C_NONE; *len its length. Mirrors Go's precedence:
 * "2006" before "2", "002" only when not after a digit... simplified to
 * longest match among candidates. */
static enum chunk chunk_at(const char *p, size_t *len)
{
	if ((*p == '.' || *p == ',') && (p[1] == '0' || p[1] == '9')) {
		size_t n = 1;
		char d = p[1];
		while (p[n] == d)
			n++;
		/* Go: a fractional second only when not followed by a digit */
		if (!isdigit((unsigned char)p[n])) {
			*len = n;
			return C_FRAC;
		}
	}
	size_t best = 0;
	enum chunk kind = C_NONE;
	for (size_t i = 0; i < COD_ARRAY_SIZE(chunks); i++) {
		size_t n = strlen(chunks[i].text);
		if (n > best && !strncmp(p, chunks[i].text, n)) {
			/* "Mon" must not be the start of "Monday" (handled by
			 * longest) nor "January" of another word */
			best = n;
			kind = chunks[i].kind;
		}
	}
	*len = best;
	return kind;
}

struct go_time {
	int year, month, day, yday, hour, min, sec, nsec;
	bool pm_set, pm;
};

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in(int month, int year)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap(year) ? 29 : d[month - 1];
}

/* digits: fixed (exactly n) or 1..n */
static int getnum(const char **s, int n, bool fixed, int *out)
{
	int v = 0, i = 0;
	while (i < n && isdigit((unsigned char)(*s)[i])) {
		v = v * 10 + ((*s)[i] - '0');
		i++;
	}
	if (!i || (fixed && i != n))
		return -1;
	*s += i;
	*out = v;
	return 0;
}

static int lookup(const char **s, const char *const *names, size_t n, size_t prefix_len, int *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = prefix_len ? prefix_len : strlen(names[i]);
		if (!strncasecmp(*s, names[i], len)) {
			*s += len;
			*out = (int)i;
			return 0;
		}
	}
	return -1;
}

int cod_go_time_parse(const char *layout, const char *s, struct tm *out)
{
	struct go_time t = {.year = 0, .month = 1, .day = 1, .yday = -1};
	const char *l = layout;
	while (*l) {
		size_t n;
		enum chunk c = chunk_at(l, &n);
		if (c == C_NONE) {
			if (*s != *l)
				return -1;
			s++;
			l++;
			continue;
		}
		l += n;
		int v;
		switch (c) {
		case C_LONG_MONTH:
			if (lookup(&s, months, 12, 0, &v) < 0)
				return -1;
			t.month = v + 1;
			break;
		case C_MONTH:
			if (lookup(&s, months, 12, 3, &v) < 0)
				return -1;
			t.month = v + 1;
			break;
		case C_LONG_WEEKDAY:
			if (lookup(&s, days, 7, 0, &v) < 0)
				return -1;
			break;
		case C_WEEKDAY:
			if (lookup(&s, days, 7, 3, &v) < 0)
				return -1;
			break;
		case C_NUM_MONTH:
		case C_ZERO_MONTH:
			if (getnum(&s, 2, c == C_ZERO_MONTH, &v) < 0 || v < 1 || v > 12)
				return -1;
			t.month = v;
			break;
		case C_UNDER_DAY:
			if (*s == ' ')
				s++;
			/* fallthrough */
		case C_DAY:
		case C_ZERO_DAY:
			if (getnum(&s, 2, c == C_ZERO_DAY, &v) < 0 || v < 1 || v > 31)
				return -1;
			t.day = v;
			break;
		case C_YEARDAY:
			if (getnum(&s, 3, true, &v) < 0 || v < 1 || v > 366)
				return -1;
			t.yday = v;
			break;
		case C_HOUR:
			if (getnum(&s, 2, false, &v) < 0 || v > 23)
				return -1;
			t.hour = v;
			break;
		case C_HOUR12:
		case C_ZERO_HOUR12:
			if (getnum(&s, 2, c == C_ZERO_HOUR12, &v) < 0 || v > 12)
				return -1;
			t.hour = v;
			break;
		case C_MINUTE:
		case C_ZERO_MINUTE:
			if (getnum(&s, 2, c == C_ZERO_MINUTE, &v) < 0 || v > 59)
				return -1;
			t.min = v;
			break;
		case C_SECOND:
		case C_ZERO_SECOND:
			if (getnum(&s, 2, c == C_ZERO_SECOND, &v) < 0 || v > 59)
				return -1;
			t.sec = v;
			/* Go accepts a fractional second after seconds even
			 * when the layout has none */
			if (*s == '.' && isdigit((unsigned char)s[1]) && !(l[0] == '.' || l[0] == ',')) {
				s++;
				while (isdigit((unsigned char)*s))
					s++;
			}
			break;
		case C_LONG_YEAR:
			if (getnum(&s, 4, true, &v) < 0)
				return -1;
			t.year = v;
			break;
		case C_YEAR:
			if (getnum(&s, 2, true, &v) < 0)
				return -1;
			t.year = v >= 69 ? 1900 + v : 2000 + v;
			break;
		case C_PM:
		case C_pm:
			if (!strncasecmp(s, "AM", 2))
				t.pm = false;
			else if (!strncasecmp(s, "PM", 2))
				t.pm = true;
			else
				return -1;
			t.pm_set = true;
			s += 2;
			break;
		case C_TZ:
			if (!strncmp(s, "UTC", 3)) {
				s += 3;
			} else {
				int k = 0;
				while (k < 5 && isupper((unsigned char)s[k]))
					k++;
				if (k < 3)
					return -1;
				s += k;
			}
			break;
		case C_ISO_TZ:
			if (*s == 'Z') {
				s++;
				break;
			}
			/* fallthrough */
		case C_NUM_TZ: {
			if (*s != '+' && *s != '-')
				return -1;
			s++;
			int hh, mm = 0;
			if (getnum(&s, 2, true, &hh) < 0)
				return -1;
			if (*s == ':')
				s++;
			if (isdigit((unsigned char)*s) && getnum(&s, 2, true, &mm) < 0)
				return -1;
			break;
		}
		case C_FRAC: {
			if (*s != '.' && *s != ',')
				return -1;
			s++;
			size_t digits = n - 1;
			bool nines = layout[l - layout - 1] == '9';
			size_t k = 0;
			while (isdigit((unsigned char)s[k]))
				k++;
			if ((!nines && k != digits) || (nines && !k))
				return -1;
			s += k;
			break;
		}
		case C_NONE:
			break;
		}
	}
	if (*s)
		return -1; /* extra text */
	if (t.pm_set) {
		if (t.hour < 1 || t.hour > 12)
			return -1;
		if (t.pm && t.hour < 12)
			t.hour += 12;
		else if (!t.pm && t.hour == 12)
			t.hour = 0;
	}
	if (t.yday > 0) {
		int m = 1, d = t.yday;
		if (d > (is_leap(t.year) ? 366 : 365))
			return -1;
		while (d > days_in(m, t.year)) {
			d -= days_in(m, t.year);
			m++;
		}
		t.month = m;
		t.day = d;
	}
	if (t.day > days_in(t.month, t.year))
		return -1; /* "day out of range" */
	memset(out, 0, sizeof(*out));
	out->tm_year = t.year - 1900;
	out->tm_mon = t.month - 1;
	out->tm_mday = t.day;
	out->tm_hour = t.hour;
	out->tm_min = t.min;
	out->tm_sec = t.sec;
	/* weekday (Sakamoto) for formats that print it */
	static const int k[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
	int y = t.year - (t.month < 3);
	out->tm_wday = (y + y / 4 - y / 100 + y / 400 + k[t.month - 1] + t.day) % 7;
	int yd = t.day;
	for (int m = 1; m < t.month; m++)
		yd += days_in(m, t.year);
	out->tm_yday = yd - 1;
	return 0;
}

char *cod_go_time_format(const char *layout, const struct tm *t)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	const char *l = layout;
	int year = t->tm_year + 1900, month = t->tm_mon + 1, h12 = t->tm_hour % 12 ? t->tm_hour % 12 : 12;
	while (*l) {
		size_t n;
		enum chunk c = chunk_at(l, &n);
		if (c == C_NONE) {
			cod_buf_addch(&b, *l++);
			continue;
		}
		switch (c) {
		case C_LONG_MONTH:
			cod_buf_addstr(&b, months[t->tm_mon]);
			break;
		case C_MONTH:
			cod_buf_addf(&b, "%.3s", months[t->tm_mon]);
			break;
		case C_LONG_WEEKDAY:
			cod_buf_addstr(&b, days[t->tm_wday]);
			break;
		case C_WEEKDAY:
			cod_buf_addf(&b, "%.3s", days[t->tm_wday]);
			break;
		case C_NUM_MONTH:
			cod_buf_addf(&b, "%d", month);
			break;
		case C_ZERO_MONTH:
			cod_buf_addf(&b, "%02d", month);
			break;
		case C_DAY:
			cod_buf_addf(&b, "%d", t->tm_mday);
			break;
		case C_UNDER_DAY:
			cod_buf_addf(&b, "%2d", t->tm_mday);
			break;
		case C_ZERO_DAY:
			cod_buf_addf(&b, "%02d", t->tm_mday);
			break;
		case C_YEARDAY:
			cod_buf_addf(&b, "%03d", t->tm_yday + 1);
			break;
		case C_HOUR:
			cod_buf_addf(&b, "%02d", t->tm_hour);
			break;
		case C_HOUR12:
			cod_buf_addf(&b, "%d", h12);
			break;
		case C_ZERO_HOUR12:
			cod_buf_addf(&b, "%02d", h12);
			break;
		case C_MINUTE:
			cod_buf_addf(&b, "%d", t->tm_min);
			break;
		case C_ZERO_MINUTE:
			cod_buf_addf(&b, "%02d", t->tm_min);
			break;
		case C_SECOND:
			cod_buf_addf(&b, "%d", t->tm_sec);
			break;
		case C_ZERO_SECOND:
			cod_buf_addf(&b, "%02d", t->tm_sec);
			break;
		case C_LONG_YEAR:
			cod_buf_addf(&b, "%04d", year);
			break;
		case C_YEAR:
			cod_buf_addf(&b, "%02d", year % 100);
			break;
		case C_PM:
			cod_buf_addstr(&b, t->tm_hour >= 12 ? "PM" : "AM");
			break;
		case C_pm:
			cod_buf_addstr(&b, t->tm_hour >= 12 ? "pm" : "am");
			break;
		case C_TZ:
			cod_buf_addstr(&b, "UTC");
			break;
		case C_ISO_TZ:
			cod_buf_addch(&b, 'Z');
			break;
		case C_NUM_TZ:
			cod_buf_addstr(&b, n == 3 ? "+00" : n == 5 ? "+0000" : n == 6 ? "+00:00" : "+00:00:00");
			break;
		case C_FRAC:
			/* seconds are whole here: .000 prints zeros, .999 nothing */
			if (l[1] == '0') {
				cod_buf_addch(&b, l[0]);
				for (size_t i = 1; i < n; i++)
					cod_buf_addch(&b, '0');
			}
			break;
		case C_NONE:
			break;
		}
		l += n;
	}
	return cod_buf_detach(&b, NULL);
}

/* -------------------------------------------------------- partitioning */

static const char *pstr(const json_t *o, const char *key)
{
	json_t *v = cod_json_iget(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int pint(const json_t *o, const char *key, int64_t *out)
{
	json_t *v = cod_json_iget(o, key);
	if (!v || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && cod_parse_i64(json_string_value(v), out) == 0)
		return 0;
	return -1;
}

int cod_s3_partition_check(const json_t *p, struct cod_error **err)
{
	if (!p || json_is_null(p))
		return 0;
	if (!json_is_object(p))
		return cod_error_set(err, COD_E_VALIDATION, "s3 Partition must be an object");
	const char *type = pstr(p, "Type");
	if (cod_str_empty(type) || !strcasecmp(type, "none") || !strcasecmp(type, "object"))
		return 0;
	if (!strcasecmp(type, "regex")) {
		const char *pat = pstr(p, "Pattern");
		if (cod_str_empty(pat))
			return cod_error_set(err, COD_E_VALIDATION, "s3 Partition: regex pattern cannot be empty");
		regex_t re;
		if (cod_go_regcomp(&re, pat, err) < 0)
			return -1;
		regfree(&re);
		return 0;
	}
	if (!strcasecmp(type, "substring")) {
		int64_t s, e;
		if (pint(p, "StartIndex", &s) < 0 || pint(p, "EndIndex", &e) < 0)
			return cod_error_set(err, COD_E_VALIDATION, "s3 Partition: StartIndex and EndIndex must be integers");
		if (s < 0)
			return cod_error_set(err, COD_E_VALIDATION, "s3 Partition: start index cannot be negative");
		if (e <= s)
			return cod_error_set(err, COD_E_VALIDATION,
					     "s3 Partition: end index must be greater than start index");
		return 0;
	}
	if (!strcasecmp(type, "date")) {
		const char *fmt = pstr(p, "DateFormat");
		if (cod_str_empty(fmt))
			return cod_error_set(err, COD_E_VALIDATION, "s3 Partition: date format cannot be empty");
		/* Go's check: the reference time formatted with the layout
		 * must parse back */
		struct tm ref = {.tm_year = 106, .tm_mon = 0, .tm_mday = 2, .tm_hour = 15, .tm_min = 4, .tm_sec = 5,
				 .tm_wday = 1, .tm_yday = 1};
		cleanup_free char *s = cod_go_time_format(fmt, &ref);
		struct tm back;
		if (cod_go_time_parse(fmt, s, &back) < 0)
			return cod_error_set(err, COD_E_VALIDATION, "s3 Partition: invalid date format: %s", fmt);
		return 0;
	}
	return cod_error_set(err, COD_E_VALIDATION,
			     "s3 Partition: unsupported partition key type %s; use none, object, regex, substring or date",
			     type);
}

static int hash_to(const char *s, size_t n, int64_t count)
{
	return (int)(cod_fnv1a32(s, n) % (uint32_t)count);
}

/* Key with the prefix trimmed, then a leading '/'. */
static const char *trim_key(const char *key, const char *prefix)
{
	size_t pl = prefix ? strlen(prefix) : 0;
	if (pl && !strncmp(key, prefix, pl))
		key += pl;
	if (*key == '/')
		key++;
	return key;
}

/* Byte offset of rune i in a UTF-8 string, or -1 when it has fewer runes. */
static long rune_offset(const char *s, int64_t i)
{
	long off = 0;
	for (int64_t r = 0; r < i; r++) {
		unsigned char c = (unsigned char)s[off];
		if (!c)
			return -1;
		int len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		for (int k = 0; k < len; k++) {
			if (!s[off])
				return -1;
			off++;
		}
	}
	return off;
}

int cod_s3_partition_of(const json_t *p, const char *prefix, const char *key, int64_t count, struct cod_error **err)
{
	if (count <= 1)
		return 0;
	if (cod_s3_partition_check(p, err) < 0)
		return -1;
	const char *type = pstr(p, "Type");
	if (cod_str_empty(type) || !strcasecmp(type, "none"))
		return -2; /* every partition */
	if (!strcasecmp(type, "object"))
		return hash_to(key, strlen(key), count);
	/* Bacalhau: strings.TrimSuffix(strings.TrimSpace(Key), "*") */
	cleanup_free char *pfx = cod_str_trim(xstrdup(prefix ? prefix : ""));
	size_t pl = strlen(pfx);
	if (pl && pfx[pl - 1] == '*')
		pfx[pl - 1] = '\0';
	const char *rel = trim_key(key, pfx);
	if (!strcasecmp(type, "regex")) {
		regex_t re;
		if (cod_go_regcomp(&re, pstr(p, "Pattern"), err) < 0)
			return -1;
		regmatch_t m[10];
		int part = 0;
		if (regexec(&re, rel, 10, m, 0) == 0 && m[0].rm_eo > m[0].rm_so) {
			struct cod_buf b = COD_BUF_INIT;
			cod_buf_addstr(&b, "");
			int groups = 0;
			for (size_t i = 1; i <= re.re_nsub && i < 10; i++) {
				if (m[i].rm_so < 0 || m[i].rm_eo <= m[i].rm_so)
					continue;
				if (groups++)
					cod_buf_addch(&b, 0x1f);
				cod_buf_add(&b, rel + m[i].rm_so, (size_t)(m[i].rm_eo - m[i].rm_so));
			}
			if (groups)
				part = hash_to(b.buf, b.len, count);
			else
				part = hash_to(rel + m[0].rm_so, (size_t)(m[0].rm_eo - m[0].rm_so), count);
			cod_buf_release(&b);
		}
		regfree(&re);
		return part;
	}
	if (!strcasecmp(type, "substring")) {
		int64_t s = 0, e = 0;
		pint(p, "StartIndex", &s);
		pint(p, "EndIndex", &e);
		long so = rune_offset(rel, s), eo = rune_offset(rel, e);
		if (so < 0 || eo < 0)
			return 0;
		return hash_to(rel + so, (size_t)(eo - so), count);
	}
	/* date */
	const char *fmt = pstr(p, "DateFormat");
	size_t fl = strlen(fmt), kl = strlen(rel);
	cleanup_free char *head = xstrndup(rel, kl < fl ? kl : fl);
	struct tm t;
	if (cod_go_time_parse(fmt, head, &t) < 0)
		return 0;
	cleanup_free char *norm = cod_go_time_format(fmt, &t);
	return hash_to(norm, strlen(norm), count);
}
