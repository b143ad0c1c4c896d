/*
 * settings.c - the container engine's settings, runtime and cgroup
 * detection, and registry credentials.
 *
 * Runtime choice (Engines.Types.Docker.Runtime): "crun" or "runc" name one;
 * "auto" prefers crun and falls back to runc. Containers run as root;
 * without root no runtime is offered (rootless is not supported) and the
 * node does not advertise the docker engine.
 *
 * cgroups: v2 (cgroup2 at /sys/fs/cgroup), v1 (tmpfs with one hierarchy per
 * controller) and hybrid (v1 plus cgroup2 at /sys/fs/cgroup/unified). crun
 * 1.8 refuses hybrid hosts when that cgroup2 mount has controllers; cod
 * then starts crun in a private mount namespace where the unified mount is
 * detached, so crun sees a plain v1 host (runtime.c).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

static struct cod_oci_settings settings;
static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;

static void settings_release(struct cod_oci_settings *s)
{
	free(s->data_dir);
	free(s->images_dir);
	free(s->runtime_name);
	free(s->runtime_path);
	free(s->runtime_problem);
	free(s->docker_config);
	cod_kvlist_release(&s->credentials);
	cod_strlist_release(&s->insecure);
	memset(s, 0, sizeof(*s));
}

static void node_platform(struct cod_oci_settings *s)
{
	struct utsname u;
	const char *arch = "amd64", *variant = "";
	if (uname(&u) == 0) {
		if (!strcmp(u.machine, "x86_64"))
			arch = "amd64";
		else if (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64")) {
			arch = "arm64";
			variant = "v8";
		} else if (!strncmp(u.machine, "armv7", 5)) {
			arch = "arm";
			variant = "v7";
		} else if (!strncmp(u.machine, "armv6", 5)) {
			arch = "arm";
			variant = "v6";
		} else if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
			arch = "386";
		else
			arch = u.machine;
	}
	snprintf(s->os, sizeof(s->os), "linux");
	snprintf(s->arch, sizeof(s->arch), "%.15s", arch);
	snprintf(s->variant, sizeof(s->variant), "%s", variant);
}

static enum cod_cgroup_mode cgroup_mode(void)
{
	struct statfs fs;
	if (statfs("/sys/fs/cgroup", &fs) < 0)
		return COD_CGROUP_NONE;
	if ((unsigned long)fs.f_type == CGROUP2_SUPER_MAGIC)
		return COD_CGROUP_V2;
	if ((unsigned long)fs.f_type != TMPFS_MAGIC)
		return COD_CGROUP_NONE;
	struct statfs u;
	if (statfs("/sys/fs/cgroup/unified", &u) == 0 && (unsigned long)u.f_type == CGROUP2_SUPER_MAGIC)
		return COD_CGROUP_HYBRID;
	return COD_CGROUP_V1;
}

/* Whether the cgroup2 mount of a hybrid host has controllers (crun's
 * refusal condition). */
static bool unified_has_controllers(void)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file("/sys/fs/cgroup/unified/cgroup.controllers", 4096, &text, &len, NULL) < 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)text[i]))
			return true;
	return false;
}

static char *find_executable(const char *name)
{
	const char *path = getenv("PATH");
	cleanup_free char *dirs =
	    xasprintf("%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", path ? path : "");
	for (char *p = dirs; p && *p;) {
		char *colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		if (*p == '/') {
			char *full = xasprintf("%s/%s", p, name);
			if (access(full, X_OK) == 0)
				return full;
			free(full);
		}
		p = colon ? colon + 1 : NULL;
	}
	return NULL;
}

