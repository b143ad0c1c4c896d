/*
 * publisher.h - the result publisher family: where a finished execution's
 * results directory goes (Task.Publisher).
 *
 * A driver is one `const struct cod_publisher_ops` table in its own file
 * (src/publisher/<name>.c), listed in the registry of publisher.c and found
 * by Publisher.Type, case-insensitively. A node advertises (Publishers) the
 * drivers whose is_installed() says yes; its bidder rejects the others. A
 * task without a Publisher uses noop.
 *
 * The runner calls publish() in the Publishing phase, on the execution's
 * thread, after the task ended with exit code 0. The results directory
 * holds stdout, stderr, exitCode and one directory per ResultPath Name.
 */
#ifndef COD_PUBLISHER_H
#define COD_PUBLISHER_H

#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"
#include "executor/executor.h"
#include "model/model.h"

struct cod_publish_ctx {
	const struct cod_config *cfg;
	const char *node_id;
	const struct cod_execution *execution; /* with Job */
	const struct cod_spec_config *spec;    /* Task.Publisher */
	const char *results_dir;
	const char *exec_dir;
	/* Base URL of this node's result server ("http://10.0.0.5:6001"), for
	 * the local publisher; NULL when the server is not running. */
	const char *results_url;
	/* Cancellation, as for the storage drivers (may be NULL). */
	struct cod_executor_run *run;
};

struct cod_publisher_ops {
	const char *name; /* "noop", "local", "s3", "ipfs" */
	/* Sends nothing anywhere (noop): the node then makes no results dir
	 * with copies of the logs and reports no Publishing phase. */
	bool publishes_nothing;
	/* NULL = always. Cheap; no output. */
	bool (*is_installed)(const struct cod_config *cfg);
	/* Optional bid-time check of the spec's params on this node. */
	bool (*bid_check)(const struct cod_config *cfg, const struct cod_spec_config *spec, char **reason);
	/* Publish; fill *result (heap Type and Params) with where clients
	 * fetch the results from (an empty Type: nothing published). */
	int (*publish)(const struct cod_publish_ctx *ctx, struct cod_spec_config *result, struct cod_error **err);
};

extern const struct cod_publisher_ops cod_publisher_noop;
extern const struct cod_publisher_ops cod_publisher_local;
extern const struct cod_publisher_ops cod_publisher_s3;
extern const struct cod_publisher_ops cod_publisher_ipfs;

/* The s3 publisher's object key for an execution: the template with
 * {jobID} {executionID} {nodeID} {date} {time} expanded (UTC at now),
 * ".tar.gz" appended for an archive and '/' for a plain prefix. Heap. */
#include <time.h>
char *cod_s3_publish_key(const char *tmpl, const struct cod_execution *e, const char *node_id, bool archive,
			 time_t now);

/* Whether the type is in Publishers.Disabled. */
bool cod_publisher_disabled(const struct cod_config *cfg, const char *type);

/* ---- archives (archive.c) ---- */

/* Write dir's contents (paths relative to dir, no leading component) as a
 * gzip'd tar to out_path. *bytes = the archive's size. */
int cod_archive_targz(const char *dir, const char *out_path, uint64_t *bytes, struct cod_error **err);
/* Extract a (gzip'd) tar into dest (created), refusing absolute paths,
 * ".." and links that point outside. max_bytes caps the unpacked size
 * (0 = none). */
int cod_archive_extract(const char *archive_path, const char *dest, uint64_t max_bytes, struct cod_error **err);

/* ---- the local publisher's result server (src/compute/results_http.c) ---- */

struct cod_results_server;
/*
 * Serve DataDir/compute/results/<execID>.tar.gz over HTTP at
 * Publishers.Types.Local.{ListenAddress,Port}, and check that the advertised
 * Publishers.Types.Local.Address answers (Bacalhau issue #4245): an
 * address that is no address (0.0.0.0, "") or that this node cannot reach
 * itself is a start-up error with a hint. A busy default port falls back
 * to a free one with a warning.
 */
int cod_results_server_start(const struct cod_config *cfg, struct cod_results_server **out, struct cod_error **err);
/* "http://<Address>:<port>" (owned by the server). */
const char *cod_results_server_url(const struct cod_results_server *s);
void cod_results_server_stop(struct cod_results_server *s);

const struct cod_publisher_ops *cod_publisher_find(const char *type);
const struct cod_publisher_ops *const *cod_publisher_all(size_t *n);
void cod_publisher_installed(const struct cod_config *cfg, struct cod_strlist *out);

#endif
