/*
 * test_model.c - job specs (decode, normalize, validate, encode), enum
 * encodings, server objects, diff.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

#define REF_JOBS "../shared/reference/jobs"

/* ------------------------------------------------------------ helpers */

static const struct cod_job_defaults test_defaults = {
	.batch = {.cpu = "500m", .memory = "512Mb"},
	.ops = {.cpu = "500m", .memory = "512Mb", .publisher_type = "local"},
};

/* Parse, normalize, validate. Returns the job (or NULL with *err set). */
static struct cod_job *load(const char *text, struct cod_error **err)
{
	struct cod_job *job = cod_job_parse(text, strlen(text), err);
	if (!job)
		return NULL;
	struct cod_strlist warnings = {0};
	cod_job_normalize(job, &test_defaults, &warnings);
	cod_strlist_release(&warnings);
	if (cod_job_validate(job, err) < 0) {
		cod_job_free(job);
		return NULL;
	}
	return job;
}

static bool has_detail(const struct cod_error *err, const char *needle)
{
	for (size_t i = 0; err && i < err->ndetails; i++)
		if (strstr(err->details[i], needle))
			return true;
	return false;
}

static void show_error(const struct cod_error *err)
{
	if (!err)
		return;
	print_message("error: %s\n", err->message);
	for (size_t i = 0; i < err->ndetails; i++)
		print_message("  - %s\n", err->details[i]);
}

/* ------------------------------------------------------- spec cases */

struct spec_case {
	const char *name;
	const char *text;
	bool valid;
	size_t nproblems;          /* exact count when not 0 */
	const char *expect[8];     /* substrings each found in some detail */
};

#define DOCKER_TASK                                                                                  \
	"Tasks:\n"                                                                                   \
	"  - Name: main\n"                                                                           \
	"    Engine:\n"                                                                              \
	"      Type: docker\n"                                                                       \
	"      Params:\n"                                                                            \
	"        Image: busybox:1.37.0\n"

