/*
 * docker.c - the "docker" engine: OCI images run with crun or runc,
 * without a Docker daemon (src/executor/oci does the work).
 *
 * Params (keys case-insensitive, reference/bacalhau.md §5.1):
 *   Image                 required: "busybox:1.36", "ghcr.io/org/img@sha256:..."
 *   Entrypoint            []string: replaces the image's Entrypoint (and Cmd)
 *   Parameters            []string: the command (replaces the image's Cmd)
 *   EnvironmentVariables  []string "K=V"
 *   WorkingDirectory      absolute path inside the container
 *
 * Phases: bid_check resolves the image for this node's platform (cached);
 * prepare pulls and unpacks it, builds the rootfs and the bundle (not
 * counted in ExecutionTimeout); run starts the container and waits;
 * cancel kills it; cleanup deletes the container, its cgroups and rootfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/executor.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define KNOWN_PARAMS "Image, Entrypoint, Parameters, EnvironmentVariables, WorkingDirectory"
#define PIDS_LIMIT 16384

struct docker_params {
	const char *image;
	struct cod_strlist entrypoint, parameters, env;
	bool has_entrypoint, has_parameters;
	const char *workdir;
};

struct docker_state {
	struct docker_params p;
	struct cod_oci_image img;
	struct cod_oci_rootfs rootfs;
	char *id;
	char *bundle;
	bool have_rootfs;
	pthread_mutex_t lock;
	struct cod_oci_container *ctr; /* while run() runs */
	struct cod_kvlist gpu_env;     /* task env + NVIDIA_VISIBLE_DEVICES when GPUs are given */
};

static void params_release(struct docker_params *p)
{
	cod_strlist_release(&p->entrypoint);
	cod_strlist_release(&p->parameters);
	cod_strlist_release(&p->env);
	memset(p, 0, sizeof(*p));
}

static int param_error(struct cod_error **err, const char *key, const char *what)
{
	return cod_error_set(err, COD_E_VALIDATION, "docker: parameter \"%s\": %s", key, what);
}

static int string_list(const char *key, json_t *v, struct cod_strlist *out, struct cod_error **err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return param_error(err, key, "must be a list of strings");
	size_t i;
	json_t *item;
	json_array_foreach (v, i, item) {
		if (!json_is_string(item))
			return param_error(err, key, "must be a list of strings");
		cod_strlist_add(out, json_string_value(item));
	}
	return 0;
}

static int parse_params(const json_t *params, struct docker_params *p, struct cod_error **err)
{
	memset(p, 0, sizeof(*p));
	if (!json_is_object(params))
		return cod_error_set(err, COD_E_VALIDATION, "docker: Params must be an object with an Image");
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)params, key, v) {
		if (!strcasecmp(key, "Image")) {
			if (!json_is_string(v) || !*json_string_value(v))
				return param_error(err, key, "must be a non-empty string");
			p->image = json_string_value(v);
		} else if (!strcasecmp(key, "Entrypoint")) {
			if (string_list(key, v, &p->entrypoint, err) < 0)
				return -1;
			p->has_entrypoint = !json_is_null(v);
		} else if (!strcasecmp(key, "Parameters")) {
			if (string_list(key, v, &p->parameters, err) < 0)
				return -1;
			p->has_parameters = !json_is_null(v);
		} else if (!strcasecmp(key, "EnvironmentVariables")) {
			if (string_list(key, v, &p->env, err) < 0)
				return -1;
			for (size_t i = 0; i < p->env.n; i++) {
				const char *kv = p->env.items[i];
				if (!strchr(kv, '=') || kv[0] == '=')
					return param_error(err, key, "entries are written KEY=VALUE");
				if (cod_str_has_prefix(kv, "BACALHAU_"))
					return param_error(
					    err, key,
					    "names starting with BACALHAU_ are reserved for the system");
			}
		} else if (!strcasecmp(key, "WorkingDirectory")) {
			if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
				continue;
			if (!json_is_string(v) || json_string_value(v)[0] != '/')
				return param_error(err, key, "must be an absolute path");
			p->workdir = json_string_value(v);
		} else {
			return cod_error_set(err, COD_E_VALIDATION,
					     "docker: unknown parameter \"%s\"; known: " KNOWN_PARAMS, key);
		}
	}
	if (!p->image)
		return cod_error_set(err, COD_E_VALIDATION, "docker: parameter \"Image\" is required");
	return 0;
}

