/*
 * test_oci_spec.c - what a container runs with: Docker's entrypoint/cmd
 * rules, environment precedence, the image's User, and the runtime
 * config.json (namespaces per network type, limits, mounts, hardening).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

static json_t *image_config(const char *config_members)
{
	cleanup_free char *text =
	    xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{%s}}", config_members);
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

static void strlist_of(struct cod_strlist *l, const char *const *items)
{
	for (size_t i = 0; items && items[i]; i++)
		cod_strlist_add(l, items[i]);
}

static char *joined(const struct cod_strlist *l)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (size_t i = 0; i < l->n; i++)
		cod_buf_addf(&b, "%s[%s]", i ? " " : "", l->items[i]);
	return cod_buf_detach(&b, NULL);
}

static void test_command_rules(void **state)
{
	(void)state;
	static const char *const e_echo[] = {"/bin/echo", "E", NULL};
	static const char *const e_reset[] = {"", NULL};
	static const char *const p_x[] = {"x", "y", NULL};
	static const struct {
		const char *image; /* config members */
		const char *const *entrypoint, *const *params;
		const char *want; /* NULL = error */
	} rows[] = {
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", NULL, NULL, "[/bin/echo] [ep] [cmd]"},
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", NULL, p_x,
	     "[/bin/echo] [ep] [x] [y]"},
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", e_echo, NULL, "[/bin/echo] [E]"},
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", e_echo, p_x,
	     "[/bin/echo] [E] [x] [y]"},
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", e_reset, p_x, "[x] [y]"},
	    {"\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"]", e_reset, NULL, NULL},
	    {"\"Cmd\":[\"sh\"]", NULL, NULL, "[sh]"},
	    {"\"Cmd\":[\"sh\"]", NULL, p_x, "[x] [y]"},
	    {"\"Cmd\":null", NULL, NULL, NULL},
	    {"\"Env\":[]", NULL, p_x, "[x] [y]"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		json_t *cfg = image_config(rows[i].image);
		struct cod_strlist ep = {0}, params = {0}, argv = {0};
		strlist_of(&ep, rows[i].entrypoint);
		strlist_of(&params, rows[i].params);
		struct cod_error *err = NULL;
		int rc = cod_oci_command(cfg, rows[i].entrypoint ? &ep : NULL,
					 rows[i].params ? &params : NULL, &argv, &err);
		if (rows[i].want) {
			assert_int_equal(rc, 0);
			char *got = joined(&argv);
			if (strcmp(got, rows[i].want))
				print_message("row %zu: got %s\n", i, got);
			assert_string_equal(got, rows[i].want);
			free(got);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err->message, "no command specified"));
			cod_error_free(err);
		}
		cod_strlist_release(&ep);
		cod_strlist_release(&params);
		cod_strlist_release(&argv);
		json_decref(cfg);
	}
}

static void test_environment(void **state)
{
	(void)state;
	json_t *cfg =
	    image_config("\"Env\":[\"PATH=/img/bin\",\"A=image\",\"B=image\",\"C=image\",\"NOVALUE\"]");
	struct cod_kvlist task = {0};
	cod_kvlist_set(&task, "B", "task");
	cod_kvlist_set(&task, "C", "task");
	cod_kvlist_set(&task, "BACALHAU_JOB_ID", "j-1");
	struct cod_strlist engine = {0};
	cod_strlist_add(&engine, "C=engine");
	cod_strlist_add(&engine, "D=x=y");
	struct cod_kvlist out = {0};
	cod_oci_environment(cfg, &task, &engine, &out);
	assert_string_equal(cod_kvlist_get(&out, "PATH"), "/img/bin");
	assert_string_equal(cod_kvlist_get(&out, "A"), "image");
	assert_string_equal(cod_kvlist_get(&out, "B"), "task");
	assert_string_equal(cod_kvlist_get(&out, "C"), "engine");
	assert_string_equal(cod_kvlist_get(&out, "D"), "x=y");
	assert_string_equal(cod_kvlist_get(&out, "BACALHAU_JOB_ID"), "j-1");
	assert_null(cod_kvlist_get(&out, "NOVALUE"));
	cod_kvlist_release(&out);
	json_decref(cfg);
	/* no PATH in the image: a default */
	cfg = image_config("\"Cmd\":[\"sh\"]");
	cod_oci_environment(cfg, NULL, NULL, &out);
	assert_non_null(strstr(cod_kvlist_get(&out, "PATH"), "/usr/bin"));
	cod_kvlist_release(&out);
	json_decref(cfg);
	cod_kvlist_release(&task);
	cod_strlist_release(&engine);
}