static const struct spec_case cases[] = {
	/* ---- valid ---- */
	{"minimal docker", "Type: batch\n" DOCKER_TASK, true, 0, {NULL}},
	{"noop without name", "Type: batch\nTasks:\n  - Name: t\n    Engine: {Type: noop}\n", true, 0, {NULL}},
	{"json form",
	 "{\"Type\":\"batch\",\"Tasks\":[{\"Name\":\"main\",\"Engine\":{\"Type\":\"docker\","
	 "\"Params\":{\"Image\":\"busybox\"}}}]}",
	 true, 0, {NULL}},
	{"lowercase keys",
	 "type: batch\ncount: 2\ntasks:\n  - name: main\n    engine:\n      type: docker\n      params:\n"
	 "        image: busybox\n        entrypoint: [/bin/sh]\n",
	 true, 0, {NULL}},
	{"ops without count", "Type: ops\n" DOCKER_TASK, true, 0, {NULL}},
	{"daemon count 1", "Type: daemon\nCount: 1\n" DOCKER_TASK, true, 0, {NULL}},
	{"service count 3", "Type: service\nCount: 3\n" DOCKER_TASK, true, 0, {NULL}},
	{"batch count 0", "Type: batch\nCount: 0\n" DOCKER_TASK, true, 0, {NULL}},
	{"constraints every operator",
	 "Type: batch\nConstraints:\n"
	 "  - {Key: a, Operator: \"=\", Values: [x]}\n"
	 "  - {Key: b, Operator: \"==\", Values: [x]}\n"
	 "  - {Key: c, Operator: \"!=\", Values: [x]}\n"
	 "  - {Key: d, Operator: in, Values: [x, y]}\n"
	 "  - {Key: e, Operator: notin, Values: [z]}\n"
	 "  - {Key: f, Operator: exists}\n"
	 "  - {Key: g, Operator: \"!\"}\n"
	 "  - {Key: h, Operator: gt, Values: [\"3\"]}\n" DOCKER_TASK,
	 true, 0, {NULL}},
	{"network http domains",
	 "Type: batch\n" DOCKER_TASK "    Network:\n      Type: http\n      Domains: [example.com]\n", true, 0,
	 {NULL}},
	{"network bridge ports",
	 "Type: service\n" DOCKER_TASK "    Network:\n      Type: Bridge\n      Ports:\n"
	 "        - {Name: web, Static: 8080, Target: 80, HostNetwork: 127.0.0.1}\n",
	 true, 0, {NULL}},
	{"timeouts within total",
	 "Type: batch\n" DOCKER_TASK "    Timeouts: {ExecutionTimeout: 60, QueueTimeout: 30, TotalTimeout: 90}\n",
	 true, 0, {NULL}},
	{"every source type",
	 "Type: batch\n" DOCKER_TASK "    InputSources:\n"
	 "      - {Target: /a, Source: {Type: s3, Params: {Bucket: b, Key: k}}}\n"
	 "      - {Target: /b, Source: {Type: urlDownload, Params: {URL: \"https://x.org/f\"}}}\n"
	 "      - {Target: /c, Source: {Type: ipfs, Params: {CID: Qm123}}}\n"
	 "      - {Target: /d, Source: {Type: inline, Params: {URL: \"data:,hello\"}}}\n"
	 "      - {Target: /e, Source: {Type: localDirectory, Params: {SourcePath: /data}}}\n"
	 "      - {Target: /f, Alias: f, Source: {Type: local, Params: {SourcePath: /data2}}}\n",
	 true, 0, {NULL}},
	{"s3 publisher",
	 "Type: batch\n" DOCKER_TASK "    Publisher: {Type: s3, Params: {Bucket: b, Key: \"r/{jobID}\"}}\n"
	 "    ResultPaths: [{Name: out, Path: /outputs}]\n",
	 true, 0, {NULL}},
	{"custom engine type", "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: flibble, Params: {a: 1}}\n",
	 true, 0, {NULL}},
	{"env ok", "Type: batch\n" DOCKER_TASK "    Env: {FOO: bar, A_1: \"2\"}\n", true, 0, {NULL}},
	{"yaml numbers as strings",
	 "Type: batch\n" DOCKER_TASK "    Resources: {CPU: 1, Memory: 1024, Disk: 1.5, GPU: 0}\n"
	 "    Env: {N: 3, B: true}\n",
	 true, 0, {NULL}},
	{"wasm params",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: wasm\n      Params:\n"
	 "        EntryModule: /m.wasm\n        Entrypoint: _start\n        Parameters: [a, b]\n"
	 "        ImportModules: null\n        EnvironmentVariables: {A: b}\n",
	 true, 0, {NULL}},
	{"labels and meta", "Type: batch\nLabels: {team: a}\nMeta: {x: y}\n" DOCKER_TASK, true, 0, {NULL}},
	{"engine type spelled oddly",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: \" Docker \", Params: {Image: busybox}}\n", true,
	 0, {NULL}},
	{"docker null arrays",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n"
	 "        Image: busybox\n        Entrypoint: null\n        Parameters: ~\n"
	 "        EnvironmentVariables: [A=1]\n        WorkingDirectory: /work\n",
	 true, 0, {NULL}},

	/* ---- invalid: decoding ---- */
	{"unknown job type", "Type: foo\n" DOCKER_TASK, false, 1,
	 {"Type: \"foo\" is not a job type; use batch, ops, daemon or service"}},
	{"unknown field with hint", "Type: batch\nNmae: x\n" DOCKER_TASK, false, 1,
	 {"Nmae: unknown field \"Nmae\"; did you mean \"Name\"?"}},
	{"wrong type count", "Type: batch\nCount: many\n" DOCKER_TASK, false, 1,
	 {"Count: expected an integer, got string"}},
	{"all decode problems at once",
	 "Type: batch\nCount: x\nPriority: [1]\nMeta: {a: {b: c}}\nTasks:\n  - Name: main\n    Count: 1\n"
	 "    Engine: {Type: docker, Params: 3}\n",
	 false, 5,
	 {"Count: expected an integer", "Priority: expected an integer, got array", "Meta.a: expected a string",
	  "Tasks[0].Count: unknown field", "Tasks[0].Engine.Params: expected an object, got integer"}},
	{"fractional count", "Type: batch\nCount: 1.5\n" DOCKER_TASK, false, 1, {"Count: expected an integer"}},
	{"bad network type", "Type: batch\n" DOCKER_TASK "    Network: {Type: wifi}\n", false, 1,
	 {"Tasks[0].Network.Type: \"wifi\" is not a network type"}},
	{"bad operator",
	 "Type: batch\nConstraints: [{Key: a, Operator: like, Values: [x]}]\n" DOCKER_TASK, false, 1,
	 {"Constraints[0].Operator: \"like\" is not an operator"}},
	{"tasks not a list", "Type: batch\nTasks: {Name: main}\n", false, 1, {"Tasks: expected an array"}},

	/* ---- invalid: validation ---- */
	{"type missing", DOCKER_TASK, false, 1, {"Type: missing"}},
	{"tasks missing", "Type: batch\n", false, 1, {"Tasks: missing"}},
	{"task name missing", "Type: batch\nTasks:\n  - Engine: {Type: noop}\n", false, 1, {"Tasks[0].Name"}},
	{"engine type missing", "Type: batch\nTasks:\n  - Name: main\n", false, 1, {"Tasks[0].Engine.Type"}},
	{"negative count", "Type: batch\nCount: -1\n" DOCKER_TASK, false, 1, {"Count: must not be negative"}},
	{"daemon count 3", "Type: daemon\nCount: 3\n" DOCKER_TASK, false, 1, {"Count: must be 0 or omitted"}},
	{"ops count 2", "Type: ops\nCount: 2\n" DOCKER_TASK, false, 1, {">1 is invalid"}},
	{"negative priority", "Type: batch\nPriority: -5\n" DOCKER_TASK, false, 1, {"Priority"}},
	{"env problems",
	 "Type: batch\n" DOCKER_TASK "    Env: {foo: x, BACALHAU_X: y, COD_Y: z, EMPTY: \"\", 1A: b}\n", false, 5,
	 {"Tasks[0].Env.foo", "Tasks[0].Env.BACALHAU_X", "Tasks[0].Env.COD_Y", "Tasks[0].Env.EMPTY",
	  "Tasks[0].Env.1A"}},
	{"input targets",
	 "Type: batch\n" DOCKER_TASK "    InputSources:\n"
	 "      - {Alias: a, Source: {Type: ipfs, Params: {CID: x}}}\n"
	 "      - {Alias: a, Target: rel, Source: {Type: ipfs, Params: {CID: x}}}\n"
	 "      - {Target: /t, Source: {Type: ipfs, Params: {CID: x}}}\n"
	 "      - {Target: /t, Source: {Params: {CID: x}}}\n",
	 false, 5,
	 {"Tasks[0].InputSources[0].Target: missing", "Tasks[0].InputSources[1].Target: \"rel\" must be",
	  "Tasks[0].InputSources[1].Alias", "Tasks[0].InputSources[3].Target: \"/t\" is also",
	  "Tasks[0].InputSources[3].Source.Type"}},
	{"result paths and no publisher",
	 "Type: batch\n" DOCKER_TASK "    ResultPaths:\n      - {Name: a, Path: out}\n      - {Name: a}\n", false,
	 4,
	 {"Tasks[0].ResultPaths[0].Path", "Tasks[0].ResultPaths[1].Path: missing", "Tasks[0].ResultPaths[1].Name",
	  "set Tasks[0].Publisher, e.g. Type: local"}},
	{"memory not a size", "Type: batch\n" DOCKER_TASK "    Resources: {Memory: 12XB}\n", false, 1,
	 {"Tasks[0].Resources.Memory: \"12XB\" is not a size; use e.g. 512Mb or 2Gi"}},
	{"cpu disk gpu",
	 "Type: batch\n" DOCKER_TASK "    Resources: {CPU: lots, Disk: \"-1Gb\", GPU: \"-1\"}\n", false, 3,
	 {"Tasks[0].Resources.CPU", "Tasks[0].Resources.Disk", "Tasks[0].Resources.GPU"}},
	{"domains without http", "Type: batch\n" DOCKER_TASK "    Network: {Type: Host, Domains: [a.com]}\n",
	 false, 1, {"Tasks[0].Network.Domains"}},
	{"port problems",
	 "Type: batch\n" DOCKER_TASK "    Network:\n      Type: Host\n      Ports:\n"
	 "        - {Name: 1bad, Static: 80, Target: 8080, HostNetwork: nowhere}\n",
	 false, 4,
	 {"Tasks[0].Network.Ports[0].Name", "Tasks[0].Network.Ports[0].Static",
	  "Tasks[0].Network.Ports[0].Target: only allowed with network Type Bridge",
	  "Tasks[0].Network.Ports[0].HostNetwork"}},
	{"ports with default network",
	 "Type: batch\n" DOCKER_TASK "    Network:\n      Ports: [{Name: web}]\n", false, 1,
	 {"Tasks[0].Network.Ports: only allowed"}},
	{"timeouts exceed total",
	 "Type: batch\n" DOCKER_TASK "    Timeouts: {ExecutionTimeout: 60, QueueTimeout: 60, TotalTimeout: 90}\n",
	 false, 1, {"Tasks[0].Timeouts: ExecutionTimeout (60) + QueueTimeout (60)"}},
	{"negative timeout", "Type: batch\n" DOCKER_TASK "    Timeouts: {QueueTimeout: -1}\n", false, 1,
	 {"Tasks[0].Timeouts.QueueTimeout"}},
	{"constraint value counts",
	 "Type: batch\nConstraints:\n  - {Key: a, Operator: in}\n  - {Key: b, Operator: exists, Values: [x]}\n"
	 "  - {Key: c, Operator: \"=\", Values: [x, y]}\n  - {Key: d, Operator: gt, Values: [abc]}\n"
	 "  - {Key: \"\", Operator: exists}\n" DOCKER_TASK,
	 false, 5,
	 {"Constraints[0]: operator \"in\" needs at least one value", "Constraints[1]", "Constraints[2]",
	  "Constraints[3]: operator \"gt\" needs an integer", "Constraints[4]: key must not be empty"}},
	{"docker without image, unknown param",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n"
	 "        Imagee: busybox\n",
	 false, 2,
	 {"Tasks[0].Engine.Params.Imagee: unknown docker parameter \"Imagee\"; did you mean \"Image\"?",
	  "Tasks[0].Engine.Params.Image: missing"}},
	{"docker param types",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n"
	 "        Image: \"\"\n        Entrypoint: /bin/sh\n        Parameters: [a, 1]\n"
	 "        EnvironmentVariables: [BACALHAU_X=1, novalue]\n        WorkingDirectory: rel\n",
	 false, 6,
	 {"Tasks[0].Engine.Params.Image: must not be empty", "Tasks[0].Engine.Params.Entrypoint",
	  "Tasks[0].Engine.Params.Parameters[1]", "Tasks[0].Engine.Params.EnvironmentVariables[0]",
	  "Tasks[0].Engine.Params.EnvironmentVariables[1]", "Tasks[0].Engine.Params.WorkingDirectory"}},
	{"docker without params", "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: docker}\n", false, 1,
	 {"Tasks[0].Engine.Params.Image: missing"}},
	{"wasm problems",
	 "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: wasm\n      Params:\n"
	 "        Entrypoint: 3\n        Parameters: x\n        EnvironmentVariables: [a]\n        Modules: []\n",
	 false, 5,
	 {"Tasks[0].Engine.Params.EntryModule: missing", "Tasks[0].Engine.Params.Entrypoint",
	  "Tasks[0].Engine.Params.Parameters", "Tasks[0].Engine.Params.EnvironmentVariables",
	  "Tasks[0].Engine.Params.Modules"}},
	{"s3 publisher needs bucket and key",
	 "Type: batch\n" DOCKER_TASK "    Publisher: {Type: s3}\n", false, 2,
	 {"Tasks[0].Publisher.Params.Bucket", "Tasks[0].Publisher.Params.Key"}},
	{"source params",
	 "Type: batch\n" DOCKER_TASK "    InputSources:\n"
	 "      - {Target: /a, Source: {Type: s3}}\n"
	 "      - {Target: /b, Source: {Type: urlDownload, Params: {URL: \"ftp://x\"}}}\n"
	 "      - {Target: /c, Source: {Type: ipfs, Params: {}}}\n"
	 "      - {Target: /d, Source: {Type: inline, Params: {URL: \"http://x\"}}}\n"
	 "      - {Target: /e, Source: {Type: local, Params: {SourcePath: rel}}}\n",
	 false, 5,
	 {"Tasks[0].InputSources[0].Source.Params.Bucket", "Tasks[0].InputSources[1].Source.Params.URL",
	  "Tasks[0].InputSources[2].Source.Params.CID", "Tasks[0].InputSources[3].Source.Params.URL",
	  "Tasks[0].InputSources[4].Source.Params.SourcePath"}},
	{"empty label key", "Type: batch\nLabels: {\"\": x}\n" DOCKER_TASK, false, 1, {"Labels: keys"}},
	{"many problems in one spec",
	 "Type: daemon\nCount: 4\nPriority: -1\nTasks:\n  - Engine: {Type: docker, Params: {Image: x}}\n"
	 "    Env: {bad: \"\"}\n    Resources: {Memory: 12XB, CPU: \"-1\"}\n"
	 "    ResultPaths: [{Name: r, Path: /r}]\n    Timeouts: {ExecutionTimeout: 5, TotalTimeout: 1}\n",
	 false, 9,
	 {"Count", "Priority", "Tasks[0].Name", "Tasks[0].Env.bad", "Tasks[0].Resources.Memory",
	  "Tasks[0].Resources.CPU", "Tasks[0].Publisher", "Tasks[0].Timeouts"}},
};