static void detect_runtime(struct cod_oci_settings *s, const char *want)
{
	const char *choice = !cod_str_empty(want) ? want : "auto";
	if (geteuid() != 0) {
		s->runtime_problem =
		    xstrdup("containers need root: cod runs them rootful (rootless is not supported)");
		return;
	}
	if (s->cgroup_mode == COD_CGROUP_NONE) {
		s->runtime_problem = xstrdup("no cgroup file system at /sys/fs/cgroup");
		return;
	}
	const char *order[2] = {"crun", "runc"};
	size_t n = 2;
	if (!strcasecmp(choice, "crun") || !strcasecmp(choice, "runc")) {
		order[0] = !strcasecmp(choice, "crun") ? "crun" : "runc";
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		char *path = find_executable(order[i]);
		if (!path)
			continue;
		s->runtime_name = xstrdup(order[i]);
		s->runtime_path = path;
		break;
	}
	if (!s->runtime_path) {
		s->runtime_problem =
		    n == 1 ? xasprintf("OCI runtime \"%s\" is not installed (Engines.Types.Docker.Runtime)",
				       order[0])
			   : xstrdup("no OCI runtime: install crun or runc");
		return;
	}
	s->crun_hide_unified = !strcmp(s->runtime_name, "crun") && s->cgroup_mode == COD_CGROUP_HYBRID &&
			       unified_has_controllers();
}

static const char *cgroup_mode_name(enum cod_cgroup_mode m)
{
	switch (m) {
	case COD_CGROUP_V1:
		return "v1";
	case COD_CGROUP_V2:
		return "v2";
	case COD_CGROUP_HYBRID:
		return "hybrid";
	default:
		return "none";
	}
}

int cod_oci_configure(const struct cod_config *cfg, struct cod_error **err)
{
	const char *rt = cfg->docker_runtime;
	if (!cod_str_empty(rt) && strcasecmp(rt, "auto") && strcasecmp(rt, "crun") && strcasecmp(rt, "runc"))
		return cod_error_set(err, COD_E_CONFIG,
				     "Engines.Types.Docker.Runtime \"%s\" is not auto, crun or runc", rt);
	uint64_t max = 0;
	if (!cod_str_empty(cfg->docker_store_max) && strcmp(cfg->docker_store_max, "0") &&
	    cod_parse_bytes(cfg->docker_store_max, &max) < 0)
		return cod_error_set(
		    err, COD_E_CONFIG,
		    "Engines.Types.Docker.ImageStore.MaxSize \"%s\" is not a size (e.g. 20GB)",
		    cfg->docker_store_max);
	struct cod_oci_settings s;
	memset(&s, 0, sizeof(s));
	cleanup_free char *dd = cod_str_empty(cfg->data_dir) ? cod_config_default_data_dir() : NULL;
	s.data_dir = xstrdup(dd ? dd : cfg->data_dir);
	s.images_dir = xasprintf("%s/compute/images", s.data_dir);
	s.cgroup_mode = cgroup_mode();
	detect_runtime(&s, rt);
	cod_kvlist_copy(&s.credentials, &cfg->docker_credentials);
	s.docker_config =
	    xstrdup_or_null(cod_str_empty(cfg->docker_config_path) ? NULL : cfg->docker_config_path);
	cod_strlist_copy(&s.insecure, &cfg->docker_insecure_registries);
	s.store_max = max;
	s.manifest_ttl_ms = cfg->docker_manifest_ttl_ms;
	s.resolve_timeout_ms = cfg->docker_resolve_timeout_ms > 0 ? cfg->docker_resolve_timeout_ms : 10000;
	s.readonly_rootfs = cfg->docker_readonly_rootfs;
	s.overlay_ok = true;
	node_platform(&s);
	pthread_mutex_lock(&settings_lock);
	settings_release(&settings);
	settings = s;
	pthread_mutex_unlock(&settings_lock);
	cod_oci_resolve_cache_clear();
	cod_oci_store_measure_next();
	if (s.runtime_path)
		cod_debug("oci", "runtime=%s path=%s cgroups=%s%s platform=%s/%s", s.runtime_name,
			  s.runtime_path, cgroup_mode_name(s.cgroup_mode),
			  s.crun_hide_unified
			      ? " (crun in a private mount namespace without the cgroup2 mount)"
			      : "",
			  s.os, s.arch);
	else
		cod_debug("oci", "docker engine unavailable: %s", s.runtime_problem);
	return 0;
}

const struct cod_oci_settings *cod_oci_settings(void)
{
	pthread_mutex_lock(&settings_lock);
	if (!settings.images_dir) {
		/* Not configured (a unit test, a CLI command): defaults. */
		settings.data_dir = cod_config_default_data_dir();
		settings.images_dir = xasprintf("%s/compute/images", settings.data_dir);
		settings.cgroup_mode = cgroup_mode();
		detect_runtime(&settings, "auto");
		settings.resolve_timeout_ms = 10000;
		settings.manifest_ttl_ms = 3600 * 1000;
		settings.overlay_ok = true;
		node_platform(&settings);
	}
	pthread_mutex_unlock(&settings_lock);
	return &settings;
}

