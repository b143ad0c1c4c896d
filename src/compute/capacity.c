/*
 * capacity.c - what the machine has, what Compute.AllocatedCapacity
 * offers to jobs, and resource arithmetic.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "common/banned.h"

#define CPU_EPSILON 1e-9
#define GPU_PROBE_TIMEOUT_MS 5000

extern char **environ;

/* ----------------------------------------------------------- system */

static double cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (double)n : 1;
}

static uint64_t mem_total(void)
{
	cleanup_file FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			return (uint64_t)kb * 1024;
	}
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static uint64_t disk_free(const char *dir)
{
	struct statvfs st;
	if (!dir || statvfs(dir, &st) < 0)
		return 0;
	return (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
}

/* Run argv (found in PATH) and capture its stdout, at most 64 KiB, within
 * timeout_ms. NULL when it cannot run, fails or times out. */
static char *capture(char *const argv[], int timeout_ms)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return NULL;
	}
	struct cod_buf out;
	cod_buf_init(&out, 64 * 1024);
	int64_t deadline = cod_mono_ms() + timeout_ms;
	bool ok = true;
	for (;;) {
		int left = (int)(deadline - cod_mono_ms());
		if (left <= 0) {
			ok = false;
			break;
		}
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		if (poll(&p, 1, left) <= 0)
			continue;
		char chunk[4096];
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (cod_buf_add(&out, chunk, (size_t)n) < 0) {
			ok = false;
			break;
		}
	}
	close(fds[0]);
	if (!ok)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cod_buf_release(&out);
		return NULL;
	}
	cod_buf_addstr(&out, "");
	return cod_buf_detach(&out, NULL);
}

/* Label values may not hold spaces or commas: "NVIDIA H200" -> "NVIDIA-H200". */
static char *label_value(const char *s)
{
	char *v = cod_str_trim(xstrdup(s));
	for (char *p = v; *p; p++)
		if (*p == ' ' || *p == ',' || *p == '=')
			*p = '-';
	return v;
}

static uint64_t detect_gpus(struct cod_kvlist *labels)
{
	char *const argv[] = {(char *)"nvidia-smi", (char *)"--query-gpu=index,name,memory.total",
			      (char *)"--format=csv,noheader,nounits", NULL};
	cleanup_free char *text = capture(argv, GPU_PROBE_TIMEOUT_MS);
	if (!text)
		return 0;
	uint64_t count = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ',');
		char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		if (!c1 || !c2)
			continue;
		*c1 = *c2 = '\0';
		cleanup_free char *index = label_value(line);
		cleanup_free char *name = label_value(c1 + 1);
		cleanup_free char *mem = label_value(c2 + 1);
		if (labels) {
			cleanup_free char *k1 = xasprintf("GPU-%s", index);
			cleanup_free char *k2 = xasprintf("GPU-%s-Memory", index);
			cleanup_free char *v2 = xasprintf("%s-MiB", mem);
			cod_kvlist_set(labels, k1, name);
			cod_kvlist_set(labels, k2, v2);
		}
		count++;
	}
	return count;
}

void cod_capacity_system(const char *data_dir, struct cod_resources *out, struct cod_kvlist *gpu_labels)
{
	out->cpu = cpu_count();
	out->memory = mem_total();
	out->disk = disk_free(data_dir);
	out->gpu = detect_gpus(gpu_labels);
}

/* --------------------------------------------------------- allocated */

enum dim { DIM_CPU, DIM_MEMORY, DIM_DISK, DIM_GPU };

static const char *const dim_key[] = {"Compute.AllocatedCapacity.CPU", "Compute.AllocatedCapacity.Memory",
				      "Compute.AllocatedCapacity.Disk", "Compute.AllocatedCapacity.GPU"};
static const char *const dim_example[] = {"80% or 2 or 500m", "80% or 4Gi", "80% or 100Gb", "100% or 1"};

static int bad_value(struct cod_error **err, enum dim d, const char *value, const char *why)
{
	cod_error_set(err, COD_E_CONFIG, "%s: \"%s\" %s", dim_key[d], value, why);
	if (err)
		cod_error_hint(*err, "use a percentage of the machine or an absolute value, e.g. %s",
			       dim_example[d]);
	return -1;
}

