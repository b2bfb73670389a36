/*
 * Kernel knobs of the new namespaces: names, sysctls, loopback, and every
 * write the helper makes to procfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "init.h"

/* CVE-2019-16884, CVE-2023-27561, CVE-2023-28642: a /proc from the image
 * (a symlink, a tmpfs) must not receive what we meant for procfs. */
int proc_write_fd(int fd, const char *path, const char *data, size_t len, struct init_error *err)
{
	struct statfs sfs;
	ssize_t n;

	if (fstatfs(fd, &sfs) < 0)
		return init_fail(err, errno, "fstatfs", path);
	if (sfs.f_type != PROC_SUPER_MAGIC)
		return init_fail(err, EXDEV, "fstatfs", path);
	/* procfs takes a value in one write; a short write is a failure. */
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return init_fail(err, errno, "write", path);
	if ((size_t)n != len)
		return init_fail(err, EIO, "write", path);
	return 0;
}

int proc_write(const char *path, const char *data, size_t len, struct init_error *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return init_fail(err, errno, "open", path);
	return proc_write_fd(fd, path, data, len, err);
}

int op_hostname(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (sethostname(op->s[0], op->len[0]) < 0)
		return init_fail(err, errno, "sethostname", op->s[0]);
	return 0;
}

int op_domainname(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (setdomainname(op->s[0], op->len[0]) < 0)
		return init_fail(err, errno, "setdomainname", op->s[0]);
	return 0;
}

/* The name stays beneath /proc/sys and follows no symlink, whatever it holds. */
int op_sysctl(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct open_how how = {
		.flags = O_WRONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_close_ int fd = -1;
	char path[4200];

	snprintf(path, sizeof(path), "/proc/sys/%s", op->s[0]);
	if (dir < 0)
		return init_fail(err, errno, "open", "/proc/sys");
	fd = (int)syscall(SYS_openat2, dir, op->s[0], &how, sizeof(how));
	if (fd < 0)
		return init_fail(err, errno, "openat2", path);
	return proc_write_fd(fd, path, op->s[1], op->len[1], err);
}

int op_loopback_up(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { .ifr_name = "lo" };

	if (fd < 0)
		return init_fail(err, errno, "socket", "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return init_fail(err, errno, "SIOCGIFFLAGS", "lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return init_fail(err, errno, "SIOCSIFFLAGS", "lo");
	return 0;
}

int op_oom_score_adj(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char val[24];
	int len = snprintf(val, sizeof(val), "%" PRId64, (int64_t)op->n[0]);

	return proc_write("/proc/self/oom_score_adj", val, (size_t)len, err);
}