static void run_case(void **state)
{
	const struct spec_case *c = *state;
	struct cod_error *err = NULL;
	struct cod_job *job = load(c->text, &err);
	if (c->valid) {
		if (!job)
			show_error(err);
		assert_non_null(job);
		assert_null(err);
		cod_job_free(job);
		return;
	}
	assert_null(job);
	assert_non_null(err);
	bool ok = true;
	for (size_t i = 0; i < COD_ARRAY_SIZE(c->expect) && c->expect[i]; i++) {
		if (!has_detail(err, c->expect[i])) {
			print_message("missing problem \"%s\"\n", c->expect[i]);
			ok = false;
		}
	}
	if (c->nproblems && err->ndetails != c->nproblems) {
		print_message("expected %zu problems, got %zu\n", c->nproblems, err->ndetails);
		ok = false;
	}
	if (!ok)
		show_error(err);
	assert_true(ok);
	/* The one-line message is the first problem plus a count. */
	assert_true(cod_str_has_prefix(err->message, err->details[0]));
	if (err->ndetails > 1)
		assert_non_null(strstr(err->message, "more problem"));
	cod_error_free(err);
}

/* ---------------------------------------------------- reference jobs */

static char *read_text(const char *path, size_t *len)
{
	char *text = NULL;
	struct cod_error *err = NULL;
	if (cod_read_file(path, 0, &text, len, &err) < 0) {
		show_error(err);
		cod_error_free(err);
		return NULL;
	}
	return text;
}

static void test_reference_jobs(void **state)
{
	(void)state;
	DIR *d = opendir(REF_JOBS);
	if (!d) {
		print_message("skipping: %s not found (run from the repository root)\n", REF_JOBS);
		skip();
	}
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", REF_JOBS, de->d_name);
		size_t len;
		char *text = read_text(path, &len);
		assert_non_null(text);
		struct cod_error *err = NULL;
		struct cod_job *job = cod_job_parse(text, len, &err);
		if (!strcmp(de->d_name, "empty.yaml")) {
			assert_null(job);
			assert_non_null(err);
			assert_string_equal(err->message, "the job spec is empty; a job needs at least Type and Tasks");
		} else {
			if (!job) {
				print_message("%s:\n", path);
				show_error(err);
			}
			assert_non_null(job);
			struct cod_strlist w = {0};
			cod_job_normalize(job, &test_defaults, &w);
			cod_strlist_release(&w);
			if (cod_job_validate(job, &err) < 0) {
				print_message("%s:\n", path);
				show_error(err);
			}
			assert_null(err);
			cod_job_free(job);
		}
		cod_error_free(err);
		free(text);
		free(path);
		n++;
	}
	closedir(d);
	assert_true(n >= 10);
}

static void test_empty_specs(void **state)
{
	(void)state;
	const char *empties[] = {"", "   \n\n", "# only a comment\n", "~\n", "{}", "null"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(empties); i++) {
		struct cod_error *err = NULL;
		struct cod_job *job = cod_job_parse(empties[i], strlen(empties[i]), &err);
		assert_null(job);
		assert_non_null(err);
		assert_non_null(strstr(err->message, "the job spec is empty"));
		cod_error_free(err);
	}
	/* Not a mapping at all. */
	struct cod_error *err = NULL;
	assert_null(cod_job_parse("- a\n- b\n", 8, &err));
	assert_non_null(strstr(err->message, "got array"));
	cod_error_free(err);
	err = NULL;
	/* Syntax errors name a line. */
	assert_null(cod_job_parse("Type: [\n", 8, &err));
	assert_non_null(strstr(err->message, "line"));
	cod_error_free(err);
}

/* ------------------------------------------------------- round trips */

static const char *const round_trip_specs[] = {
	"Name: rt\nType: batch\nCount: 2\nPriority: 3\nLabels: {a: b}\nMeta: {m: n}\n"
	"Constraints: [{Key: zone, Operator: in, Values: [a, b]}, {Key: gpu, Operator: exists}]\n"
	"Tasks:\n  - Name: main\n    Engine: {Type: docker, Params: {Image: busybox, Parameters: [-c, 'echo 1']}}\n"
	"    Publisher: {Type: local}\n    Env: {A: b}\n    Meta: {t: u}\n"
	"    InputSources: [{Alias: in, Target: /in, Source: {Type: s3, Params: {Bucket: b, Key: k}}}]\n"
	"    ResultPaths: [{Name: out, Path: /out}]\n"
	"    Resources: {CPU: 500m, Memory: 1Gb, Disk: 2Gi, GPU: '1'}\n"
	"    Network: {Type: Bridge, Ports: [{Name: http, Static: 8080, Target: 80}]}\n"
	"    Timeouts: {ExecutionTimeout: 10, QueueTimeout: 20, TotalTimeout: 40}\n",
	"Type: ops\nTasks:\n  - Name: x\n    Engine: {Type: noop}\n    Network: {Type: HTTP, Domains: [a.org, b.org]}\n",
	("Type: daemon\nCount: 0\nTasks:\n  - Name: x\n    Engine: {Type: wasm, Params: {EntryModule: /m, "
	 "Parameters: [\"1\", \"true\"]}}\n"),
};

