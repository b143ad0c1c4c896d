/*
 * replay_main.c - run a libFuzzer target over files without libFuzzer, so
 * `make test` replays the seed corpora under ASan and UBSan.
 *
 * Usage: <target>-replay PATH...   (files, or directories read one level)
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	struct cod_error *err = NULL;
	if (cod_read_file(path, 0, &data, &len, &err) < 0) {
		fprintf(stderr, "replay: %s\n", err ? err->message : path);
		cod_error_free(err);
		return -1;
	}
	/* An exact-size copy, so ASan sees reads past the end of the input. */
	uint8_t *copy = xmalloc(len ? len : 1);
	memcpy(copy, data, len);
	free(data);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	size_t n = 0;
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: cannot open \"%s\"\n", argv[i]);
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) < 0)
				failed = 1;
			else
				n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			fprintf(stderr, "replay: cannot read \"%s\"\n", argv[i]);
			failed = 1;
			continue;
		}
		/* Sorted, so a failure reproduces in the same order. */
		char **names = NULL;
		size_t nnames = 0, alloc = 0;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			COD_GROW(names, alloc, nnames + 1);
			names[nnames++] = xasprintf("%s/%s", argv[i], de->d_name);
		}
		closedir(d);
		if (nnames)
			qsort(names, nnames, sizeof(*names), cmp_names);
		for (size_t k = 0; k < nnames; k++) {
			struct stat fst;
			if (stat(names[k], &fst) == 0 && S_ISREG(fst.st_mode)) {
				if (replay_file(names[k]) < 0)
					failed = 1;
				else
					n++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("replayed %zu inputs\n", n);
	return failed;
}
