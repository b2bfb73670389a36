/*
 * The container's filesystem: rootfs, mounts, devices, pivot, masks.
 *
 * Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) and
 * mounted through the resulting fd (/proc/self/fd/N), so a symlink in the
 * image can neither redirect a mount (CVE-2021-30465) nor make us create
 * files outside it (CVE-2024-45310). Before the pivot, /proc is the host's
 * procfs, which resolves /proc/self to C even from a new pid namespace;
 * after it, /proc is the procfs an earlier OP_MOUNT gave the container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>

#include "init.h"

/* An O_PATH fd of path inside root, or -1 with errno. */
static int resolve(int root, const char *path, int flags)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | (uint64_t)flags,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	/* EAGAIN: a concurrent rename made the kernel unsure ".." stayed in root. */
	for (int tries = 0; tries < 16; tries++) {
		fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return (int)fd;
}

static int need_root(const struct init_state *st, struct init_error *err)
{
	if (st->rootfd < 0)
		return init_fail(err, EINVAL, "openat2", "no OP_ROOTFS before this op");
	return 0;
}

enum create { CREATE_NONE, CREATE_DIR, CREATE_FILE };

/*
 * Opens path in root, creating what is missing one component at a time on
 * the fd of its parent, itself resolved in root: mkdirat and O_CREAT|O_EXCL
 * never follow a symlink, and a dangling one ends in an error, not in a file
 * on the host (CVE-2024-45310).
 */
static int ensure(int root, const char *path, enum create last, struct init_error *err)
{
	char buf[PATH_MAX];
	_cleanup_close_ int parent = resolve(root, "/", O_DIRECTORY);
	char *p = buf;

	if (strlen(path) >= sizeof(buf))
		return init_fail(err, ENAMETOOLONG, "openat2", path);
	strcpy(buf, path);
	if (parent < 0)
		return init_fail(err, errno, "openat2", "/");
	for (;;) {
		char *end, save;
		int fd, is_last;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		end = strchrnul(p, '/');
		is_last = end[strspn(end, "/")] == '\0';
		save = *end;
		*end = '\0';
		fd = resolve(root, buf, 0);
		if (fd < 0 && errno == ENOENT) {
			if (is_last && last == CREATE_FILE) {
				int f = openat(parent, p, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC,
					       0644);
				if (f < 0 && errno != EEXIST)
					return init_fail(err, errno, "openat", buf);
				if (f >= 0)
					close(f);
			} else if (mkdirat(parent, p, 0755) < 0 && errno != EEXIST) {
				return init_fail(err, errno, "mkdirat", buf);
			}
			fd = resolve(root, buf, 0);
		}
		if (fd < 0)
			return init_fail(err, errno, "openat2", buf);
		close(parent);
		parent = fd;
		*end = save;
		p = end;
	}
	int out = parent;
	parent = -1; /* not closed on return: it is the result */
	return out;
}

int ensure_file_in_root(const struct init_state *st, const char *path, struct init_error *err)
{
	if (need_root(st, err) < 0)
		return -1;
	return ensure(st->rootfd, path, CREATE_FILE, err);
}

/* The parent directory of path (created if missing) and the last name in it. */
static int open_parent(int root, const char *path, char buf[PATH_MAX], const char **name,
		       struct init_error *err)
{
	size_t len = strlen(path);
	char *slash;

	if (len >= PATH_MAX)
		return init_fail(err, ENAMETOOLONG, "openat2", path);
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	slash = strrchr(buf, '/');
	*name = slash ? slash + 1 : buf;
	if (**name == '\0' || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
		return init_fail(err, EINVAL, "openat2", path);
	if (!slash)
		return ensure(root, ".", CREATE_DIR, err);
	*slash = '\0';
	return ensure(root, slash == buf ? "/" : buf, CREATE_DIR, err);
}

/* The MS_* flags a user namespace locks on a mount: a remount must repeat them. */
static unsigned long locked_flags(int fd)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_RDONLY, MS_RDONLY },     { ST_NOSUID, MS_NOSUID },
		{ ST_NODEV, MS_NODEV },       { ST_NOEXEC, MS_NOEXEC },
		{ ST_NOATIME, MS_NOATIME },   { ST_NODIRATIME, MS_NODIRATIME },
		{ ST_RELATIME, MS_RELATIME },
	};
	struct statvfs sv;
	unsigned long ms = 0;

	if (fstatvfs(fd, &sv) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sv.f_flag & map[i].st)
			ms |= map[i].ms;
	return ms;
}