static void test_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < COD_ARRAY_SIZE(round_trip_specs); i++) {
		struct cod_error *err = NULL;
		struct cod_job *a = cod_job_parse(round_trip_specs[i], strlen(round_trip_specs[i]), &err);
		if (!a)
			show_error(err);
		assert_non_null(a);

		/* JSON */
		json_t *j = cod_job_to_json(a);
		char *json = cod_json_dumps(j, 1);
		struct cod_job *b = cod_job_parse(json, strlen(json), &err);
		if (!b)
			show_error(err);
		assert_non_null(b);
		assert_true(cod_job_spec_equal(a, b));
		json_t *j2 = cod_job_to_json(b);
		assert_true(json_equal(j, j2));

		/* YAML */
		struct cod_buf y = COD_BUF_INIT;
		cod_yaml_emit(j, &y);
		struct cod_job *c = cod_job_parse(y.buf, y.len, &err);
		if (!c) {
			print_message("%s\n", y.buf);
			show_error(err);
		}
		assert_non_null(c);
		assert_true(cod_job_spec_equal(a, c));
		assert_int_equal(a->count_set, c->count_set);
		assert_int_equal(a->count, c->count);

		/* dup */
		struct cod_job *d = cod_job_dup(a);
		json_t *j3 = cod_job_to_json(d);
		assert_true(json_equal(j, j3));

		json_decref(j);
		json_decref(j2);
		json_decref(j3);
		free(json);
		cod_buf_release(&y);
		cod_job_free(a);
		cod_job_free(b);
		cod_job_free(c);
		cod_job_free(d);
	}
}

static void test_dup_is_deep(void **state)
{
	(void)state;
	const char *spec = round_trip_specs[0];
	struct cod_job *a = cod_job_parse(spec, strlen(spec), NULL);
	assert_non_null(a);
	struct cod_job *b = cod_job_dup(a);
	assert_ptr_not_equal(a->tasks, b->tasks);
	assert_ptr_not_equal(a->tasks[0].engine.params, b->tasks[0].engine.params);
	free(b->tasks[0].name);
	b->tasks[0].name = xstrdup("other");
	json_object_set_new(b->tasks[0].engine.params, "Image", json_string("alpine"));
	assert_string_equal(a->tasks[0].name, "main");
	assert_string_equal(json_string_value(json_object_get(a->tasks[0].engine.params, "Image")), "busybox");
	assert_false(cod_job_spec_equal(a, b));
	cod_job_free(a);
	cod_job_free(b);
	cod_job_free(NULL);
	assert_null(cod_job_dup(NULL));
}

/* ----------------------------------------------------------- encodings */

static void test_job_state_encoding(void **state)
{
	(void)state;
	struct cod_job *job = xcalloc(1, sizeof(*job));
	job->type = COD_JOB_OPS;
	job->state.type = COD_JOB_RUNNING;
	job->state.message = xstrdup("ok");
	job->version = 2;
	json_t *j = cod_job_to_json(job);
	assert_string_equal(json_string_value(json_object_get(j, "Type")), "ops");
	json_t *st = json_object_get(j, "State");
	assert_string_equal(json_string_value(json_object_get(st, "StateType")), "Running");
	assert_int_equal(json_integer_value(json_object_get(j, "Version")), 2);
	struct cod_job *back = cod_job_from_json(j, NULL);
	assert_non_null(back);
	assert_int_equal(back->state.type, COD_JOB_RUNNING);
	json_decref(j);
	cod_job_free(job);
	cod_job_free(back);

	assert_string_equal(cod_job_state_name(COD_JOB_PENDING), "Pending");
	assert_int_equal(cod_job_state_parse("stopped"), COD_JOB_STOPPED);
	assert_int_equal(cod_job_state_parse("nope"), -1);
	assert_true(cod_job_state_terminal(COD_JOB_COMPLETED));
	assert_false(cod_job_state_terminal(COD_JOB_RUNNING));
	assert_true(cod_job_state_rerunnable(COD_JOB_FAILED));
	assert_false(cod_job_state_rerunnable(COD_JOB_QUEUED));
	assert_string_equal(cod_job_type_name(COD_JOB_SERVICE), "service");
	assert_string_equal(cod_job_type_name(COD_JOB_TYPE_UNSET), "");
	assert_int_equal(cod_job_type_parse("Batch"), COD_JOB_BATCH);
	assert_int_equal(cod_job_type_parse("x"), -1);
}

static void test_enum_names(void **state)
{
	(void)state;
	static const char *const exec_names[] = {
		"Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected", "BidAccepted",
		"Running", "Publishing", "BidRejected", "Completed", "Failed", "Cancelled", "Preparing",
	};
	for (int i = 0; i < (int)COD_ARRAY_SIZE(exec_names); i++)
		assert_string_equal(cod_exec_state_name((enum cod_exec_state)i), exec_names[i]);
	assert_true(cod_exec_state_terminal(COD_EXEC_ASK_FOR_BID_REJECTED));
	assert_true(cod_exec_state_terminal(COD_EXEC_CANCELLED));
	assert_false(cod_exec_state_terminal(COD_EXEC_RUNNING));
	assert_false(cod_exec_state_terminal(COD_EXEC_PREPARING));
	assert_true(cod_exec_state_discarded(COD_EXEC_FAILED));
	assert_false(cod_exec_state_discarded(COD_EXEC_COMPLETED));
	assert_string_equal(cod_exec_desired_name(COD_DESIRED_STOPPED), "Stopped");
	assert_string_equal(cod_network_type_name(COD_NET_HTTP), "HTTP");
	assert_int_equal(cod_network_type_parse(" bridge "), COD_NET_BRIDGE);
	assert_int_equal(cod_network_type_parse("http"), COD_NET_HTTP);
	assert_int_equal(cod_network_type_parse("wifi"), -1);
	assert_string_equal(cod_node_membership_name(COD_NODE_APPROVED), "APPROVED");
	assert_int_equal(cod_node_membership_parse("rejected"), COD_NODE_REJECTED);
	assert_string_equal(cod_node_connection_name(COD_NODE_CONNECTED), "CONNECTED");
	assert_int_equal(cod_node_connection_parse("DISCONNECTED"), COD_NODE_DISCONNECTED);
	assert_int_equal(cod_node_connection_parse("x"), -1);
}

