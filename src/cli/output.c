/*
 * output.c - tables, csv, json and yaml output, and human formats.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

void cod_table_init(struct cod_table *t, size_t ncols, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->headers = xcalloc(ncols, sizeof(char *));
	t->max_width = xcalloc(ncols, sizeof(size_t));
	for (size_t i = 0; i < ncols; i++)
		t->headers[i] = headers[i];
}

void cod_table_set_width(struct cod_table *t, size_t col, size_t width)
{
	if (col < t->ncols)
		t->max_width[col] = width;
}

void cod_table_add(struct cod_table *t, const char *const *cells)
{
	COD_GROW(t->rows, t->alloc, t->nrows + 1);
	char **row = xcalloc(t->ncols, sizeof(char *));
	for (size_t i = 0; i < t->ncols; i++)
		row[i] = xstrdup(cells[i] ? cells[i] : "");
	t->rows[t->nrows++] = row;
}

void cod_table_release(struct cod_table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++)
			free(t->rows[r][c]);
		free(t->rows[r]);
	}
	free(t->rows);
	free(t->headers);
	free(t->max_width);
	memset(t, 0, sizeof(*t));
}

/* Display width of a UTF-8 string (code points; good enough for tables). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void print_csv_cell(const char *s, FILE *f)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* Cut a cell to max display width, ending with an ellipsis. Heap. */
static char *cut(const char *s, size_t max)
{
	if (!max || width(s) <= max)
		return xstrdup(s);
	size_t w = 0;
	const char *p = s;
	while (*p && w < max - 1) {
		p++;
		while (((unsigned char)*p & 0xc0) == 0x80)
			p++;
		w++;
	}
	return xasprintf("%.*s…", (int)(p - s), s);
}

void cod_table_print(struct cod_table *t, const struct cod_output_opts *opts, FILE *f)
{
	bool csv = opts->format && !strcmp(opts->format, "csv");
	if (csv) {
		if (!opts->hide_header) {
			for (size_t c = 0; c < t->ncols; c++) {
				if (c)
					fputc(',', f);
				print_csv_cell(t->headers[c], f);
			}
			fputc('\n', f);
		}
		for (size_t r = 0; r < t->nrows; r++) {
			for (size_t c = 0; c < t->ncols; c++) {
				if (c)
					fputc(',', f);
				print_csv_cell(t->rows[r][c], f);
			}
			fputc('\n', f);
		}
		return;
	}
	/* flatten newlines and apply truncation */
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			for (char *p = t->rows[r][c]; *p; p++)
				if (*p == '\n' || *p == '\t' || *p == '\r')
					*p = ' ';
			if (!opts->wide && t->max_width[c]) {
				char *short_cell = cut(t->rows[r][c], t->max_width[c]);
				free(t->rows[r][c]);
				t->rows[r][c] = short_cell;
			}
		}
	}
	size_t *w = xcalloc(t->ncols, sizeof(size_t));
	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = opts->hide_header ? 0 : width(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++)
			if (width(t->rows[r][c]) > w[c])
				w[c] = width(t->rows[r][c]);
	}
	if (!opts->hide_header) {
		for (size_t c = 0; c < t->ncols; c++)
			fprintf(f, "%-*s%s", c + 1 < t->ncols ? (int)w[c] : 0, t->headers[c],
				c + 1 < t->ncols ? "  " : "");
		fputc('\n', f);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		/* no trailing blanks when the last cells of a row are empty */
		size_t ncells = t->ncols;
		while (ncells > 1 && !*t->rows[r][ncells - 1])
			ncells--;
		for (size_t c = 0; c < ncells; c++) {
			const char *cell = t->rows[r][c];
			if (c + 1 < ncells) {
				fputs(cell, f);
				for (size_t pad = width(cell); pad < w[c] + 2; pad++)
					fputc(' ', f);
			} else {
				fputs(cell, f);
			}
		}
		fputc('\n', f);
	}
	free(w);
}

bool cod_output_structured(const struct cod_output_opts *opts)
{
	return opts->format && (!strcmp(opts->format, "json") || !strcmp(opts->format, "yaml"));
}

int cod_output_check(const struct cod_output_opts *opts, const char *allowed, const char *cmd)
{
	if (!opts->format)
		return 0;
	cleanup_free char *copy = xstrdup(allowed);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, opts->format))
			return 0;
	cod_cli_usage_error(cmd, "flag --output: \"%s\" is not one of %s", opts->format, allowed);
	return -1;
}

void cod_print_value(const json_t *v, const struct cod_output_opts *opts, FILE *f)
{
	struct cod_buf b = COD_BUF_INIT;
	if (opts->format && !strcmp(opts->format, "yaml"))
		cod_yaml_emit(v, &b);
	else {
		cod_json_emit(v, opts->pretty, &b);
		cod_buf_addch(&b, '\n');
	}
	fwrite(b.buf, 1, b.len, f);
	cod_buf_release(&b);
}

char *cod_fmt_time(int64_t unix_ns)
{
	if (!unix_ns)
		return xstrdup("");
	time_t t = (time_t)(unix_ns / 1000000000LL);
	struct tm tm;
	localtime_r(&t, &tm);
	char buf[32];
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	return xstrdup(buf);
}

char *cod_fmt_duration_ns(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	double s = (double)ns / 1e9;
	if (s < 1)
		return xasprintf("%lldms", (long long)(ns / 1000000));
	if (s < 60)
		return xasprintf("%.1fs", s);
	long long secs = (long long)s;
	if (secs < 3600)
		return xasprintf("%lldm%llds", secs / 60, secs % 60);
	if (secs < 86400)
		return xasprintf("%lldh%lldm", secs / 3600, (secs % 3600) / 60);
	return xasprintf("%lldd%lldh", secs / 86400, (secs % 86400) / 3600);
}

char *cod_fmt_age(int64_t unix_ns)
{
	if (!unix_ns)
		return xstrdup("");
	char *d = cod_fmt_duration_ns(cod_now_ns() - unix_ns);
	char *out = xasprintf("%s ago", d);
	free(d);
	return out;
}

char *cod_short_id(const char *id)
{
	if (!id)
		return xstrdup("");
	/* "j-" + 8 characters, like Bacalhau's short IDs; also generated
	 * node IDs ("n-" + a UUID); names chosen by people stay as given */
	if ((id[0] == 'j' || id[0] == 'e') && id[1] == '-' && strlen(id) > 10)
		return xstrndup(id, 10);
	if (id[0] >= 'a' && id[0] <= 'z' && id[1] == '-' && strlen(id) == 38 && id[10] == '-' && id[15] == '-')
		return xstrndup(id, 10);
	return xstrdup(id);
}

bool cod_use_color(const struct cod_cli *cli)
{
	const char *nc = getenv("NO_COLOR");
	return cli->is_tty && !cli->out.no_style && !(nc && *nc);
}

bool cod_use_color_fd(const struct cod_cli *cli, int fd)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(fd) && !cli->out.no_style && !(nc && *nc);
}