/* --------------------------------------------------------------- slots */

static bool docker_is_installed(void)
{
	return cod_oci_settings()->runtime_path != NULL;
}

static bool docker_supports_network(enum cod_network_type type)
{
	return type == COD_NET_NONE || type == COD_NET_DEFAULT || type == COD_NET_HOST ||
	       type == COD_NET_FULL;
}

static bool docker_bid_check(const struct cod_execution *e, char **reason)
{
	const struct cod_task *t = e->job && e->job->ntasks ? &e->job->tasks[0] : NULL;
	if (!t)
		return true;
	struct docker_params p;
	struct cod_error *err = NULL;
	bool ok = true;
	if (parse_params(t->engine.params, &p, &err) < 0) {
		*reason = xstrdup(err->message);
		ok = false;
	} else if (cod_oci_resolve(p.image, &err) < 0) {
		if (err->code == COD_E_NETWORK || err->code == COD_E_TIMEOUT) {
			/* the registry may be back by the time the pull runs */
			cod_warn("docker",
				 "execution=%s: cannot resolve image \"%s\" now (%s); bidding anyway", e->id,
				 p.image, err->message);
		} else {
			*reason =
			    err->hint ? xasprintf("%s (%s)", err->message, err->hint) : xstrdup(err->message);
			ok = false;
		}
	}
	cod_error_free(err);
	params_release(&p);
	return ok;
}

static struct docker_state *state_of(struct cod_executor_run *run)
{
	pthread_mutex_lock(&run->lock);
	struct docker_state *s = run->driver_state;
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->img.hold_fd = -1;
		pthread_mutex_init(&s->lock, NULL);
		run->driver_state = s;
	}
	pthread_mutex_unlock(&run->lock);
	return s;
}

static bool aborted(void *arg)
{
	return cod_executor_cancelled(arg);
}

static void on_message(void *arg, const char *message)
{
	struct cod_executor_run *run = arg;
	if (run->progress)
		run->progress(run->progress_arg, message);
}

/* "64 MiB", "1 GiB", else "1.5 MiB". */
static char *size_text(uint64_t bytes)
{
	if (bytes && bytes % (1ULL << 30) == 0)
		return xasprintf("%llu GiB", (unsigned long long)(bytes >> 30));
	if (bytes && bytes % (1ULL << 20) == 0)
		return xasprintf("%llu MiB", (unsigned long long)(bytes >> 20));
	return cod_format_bytes(bytes);
}

static int write_small(const char *path, const char *text, struct cod_error **err)
{
	return cod_write_file(path, text, strlen(text), err);
}

/* Results dirs belong to the container's user, so a non-root image can
 * write its outputs. */
static void chown_results(const struct cod_executor_run *run, uint32_t uid, uint32_t gid)
{
	if (!uid && !gid)
		return;
	for (size_t i = 0; i < run->task->nresults; i++) {
		cleanup_free char *d = xasprintf("%s/%s", run->results_dir, run->task->results[i].name);
		if (chown(d, uid, gid) < 0)
			cod_debug("docker", "chown %s: %s", d, strerror(errno));
	}
}

/*
 * NVIDIA GPUs without the container toolkit: /dev/nvidia0..N-1 (the first
 * N; the compute node does not pin indexes yet), the control and UVM
 * devices, nvidia-smi and the driver libraries cod finds in the usual
 * library directories, bound read-only at the same paths. Untested on
 * real GPUs (none was available); a node without /dev/nvidiactl adds
 * nothing.
 */
