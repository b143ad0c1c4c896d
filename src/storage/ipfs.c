/*
 * ipfs.c - the IPFS client (see ipfs.h): not implemented yet.
 */
#include "storage/ipfs.h"

#include "common/banned.h"

int cod_ipfs_get(const struct cod_ipfs_get_opts *o, const char *cid, const char *dest, uint64_t *bytes,
		 struct cod_error **err)
{
	(void)o;
	(void)dest;
	if (bytes)
		*bytes = 0;
	cod_error_set(err, COD_E_NOT_IMPLEMENTED, "cannot fetch IPFS CID %s: cod's IPFS client is not implemented yet",
		      cid);
	return -1;
}
