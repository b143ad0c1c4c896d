/*
 * ref.c - image references as Docker writes them.
 *
 *   busybox                  docker.io/library/busybox:latest
 *   busybox:1.36             docker.io/library/busybox:1.36
 *   library/busybox          docker.io/library/busybox:latest
 *   ghcr.io/org/img:tag      ghcr.io/org/img:tag
 *   host:5000/a/b@sha256:... host:5000/a/b@sha256:... (no tag)
 *
 * The first component is a registry when it holds a '.' or a ':' or is
 * "localhost"; otherwise the image is on Docker Hub, where one-component
 * names live under "library/". Grammar: distribution/reference.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define NAME_MAX_LEN 255

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool cod_oci_digest_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7))
		return false;
	const char *hex = digest + 7;
	size_t n = 0;
	for (; hex[n]; n++)
		if (!((hex[n] >= '0' && hex[n] <= '9') || (hex[n] >= 'a' && hex[n] <= 'f')))
			return false;
	return n == 64;
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_ok(const char *s, size_t n)
{
	if (!n || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (lower_alnum(s[i]))
			continue;
		/* a separator run */
		size_t j = i;
		while (j < n && !lower_alnum(s[j]))
			j++;
		size_t len = j - i;
		bool ok = (len == 1 && (s[i] == '.' || s[i] == '_' || s[i] == '-')) ||
			  (len == 2 && s[i] == '_' && s[i + 1] == '_');
		if (!ok) {
			ok = true;
			for (size_t k = i; k < j; k++)
				if (s[k] != '-')
					ok = false;
		}
		if (!ok)
			return false;
		i = j - 1;
	}
	return true;
}

static bool domain_ok(const char *s, size_t n)
{
	if (!n)
		return false;
	size_t host_end = n;
	/* [v6]:port is not supported; host[:port] is */
	const char *colon = memchr(s, ':', n);
	if (colon) {
		host_end = (size_t)(colon - s);
		size_t plen = n - host_end - 1;
		if (!plen || plen > 5)
			return false;
		for (size_t i = host_end + 1; i < n; i++)
			if (!isdigit((unsigned char)s[i]))
				return false;
	}
	if (!host_end)
		return false;
	for (size_t i = 0; i < host_end; i++) {
		char c = s[i];
		if (!(isalnum((unsigned char)c) || c == '.' || c == '-'))
			return false;
	}
	return s[0] != '.' && s[0] != '-' && s[host_end - 1] != '.' && s[host_end - 1] != '-';
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 128)
		return false;
	if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

static int bad(struct cod_error **err, const char *text, const char *why)
{
	cod_error_set(err, COD_E_VALIDATION, "invalid image reference \"%s\": %s", text, why);
	if (err)
		cod_error_hint(*err, "write it as Docker does: name[:tag][@sha256:digest], e.g. busybox:1.36 "
				     "or ghcr.io/org/image:tag");
	return -1;
}

int cod_oci_ref_parse(const char *text, struct cod_oci_ref *ref, struct cod_error **err)
{
	memset(ref, 0, sizeof(*ref));
	if (!text || !*text)
		return bad(err, text ? text : "", "it is empty");
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return bad(err, text, "it holds a space or a control character");
	cleanup_free char *copy = xstrdup(text);
	char *name = copy;

	/* @digest */
	char *at = strchr(name, '@');
	char *digest = NULL;
	if (at) {
		*at = '\0';
		digest = at + 1;
		if (!cod_oci_digest_valid(digest))
			return bad(err, text,
				   "the digest must be sha256: followed by 64 lowercase hex digits");
	}
	/* :tag (a ':' after the last '/') */
	char *slash = strrchr(name, '/');
	char *colon = strrchr(slash ? slash : name, ':');
	char *tag = NULL;
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
		if (!tag_ok(tag))
			return bad(err, text,
				   "the tag may hold letters, digits, '_', '.' and '-' (at most 128)");
	}
	/* registry */
	char *first_slash = strchr(name, '/');
	char *domain = NULL, *path = name;
	if (first_slash) {
		size_t dn = (size_t)(first_slash - name);
		if (memchr(name, '.', dn) || memchr(name, ':', dn) ||
		    (dn == 9 && !strncmp(name, "localhost", 9)) || memchr(name, ':', dn)) {
			*first_slash = '\0';
			domain = name;
			path = first_slash + 1;
			if (!domain_ok(domain, strlen(domain)))
				return bad(err, text, "the registry host is not valid");
		} else {
			for (size_t i = 0; i < dn; i++)
				if (isupper((unsigned char)name[i]))
					return bad(err, text, "repository names must be lowercase");
		}
	}
	if (!*path)
		return bad(err, text, "the repository name is empty");
	/* components */
	for (char *p = path;;) {
		char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		for (size_t i = 0; i < n; i++)
			if (isupper((unsigned char)p[i]))
				return bad(err, text, "repository names must be lowercase");
		if (!component_ok(p, n))
			return bad(err, text,
				   "each part of the name must be lowercase letters and digits, "
				   "separated by '.', '_', '__' or '-'");
		if (!end)
			break;
		p = end + 1;
	}
	if (!domain || !strcmp(domain, "index.docker.io") || !strcmp(domain, COD_OCI_DOCKER_HUB_HOST))
		domain = (char *)COD_OCI_DEFAULT_REGISTRY;
	bool hub = !strcmp(domain, COD_OCI_DEFAULT_REGISTRY);
	char *repo = hub && !strchr(path, '/') ? xasprintf("library/%s", path) : xstrdup(path);
	if (strlen(domain) + 1 + strlen(repo) > NAME_MAX_LEN) {
		free(repo);
		return bad(err, text, "the name is longer than 255 characters");
	}
	ref->registry = xstrdup(domain);
	ref->repository = repo;
	ref->digest = xstrdup_or_null(digest);
	ref->tag = xstrdup_or_null(tag ? tag : digest ? NULL : "latest");
	return 0;
}

void cod_oci_ref_release(struct cod_oci_ref *ref)
{
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

char *cod_oci_ref_string(const struct cod_oci_ref *ref)
{
	return xasprintf("%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
			 ref->tag ? ref->tag : "", ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

const char *cod_oci_ref_host(const struct cod_oci_ref *ref)
{
	return !strcmp(ref->registry, COD_OCI_DEFAULT_REGISTRY) ? COD_OCI_DOCKER_HUB_HOST : ref->registry;
}
