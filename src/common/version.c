#include "version.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/banned.h"

#ifndef COD_VERSION
#define COD_VERSION "0.0.0"
#endif
#ifndef COD_GIT_COMMIT
#define COD_GIT_COMMIT "unknown"
#endif

const char *cod_version_string(void)
{
	return "v" COD_VERSION;
}

static const char *arch_name(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#else
	static struct utsname u;
	uname(&u);
	return u.machine;
#endif
}

json_t *cod_version_json(void)
{
	char major[16] = "0", minor[16] = "0";
	sscanf(COD_VERSION, "%15[0-9].%15[0-9]", major, minor);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Major", major, "Minor", minor, "GitVersion",
			 cod_version_string(), "GitCommit", COD_GIT_COMMIT, "BuildDate", __DATE__ " " __TIME__, "GOOS",
			 "linux", "GOARCH", arch_name());
}