static const char *execution_json =
	"{\"ID\":\"e-1\",\"Namespace\":\"default\",\"EvalID\":\"ev-1\",\"Name\":\"n\",\"NodeID\":\"node-1\","
	"\"JobID\":\"j-1\",\"Job\":{\"ID\":\"j-1\",\"Type\":\"batch\",\"Count\":1,\"Tasks\":[{\"Name\":\"main\","
	"\"Engine\":{\"Type\":\"noop\"}}],\"State\":{\"StateType\":\"Running\"}},\"JobVersion\":1,"
	"\"AllocatedResources\":{\"Tasks\":{\"main\":{\"CPU\":0.5,\"Memory\":536870912,\"Disk\":0,\"GPU\":1}}},"
	"\"DesiredState\":{\"StateType\":1,\"Message\":\"go\"},"
	"\"ComputeState\":{\"StateType\":9,\"Message\":\"done\",\"Details\":{\"k\":\"v\"}},"
	"\"PublishedResult\":{\"Type\":\"urlDownload\",\"Params\":{\"URL\":\"http://x/e-1.tar.gz\"}},"
	"\"RunOutput\":{\"Stdout\":\"hi\\n\",\"StdoutTruncated\":false,\"stderr\":\"oops\","
	"\"StderrTruncated\":true,\"ExitCode\":3,\"ErrorMsg\":\"\"},"
	"\"PreviousExecution\":\"\",\"NextExecution\":\"\",\"FollowupEvalID\":\"\",\"PartitionIndex\":0,"
	"\"Revision\":4,\"CreateTime\":1700000000000000000,\"ModifyTime\":1700000000000000001}";

static void test_execution(void **state)
{
	(void)state;
	json_t *in = cod_json_parse(execution_json, strlen(execution_json), NULL);
	assert_non_null(in);
	struct cod_error *err = NULL;
	struct cod_execution *e = cod_execution_from_json(in, &err);
	if (!e)
		show_error(err);
	assert_non_null(e);
	assert_string_equal(e->id, "e-1");
	assert_non_null(e->job);
	assert_int_equal(e->job->state.type, COD_JOB_RUNNING);
	assert_string_equal(e->alloc_task, "main");
	assert_true(e->allocated.cpu == 0.5);
	assert_int_equal(e->allocated.memory, 536870912);
	assert_int_equal(e->allocated.gpu, 1);
	assert_int_equal(e->desired_state.type, COD_DESIRED_RUNNING);
	assert_int_equal(e->compute_state.type, COD_EXEC_COMPLETED);
	assert_string_equal(cod_kvlist_get(&e->compute_state.details, "k"), "v");
	assert_string_equal(e->run_output.stderr_text, "oops");
	assert_true(e->run_output.stderr_truncated);
	assert_int_equal(e->run_output.exit_code, 3);
	assert_int_equal(e->create_time, 1700000000000000000LL);

	json_t *out = cod_execution_to_json(e);
	/* Execution states are integers, the stderr key is lowercase. */
	json_t *cs = json_object_get(out, "ComputeState");
	assert_true(json_is_integer(json_object_get(cs, "StateType")));
	assert_int_equal(json_integer_value(json_object_get(cs, "StateType")), 9);
	assert_true(json_is_integer(json_object_get(json_object_get(out, "DesiredState"), "StateType")));
	json_t *ro = json_object_get(out, "RunOutput");
	assert_string_equal(json_string_value(json_object_get(ro, "stderr")), "oops");
	assert_null(json_object_get(ro, "Stderr"));
	/* The embedded job keeps its string state. */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(out, "Job"), "State"), "StateType")),
			    "Running");
	assert_true(json_equal(in, out));

	struct cod_execution *d = cod_execution_dup(e);
	json_t *out2 = cod_execution_to_json(d);
	assert_true(json_equal(out, out2));
	assert_ptr_not_equal(d->job, e->job);

	/* A node's results replace RunOutput and PublishedResult whole; a
	 * part that is not an object, or does not decode, changes nothing. */
	json_t *run = json_pack("{s:s, s:i}", "Stdout", "hi", "ExitCode", 0);
	json_t *pub = json_pack("{s:s}", "Type", "local");
	cod_execution_set_results(d, run, pub);
	assert_string_equal(d->run_output.stdout_text, "hi");
	assert_true(cod_str_empty(d->run_output.stderr_text));
	assert_int_equal(d->run_output.exit_code, 0);
	assert_string_equal(d->published_result.type, "local");
	json_t *badrun = json_pack("{s:s}", "ExitCode", "three");
	json_t *notobj = json_string("x");
	cod_execution_set_results(d, badrun, notobj);
	assert_string_equal(d->run_output.stdout_text, "hi");
	assert_string_equal(d->published_result.type, "local");
	cod_execution_set_results(d, NULL, NULL);
	assert_string_equal(d->published_result.type, "local");
	json_decref(run);
	json_decref(pub);
	json_decref(badrun);
	json_decref(notobj);

	/* Names are accepted for states too, and unknown keys are ignored. */
	json_t *alt = json_pack("{s:s, s:{s:s}, s:i}", "ID", "e-2", "ComputeState", "StateType", "BidAccepted",
				"SomethingNew", 1);
	struct cod_execution *e2 = cod_execution_from_json(alt, &err);
	assert_non_null(e2);
	assert_int_equal(e2->compute_state.type, COD_EXEC_BID_ACCEPTED);
	json_t *bad = json_pack("{s:{s:i}}", "ComputeState", "StateType", 99);
	assert_null(cod_execution_from_json(bad, &err));
	assert_non_null(strstr(err->message, "ComputeState.StateType"));
	cod_error_free(err);

	json_decref(in);
	json_decref(out);
	json_decref(out2);
	json_decref(alt);
	json_decref(bad);
	cod_execution_free(e);
	cod_execution_free(d);
	cod_execution_free(e2);
	cod_execution_free(NULL);
}

/* cod_schema_dumps() writes what json_dumps() writes of the encoded tree,
 * byte for byte: every reference job, an execution embedding its job, an
 * evaluation, a node, and strings that need escaping or are not UTF-8. */
static void expect_same_text(const struct cod_schema *schema, const void *obj)
{
	json_t *tree = cod_schema_encode(schema, obj);
	char *want = json_dumps(tree, JSON_COMPACT);
	json_decref(tree);
	char *got = cod_schema_dumps(schema, obj);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
	free(got);
}

