/*
 * version.h - build version of this binary.
 */
#ifndef COD_VERSION_H
#define COD_VERSION_H

#include <jansson.h>

/* "v0.1.0" */
const char *cod_version_string(void);
/* Bacalhau's BuildVersionInfo {Major, Minor, GitVersion, GitCommit,
 * BuildDate, GOOS, GOARCH}. New reference. */
json_t *cod_version_json(void);

#endif
