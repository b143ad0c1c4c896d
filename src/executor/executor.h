/*
 * executor.h - the executor driver family: what runs a task's Engine.
 *
 * A driver is one `const struct cod_executor_ops` table (designated
 * initializers) in its own file, listed in the registry array of
 * executor.c and found by the engine's Type, case-insensitively
 * (cod_executor_find("noop")). A compute node advertises the drivers whose
 * is_installed() probe says yes, and its bidder rejects any other engine.
 *
 * One run is described by a struct cod_executor_run that the compute
 * node's runner owns. The runner calls ops->run() on the execution's own
 * thread; run() blocks until the task ends, fails, or is cancelled. Another
 * thread (CancelExecution, ExecutionTimeout, shutdown) may call
 * cod_executor_cancel() at any time: before run() starts, while it runs,
 * or after it returned. Drivers that block must therefore wait through
 * cod_executor_wait() (a condition variable with a deadline that a cancel
 * wakes) or poll cod_executor_cancelled(), and their ops->cancel() slot,
 * if any, only nudges what run() waits on (kill a child, close a socket).
 *
 * Output: a driver appends the task's stdout and stderr with
 * cod_executor_output_add(); the buffers are capped (the runner chooses
 * the cap), and what does not fit is dropped with the truncated flag set.
 */
#ifndef COD_EXECUTOR_H
#define COD_EXECUTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "model/model.h"

struct cod_executor_ops;
struct cod_config;

/* Captured output of one stream: the first buf.max bytes in memory (the
 * execution's RunOutput), and everything up to COD_LOG_FILE_MAX in the
 * log file fd (fd < 0: none). The runner either opens fd itself or sets
 * open, called once, on the writing thread, before the first chunk is
 * written: a stream that stays empty then leaves no file. */
struct cod_executor_output {
	struct cod_buf buf; /* capped: buf.max */
	bool truncated;
	int fd;
	uint64_t written;  /* bytes written to fd */
	bool file_truncated;
	int (*open)(void *arg, struct cod_executor_output *o); /* the fd, or -1 */
	void *open_arg;
	bool open_tried;
	/* Optional, set by the runner: called after each chunk reached fd,
	 * on the writing thread (the compute node's log index records the
	 * order of stdout and stderr chunks; src/compute/logs.c). */
	void (*on_write)(void *arg, const struct cod_executor_output *o);
	void *on_write_arg;
};

/* Log files are capped at 1 GiB per stream, as Bacalhau's. */
#define COD_LOG_FILE_MAX (1ULL << 30)

/* An input prepared on the host, to be mounted into the task. */
struct cod_mount {
	char *source; /* host path (file or directory) */
	char *target; /* path inside the task, InputSource.Target */
	bool read_only;
};
void cod_mount_release(struct cod_mount *m);

struct cod_executor_run {
	/* Set by the runner before run(); read-only for the driver. */
	const struct cod_execution *execution; /* with Job; borrowed */
	const struct cod_task *task;	       /* Job.Tasks[0]; borrowed */
	const struct cod_kvlist *env;	       /* task Env + BACALHAU_* variables */
	const char *exec_dir;		       /* DataDir/compute/executions/<id>, exists */
	/* Inputs prepared by the storage drivers, mounted at their targets. */
	const struct cod_mount *mounts;
	size_t nmounts;
	/* exec_dir/results: one directory per ResultPath Name exists inside;
	 * mount each at its Path, writable. The runner adds stdout, stderr and
	 * exitCode after the run. */
	const char *results_dir;
	/* The resources allocated to the task (limits to enforce). */
	struct cod_resources limits;
	/* Report preparation progress ("pulling image 12.3/45.0 MB") to the
	 * user; may be called from prepare() on the run's thread. */
	void (*progress)(void *arg, const char *message);
	void *progress_arg;

	/* Filled by run(). exit_code is meaningful when run() returned 0. */
	int64_t exit_code;
	struct cod_executor_output out, err;

	/* Cancellation; use the functions below. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool cancelled;
	void *driver_state; /* a driver's own per-run state, owned by it */
};

