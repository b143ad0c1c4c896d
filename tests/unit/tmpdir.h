/*
 * tmpdir.h - a unit test group's scratch directory: made by mkdtemp in its
 * setup, removed with everything in it by its teardown.
 */
#ifndef COD_TEST_TMPDIR_H
#define COD_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int tmpdir_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove root and everything under it; 0 or -1. */
static inline int tmpdir_remove(const char *root)
{
	return nftw(root, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A group setup and teardown (tmpdir_setup, tmpdir_teardown) for a test
 * file whose only group state is its scratch directory: root is its
 * mkdtemp template, a char array. */
#define TMPDIR_GROUP(root)                                                                                   \
	static int tmpdir_setup(void **state)                                                                \
	{                                                                                                    \
		(void)state;                                                                                 \
		return mkdtemp(root) ? 0 : -1;                                                               \
	}                                                                                                    \
	static int tmpdir_teardown(void **state)                                                             \
	{                                                                                                    \
		(void)state;                                                                                 \
		return tmpdir_remove(root);                                                                  \
	}

#endif
