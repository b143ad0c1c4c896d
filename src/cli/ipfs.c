/*
 * ipfs.c - `cod ipfs add|get`: put data into the configured IPFS node for
 * jobs to read (InputSources ipfs), or fetch a CID from it, with the same
 * client the compute nodes use: CIDs are computed by cod and every block
 * fetched is checked against its CID (storage/ipfs.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/ipfs.h"
#include "common/banned.h"

static const char *endpoint_of(const struct cod_cli *cli)
{
	return !cod_str_empty(cli->cfg.input_ipfs_endpoint) ? cli->cfg.input_ipfs_endpoint
							     : cli->cfg.publisher_ipfs_endpoint;
}

static const char add_help[] =
    "Add a file or directory to the IPFS node of InputSources.Types.IPFS.Endpoint\n"
    "and print its CID, for jobs to read with an ipfs input (-i ipfs://CID).\n"
    "cod lays the blocks out as `ipfs add` does (256 KiB chunks, balanced tree;\n"
    "CIDv1 with raw leaves by default, --cid-version 0 for Qm... CIDs), computes\n"
    "the CID itself and checks that the node stored the same root.\n";

static int cmd_add(struct cod_cli *cli, int argc, char **argv)
{
	int64_t version = 1, chunk = 262144;
	bool only_hash = false;
	struct cod_flag flags[] = {
	    {"cid-version", 0, COD_FLAG_INT, &version, "N", "CID version: 1 (default, bafy...) or 0 (Qm...)", NULL},
	    {"chunk-size", 0, COD_FLAG_INT, &chunk, "BYTES", "file chunk size (default 262144)", NULL},
	    {"only-hash", 'n', COD_FLAG_BOOL, &only_hash, NULL, "compute the CID only; send nothing to the node",
	     NULL},
	    COD_FLAGS_END};
	const char *pos[1];
	int npos = 0;
	int rc = cod_cli_parse(cli, argc, argv, flags, "ipfs add PATH [flags]", add_help, pos, &npos, 1);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos < 1)
		return cod_cli_usage_error("ipfs add", "missing PATH");
	if (version != 0 && version != 1)
		return cod_cli_usage_error("ipfs add", "--cid-version must be 0 or 1, not %lld", (long long)version);
	if (chunk < 1 || chunk > (1 << 20))
		return cod_cli_usage_error("ipfs add", "--chunk-size must be between 1 and 1048576 bytes");
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	struct cod_unixfs_opts o = cod_unixfs_defaults((unsigned)version);
	o.chunk_size = (size_t)chunk;
	struct cod_cid root;
	uint64_t size = 0;
	if (only_hash) {
		rc = cod_unixfs_add(pos[0], &o, &root, &size, &err);
	} else {
		const char *tmp = getenv("TMPDIR");
		rc = cod_ipfs_add(endpoint_of(cli), pos[0], &o, cod_str_empty(tmp) ? "/tmp" : tmp, 0, &root, &size,
				  &err);
	}
	if (rc < 0)
		return cod_cli_fail(err);
	cleanup_free char *cid = cod_cid_string(&root);
	printf("%s\n", cid);
	return 0;
}

static const char get_help[] =
    "Fetch a CID from the IPFS node of InputSources.Types.IPFS.Endpoint into\n"
    "DIR (default: ./CID), checking every block against its CID: content a node\n"
    "tampered with is refused and nothing is left behind.\n";

static int cmd_get(struct cod_cli *cli, int argc, char **argv)
{
	const char *out = NULL;
	struct cod_flag flags[] = {
	    {"output", 'o', COD_FLAG_STR, &out, "PATH", "where to write the file or directory (default ./CID)", NULL},
	    COD_FLAGS_END};
	const char *pos[1];
	int npos = 0;
	int rc = cod_cli_parse(cli, argc, argv, flags, "ipfs get CID [flags]", get_help, pos, &npos, 1);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos < 1)
		return cod_cli_usage_error("ipfs get", "missing CID");
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	const char *dest = out ? out : pos[0];
	struct stat st;
	if (lstat(dest, &st) == 0) {
		cod_error_set(&err, COD_E_CONFLICT, "\"%s\" already exists", dest);
		cod_error_hint(err, "choose another path with --output, or remove it");
		return cod_cli_fail(err);
	}
	struct cod_ipfs_get_opts o = {.endpoint = endpoint_of(cli)};
	uint64_t bytes = 0;
	if (cod_ipfs_get(&o, pos[0], dest, &bytes, &err) < 0)
		return cod_cli_fail(err);
	fprintf(stderr, "Fetched %s (%llu bytes, verified) into %s\n", pos[0], (unsigned long long)bytes, dest);
	return 0;
}

static const struct cod_command ipfs_commands[] = {
    {"add", cmd_add, "add a file or directory to the IPFS node and print its CID"},
    {"get", cmd_get, "fetch a CID from the IPFS node, verifying every block"},
    {NULL, NULL, NULL},
};

int cod_cmd_ipfs(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "ipfs", ipfs_commands, NULL, argc, argv);
}
