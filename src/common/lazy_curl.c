/*
 * lazy_curl.c - libcurl, loaded on first use (see lazylib.h).
 */
#define CURL_DISABLE_TYPECHECK /* the definitions below, not the checking macros */
#include <curl/curl.h>
#include <stdarg.h>

#include "common/lazylib.h"
#include "common/banned.h"

#ifndef COD_SONAME_CURL
#define COD_SONAME_CURL "libcurl.so.4"
#endif

#define CURL_FNS(F, V, P)                                                                                      \
	F(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                                \
	V(curl_global_cleanup, (void), ())                                                                     \
	F(CURL *, curl_easy_init, (void), (), NULL)                                                            \
	V(curl_easy_cleanup, (CURL * curl), (curl))                                                            \
	F(CURLcode, curl_easy_perform, (CURL * curl), (curl), CURLE_FAILED_INIT)                               \
	P(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                                               \
	P(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                                                \
	P(const char *, curl_easy_strerror, (CURLcode))                                                        \
	F(char *, curl_easy_escape, (CURL * curl, const char *string, int length), (curl, string, length),     \
	  NULL)                                                                                                \
	V(curl_free, (void *p), (p))                                                                           \
	F(struct curl_slist *, curl_slist_append, (struct curl_slist * list, const char *data), (list, data),  \
	  NULL)                                                                                                \
	V(curl_slist_free_all, (struct curl_slist * list), (list))                                             \
	F(curl_mime *, curl_mime_init, (CURL * easy), (easy), NULL)                                            \
	V(curl_mime_free, (curl_mime * mime), (mime))                                                          \
	F(curl_mimepart *, curl_mime_addpart, (curl_mime * mime), (mime), NULL)                                \
	F(CURLcode, curl_mime_name, (curl_mimepart * part, const char *name), (part, name), CURLE_FAILED_INIT) \
	F(CURLcode, curl_mime_type, (curl_mimepart * part, const char *mimetype), (part, mimetype),            \
	  CURLE_FAILED_INIT)                                                                                   \
	F(CURLcode, curl_mime_filedata, (curl_mimepart * part, const char *filename), (part, filename),        \
	  CURLE_FAILED_INIT)

COD_LAZYLIB(COD_SONAME_CURL, CURL_FNS)

const char *cod_lazy_curl_error(void)
{
	return cod_lazylib_error(&lazy_lib);
}

/* The argument's type follows from the option's number (curl.h's
 * CURLOPTTYPE_* ranges); it is read as that type and passed on as such. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	if (!cod_lazylib_load(&lazy_lib))
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = lazy_curl_easy_setopt(curl, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = lazy_curl_easy_setopt(curl, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = lazy_curl_easy_setopt(curl, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = lazy_curl_easy_setopt(curl, option, va_arg(ap, curl_off_t));
	else
		rc = lazy_curl_easy_setopt(curl, option, va_arg(ap, struct curl_blob *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	if (!cod_lazylib_load(&lazy_lib))
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = lazy_curl_easy_getinfo(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* When libcurl is missing, the error that callers print names it. */
const char *curl_easy_strerror(CURLcode code)
{
	if (!cod_lazylib_load(&lazy_lib))
		return lazy_lib.error;
	return lazy_curl_easy_strerror(code);
}
