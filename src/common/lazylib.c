/*
 * lazylib.c - the loader behind the lazy_*.c shims (see lazylib.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "common/lazylib.h"
#include "common/log.h"
#include "common/banned.h"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void open_lib(struct cod_lazylib *lib)
{
	/* RTLD_LOCAL: the library's symbols must not interpose on the shims */
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(lib->error, sizeof(lib->error), "%s cannot be loaded: %s (scripts/install-deps.sh installs it)",
			 lib->soname, dlerror());
		goto fail;
	}
	for (size_t i = 0; i < lib->nsyms; i++) {
		void *p = dlsym(h, lib->syms[i].name);
		if (!p) {
			snprintf(lib->error, sizeof(lib->error),
				 "%s lacks %s: %s (a version too old for cod; scripts/install-deps.sh installs one that fits)",
				 lib->soname, lib->syms[i].name, dlerror());
			dlclose(h);
			goto fail;
		}
		*lib->syms[i].slot = p;
	}
	cod_debug("lazylib", "loaded %s", lib->soname);
	__atomic_store_n(&lib->state, 1, __ATOMIC_RELEASE);
	return;
fail:
	for (size_t i = 0; i < lib->nsyms; i++)
		*lib->syms[i].slot = NULL;
	cod_debug("lazylib", "%s", lib->error); /* the callers report it */
	__atomic_store_n(&lib->state, -1, __ATOMIC_RELEASE);
}

bool cod_lazylib_load(struct cod_lazylib *lib)
{
	int state = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
	if (state)
		return state > 0;
	pthread_mutex_lock(&load_lock);
	if (!lib->state)
		open_lib(lib);
	pthread_mutex_unlock(&load_lock);
	return lib->state > 0;
}

const char *cod_lazylib_error(struct cod_lazylib *lib)
{
	return cod_lazylib_load(lib) ? NULL : lib->error;
}
