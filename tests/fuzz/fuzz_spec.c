/*
 * fuzz_spec.c - job spec decoding, normalizing, validation and encoding on
 * arbitrary bytes (YAML or JSON).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/doc.h"
#include "model/model.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cod_job_defaults defaults = {
		.batch = {.priority = 50, .cpu = "500m", .memory = "512Mb", .publisher_type = "local",
			  .total_timeout = 3600},
		.ops = {.cpu = "1", .memory = "1Gb"},
	};
	struct cod_error *err = NULL;
	struct cod_job *job = cod_job_parse((const char *)data, size, &err);
	if (!job) {
		cod_error_free(err);
		return 0;
	}
	/* Encode before and after normalizing: both must re-decode. */
	json_t *raw = cod_job_to_json(job);
	struct cod_job *again = cod_job_from_json(raw, &err);
	if (!again)
		abort();
	if (!cod_job_spec_equal(job, again))
		abort();
	cod_job_free(again);

	struct cod_job *copy = cod_job_dup(job);
	struct cod_strlist warnings = {0};
	cod_job_normalize(job, &defaults, &warnings);
	cod_strlist_release(&warnings);
	if (cod_job_validate(job, &err) < 0) {
		cod_error_free(err);
		err = NULL;
	} else {
		struct cod_resources r;
		if (cod_task_resources(&job->tasks[0], &r, &err) < 0)
			abort(); /* validation accepted what resources refuse */
		char *fmt = cod_format_bytes(r.memory);
		free(fmt);
	}

	json_t *j = cod_job_to_json(job);
	struct cod_buf y = COD_BUF_INIT;
	cod_yaml_emit(j, &y);
	cod_buf_release(&y);
	char *text = cod_json_dumps(j, 0);
	struct cod_job *back = cod_job_parse(text, text ? strlen(text) : 0, &err);
	if (!back)
		abort(); /* what we encode must decode */
	cod_job_free(back);
	free(text);

	char *diff = cod_job_diff(copy, job);
	free(diff);
	char *summary = cod_job_engine_summary(job);
	free(summary);
	char *sel = cod_selector_format(&job->constraints);
	free(sel);

	json_decref(j);
	json_decref(raw);
	cod_job_free(copy);
	cod_job_free(job);
	return 0;
}
