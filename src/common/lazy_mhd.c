/*
 * lazy_mhd.c - libmicrohttpd, loaded on first use (see lazylib.h).
 *
 * Without the library MHD_start_daemon() returns NULL and
 * cod_lazy_mhd_error() says why; nothing else can be reached then, since
 * every other call needs a daemon, connection or response.
 */
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <microhttpd.h>

#include "common/lazylib.h"
#include "common/banned.h"

#ifndef COD_SONAME_MHD
#define COD_SONAME_MHD "libmicrohttpd.so.12"
#endif

typedef struct MHD_Connection *conn_t;
typedef struct MHD_Response *resp_t;

#define MHD_FNS(F, V, P)                                                                                       \
	P(struct MHD_Daemon *, MHD_start_daemon_va,                                                            \
	  (unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *, MHD_AccessHandlerCallback, void *,        \
	   va_list))                                                                                           \
	V(MHD_stop_daemon, (struct MHD_Daemon * d), (d))                                                       \
	P(const union MHD_DaemonInfo *, MHD_get_daemon_info, (struct MHD_Daemon *, enum MHD_DaemonInfoType, ...)) \
	F(int, MHD_get_connection_values, (conn_t c, enum MHD_ValueKind k, MHD_KeyValueIterator it, void *cls), \
	  (c, k, it, cls), 0)                                                                                  \
	F(const char *, MHD_lookup_connection_value, (conn_t c, enum MHD_ValueKind k, const char *key),        \
	  (c, k, key), NULL)                                                                                   \
	F(enum MHD_Result, MHD_queue_response, (conn_t c, unsigned int status, resp_t r), (c, status, r),      \
	  MHD_NO)                                                                                              \
	V(MHD_suspend_connection, (conn_t c), (c))                                                             \
	V(MHD_resume_connection, (conn_t c), (c))                                                              \
	F(resp_t, MHD_create_response_from_callback,                                                           \
	  (uint64_t size, size_t bs, MHD_ContentReaderCallback crc, void *cls, MHD_ContentReaderFreeCallback f), \
	  (size, bs, crc, cls, f), NULL)                                                                       \
	F(resp_t, MHD_create_response_from_buffer, (size_t size, void *buf, enum MHD_ResponseMemoryMode mode), \
	  (size, buf, mode), NULL)                                                                             \
	F(resp_t, MHD_create_response_from_fd64, (uint64_t size, int fd), (size, fd), NULL)                    \
	F(resp_t, MHD_create_response_for_upgrade, (MHD_UpgradeHandler h, void *cls), (h, cls), NULL)          \
	V(MHD_destroy_response, (resp_t r), (r))                                                               \
	F(enum MHD_Result, MHD_add_response_header, (resp_t r, const char *h, const char *v), (r, h, v), MHD_NO) \
	P(enum MHD_Result, MHD_upgrade_action, (struct MHD_UpgradeResponseHandle *, enum MHD_UpgradeAction, ...))

COD_LAZYLIB(COD_SONAME_MHD, MHD_FNS)

const char *cod_lazy_mhd_error(void)
{
	return cod_lazylib_error(&lazy_lib);
}

/* The options travel on as the va_list they came in. */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	if (!cod_lazylib_load(&lazy_lib))
		return NULL;
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = lazy_MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The daemon information cod asks for takes no further argument. */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon, enum MHD_DaemonInfoType info_type, ...)
{
	if (!cod_lazylib_load(&lazy_lib))
		return NULL;
	return lazy_MHD_get_daemon_info(daemon, info_type);
}

/* Neither do the upgrade actions (close, cork on, cork off). */
enum MHD_Result MHD_upgrade_action(struct MHD_UpgradeResponseHandle *urh, enum MHD_UpgradeAction action, ...)
{
	if (!cod_lazylib_load(&lazy_lib))
		return MHD_NO;
	return lazy_MHD_upgrade_action(urh, action);
}