static char *make_rootfs(void)
{
	char tmpl[] = "/tmp/cod-test-spec.XXXXXX";
	char *d = xstrdup(mkdtemp(tmpl));
	cleanup_free char *etc = xasprintf("%s/etc", d);
	assert_int_equal(mkdir(etc, 0755), 0);
	cleanup_free char *pw = xasprintf("%s/passwd", etc), *gr = xasprintf("%s/group", etc);
	static const char passwd[] =
	    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	    "app:x:1000:1001:App:/home/app:/bin/sh\n";
	static const char group[] = "root:x:0:\nstaff:x:50:\napp:x:1001:\n";
	assert_int_equal(cod_write_file_atomic(pw, passwd, strlen(passwd), NULL), 0);
	assert_int_equal(cod_write_file_atomic(gr, group, strlen(group), NULL), 0);
	return d;
}

static void test_user(void **state)
{
	(void)state;
	cleanup_free char *root = make_rootfs();
	static const struct {
		const char *user;
		int rc;
		uint32_t uid, gid;
	} rows[] = {
	    {"", 0, 0, 0},
	    {"app", 0, 1000, 1001},
	    {"1000", 0, 1000, 1001},
	    {"app:staff", 0, 1000, 50},
	    {"app:7", 0, 1000, 7},
	    {"4242", 0, 4242, 0},
	    {"4242:4243", 0, 4242, 4243},
	    {"nobody", 0, 65534, 65534},
	    {"ghost", -1, 0, 0},
	    {"app:ghosts", -1, 0, 0},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		uint32_t uid = 99, gid = 99;
		struct cod_error *err = NULL;
		int rc = cod_oci_user(rows[i].user, root, &uid, &gid, &err);
		if (rc != rows[i].rc)
			print_message("user \"%s\": rc %d\n", rows[i].user, rc);
		assert_int_equal(rc, rows[i].rc);
		if (rc == 0) {
			assert_int_equal(uid, rows[i].uid);
			assert_int_equal(gid, rows[i].gid);
		} else {
			assert_int_equal(err->code, COD_E_VALIDATION);
			cod_error_free(err);
		}
	}
	cod_oci_rmtree(root);
}

static bool has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	return false;
}

static bool has_namespace(const json_t *cfg, const char *type)
{
	json_t *ns = json_object_get(json_object_get(cfg, "linux"), "namespaces");
	size_t i;
	json_t *v;
	json_array_foreach (ns, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "type")), type))
			return true;
	return false;
}

static const json_t *mount_at(const json_t *cfg, const char *dest)
{
	json_t *mounts = json_object_get(cfg, "mounts");
	size_t i;
	json_t *v;
	json_array_foreach (mounts, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "destination")), dest))
			return v;
	return NULL;
}

