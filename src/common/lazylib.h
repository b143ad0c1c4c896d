/*
 * lazylib.h - shared libraries loaded on first use.
 *
 * libcurl, libarchive and libmicrohttpd pull in some forty further
 * libraries (GnuTLS, Kerberos, LDAP, libxml2, ICU, libstdc++, ...) that
 * would cost an idle daemon several megabytes of memory.  cod therefore
 * does not link them: src/common/lazy_{curl,archive,mhd}.c define the
 * functions cod calls, with the prototypes of the libraries' own headers,
 * and forward each call through a pointer that dlsym() fills the first
 * time any of them is called.  Callers include the libraries' headers and
 * call them as usual.
 *
 * A library that cannot be loaded makes its constructors fail the way the
 * library itself reports failure (curl_easy_init() and archive_read_new()
 * return NULL, curl_easy_perform() returns CURLE_FAILED_INIT,
 * MHD_start_daemon() returns NULL, ...); curl_easy_strerror() and
 * archive_error_string() then return the load error, and
 * cod_lazy_*_error() say why for the callers that report it themselves.
 */
#ifndef COD_LAZYLIB_H
#define COD_LAZYLIB_H

#include <stdbool.h>
#include <stddef.h>

struct cod_lazy_sym {
	const char *name;
	void **slot; /* where the address goes */
};

/* One library.  Static storage; fields after syms are the loader's. */
struct cod_lazylib {
	const char *soname; /* "libcurl.so.4" */
	const struct cod_lazy_sym *syms;
	size_t nsyms;
	int state; /* 0 not tried, 1 loaded, -1 failed */
	char error[512];
};

/* Loads lib and resolves every symbol once (thread-safe; later calls cost
 * one atomic load).  true when all of them resolved.  A failure is
 * remembered: the library is not tried again. */
bool cod_lazylib_load(struct cod_lazylib *lib);
/* NULL when lib loads, else why not ("libcurl.so.4 cannot be loaded: ...").
 * Loads it if that was not tried yet.  The string lives as long as lib. */
const char *cod_lazylib_error(struct cod_lazylib *lib);

/* The three libraries: NULL when it loads, else the reason, for messages. */
const char *cod_lazy_curl_error(void);
const char *cod_lazy_archive_error(void);
const char *cod_lazy_mhd_error(void);

/*
 * For the shim files, one library each.  A shim lists its functions once, as
 *   F(ret, name, (params), (args), value_when_not_loaded)  forwarded
 *   V(name, (params), (args))                             void, forwarded
 *   P(ret, name, (params))                                pointer only; the
 *                                                         shim writes the body
 * and COD_LAZYLIB(soname, LIST) defines the pointers (lazy_<name>), the
 * forwarding functions and the library (lazy_lib).
 */
#define COD_LAZY_PTR(ret, name, params) static ret(*lazy_##name) params;
#define COD_LAZY_DEFINE_F(ret, name, params, args, fail)                                                       \
	COD_LAZY_PTR(ret, name, params)                                                                        \
	ret name params                                                                                        \
	{                                                                                                      \
		if (!cod_lazylib_load(&lazy_lib))                                                              \
			return fail;                                                                           \
		return lazy_##name args;                                                                       \
	}
#define COD_LAZY_DEFINE_V(name, params, args)                                                                  \
	COD_LAZY_PTR(void, name, params)                                                                       \
	void name params                                                                                       \
	{                                                                                                      \
		if (cod_lazylib_load(&lazy_lib))                                                               \
			lazy_##name args;                                                                      \
	}
#define COD_LAZY_SYM(name) {#name, (void **)&lazy_##name},
#define COD_LAZY_SYM_F(ret, name, params, args, fail) COD_LAZY_SYM(name)
#define COD_LAZY_SYM_V(name, params, args) COD_LAZY_SYM(name)
#define COD_LAZY_SYM_P(ret, name, params) COD_LAZY_SYM(name)
#define COD_LAZYLIB(soname_, LIST)                                                                             \
	static struct cod_lazylib lazy_lib;                                                                    \
	LIST(COD_LAZY_DEFINE_F, COD_LAZY_DEFINE_V, COD_LAZY_PTR)                                               \
	static const struct cod_lazy_sym lazy_syms[] = {LIST(COD_LAZY_SYM_F, COD_LAZY_SYM_V, COD_LAZY_SYM_P)};  \
	static struct cod_lazylib lazy_lib = {                                                                 \
	    .soname = soname_, .syms = lazy_syms, .nsyms = sizeof(lazy_syms) / sizeof(lazy_syms[0])};

#endif