static void test_dumps_matches_jansson(void **state)
{
	(void)state;
	DIR *d = opendir(REF_JOBS);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", REF_JOBS, de->d_name);
		size_t len;
		char *text = read_text(path, &len);
		struct cod_job *job = text ? cod_job_parse(text, len, NULL) : NULL;
		if (job) {
			expect_same_text(&cod_job_schema, job);
			n++;
		}
		cod_job_free(job);
		free(text);
		free(path);
	}
	if (d)
		closedir(d);

	json_t *in = cod_json_parse(execution_json, strlen(execution_json), NULL);
	struct cod_execution *e = cod_execution_from_json(in, NULL);
	assert_non_null(e);
	expect_same_text(&cod_execution_schema, e);
	/* escapes, control characters, non-ASCII text, and a value that is
	 * not UTF-8 (encoded as "") */
	free(e->compute_state.message);
	e->compute_state.message = xstrdup("quote \" backslash \\ tab \t nl \n bell \x07 del \x7f / é ✓ 😀");
	free(e->run_output.stdout_text);
	e->run_output.stdout_text = xstrdup("bad \xc3\x28 utf-8 \xed\xa0\x80");
	cod_kvlist_set(&e->compute_state.details, "kéy\n", "v\x01");
	expect_same_text(&cod_execution_schema, e);
	free(e->run_output.stdout_text);
	e->run_output.stdout_text = xstrdup("overlong \xc0\xaf, beyond \xf4\x90\x80\x80, cut \xe2\x9c");
	expect_same_text(&cod_execution_schema, e);
	/* each character that is escaped or not ASCII, at every position of
	 * the first eight-byte words the writer scans at once */
	static const char *const specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xc3"};
	for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
		for (size_t pos = 0; pos <= 17; pos++) {
			free(e->compute_state.message);
			e->compute_state.message = xasprintf("%.*s%s%.*s", (int)pos, "abcdefghijklmnopq", specials[k],
							     (int)(17 - pos), "ABCDEFGHIJKLMNOPQ");
			expect_same_text(&cod_execution_schema, e);
		}
	}
	e->allocated.cpu = 0.1;
	e->create_time = -5;
	expect_same_text(&cod_execution_schema, e);
	/* the allocation's task name is an object key */
	free(e->alloc_task);
	e->alloc_task = xstrdup("t\"ask\xff");
	expect_same_text(&cod_execution_schema, e);
	free(e->alloc_task);
	e->alloc_task = NULL;
	expect_same_text(&cod_execution_schema, e);
	cod_execution_free(e);
	json_decref(in);

	char id[] = "ev-1", job[] = "j-1", trig[] = "job-register";
	struct cod_evaluation ev = {.id = id, .job_id = job, .triggered_by = trig, .priority = 50};
	expect_same_text(&cod_evaluation_schema, &ev);

	struct cod_node_state *node = xcalloc(1, sizeof(*node));
	node->info.node_id = xstrdup("node-1");
	cod_kvlist_set(&node->info.labels, "zone", "a");
	node->info.has_compute = true;
	node->info.compute.max_capacity.cpu = 1.5;
	node->membership = COD_NODE_APPROVED;
	expect_same_text(&cod_node_state_schema, node);
	cod_node_free(node);
	print_message("%zu reference jobs compared\n", n);
}

static void test_evaluation(void **state)
{
	(void)state;
	char id[] = "ev-1", ns[] = "default", job[] = "j-1", trig[] = "job-register", type[] = "batch",
	     status[] = "pending";
	struct cod_evaluation ev = {
		.id = id, .namespace_ = ns, .job_id = job, .triggered_by = trig,
		.type = type, .status = status, .priority = 50, .create_time = 5,
	};
	json_t *j = cod_evaluation_to_json(&ev);
	assert_string_equal(json_string_value(json_object_get(j, "TriggeredBy")), "job-register");
	assert_int_equal(json_integer_value(json_object_get(j, "Priority")), 50);
	struct cod_evaluation *back = cod_evaluation_from_json(j, NULL);
	assert_non_null(back);
	assert_string_equal(back->status, "pending");
	assert_int_equal(back->create_time, 5);
	json_t *j2 = cod_evaluation_to_json(back);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	cod_evaluation_free(back);
}

static void test_history(void **state)
{
	(void)state;
	struct cod_history_event *h = xcalloc(1, sizeof(*h));
	h->seq_num = 7;
	h->type = COD_HISTORY_EXECUTION;
	h->job_id = xstrdup("j-1");
	h->execution_id = xstrdup("e-1");
	h->message = xstrdup("bid accepted");
	h->topic = xstrdup("Scheduling");
	h->event_time = 11;
	h->time = 12;
	cod_kvlist_set(&h->details, "IsError", "false");
	h->has_exec_state = true;
	h->exec_state_prev = COD_EXEC_NEW;
	h->exec_state_new = COD_EXEC_BID_ACCEPTED;
	json_t *j = cod_history_to_json(h);
	assert_string_equal(json_string_value(json_object_get(j, "Type")), "ExecutionLevel");
	json_t *ev = json_object_get(j, "Event");
	assert_string_equal(json_string_value(json_object_get(ev, "Message")), "bid accepted");
	assert_int_equal(json_integer_value(json_object_get(ev, "Timestamp")), 11);
	json_t *es = json_object_get(j, "ExecutionState");
	assert_int_equal(json_integer_value(json_object_get(es, "Previous")), 1);
	assert_int_equal(json_integer_value(json_object_get(es, "New")), 5);
	assert_null(json_object_get(j, "JobState"));

	struct cod_history_event *back = cod_history_from_json(j, NULL);
	assert_non_null(back);
	assert_true(back->has_exec_state);
	assert_false(back->has_job_state);
	assert_int_equal(back->exec_state_new, COD_EXEC_BID_ACCEPTED);
	assert_string_equal(cod_kvlist_get(&back->details, "IsError"), "false");
	json_t *j2 = cod_history_to_json(back);
	assert_true(json_equal(j, j2));
	json_decref(j2);
	cod_history_free(back);

	/* A job-level event carries job states as strings. */
	json_decref(j);
	h->type = COD_HISTORY_JOB;
	h->has_exec_state = false;
	h->has_job_state = true;
	h->job_state_prev = COD_JOB_PENDING;
	h->job_state_new = COD_JOB_RUNNING;
	j = cod_history_to_json(h);
	assert_string_equal(json_string_value(json_object_get(j, "Type")), "JobLevel");
	json_t *js = json_object_get(j, "JobState");
	assert_string_equal(json_string_value(json_object_get(js, "Previous")), "Pending");
	assert_string_equal(json_string_value(json_object_get(js, "New")), "Running");
	assert_null(json_object_get(j, "ExecutionState"));
	json_decref(j);
	cod_history_free(h);
}

static void test_node(void **state)
{
	(void)state;
	struct cod_node_state *n = xcalloc(1, sizeof(*n));
	n->info.node_id = xstrdup("node-1");
	n->info.node_type = xstrdup("Compute");
	cod_kvlist_set(&n->info.labels, "zone", "a");
	cod_strlist_add(&n->info.supported_protocols, "ncl/v1");
	n->info.has_compute = true;
	cod_strlist_add(&n->info.compute.engines, "docker");
	n->info.compute.max_capacity.cpu = 4;
	n->info.compute.max_capacity.memory = 8ULL << 30;
	n->info.compute.address = xstrdup("10.0.0.1");
	n->info.compute.running_executions = 2;
	n->info.version = xstrdup("v1.0.0");
	n->membership = COD_NODE_APPROVED;
	n->connection = COD_NODE_CONNECTED;
	n->last_heartbeat = 99;
	n->last_compute_seq = 5;
	json_t *j = cod_node_to_json(n);
	assert_string_equal(json_string_value(json_object_get(j, "Membership")), "APPROVED");
	assert_string_equal(json_string_value(json_object_get(j, "Connection")), "CONNECTED");
	json_t *cs = json_object_get(j, "ConnectionState");
	assert_string_equal(json_string_value(json_object_get(cs, "Status")), "CONNECTED");
	assert_int_equal(json_integer_value(json_object_get(cs, "LastHeartbeat")), 99);
	json_t *info = json_object_get(j, "Info");
	json_t *ci = json_object_get(info, "ComputeNodeInfo");
	assert_string_equal(json_string_value(json_object_get(ci, "address")), "10.0.0.1");
	assert_non_null(json_object_get(ci, "QueueCapacity"));
	assert_true(json_is_real(json_object_get(json_object_get(ci, "MaxCapacity"), "CPU")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(info, "BacalhauVersion"), "GitVersion")),
		"v1.0.0");

	struct cod_node_state *back = cod_node_from_json(j, NULL);
	assert_non_null(back);
	assert_true(back->info.has_compute);
	assert_int_equal(back->info.compute.max_capacity.memory, 8ULL << 30);
	assert_int_equal(back->connection, COD_NODE_CONNECTED);
	json_t *j2 = cod_node_to_json(back);
	assert_true(json_equal(j, j2));

	struct cod_node_state *d = cod_node_dup(n);
	json_t *j3 = cod_node_to_json(d);
	assert_true(json_equal(j, j3));

	json_t *ij = cod_node_info_to_json(&n->info);
	assert_string_equal(json_string_value(json_object_get(ij, "NodeID")), "node-1");

	/* A requester has no ComputeNodeInfo. */
	n->info.has_compute = false;
	json_t *j4 = cod_node_info_to_json(&n->info);
	assert_null(json_object_get(j4, "ComputeNodeInfo"));

	json_t *rj = cod_resources_to_json(&n->info.compute.max_capacity);
	assert_int_equal(json_integer_value(json_object_get(rj, "Memory")), 8LL << 30);

	json_decref(j);
	json_decref(j2);
	json_decref(j3);
	json_decref(j4);
	json_decref(ij);
	json_decref(rj);
	cod_node_free(n);
	cod_node_free(back);
	cod_node_free(d);
}