static void nvidia_passthrough(uint64_t count, struct cod_strlist *devices, struct cod_strlist *files,
			       struct cod_kvlist *env)
{
	if (access("/dev/nvidiactl", F_OK) < 0)
		return;
	static const char *const ctl[] = {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
					  "/dev/nvidia-modeset"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(ctl); i++)
		if (access(ctl[i], F_OK) == 0)
			cod_strlist_add(devices, ctl[i]);
	struct cod_buf visible = COD_BUF_INIT;
	cod_buf_addstr(&visible, "");
	for (uint64_t i = 0; i < count; i++) {
		cleanup_free char *d = xasprintf("/dev/nvidia%llu", (unsigned long long)i);
		if (access(d, F_OK) == 0) {
			cod_strlist_add(devices, d);
			cod_buf_addf(&visible, "%s%llu", visible.len ? "," : "", (unsigned long long)i);
		}
	}
	static const char *const bins[] = {"/usr/bin/nvidia-smi", "/usr/bin/nvidia-debugdump"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bins); i++)
		if (access(bins[i], X_OK) == 0)
			cod_strlist_add(files, bins[i]);
	static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
					   "/usr/lib64", "/usr/lib"};
	static const char *const libs[] = {"libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so",
					   "libnvidia-nvvm.so", "libcudadebugger.so"};
	for (size_t d = 0; d < COD_ARRAY_SIZE(dirs); d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;
		while (dir && (de = readdir(dir)) != NULL)
			for (size_t l = 0; l < COD_ARRAY_SIZE(libs); l++)
				if (cod_str_has_prefix(de->d_name, libs[l])) {
					cleanup_free char *p = xasprintf("%s/%s", dirs[d], de->d_name);
					cod_strlist_add(files, p);
				}
		if (dir)
			closedir(dir);
	}
	cod_kvlist_set(env, "NVIDIA_VISIBLE_DEVICES", cod_buf_str(&visible));
	cod_buf_release(&visible);
}