/* Prepare a run; output buffers capped at output_cap bytes each. */
void cod_executor_run_init(struct cod_executor_run *run, size_t output_cap);
void cod_executor_run_release(struct cod_executor_run *run);
/* Mark the run cancelled, wake cod_executor_wait() and call ops->cancel.
 * Any thread; idempotent. */
void cod_executor_cancel(const struct cod_executor_ops *ops, struct cod_executor_run *run);
bool cod_executor_cancelled(struct cod_executor_run *run);
/* Wait until deadline_ms (cod_mono_ms() clock; <0 = forever) or a cancel.
 * Returns true when cancelled. */
bool cod_executor_wait(struct cod_executor_run *run, int64_t deadline_ms);
/* Append to a capped output; sets truncated when something was dropped. */
void cod_executor_output_add(struct cod_executor_output *o, const char *data, size_t len);

struct cod_executor_ops {
	/* Engine Type as written in job specs ("noop", "docker", "wasm"). */
	const char *name;

	/* Optional: take the node's configuration (runtime choice, data dir,
	 * registry credentials). Called once when a compute node opens,
	 * before is_installed() and any run; cfg outlives the node. An error
	 * stops the node (a setting is invalid). */
	int (*configure)(const struct cod_config *cfg, struct cod_error **err);

	/* Whether this node can run the engine now (binaries present,
	 * runtime usable). Called at start-up and on node-info updates from
	 * the compute node's threads; must be cheap and not print. NULL
	 * means always installed. */
	bool (*is_installed)(void);

	/* Whether the engine can give a task this network type. NULL means
	 * None and Default only. */
	bool (*supports_network)(enum cod_network_type type);

	/*
	 * Optional: decide at bid time whether this node can run the
	 * execution (e.g. the image exists for the node's platform). Called on
	 * the compute node's message thread: a short, bounded check. false
	 * with *reason (heap) rejects the bid.
	 */
	bool (*bid_check)(const struct cod_execution *e, char **reason);

	/*
	 * Optional: everything before the task starts that must not count
	 * against ExecutionTimeout (pull and unpack the image, build the
	 * rootfs). Runs in the Preparing phase, on the run's thread, under
	 * the preparing timeout; cancellable like run(). Errors as run().
	 */
	int (*prepare)(struct cod_executor_run *run, struct cod_error **err);

	/*
	 * Run the task to the end on the calling thread. Returns 0 when the
	 * task ran (whatever its exit code, in run->exit_code), or -1 with
	 * *err set when the engine could not run it: bad Params
	 * (COD_E_VALIDATION), a missing runtime (COD_E_CONFIG), a cancel
	 * (COD_E_UNAVAILABLE "cancelled"), anything else. The message is
	 * what the user sees as the execution's error.
	 */
	int (*run)(struct cod_executor_run *run, struct cod_error **err);

	/* Optional: make a running run() return soon (kill the container).
	 * Called by cod_executor_cancel() after the flag is set, on any
	 * thread, without the run's lock held; must not block. */
	void (*cancel)(struct cod_executor_run *run);

	/* Optional: release what prepare() and run() left behind (container
	 * state, rootfs) once the results are published. Always called when
	 * prepare() or run() was. */
	void (*cleanup)(struct cod_executor_run *run);

	/* Optional: the compute node closes, every run cleaned up; release
	 * what configure() set up on the machine for it. */
	void (*release)(void);
};

extern const struct cod_executor_ops cod_executor_noop;
extern const struct cod_executor_ops cod_executor_docker;

/* Hand the node's configuration to every driver with a configure slot. */
int cod_executor_configure(const struct cod_config *cfg, struct cod_error **err);

/* The node closes: every driver with a release slot lets go. */
void cod_executor_release(void);

/* The driver for an engine Type (case-insensitive), or NULL. */
const struct cod_executor_ops *cod_executor_find(const char *type);
/* Every registered driver, installed or not. */
const struct cod_executor_ops *const *cod_executor_all(size_t *n);
/* Names of the installed drivers, appended to out. */
void cod_executor_installed(struct cod_strlist *out);

/* Expand ${NAME} in text from env (unknown names expand to ""). Heap.
 * Shared by drivers that template strings (noop's Stdout/Stderr). */
char *cod_executor_expand(const char *text, const struct cod_kvlist *env);

#endif