/* ------------------------------------------------------------ normalize */

static struct cod_job *parse_ok(const char *text)
{
	struct cod_error *err = NULL;
	struct cod_job *job = cod_job_parse(text, strlen(text), &err);
	if (!job)
		show_error(err);
	assert_non_null(job);
	return job;
}

static bool has_warning(const struct cod_strlist *w, const char *needle)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->items[i], needle))
			return true;
	return false;
}

static void test_normalize_count(void **state)
{
	(void)state;
	static const struct {
		const char *type;
		const char *count;
		int64_t want;
	} rows[] = {
		{"batch", NULL, 1}, {"service", NULL, 1}, {"batch", "0", 0}, {"batch", "5", 5},
		{"ops", NULL, 0},   {"daemon", NULL, 0},  {"daemon", "1", 0}, {"ops", "3", 3},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		char *text = xasprintf("Type: %s\n%s%s%s" DOCKER_TASK, rows[i].type, rows[i].count ? "Count: " : "",
				       rows[i].count ? rows[i].count : "", rows[i].count ? "\n" : "");
		struct cod_job *job = parse_ok(text);
		assert_int_equal(job->count_set, rows[i].count != NULL);
		cod_job_normalize(job, NULL, NULL);
		assert_int_equal(job->count, rows[i].want);
		assert_true(job->count_set);
		cod_job_free(job);
		free(text);
	}
}

static void test_normalize_fields(void **state)
{
	(void)state;
	const char *text = "Type: batch\nNamespace: \"  \"\nMeta: {bacalhau.org/requester.id: x, cod.io/y: z, keep: k}\n"
			   "State: {StateType: Completed}\nVersion: 9\nCreateTime: 5\n"
			   "Tasks:\n"
			   "  - Name: ' first '\n    Engine: {Type: ' DOCKER ', Params: {Image: busybox}}\n"
			   "    Publisher: {Type: Local}\n"
			   "    InputSources: [{Target: /i, Source: {Type: URLDOWNLOAD, Params: {URL: 'http://x'}}},"
			   " {Target: /j, Source: {Type: localdirectory, Params: {SourcePath: /x}}}]\n"
			   "  - Name: second\n    Engine: {Type: noop}\n";
	struct cod_job *job = parse_ok(text);
	struct cod_strlist w = {0};
	cod_job_normalize(job, NULL, &w);
	assert_string_equal(job->namespace_, "default");
	assert_int_equal(job->meta.n, 1);
	assert_string_equal(cod_kvlist_get(&job->meta, "keep"), "k");
	assert_true(has_warning(&w, "\"bacalhau.org/requester.id\""));
	assert_true(has_warning(&w, "\"cod.io/y\""));
	assert_true(has_warning(&w, "job has 2 tasks; only the first (\"first\") is kept"));
	assert_true(has_warning(&w, "set by the server"));
	assert_int_equal(job->ntasks, 1);
	assert_int_equal(job->state.type, COD_JOB_UNDEFINED);
	assert_int_equal(job->version, 0);
	assert_int_equal(job->create_time, 0);
	assert_string_equal(job->tasks[0].name, "first");
	assert_string_equal(job->tasks[0].engine.type, "docker");
	assert_string_equal(job->tasks[0].publisher.type, "local");
	assert_string_equal(job->tasks[0].inputs[0].source.type, "urlDownload");
	assert_string_equal(job->tasks[0].inputs[1].source.type, "localDirectory");
	assert_int_equal(cod_job_validate(job, NULL), 0);
	cod_strlist_release(&w);
	cod_job_free(job);

	/* Unknown engine types are trimmed but keep their spelling. */
	job = parse_ok("Type: batch\nTasks: [{Name: a, Engine: {Type: ' Flibble '}}]\n");
	cod_job_normalize(job, NULL, NULL);
	assert_string_equal(job->tasks[0].engine.type, "Flibble");
	cod_job_free(job);
}

static void test_normalize_defaults(void **state)
{
	(void)state;
	struct cod_job_defaults d = {
		.batch = {.priority = 10, .cpu = "1", .memory = "1Gb", .disk = "", .gpu = NULL,
			  .publisher_type = "local", .execution_timeout = 60, .queue_timeout = 0,
			  .total_timeout = 600},
	};
	struct cod_job *job =
		parse_ok("Type: batch\n" DOCKER_TASK "    Resources: {Memory: 2Gb}\n    Timeouts: {ExecutionTimeout: 5}\n");
	cod_job_normalize(job, &d, NULL);
	assert_int_equal(job->priority, 10);
	const struct cod_task *t = &job->tasks[0];
	assert_string_equal(t->resources.cpu, "1");
	assert_string_equal(t->resources.memory, "2Gb");
	assert_null(t->resources.disk);
	assert_null(t->resources.gpu);
	assert_string_equal(t->publisher.type, "local");
	assert_int_equal(t->timeouts.execution_timeout, 5);
	assert_int_equal(t->timeouts.total_timeout, 600);
	cod_job_free(job);

	/* Defaults of another type do not apply; explicit values win. */
	job = parse_ok("Type: ops\nPriority: 3\n" DOCKER_TASK "    Publisher: {Type: noop}\n");
	cod_job_normalize(job, &d, NULL);
	assert_int_equal(job->priority, 3);
	assert_null(job->tasks[0].resources.cpu);
	assert_string_equal(job->tasks[0].publisher.type, "noop");
	cod_job_free(job);

	/* ResultPaths are valid once the default publisher is applied. */
	job = parse_ok("Type: batch\n" DOCKER_TASK "    ResultPaths: [{Name: o, Path: /o}]\n");
	assert_int_equal(cod_job_validate(job, NULL), -1);
	cod_job_normalize(job, &d, NULL);
	assert_int_equal(cod_job_validate(job, NULL), 0);
	cod_job_free(job);
}