/* A bind mount ignores MS_RDONLY and friends until it is remounted. */
static int remount(int fd, const char *path, unsigned long flags, struct init_error *err)
{
	char p[FDPATH_MAX];

	flags |= MS_REMOUNT | MS_BIND;
	if (mount(NULL, fdpath(p, fd), NULL, flags, NULL) == 0)
		return 0;
	if (errno == EPERM && mount(NULL, p, NULL, flags | locked_flags(fd), NULL) == 0)
		return 0;
	return init_fail(err, errno, "mount", path);
}

int op_root_propagation(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (mount(NULL, "/", NULL, op->n[0], NULL) < 0)
		return init_fail(err, errno, "mount", "/");
	return 0;
}

/* pivot_root needs the new root to be a mount point: bind it onto itself. */
int op_rootfs(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	/* N0 = 1: no mount namespace, only chroot later: nothing is mounted. */
	if (!op->n[0] && mount(op->s[0], op->s[0], NULL, MS_BIND | MS_REC, NULL) < 0)
		return init_fail(err, errno, "mount", op->s[0]);
	if (st->rootfd >= 0)
		close(st->rootfd);
	st->rootfd = open(op->s[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->rootfd < 0)
		return init_fail(err, errno, "open", op->s[0]);
	return 0;
}

int op_mount(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	const char *target = op->s[1];
	char p[FDPATH_MAX];
	_cleanup_close_ int fd = -1;

	if (need_root(st, err) < 0)
		return -err->errnum;
	if (op->n[2] > CREATE_FILE)
		return init_fail(err, EINVAL, "mount", target);
	fd = op->n[2] ? ensure(st->rootfd, target, (enum create)op->n[2], err)
		      : resolve(st->rootfd, target, 0);
	if (fd < 0)
		return op->n[2] ? fd : init_fail(err, errno, "openat2", target);
	if (mount(op->s[0], fdpath(p, fd), op->len[2] ? op->s[2] : NULL, op->n[0],
		  op->len[3] ? op->s[3] : NULL) < 0)
		return init_fail(err, errno, "mount", target);
	if (!op->n[1] && !op->n[3])
		return 0;
	/* The fd still names what lies under the new mount: look again. */
	close(fd);
	fd = resolve(st->rootfd, target, 0);
	if (fd < 0)
		return init_fail(err, errno, "openat2", target);
	if (op->n[1] && mount(NULL, fdpath(p, fd), NULL, op->n[1], NULL) < 0)
		return init_fail(err, errno, "mount", target);
	return op->n[3] ? remount(fd, target, op->n[3], err) : 0;
}

int op_mknod(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char buf[PATH_MAX];
	const char *name;
	_cleanup_close_ int dir = -1;
	mode_t old;
	int r;

	if (need_root(st, err) < 0)
		return -err->errnum;
	dir = open_parent(st->rootfd, op->s[0], buf, &name, err);
	if (dir < 0)
		return dir;
	/* The mode is the plan's, not the plan's minus our umask. */
	old = umask(0);
	r = mknodat(dir, name, (mode_t)op->n[0], makedev(op->n[1], op->n[2]));
	umask(old);
	if (r < 0)
		return init_fail(err, errno, "mknod", op->s[0]);
	if (fchownat(dir, name, (uid_t)op->n[3], (gid_t)op->n[4], AT_SYMLINK_NOFOLLOW) < 0)
		return init_fail(err, errno, "chown", op->s[0]);
	return 0;
}

int op_symlink(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char buf[PATH_MAX];
	const char *name;
	_cleanup_close_ int dir = -1;

	if (need_root(st, err) < 0)
		return -err->errnum;
	dir = open_parent(st->rootfd, op->s[0], buf, &name, err);
	if (dir < 0)
		return dir;
	if (symlinkat(op->s[1], dir, name) < 0 && errno != EEXIST)
		return init_fail(err, errno, "symlink", op->s[0]);
	return 0;
}

int op_pivot_root(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (need_root(st, err) < 0)
		return -err->errnum;
	if (fchdir(st->rootfd) < 0)
		return init_fail(err, errno, "fchdir", "rootfs");
	if (op->n[0] == 0) {
		/* pivot_root(".", ".") stacks the old root under the new one,
		 * so no directory in the image is needed to hold it. Made a
		 * slave first so the detach cannot propagate to the host. */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return init_fail(err, errno, "pivot_root", ".");
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			return init_fail(err, errno, "mount", "old root");
		if (umount2(".", MNT_DETACH) < 0)
			return init_fail(err, errno, "umount2", "old root");
	} else if (op->n[0] == 2) {
		/* No mount namespace of our own: chroot only, as runc does. */
		if (chroot(".") < 0)
			return init_fail(err, errno, "chroot", ".");
	} else {
		/* For a rootfs on a ramfs/initramfs, where pivot_root fails. */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			return init_fail(err, errno, "mount", "MS_MOVE rootfs");
		if (chroot(".") < 0)
			return init_fail(err, errno, "chroot", ".");
	}
	if (chdir("/") < 0)
		return init_fail(err, errno, "chdir", "/");
	close(st->rootfd);
	st->rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->rootfd < 0)
		return init_fail(err, errno, "open", "/");
	return 0;
}

