/*
 * rootfs.c - one execution's root filesystem.
 *
 * Preferred: overlayfs with the image's unpacked rootfs as the read-only
 * lower dir and <exec>/rootfs/{upper,work} beside the mount point
 * <exec>/rootfs/merged. Starting costs one mount(2), whatever the image
 * size, and what the task writes lands in upper/ (measured for the disk
 * limit). When overlayfs cannot be mounted (no kernel support, an upper
 * dir on a file system overlayfs refuses, no privilege), the image rootfs
 * is copied into merged/ with `cp -a` instead, and the disk usage is the
 * growth of that copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

extern char **environ;

static int copy_tree(const char *from, const char *to, struct cod_error **err)
{
	cleanup_free char *src = xasprintf("%s/.", from);
	char *argv[] = {(char *)"cp", (char *)"-a", src, (char *)to, NULL};
	pid_t pid;
	int rc = posix_spawnp(&pid, "cp", NULL, NULL, argv, environ);
	if (rc != 0)
		return cod_error_set(err, COD_E_IO, "copy the image rootfs: spawn cp: %s", strerror(rc));
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cod_error_set(err, COD_E_IO, "copy the image rootfs \"%s\" to \"%s\" failed", from,
				     to);
	return 0;
}

int cod_oci_rootfs_create(const char *image_rootfs, const char *exec_dir, struct cod_oci_rootfs *r,
			  struct cod_error **err)
{
	memset(r, 0, sizeof(*r));
	r->dir = xasprintf("%s/rootfs", exec_dir);
	r->merged = xasprintf("%s/merged", r->dir);
	cleanup_free char *upper = xasprintf("%s/upper", r->dir), *work = xasprintf("%s/work", r->dir);
	/* start clean: a rerun on the same execution dir */
	umount2(r->merged, MNT_DETACH);
	cod_oci_rmtree(r->dir);
	if (cod_mkdir_p(r->merged, 0755, err) < 0 || cod_mkdir_p(upper, 0755, err) < 0 ||
	    cod_mkdir_p(work, 0700, err) < 0)
		return -1;
	/* volatile (Linux 5.10): no sync of the upper file system, which
	 * the unmount at the end would otherwise flush to the disk; the
	 * upper dir is thrown away with the execution, crash or not. Older
	 * kernels refuse the option: mounted without it then. */
	cleanup_free char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", image_rootfs, upper, work);
	cleanup_free char *vol = xasprintf("%s,volatile", opts);
	if (strlen(vol) < 4000 && !strpbrk(image_rootfs, ",:") &&
	    (mount("overlay", r->merged, "overlay", MS_NODEV, vol) == 0 ||
	     (errno == EINVAL && mount("overlay", r->merged, "overlay", MS_NODEV, opts) == 0))) {
		r->mounted = true;
		r->upper = steal_pointer(&upper);
		return 0;
	}
	cod_debug("oci", "overlayfs mount on \"%s\" failed (%s); copying the image rootfs", r->merged,
		  strerror(errno));
	if (copy_tree(image_rootfs, r->merged, err) < 0)
		return -1;
	r->copied = true;
	r->base_bytes = cod_oci_du(r->merged);
	return 0;
}

uint64_t cod_oci_rootfs_usage(const struct cod_oci_rootfs *r)
{
	if (r->mounted && r->upper)
		return cod_oci_du(r->upper);
	if (r->copied) {
		uint64_t now = cod_oci_du(r->merged);
		return now > r->base_bytes ? now - r->base_bytes : 0;
	}
	return 0;
}

void cod_oci_rootfs_destroy(struct cod_oci_rootfs *r)
{
	if (r->mounted && umount2(r->merged, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		cod_warn("oci", "unmount \"%s\": %s", r->merged, strerror(errno));
	if (r->dir && cod_oci_rmtree(r->dir) < 0)
		cod_debug("oci", "remove \"%s\": %s", r->dir, strerror(errno));
	free(r->dir);
	free(r->merged);
	free(r->upper);
	memset(r, 0, sizeof(*r));
}