static int docker_prepare(struct cod_executor_run *run, struct cod_error **err)
{
	struct docker_state *s = state_of(run);
	const struct cod_oci_settings *set = cod_oci_settings();
	if (!set->runtime_path)
		return cod_error_set(err, COD_E_CONFIG, "docker engine: %s", set->runtime_problem);
	if (parse_params(run->task->engine.params, &s->p, err) < 0)
		return -1;
	s->id = xasprintf("cod-%s", run->execution->id);
	s->bundle = xasprintf("%s/bundle", run->exec_dir);

	if (cod_oci_pull(s->p.image, aborted, run, on_message, run, &s->img, err) < 0)
		return -1;
	/* Fault injection for tests: a slow preparation (e.g. a slow registry),
	 * to show it does not count against ExecutionTimeout. */
	const char *delay = getenv("COD_FAULT_OCI_PREPARE_DELAY_MS");
	int64_t delay_ms = 0;
	if (delay && cod_parse_i64(delay, &delay_ms) == 0 && delay_ms > 0) {
		cod_warn("docker", "COD_FAULT_OCI_PREPARE_DELAY_MS: preparing %lld ms longer",
			 (long long)delay_ms);
		cod_executor_wait(run, cod_mono_ms() + delay_ms);
	}
	if (cod_executor_cancelled(run))
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (cod_oci_rootfs_create(s->img.rootfs, run->exec_dir, &s->rootfs, err) < 0)
		return cod_error_wrap(err, "prepare the container's root file system");
	s->have_rootfs = true;
	if (cod_mkdir_p(s->bundle, 0700, err) < 0)
		return -1;

	/* /etc/hosts and /etc/resolv.conf of the container */
	cleanup_free char *hosts = xasprintf("%s/hosts", s->bundle);
	cleanup_free char *hostname = xasprintf(
	    "cod-%.12s", run->execution->id + (cod_str_has_prefix(run->execution->id, "e-") ? 2 : 0));
	cleanup_free char *hosts_text = xasprintf(
	    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hostname);
	if (write_small(hosts, hosts_text, err) < 0)
		return -1;
	cleanup_free char *resolv = NULL;
	enum cod_network_type net = run->task->network.type;
	if (net == COD_NET_HOST || net == COD_NET_FULL) {
		resolv = xasprintf("%s/resolv.conf", s->bundle);
		cleanup_free char *text = NULL;
		size_t len = 0;
		if (cod_read_file("/etc/resolv.conf", 1 << 16, &text, &len, NULL) < 0)
			text = xstrdup("");
		if (write_small(resolv, text, err) < 0)
			return -1;
	}

	/* GPUs: the allocated NVIDIA devices and the driver's user-space
	 * libraries (bound read-only at their host paths) */
	struct cod_strlist gpu_devices = {0}, gpu_files = {0};
	if (run->limits.gpu > 0) {
		cod_kvlist_copy(&s->gpu_env, run->env);
		nvidia_passthrough(run->limits.gpu, &gpu_devices, &gpu_files, &s->gpu_env);
	}

	/* inputs, then outputs */
	size_t nm = run->nmounts + run->task->nresults + gpu_files.n;
	struct cod_oci_mount *mounts = xcalloc(nm ? nm : 1, sizeof(*mounts));
	char **owned = xcalloc(nm ? nm : 1, sizeof(char *));
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < run->nmounts; i++) {
		const struct cod_mount *m = &run->mounts[i];
		if (!m->target || m->target[0] != '/') {
			rc = cod_error_set(err, COD_E_VALIDATION,
					   "input target \"%s\" must be an absolute path",
					   m->target ? m->target : "");
			goto out;
		}
		mounts[k++] = (struct cod_oci_mount){
		    .source = m->source, .target = m->target, .read_only = m->read_only};
	}
	for (size_t i = 0; i < run->task->nresults; i++) {
		const struct cod_result_path *rp = &run->task->results[i];
		if (!rp->path || rp->path[0] != '/') {
			rc = cod_error_set(err, COD_E_VALIDATION, "result path \"%s\" must be absolute",
					   rp->path ? rp->path : "");
			goto out;
		}
		owned[k] = xasprintf("%s/%s", run->results_dir, rp->name);
		mounts[k] =
		    (struct cod_oci_mount){.source = owned[k], .target = rp->path, .read_only = false};
		k++;
	}
	for (size_t i = 0; i < gpu_files.n; i++)
		mounts[k++] = (struct cod_oci_mount){
		    .source = gpu_files.items[i], .target = gpu_files.items[i], .read_only = true};
	{
		struct cod_oci_limits lim = {.memory = run->limits.memory, .disk = run->limits.disk};
		cleanup_free char *cgpath = cod_oci_cgroup_prepare(s->id, &lim);
		struct cod_oci_run_spec spec = {
		    .container_id = s->id,
		    .rootfs = s->rootfs.merged,
		    .readonly_rootfs = set->readonly_rootfs,
		    .image_config = s->img.config_json,
		    .entrypoint = s->p.has_entrypoint ? &s->p.entrypoint : NULL,
		    .parameters = s->p.has_parameters ? &s->p.parameters : NULL,
		    .task_env = s->gpu_env.n ? &s->gpu_env : run->env,
		    .engine_env = &s->p.env,
		    .workdir = s->p.workdir,
		    .mounts = mounts,
		    .nmounts = k,
		    .network = net,
		    .cpu = run->limits.cpu,
		    .memory = run->limits.memory,
		    .pids = PIDS_LIMIT,
		    .cgroups_path = cgpath,
		    .hostname = hostname,
		    .etc_hosts = hosts,
		    .resolv_conf = resolv,
		    .devices = &gpu_devices,
		};
		cleanup_json json_t *cfg = cod_oci_runtime_config(&spec, err);
		if (!cfg) {
			rc = -1;
			goto out;
		}
		json_t *user = json_object_get(json_object_get(cfg, "process"), "user");
		chown_results(run, (uint32_t)json_integer_value(json_object_get(user, "uid")),
			      (uint32_t)json_integer_value(json_object_get(user, "gid")));
		cleanup_free char *text = json_dumps(cfg, JSON_INDENT(1));
		cleanup_free char *path = xasprintf("%s/config.json", s->bundle);
		rc = write_small(path, text, err);
	}
out:
	cod_strlist_release(&gpu_devices);
	cod_strlist_release(&gpu_files);
	for (size_t i = 0; i < nm; i++)
		free(owned[i]);
	free(owned);
	free(mounts);
	return rc;
}