/* CVE-2025-31133: the image may have made its /dev/null a link to a procfs
 * file; mounting that "mask" would expose what it should hide. */
static int open_dev_null(int root, struct init_error *err)
{
	int fd = resolve(root, "/dev/null", 0);
	struct stat sb;

	if (fd < 0)
		return init_fail(err, errno, "openat2", "/dev/null");
	if (fstat(fd, &sb) < 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3)) {
		close(fd);
		return init_fail(err, EPERM, "fstat", "/dev/null");
	}
	return fd;
}

int op_mask(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char p[FDPATH_MAX], src[FDPATH_MAX];
	_cleanup_close_ int fd = -1;
	_cleanup_close_ int null = -1;
	struct stat sb;

	if (need_root(st, err) < 0)
		return -err->errnum;
	fd = resolve(st->rootfd, op->s[0], 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : init_fail(err, errno, "openat2", op->s[0]);
	if (fstat(fd, &sb) < 0)
		return init_fail(err, errno, "fstat", op->s[0]);
	if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", fdpath(p, fd), "tmpfs", MS_RDONLY, NULL) < 0)
			return init_fail(err, errno, "mount", op->s[0]);
		return 0;
	}
	null = open_dev_null(st->rootfd, err);
	if (null < 0)
		return null;
	if (mount(fdpath(src, null), fdpath(p, fd), NULL, MS_BIND, NULL) < 0)
		return init_fail(err, errno, "mount", op->s[0]);
	return 0;
}

int op_readonly(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char p[FDPATH_MAX];
	_cleanup_close_ int fd = -1;

	if (need_root(st, err) < 0)
		return -err->errnum;
	fd = resolve(st->rootfd, op->s[0], 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : init_fail(err, errno, "openat2", op->s[0]);
	if (mount(fdpath(p, fd), p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return init_fail(err, errno, "mount", op->s[0]);
	close(fd);
	fd = resolve(st->rootfd, op->s[0], 0);
	if (fd < 0)
		return init_fail(err, errno, "openat2", op->s[0]);
	return remount(fd, op->s[0], MS_RDONLY | MS_REC, err);
}

int op_remount_root_ro(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return init_fail(err, errno, "open", "/");
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(fd), NULL) < 0)
		return init_fail(err, errno, "mount", "/");
	return 0;
}
