/*
 * spec.c - the OCI runtime config.json of a container, from the image
 * config and the job.
 *
 * Command (Docker's rules, daemon/create merge + getEntrypointAndArgs):
 *   no Entrypoint in the job   -> image Entrypoint + (job Parameters, else image Cmd)
 *   an Entrypoint in the job   -> job Entrypoint + job Parameters; the
 *                                 image's Entrypoint and Cmd are both dropped
 *   Entrypoint [""]            -> no entrypoint at all (`--entrypoint ""`)
 * An empty result is an error ("no command specified"), as in Docker.
 *
 * Hardening by default: user namespace not used (rootful), every other
 * namespace new (network only for None), capabilities cut to a small set
 * (Docker's default without NET_RAW and MKNOD), no_new_privileges, a
 * seccomp deny-list of kernel-administration syscalls, /proc and /sys paths
 * masked or read-only as Docker does, /dev a fresh tmpfs, /tmp a tmpfs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const capabilities[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER",  "CAP_FSETID",	      "CAP_KILL",
    "CAP_SETGID",  "CAP_SETUID",       "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_SETFCAP", "CAP_AUDIT_WRITE",
};

static const char *const masked_paths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};

static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* Syscalls a batch job has no business making: kernel modules, reboot,
 * clocks, swap, kexec, accounting, keyrings, BPF, perf, handle-based
 * opens, namespaces beyond the container's own. EPERM. */
static const char *const denied_syscalls[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
};

static const json_t *image_cfg(const json_t *image_config)
{
	const json_t *c = image_config ? json_object_get(image_config, "config") : NULL;
	return json_is_object(c) ? c : NULL;
}

static void add_json_strings(struct cod_strlist *out, const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v)
		if (json_is_string(v))
			cod_strlist_add(out, json_string_value(v));
}

int cod_oci_command(const json_t *image_config, const struct cod_strlist *entrypoint,
		    const struct cod_strlist *parameters, struct cod_strlist *argv, struct cod_error **err)
{
	const json_t *c = image_cfg(image_config);
	const json_t *img_ep = c ? json_object_get(c, "Entrypoint") : NULL;
	const json_t *img_cmd = c ? json_object_get(c, "Cmd") : NULL;
	bool job_ep = entrypoint && entrypoint->n > 0;
	bool job_params = parameters && parameters->n > 0;
	if (job_ep) {
		bool reset = entrypoint->n == 1 && !*entrypoint->items[0];
		if (!reset)
			for (size_t i = 0; i < entrypoint->n; i++)
				cod_strlist_add(argv, entrypoint->items[i]);
		if (job_params)
			for (size_t i = 0; i < parameters->n; i++)
				cod_strlist_add(argv, parameters->items[i]);
	} else {
		add_json_strings(argv, img_ep);
		if (job_params)
			for (size_t i = 0; i < parameters->n; i++)
				cod_strlist_add(argv, parameters->items[i]);
		else
			add_json_strings(argv, img_cmd);
	}
	if (!argv->n || !*argv->items[0]) {
		cod_error_set(
		    err, COD_E_VALIDATION,
		    "no command specified: the image has no Entrypoint or Cmd and the job gives none");
		if (err)
			cod_error_hint(*err,
				       "set Parameters (the command) or Entrypoint in the engine params");
		return -1;
	}
	return 0;
}

static void set_kv_from(struct cod_kvlist *out, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq) {
		/* "NAME" alone: Docker passes the host's value; cod passes
		 * nothing (the host environment is not the job's) */
		return;
	}
	cleanup_free char *k = xstrndup(kv, (size_t)(eq - kv));
	if (*k)
		cod_kvlist_set(out, k, eq + 1);
}

void cod_oci_environment(const json_t *image_config, const struct cod_kvlist *task_env,
			 const struct cod_strlist *engine_env, struct cod_kvlist *out)
{
	const json_t *c = image_cfg(image_config);
	const json_t *env = c ? json_object_get(c, "Env") : NULL;
	size_t i;
	json_t *v;
	json_array_foreach (env, i, v)
		if (json_is_string(v))
			set_kv_from(out, json_string_value(v));
	/* task Env, then the engine's, then cod's own BACALHAU_* last */
	for (size_t j = 0; task_env && j < task_env->n; j++)
		if (!cod_str_has_prefix(task_env->items[j].key, "BACALHAU_"))
			cod_kvlist_set(out, task_env->items[j].key,
				       task_env->items[j].value ? task_env->items[j].value : "");
	for (size_t j = 0; engine_env && j < engine_env->n; j++)
		set_kv_from(out, engine_env->items[j]);
	for (size_t j = 0; task_env && j < task_env->n; j++)
		if (cod_str_has_prefix(task_env->items[j].key, "BACALHAU_"))
			cod_kvlist_set(out, task_env->items[j].key,
				       task_env->items[j].value ? task_env->items[j].value : "");
	if (!cod_kvlist_get(out, "PATH"))
		cod_kvlist_set(out, "PATH", DEFAULT_PATH);
}