static void test_runtime_config(void **state)
{
	(void)state;
	cleanup_free char *root = make_rootfs();
	json_t *img =
	    image_config("\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"],\"WorkingDir\":\"/w\",\"User\":\"app\"");
	struct cod_kvlist env = {0};
	cod_kvlist_set(&env, "BACALHAU_JOB_ID", "j-1");
	struct cod_oci_mount mounts[] = {{"/host/in", "/inputs", true}, {"/host/out", "/outputs", false}};
	struct cod_oci_run_spec s = {.container_id = "cod-e-1",
				     .rootfs = root,
				     .image_config = img,
				     .task_env = &env,
				     .mounts = mounts,
				     .nmounts = 2,
				     .network = COD_NET_NONE,
				     .cpu = 0.5,
				     .memory = 64 << 20,
				     .pids = 100,
				     .cgroups_path = "/cod/e-1/ctr",
				     .hostname = "cod-e1"};
	struct cod_error *err = NULL;
	json_t *cfg = cod_oci_runtime_config(&s, &err);
	assert_non_null(cfg);
	json_t *proc = json_object_get(cfg, "process");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "gid")), 1001);
	assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/w");
	assert_true(json_is_true(json_object_get(proc, "noNewPrivileges")));
	assert_true(has_string(json_object_get(proc, "env"), "HOME=/home/app"));
	assert_true(has_string(json_object_get(proc, "env"), "BACALHAU_JOB_ID=j-1"));
	json_t *caps = json_object_get(json_object_get(proc, "capabilities"), "bounding");
	assert_true(has_string(caps, "CAP_CHOWN"));
	assert_false(has_string(caps, "CAP_SYS_ADMIN"));
	assert_false(has_string(caps, "CAP_NET_RAW"));
	assert_false(has_string(caps, "CAP_NET_ADMIN"));
	json_t *lx = json_object_get(cfg, "linux");
	assert_true(has_namespace(cfg, "network"));
	assert_true(has_namespace(cfg, "pid"));
	assert_true(has_namespace(cfg, "mount"));
	assert_string_equal(json_string_value(json_object_get(lx, "cgroupsPath")), "/cod/e-1/ctr");
	json_t *res = json_object_get(lx, "resources");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")), 50000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "cpu"), "period")), 100000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")),
			 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")), 100);
	assert_true(has_string(json_object_get(lx, "maskedPaths"), "/proc/kcore"));
	assert_true(has_string(json_object_get(lx, "readonlyPaths"), "/proc/sys"));
	json_t *sc = json_object_get(lx, "seccomp");
	assert_string_equal(json_string_value(json_object_get(sc, "defaultAction")), "SCMP_ACT_ALLOW");
	assert_true(has_string(json_object_get(json_array_get(json_object_get(sc, "syscalls"), 0), "names"),
			       "kexec_load"));
	const json_t *in = mount_at(cfg, "/inputs"), *out = mount_at(cfg, "/outputs");
	assert_non_null(in);
	assert_non_null(out);
	assert_true(has_string(json_object_get(in, "options"), "ro"));
	assert_false(has_string(json_object_get(out, "options"), "ro"));
	assert_non_null(mount_at(cfg, "/tmp"));
	assert_non_null(mount_at(cfg, "/proc"));
	assert_non_null(mount_at(cfg, "/dev"));
	assert_string_equal(json_string_value(json_object_get(mount_at(cfg, "/sys"), "type")), "sysfs");
	assert_string_equal(json_string_value(json_object_get(cfg, "hostname")), "cod-e1");
	json_decref(cfg);

	/* Host network: no network namespace; /sys bound from the host */
	s.network = COD_NET_HOST;
	s.readonly_rootfs = true;
	cfg = cod_oci_runtime_config(&s, &err);
	assert_false(has_namespace(cfg, "network"));
	assert_string_equal(json_string_value(json_object_get(mount_at(cfg, "/sys"), "type")), "bind");
	assert_true(json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")));
	json_decref(cfg);

	/* an unknown image user fails */
	json_decref(img);
	img = image_config("\"Cmd\":[\"sh\"],\"User\":\"ghost\"");
	s.image_config = img;
	assert_null(cod_oci_runtime_config(&s, &err));
	assert_non_null(strstr(err->message, "ghost"));
	cod_error_free(err);
	json_decref(img);
	cod_kvlist_release(&env);
	cod_oci_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command_rules),
	    cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_user),
	    cmocka_unit_test(test_runtime_config),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	cod_oci_reset();
	return rc;
}