/* One dimension; system_value is the machine's, the result goes to *out. */
static int allocate_one(enum dim d, const char *spec, double system_value, double *out,
			struct cod_error **err)
{
	cleanup_free char *text = cod_str_trim(xstrdup(spec ? spec : ""));
	if (!*text) {
		*out = system_value;
		return 0;
	}
	size_t len = strlen(text);
	if (text[len - 1] == '%') {
		text[len - 1] = '\0';
		cod_str_trim(text);
		char *end = NULL;
		errno = 0;
		double pct = strtod(text, &end);
		if (!*text || errno || !end || *end || !(pct > 0) || pct > 100)
			return bad_value(err, d, spec, "is not a percentage between 0 and 100");
		*out = system_value * pct / 100.0;
		return 0;
	}
	switch (d) {
	case DIM_CPU: {
		double cpu;
		if (cod_parse_cpu(text, &cpu) < 0 || !(cpu > 0))
			return bad_value(err, d, spec, "is not a CPU quantity");
		*out = cpu;
		return 0;
	}
	case DIM_MEMORY:
	case DIM_DISK: {
		uint64_t bytes;
		if (cod_parse_bytes(text, &bytes) < 0)
			return bad_value(err, d, spec, "is not a size");
		*out = (double)bytes;
		return 0;
	}
	case DIM_GPU: {
		int64_t n;
		if (cod_parse_i64(text, &n) < 0 || n < 0)
			return bad_value(err, d, spec, "is not a GPU count");
		*out = (double)n;
		return 0;
	}
	}
	return 0;
}

int cod_capacity_allocate(const char *cpu, const char *memory, const char *disk, const char *gpu,
			  const struct cod_resources *system, struct cod_resources *out,
			  struct cod_error **err)
{
	double v[4];
	if (allocate_one(DIM_CPU, cpu, system->cpu, &v[0], err) < 0 ||
	    allocate_one(DIM_MEMORY, memory, (double)system->memory, &v[1], err) < 0 ||
	    allocate_one(DIM_DISK, disk, (double)system->disk, &v[2], err) < 0 ||
	    allocate_one(DIM_GPU, gpu, (double)system->gpu, &v[3], err) < 0)
		return -1;
	/* CPU keeps millicore precision; sizes and counts round down. */
	out->cpu = floor(v[0] * 1000 + 0.5) / 1000;
	out->memory = (uint64_t)floor(v[1]);
	out->disk = (uint64_t)floor(v[2]);
	out->gpu = (uint64_t)floor(v[3] + CPU_EPSILON);
	return 0;
}

/* -------------------------------------------------------------- math */

bool cod_resources_fit(const struct cod_resources *need, const struct cod_resources *used,
		       const struct cod_resources *max)
{
	return used->cpu + need->cpu <= max->cpu + CPU_EPSILON &&
	       used->memory + need->memory <= max->memory && used->disk + need->disk <= max->disk &&
	       used->gpu + need->gpu <= max->gpu;
}

void cod_resources_add(struct cod_resources *acc, const struct cod_resources *r)
{
	acc->cpu += r->cpu;
	acc->memory += r->memory;
	acc->disk += r->disk;
	acc->gpu += r->gpu;
}

void cod_resources_sub(struct cod_resources *acc, const struct cod_resources *r)
{
	acc->cpu = acc->cpu > r->cpu + CPU_EPSILON ? acc->cpu - r->cpu : 0;
	acc->memory = acc->memory > r->memory ? acc->memory - r->memory : 0;
	acc->disk = acc->disk > r->disk ? acc->disk - r->disk : 0;
	acc->gpu = acc->gpu > r->gpu ? acc->gpu - r->gpu : 0;
}

char *cod_resources_exceeds(const struct cod_resources *need, const struct cod_resources *max)
{
	if (need->cpu > max->cpu + CPU_EPSILON)
		return xasprintf("cpu %g > node max %g", need->cpu, max->cpu);
	if (need->memory > max->memory) {
		cleanup_free char *a = cod_format_bytes(need->memory);
		cleanup_free char *b = cod_format_bytes(max->memory);
		return xasprintf("memory %s > node max %s", a, b);
	}
	if (need->disk > max->disk) {
		cleanup_free char *a = cod_format_bytes(need->disk);
		cleanup_free char *b = cod_format_bytes(max->disk);
		return xasprintf("disk %s > node max %s", a, b);
	}
	if (need->gpu > max->gpu)
		return xasprintf("gpu %llu > node max %llu", (unsigned long long)need->gpu,
				 (unsigned long long)max->gpu);
	return NULL;
}