static void on_output(void *arg, int stream, const char *data, size_t len)
{
	struct cod_executor_run *run = arg;
	cod_executor_output_add(stream == 1 ? &run->out : &run->err, data, len);
}

static int docker_run(struct cod_executor_run *run, struct cod_error **err)
{
	struct docker_state *s = state_of(run);
	if (!s->id)
		return cod_error_set(err, COD_E_INTERNAL, "docker: run without prepare");
	pthread_mutex_lock(&s->lock);
	s->ctr = cod_oci_container_new(s->id, s->bundle);
	pthread_mutex_unlock(&s->lock);
	if (cod_executor_cancelled(run))
		cod_oci_container_kill(s->ctr);
	struct cod_oci_limits lim = {.memory = run->limits.memory,
				     .disk = run->limits.disk,
				     .results_dir = run->results_dir,
				     .rootfs = &s->rootfs};
	struct cod_oci_result res;
	int rc = cod_oci_container_run(s->ctr, &lim, on_output, run, &res, err);
	pthread_mutex_lock(&s->lock);
	cod_oci_container_free(s->ctr);
	s->ctr = NULL;
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return -1;
	run->exit_code = res.exit_code;
	switch (res.outcome) {
	case COD_OCI_EXITED:
		break;
	case COD_OCI_KILLED:
		rc = cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
		break;
	case COD_OCI_OOM: {
		cleanup_free char *lim_text = size_text(run->limits.memory);
		rc = cod_error_set(err, COD_E_EXHAUSTED, "execution killed: out of memory (limit %s)",
				   lim_text);
		if (err)
			cod_error_hint(*err, "ask for more memory in the task's Resources");
		break;
	}
	case COD_OCI_DISK: {
		cleanup_free char *lim_text = size_text(run->limits.disk), *used = size_text(res.disk_used);
		rc = cod_error_set(
		    err, COD_E_EXHAUSTED,
		    "execution killed: disk limit exceeded (limit %s, used %s by the container's "
		    "writes and outputs)",
		    lim_text, used);
		break;
	}
	case COD_OCI_START_FAILED:
		rc = cod_error_set(err, COD_E_VALIDATION, "start container: %s",
				   res.message ? res.message : "failed");
		break;
	}
	free(res.message);
	return rc;
}

static void docker_cancel(struct cod_executor_run *run)
{
	pthread_mutex_lock(&run->lock);
	struct docker_state *s = run->driver_state;
	pthread_mutex_unlock(&run->lock);
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->ctr)
		cod_oci_container_kill(s->ctr);
	pthread_mutex_unlock(&s->lock);
}

static void docker_cleanup(struct cod_executor_run *run)
{
	pthread_mutex_lock(&run->lock);
	struct docker_state *s = run->driver_state;
	run->driver_state = NULL;
	pthread_mutex_unlock(&run->lock);
	if (!s)
		return;
	if (s->id)
		cod_oci_container_cleanup(s->id);
	if (s->have_rootfs)
		cod_oci_rootfs_destroy(&s->rootfs);
	if (s->bundle)
		cod_oci_rmtree(s->bundle);
	cod_oci_image_release(&s->img);
	params_release(&s->p);
	cod_kvlist_release(&s->gpu_env);
	pthread_mutex_destroy(&s->lock);
	free(s->id);
	free(s->bundle);
	free(s);
}

static int docker_configure(const struct cod_config *cfg, struct cod_error **err)
{
	if (cod_oci_configure(cfg, err) < 0)
		return -1;
	/* a compute node starts: nothing of ours runs yet */
	cod_oci_sweep();
	return 0;
}

static void docker_release(void)
{
	cod_oci_state_release();
}

const struct cod_executor_ops cod_executor_docker = {
    .name = "docker",
    .configure = docker_configure,
    .is_installed = docker_is_installed,
    .supports_network = docker_supports_network,
    .bid_check = docker_bid_check,
    .prepare = docker_prepare,
    .run = docker_run,
    .cancel = docker_cancel,
    .cleanup = docker_cleanup,
    .release = docker_release,
};