/* Look name up in a passwd/group style file: field 0 name, 2 id, 3 gid. */
static bool lookup_file(const char *path, const char *name, uint32_t *id, uint32_t *gid, char **home)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 1 << 20, &text, &len, NULL) < 0)
		return false;
	bool by_id = true;
	for (const char *p = name; *p; p++)
		if (*p < '0' || *p > '9')
			by_id = false;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *f[7] = {0};
		int nf = 0;
		for (char *p = line; nf < 7;) {
			f[nf++] = p;
			char *c = strchr(p, ':');
			if (!c)
				break;
			*c = '\0';
			p = c + 1;
		}
		if (nf >= 3 && ((by_id && !strcmp(f[2], name)) || (!by_id && !strcmp(f[0], name)))) {
			int64_t v;
			if (cod_parse_i64(f[2], &v) == 0 && v >= 0 && v <= UINT32_MAX) {
				*id = (uint32_t)v;
				if (gid && nf >= 4 && cod_parse_i64(f[3], &v) == 0 && v >= 0 &&
				    v <= UINT32_MAX)
					*gid = (uint32_t)v;
				if (home && nf >= 6)
					*home = xstrdup(f[5]);
				return true;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

static int parse_id(const char *s, uint32_t *out)
{
	int64_t v;
	if (cod_parse_i64(s, &v) < 0 || v < 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cod_oci_user(const char *user, const char *rootfs, uint32_t *uid, uint32_t *gid, struct cod_error **err)
{
	*uid = *gid = 0;
	if (cod_str_empty(user))
		return 0;
	cleanup_free char *copy = xstrdup(user);
	char *group = strchr(copy, ':');
	if (group)
		*group++ = '\0';
	cleanup_free char *passwd = xasprintf("%s/etc/passwd", rootfs),
			  *groupf = xasprintf("%s/etc/group", rootfs);
	uint32_t pgid = 0;
	if (parse_id(copy, uid) == 0) {
		lookup_file(passwd, copy, uid, &pgid, NULL);
	} else if (!lookup_file(passwd, copy, uid, &pgid, NULL)) {
		return cod_error_set(err, COD_E_VALIDATION,
				     "image user \"%s\" is not in the image's /etc/passwd", copy);
	}
	*gid = pgid;
	if (group && *group) {
		if (parse_id(group, gid) < 0 && !lookup_file(groupf, group, gid, NULL, NULL))
			return cod_error_set(err, COD_E_VALIDATION,
					     "image group \"%s\" is not in the image's /etc/group", group);
	}
	return 0;
}

static json_t *strs(const char *const *list, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

static json_t *mount_of(const char *dest, const char *type, const char *source, const char *const *opts,
			size_t n)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source,
			 "options", strs(opts, n));
}

static void add_bind(json_t *mounts, const char *source, const char *dest, bool ro)
{
	const char *rw[] = {"rbind", "rprivate", "nosuid", "nodev"};
	const char *rdo[] = {"rbind", "rprivate", "nosuid", "nodev", "ro"};
	json_array_append_new(mounts, ro ? mount_of(dest, "bind", source, rdo, 5)
					 : mount_of(dest, "bind", source, rw, 4));
}

json_t *cod_oci_runtime_config(const struct cod_oci_run_spec *s, struct cod_error **err)
{
	const json_t *c = image_cfg(s->image_config);
	struct cod_strlist argv = {0};
	if (cod_oci_command(s->image_config, s->entrypoint, s->parameters, &argv, err) < 0)
		return NULL;
	struct cod_kvlist env = {0};
	cod_oci_environment(s->image_config, s->task_env, s->engine_env, &env);

	const json_t *ju = c ? json_object_get(c, "User") : NULL;
	uint32_t uid = 0, gid = 0;
	if (cod_oci_user(json_is_string(ju) ? json_string_value(ju) : NULL, s->rootfs, &uid, &gid, err) < 0) {
		cod_strlist_release(&argv);
		cod_kvlist_release(&env);
		return NULL;
	}
	if (!cod_kvlist_get(&env, "HOME")) {
		char *home = NULL;
		cleanup_free char *passwd = xasprintf("%s/etc/passwd", s->rootfs);
		char idtext[16];
		snprintf(idtext, sizeof(idtext), "%u", uid);
		uint32_t u2 = 0;
		if (lookup_file(passwd, idtext, &u2, NULL, &home) && home && *home)
			cod_kvlist_set(&env, "HOME", home);
		else
			cod_kvlist_set(&env, "HOME", uid == 0 ? "/root" : "/");
		free(home);
	}
	if (s->hostname && !cod_kvlist_get(&env, "HOSTNAME"))
		cod_kvlist_set(&env, "HOSTNAME", s->hostname);

	const char *cwd = s->workdir;
	const json_t *jw = c ? json_object_get(c, "WorkingDir") : NULL;
	if (cod_str_empty(cwd))
		cwd = json_is_string(jw) && *json_string_value(jw) ? json_string_value(jw) : "/";

	json_t *jargs = json_array(), *jenv = json_array();
	for (size_t i = 0; i < argv.n; i++)
		json_array_append_new(jargs, json_string(argv.items[i]));
	for (size_t i = 0; i < env.n; i++) {
		cleanup_free char *kv =
		    xasprintf("%s=%s", env.items[i].key, env.items[i].value ? env.items[i].value : "");
		json_array_append_new(jenv, json_string(kv));
	}
	cod_strlist_release(&argv);
	cod_kvlist_release(&env);

	/* as many open files as the node may give (the runtime cannot raise
	 * a hard limit above its own) */
	struct rlimit nofile = {1048576, 1048576};
	struct rlimit own;
	if (getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_max != RLIM_INFINITY &&
	    own.rlim_max < nofile.rlim_max)
		nofile.rlim_max = nofile.rlim_cur = own.rlim_max;
	size_t ncap = COD_ARRAY_SIZE(capabilities);
	json_t *caps = json_pack("{s:o, s:o, s:o}", "bounding", strs(capabilities, ncap), "effective",
				 strs(capabilities, ncap), "permitted", strs(capabilities, ncap));
	json_t *process = json_pack("{s:b, s:{s:I, s:I}, s:o, s:o, s:s, s:o, s:b, s:[{s:s, s:I, s:I}]}",
				    "terminal", 0, "user", "uid", (json_int_t)uid, "gid", (json_int_t)gid,
				    "args", jargs, "env", jenv, "cwd", cwd, "capabilities", caps,
				    "noNewPrivileges", 1, "rlimits", "type", "RLIMIT_NOFILE", "hard",
				    (json_int_t)nofile.rlim_max, "soft", (json_int_t)nofile.rlim_cur);

	json_t *mounts = json_array();
	{
		const char *proc[] = {"nosuid", "noexec", "nodev"};
		const char *dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
		const char *pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"};
		const char *shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
		const char *mq[] = {"nosuid", "noexec", "nodev"};
		const char *sys[] = {"nosuid", "noexec", "nodev", "ro"};
		const char *cg[] = {"nosuid", "noexec", "nodev", "relatime", "ro"};
		const char *tmp[] = {"nosuid", "nodev", "mode=1777"};
		json_array_append_new(mounts, mount_of("/proc", "proc", "proc", proc, 3));
		json_array_append_new(mounts, mount_of("/dev", "tmpfs", "tmpfs", dev, 4));
		json_array_append_new(mounts, mount_of("/dev/pts", "devpts", "devpts", pts, 5));
		json_array_append_new(mounts, mount_of("/dev/shm", "tmpfs", "shm", shm, 5));
		json_array_append_new(mounts, mount_of("/dev/mqueue", "mqueue", "mqueue", mq, 3));
		if (s->network == COD_NET_NONE || s->network == COD_NET_DEFAULT) {
			json_array_append_new(mounts, mount_of("/sys", "sysfs", "sysfs", sys, 4));
		} else {
			/* sysfs cannot be mounted without a network namespace of
			 * our own: bind the host's, read-only */
			const char *rsys[] = {"rbind", "nosuid", "noexec", "nodev", "ro"};
			json_array_append_new(mounts, mount_of("/sys", "bind", "/sys", rsys, 5));
		}
		json_array_append_new(mounts, mount_of("/sys/fs/cgroup", "cgroup", "cgroup", cg, 5));
		json_array_append_new(mounts, mount_of("/tmp", "tmpfs", "tmpfs", tmp, 3));
	}
	if (s->etc_hosts)
		add_bind(mounts, s->etc_hosts, "/etc/hosts", true);
	if (s->resolv_conf)
		add_bind(mounts, s->resolv_conf, "/etc/resolv.conf", true);
	for (size_t i = 0; i < s->nmounts; i++)
		add_bind(mounts, s->mounts[i].source, s->mounts[i].target, s->mounts[i].read_only);

	json_t *ns = json_array();
	static const char *const base_ns[] = {"pid", "ipc", "uts", "mount"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(base_ns); i++)
		json_array_append_new(ns, json_pack("{s:s}", "type", base_ns[i]));
	if (s->network == COD_NET_NONE || s->network == COD_NET_DEFAULT)
		json_array_append_new(ns, json_pack("{s:s}", "type", "network"));
	if (cod_oci_settings()->cgroup_mode == COD_CGROUP_V2)
		json_array_append_new(ns, json_pack("{s:s}", "type", "cgroup"));

	json_t *resources = json_object();
	if (s->cpu > 0) {
		int64_t period = 100000;
		int64_t quota = (int64_t)(s->cpu * (double)period + 0.5);
		if (quota < 1000)
			quota = 1000;
		json_object_set_new(
		    resources, "cpu",
		    json_pack("{s:I, s:I}", "quota", (json_int_t)quota, "period", (json_int_t)period));
	}
	if (s->pids > 0)
		json_object_set_new(resources, "pids", json_pack("{s:I}", "limit", (json_int_t)s->pids));
	if (s->memory > 0) {
		json_t *mem = json_pack("{s:I}", "limit", (json_int_t)s->memory);
		/* no swap on top (memory+swap = memory), where the kernel
		 * accounts swap; v1 hosts booted without swapaccount have no
		 * memsw files and the runtime would fail to write them */
		enum cod_cgroup_mode mode = cod_oci_settings()->cgroup_mode;
		if (mode == COD_CGROUP_V2 ||
		    access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0)
			json_object_set_new(mem, "swap", json_integer((json_int_t)s->memory));
		json_object_set_new(resources, "memory", mem);
	}
	/* devices: deny all but the usual, plus the GPUs given */
	json_t *devices = json_array();
	json_array_append_new(devices, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
	json_t *ldevices = json_array();
	for (size_t i = 0; s->devices && i < s->devices->n; i++) {
		struct stat st;
		if (stat(s->devices->items[i], &st) < 0 || !S_ISCHR(st.st_mode))
			continue;
		json_int_t maj = (json_int_t)major(st.st_rdev), min = (json_int_t)minor(st.st_rdev);
		json_array_append_new(ldevices,
				      json_pack("{s:s, s:s, s:I, s:I, s:i}", "path", s->devices->items[i],
						"type", "c", "major", maj, "minor", min, "fileMode", 0666));
		json_array_append_new(devices, json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", "c",
							 "major", maj, "minor", min, "access", "rwm"));
	}
	json_object_set_new(resources, "devices", devices);

	json_t *syscalls =
	    json_pack("[{s:o, s:s, s:I}]", "names", strs(denied_syscalls, COD_ARRAY_SIZE(denied_syscalls)),
		      "action", "SCMP_ACT_ERRNO", "errnoRet", (json_int_t)EPERM);
	json_t *seccomp = json_pack("{s:s, s:o}", "defaultAction", "SCMP_ACT_ALLOW", "syscalls", syscalls);

	json_t *jlinux =
	    json_pack("{s:o, s:o, s:o, s:o, s:o}", "namespaces", ns, "resources", resources, "maskedPaths",
		      strs(masked_paths, COD_ARRAY_SIZE(masked_paths)), "readonlyPaths",
		      strs(readonly_paths, COD_ARRAY_SIZE(readonly_paths)), "seccomp", seccomp);
	if (s->cgroups_path)
		json_object_set_new(jlinux, "cgroupsPath", json_string(s->cgroups_path));
	if (json_array_size(ldevices))
		json_object_set_new(jlinux, "devices", ldevices);
	else
		json_decref(ldevices);

	json_t *cfg =
	    json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2", "process", process,
		      "root", "path", s->rootfs, "readonly", s->readonly_rootfs, "hostname",
		      s->hostname ? s->hostname : "cod", "mounts", mounts, "linux", jlinux);
	json_object_set_new(cfg, "annotations",
			    json_pack("{s:s}", "io.cod.container", s->container_id ? s->container_id : ""));
	return cfg;
}