void cod_oci_reset(void)
{
	pthread_mutex_lock(&settings_lock);
	settings_release(&settings);
	pthread_mutex_unlock(&settings_lock);
	cod_oci_resolve_cache_clear();
}

char *cod_oci_node_platform(void)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	return xasprintf("%s/%s", s->os, s->arch);
}

/* ---------------------------------------------------------- credentials */

static bool split_userpass(const char *text, char **user, char **password)
{
	const char *colon = text ? strchr(text, ':') : NULL;
	if (!colon)
		return false;
	*user = xstrndup(text, (size_t)(colon - text));
	*password = xstrdup(colon + 1);
	return true;
}

/* Whether a docker config.json "auths" key names registry. */
static bool auth_key_matches(const char *key, const char *registry)
{
	const char *k = key;
	if (cod_str_has_prefix(k, "https://"))
		k += 8;
	else if (cod_str_has_prefix(k, "http://"))
		k += 7;
	size_t n = strcspn(k, "/");
	bool hub = !strcmp(registry, COD_OCI_DEFAULT_REGISTRY);
	if (hub)
		return (n == 15 && !strncmp(k, "index.docker.io", n)) ||
		       (n == 9 && !strncmp(k, "docker.io", n)) ||
		       (n == strlen(COD_OCI_DOCKER_HUB_HOST) && !strncmp(k, COD_OCI_DOCKER_HUB_HOST, n));
	return n == strlen(registry) && !strncmp(k, registry, n);
}

static bool from_docker_config(const char *registry, char **user, char **password)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	cleanup_free char *path = NULL;
	if (s->docker_config)
		path = xstrdup(s->docker_config);
	else if (getenv("DOCKER_CONFIG"))
		path = xasprintf("%s/config.json", getenv("DOCKER_CONFIG"));
	else if (getenv("HOME"))
		path = xasprintf("%s/.docker/config.json", getenv("HOME"));
	if (!path)
		return false;
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 1 << 20, &text, &len, NULL) < 0)
		return false;
	cleanup_json json_t *doc = json_loadb(text, len, 0, NULL);
	json_t *auths = doc ? json_object_get(doc, "auths") : NULL;
	const char *key;
	json_t *v;
	json_object_foreach (auths, key, v) {
		if (!auth_key_matches(key, registry))
			continue;
		json_t *a = json_object_get(v, "auth");
		if (json_is_string(a)) {
			cleanup_free char *plain = cod_base64url_decode(json_string_value(a), NULL);
			if (plain && split_userpass(plain, user, password))
				return true;
		}
		json_t *u = json_object_get(v, "username"), *p = json_object_get(v, "password");
		if (json_is_string(u) && json_is_string(p)) {
			*user = xstrdup(json_string_value(u));
			*password = xstrdup(json_string_value(p));
			return true;
		}
	}
	return false;
}

bool cod_oci_credentials(const char *registry, char **user, char **password)
{
	*user = *password = NULL;
	const struct cod_oci_settings *s = cod_oci_settings();
	bool hub = !strcmp(registry, COD_OCI_DEFAULT_REGISTRY);
	for (size_t i = 0; i < s->credentials.n; i++) {
		const char *k = s->credentials.items[i].key;
		if (strcmp(k, registry) && !(hub && auth_key_matches(k, registry)))
			continue;
		const char *v = s->credentials.items[i].value;
		if (v && cod_str_has_prefix(v, "env:"))
			v = getenv(v + 4);
		if (split_userpass(v, user, password))
			return true;
	}
	if (from_docker_config(registry, user, password))
		return true;
	/* Bacalhau's way: DOCKER_USERNAME/DOCKER_PASSWORD, Docker Hub only. */
	const char *du = getenv("DOCKER_USERNAME"), *dp = getenv("DOCKER_PASSWORD");
	if (hub && du && dp && *du) {
		*user = xstrdup(du);
		*password = xstrdup(dp);
		return true;
	}
	return false;
}