static void test_normalize_wasm_legacy(void **state)
{
	(void)state;
	const char *text = "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: wasm\n      Params:\n"
			   "        EntryModule:\n          Alias: ''\n          Target: ''\n"
			   "          Source: {Type: inline, Params: {URL: 'data:,x'}}\n"
			   "        ImportModules:\n          - Alias: lib\n            Source: {Type: inline, Params: {URL: 'data:,y'}}\n"
			   "        Entrypoint: _start\n";
	struct cod_job *job = parse_ok(text);
	/* Before normalizing, the object form is not a valid EntryModule. */
	struct cod_error *err = NULL;
	assert_int_equal(cod_job_validate(job, &err), -1);
	assert_true(has_detail(err, "Tasks[0].Engine.Params.EntryModule: expected a string, got object"));
	cod_error_free(err);
	err = NULL;

	struct cod_strlist w = {0};
	cod_job_normalize(job, NULL, &w);
	assert_true(has_warning(&w, "legacy"));
	const struct cod_task *t = &job->tasks[0];
	assert_int_equal(t->ninputs, 2);
	assert_string_equal(t->inputs[0].target, "/cod/wasm/entry.wasm");
	assert_string_equal(t->inputs[0].source.type, "inline");
	assert_string_equal(t->inputs[1].target, "/cod/wasm/lib.wasm");
	assert_string_equal(json_string_value(json_object_get(t->engine.params, "EntryModule")),
			    "/cod/wasm/entry.wasm");
	assert_string_equal(json_string_value(json_array_get(json_object_get(t->engine.params, "ImportModules"), 0)),
			    "/cod/wasm/lib.wasm");
	if (cod_job_validate(job, &err) < 0)
		show_error(err);
	assert_null(err);
	cod_strlist_release(&w);
	cod_job_free(job);
}

/* ---------------------------------------------------- equal, diff, summary */

static void test_spec_equal(void **state)
{
	(void)state;
	struct cod_job *a = parse_ok("Type: batch\n" DOCKER_TASK "    Resources: {Memory: 1GB}\n");
	struct cod_job *b = parse_ok("ID: j-123\nType: batch\nMeta: {bacalhau.org/x: y}\n" DOCKER_TASK
				     "    Resources: {Memory: 1gb}\n");
	b->state.type = COD_JOB_RUNNING;
	b->version = 4;
	b->modify_time = 77;
	assert_true(cod_job_spec_equal(a, b));
	cod_kvlist_set(&b->labels, "x", "y");
	assert_false(cod_job_spec_equal(a, b));
	assert_true(cod_job_spec_equal(NULL, NULL));
	assert_false(cod_job_spec_equal(a, NULL));
	cod_job_free(a);
	cod_job_free(b);
}

static void test_diff(void **state)
{
	(void)state;
	struct cod_job *a = parse_ok("Name: d\nType: batch\n" DOCKER_TASK);
	struct cod_job *b = parse_ok("Name: d\nType: batch\nTasks:\n  - Name: main\n    Engine:\n"
				     "      Type: docker\n      Params:\n        Image: alpine\n"
				     "    Env: {A: b}\n");
	char *same = cod_job_diff(a, a);
	for (char *line = same; *line; line = strchr(line, '\n') + 1)
		assert_int_equal(line[0], ' ');
	assert_non_null(strstr(same, " Name: d\n"));
	free(same);

	char *d = cod_job_diff(a, b);
	assert_non_null(strstr(d, "-      Image: busybox:1.37.0\n"));
	assert_non_null(strstr(d, "+      Image: alpine\n"));
	assert_non_null(strstr(d, "+  Env:\n"));
	assert_non_null(strstr(d, " Name: d\n"));
	assert_null(strstr(d, "-Name"));
	free(d);

	/* From nothing: every line is added. */
	d = cod_job_diff(NULL, b);
	for (char *line = d; *line; line = strchr(line, '\n') + 1)
		assert_int_equal(line[0], '+');
	free(d);
	cod_job_free(a);
	cod_job_free(b);
}

static void test_engine_summary(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *want;
	} rows[] = {
		{"Type: batch\n" DOCKER_TASK, "docker busybox:1.37.0"},
		{"Type: batch\nTasks: [{Name: a, Engine: {Type: wasm, Params: {EntryModule: wasm.main}}}]\n",
		 "wasm wasm.main"},
		{"Type: batch\nTasks: [{Name: a, Engine: {Type: NOOP}}]\n", "noop"},
		{"Type: batch\nTasks: [{Name: a, Engine: {Type: ' flibble '}}]\n", "flibble"},
		{"Type: batch\nTasks: [{Name: a, Engine: {Type: docker}}]\n", "docker"},
		{"Type: batch\n", ""},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		struct cod_job *job = parse_ok(rows[i].spec);
		char *s = cod_job_engine_summary(job);
		assert_string_equal(s, rows[i].want);
		free(s);
		cod_job_free(job);
	}
}

/* ----------------------------------------------------------------- lists */

static void test_lists(void **state)
{
	(void)state;
	struct cod_kvlist l = {0};
	cod_kvlist_set(&l, "a", "1");
	cod_kvlist_set(&l, "b", "2");
	cod_kvlist_set(&l, "a", "3");
	assert_int_equal(l.n, 2);
	assert_string_equal(cod_kvlist_get(&l, "a"), "3");
	assert_string_equal(l.items[0].key, "a");
	assert_null(cod_kvlist_get(&l, "c"));
	struct cod_kvlist c = {0};
	cod_kvlist_copy(&c, &l);
	assert_true(cod_kvlist_del(&l, "a"));
	assert_false(cod_kvlist_del(&l, "a"));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].key, "b");
	assert_string_equal(cod_kvlist_get(&c, "a"), "3");
	cod_kvlist_release(&l);
	cod_kvlist_release(&c);
	assert_int_equal(l.n, 0);

	struct cod_strlist s = {0}, s2 = {0};
	cod_strlist_add(&s, "x");
	cod_strlist_add(&s, "y");
	cod_strlist_copy(&s2, &s);
	assert_int_equal(s2.n, 2);
	assert_string_equal(s2.items[1], "y");
	cod_strlist_release(&s);
	cod_strlist_release(&s2);
}

static void test_decode_message_summary(void **state)
{
	(void)state;
	struct cod_error *err = NULL;
	const char *text = "Type: batch\nCount: a\nPriority: b\nFoo: 1\n";
	assert_null(cod_job_parse(text, strlen(text), &err));
	assert_int_equal(err->code, COD_E_VALIDATION);
	assert_int_equal(err->ndetails, 3);
	assert_string_equal(err->message, "Count: expected an integer, got string (and 2 more problems)");
	cod_error_free(err);
	err = NULL;
	/* Keys differing only in case are the same field. */
	text = "{\"Type\":\"batch\",\"type\":\"ops\"}";
	assert_null(cod_job_parse(text, strlen(text), &err));
	assert_non_null(strstr(err->message, "given twice"));
	cod_error_free(err);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_reference_jobs),
		cmocka_unit_test(test_empty_specs),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_dup_is_deep),
		cmocka_unit_test(test_job_state_encoding),
		cmocka_unit_test(test_enum_names),
		cmocka_unit_test(test_execution),
		cmocka_unit_test(test_evaluation),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_node),
		cmocka_unit_test(test_normalize_count),
		cmocka_unit_test(test_normalize_fields),
		cmocka_unit_test(test_normalize_defaults),
		cmocka_unit_test(test_normalize_wasm_legacy),
		cmocka_unit_test(test_spec_equal),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_engine_summary),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_decode_message_summary),
		cmocka_unit_test(test_dumps_matches_jansson),
	};
	/* One cmocka test per spec case, so a failure names its case. */
	struct CMUnitTest tests[COD_ARRAY_SIZE(fixed) + COD_ARRAY_SIZE(cases)];
	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < COD_ARRAY_SIZE(cases); i++) {
		struct CMUnitTest *t = &tests[COD_ARRAY_SIZE(fixed) + i];
		memset(t, 0, sizeof(*t));
		t->name = cases[i].name;
		t->test_func = run_case;
		t->initial_state = (void *)&cases[i];
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
