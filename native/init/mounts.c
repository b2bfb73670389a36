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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "init.h"

/* An O_PATH fd of path inside root, or -1 with errno; `extra`: more RESOLVE_* flags. */
static int resolve_how(int root, const char *path, int flags, uint64_t extra)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | (uint64_t)flags,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra,
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

static int resolve(int root, const char *path, int flags)
{
	return resolve_how(root, path, flags, 0);
}

/*
 * A mount through /proc/self/fd/N fails with ENOENT when the container's /proc
 * is no procfs (a tmpfs mounted over it): then /proc is what to name, not the
 * target that happened to be next.
 */
int mount_fail(struct init_error *err, int errnum, const char *path)
{
	struct statfs sf;

	if (errnum == ENOENT && (statfs("/proc/self/fd", &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)) {
		init_fail(err, errnum, "mount", NULL);
		snprintf(err->path, sizeof(err->path),
			 "/proc is not a procfs: %s is mounted through /proc/self/fd", path);
		return -errnum;
	}
	return init_fail(err, errnum, "mount", path);
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

int ensure_dir_in_root(const struct init_state *st, const char *path, struct init_error *err)
{
	if (need_root(st, err) < 0)
		return -1;
	return ensure(st->rootfd, path, CREATE_DIR, err);
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
	return mount_fail(err, errno, path);
}

int op_root_propagation(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (mount(NULL, "/", NULL, op->n[0], NULL) < 0)
		return mount_fail(err, errno, "/");
	return 0;
}

/* pivot_root needs the new root to be a mount point: bind it onto itself. */
int op_rootfs(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	/* N0 = 1: no mount namespace, only chroot later: nothing is mounted. */
	if (!op->n[0] && mount(op->s[0], op->s[0], NULL, MS_BIND | MS_REC, NULL) < 0)
		return mount_fail(err, errno, op->s[0]);
	if (st->rootfd >= 0)
		close(st->rootfd);
	st->rootfd = open(op->s[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->rootfd < 0)
		return init_fail(err, errno, "open", op->s[0]);
	return 0;
}

/* proc and sysfs go only on a directory that no symlink leads to (runc's checkProcMount):
 * 1 = it is one, 0 = it is missing, or -errno with err set. */
static int check_plain_dir(int root, const struct plan_op *op, struct init_error *err)
{
	_cleanup_close_ int fd = resolve_how(root, op->s[1], 0, RESOLVE_NO_SYMLINKS);
	struct stat sb;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd >= 0 && fstat(fd, &sb) < 0)
		return init_fail(err, errno, "fstat", op->s[1]);
	if (fd < 0 && errno != ELOOP)
		return init_fail(err, errno, "openat2", op->s[1]);
	if (fd >= 0 && S_ISDIR(sb.st_mode))
		return 1;
	/* A bind of the host's /sys stands in for sysfs in a user namespace: name its source. */
	init_fail(err, fd < 0 ? ELOOP : ENOTDIR, "mount", NULL);
	snprintf(err->path, sizeof(err->path), "/%s: filesystem \"%s\" must be mounted on ordinary directory",
		 op->s[1], op->len[2] ? op->s[2] : op->s[0]);
	return -err->errnum;
}

/* The directory under a tmpfs about to cover it, readable (tmpcopyup); -1 with err set. */
static int open_dir_below(int fd, const char *target, struct init_error *err)
{
	int dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0)
		init_fail(err, errno, "open", target);
	return dir;
}

int op_mount(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	const char *target = op->s[1];
	char p[FDPATH_MAX];
	_cleanup_close_ int fd = -1;
	_cleanup_close_ int below = -1;
	int plain = op->n[6] & 1, copy_up = op->n[6] & 2, keep_mode = op->n[6] & 4;
	mode_t mode = 0;
	int r;

	if (need_root(st, err) < 0)
		return -err->errnum;
	if (op->n[2] > CREATE_FILE || op->n[7] > st->nsources)
		return init_fail(err, EINVAL, "mount", target);
	if (plain && (r = check_plain_dir(st->rootfd, op, err)) < 0)
		return r;
	if (keep_mode) {
		/* Only a target that exists now: one made below gets the filesystem's mode. */
		_cleanup_close_ int was = resolve(st->rootfd, target, 0);
		struct stat sb;

		if (was >= 0 && fstat(was, &sb) == 0)
			mode = sb.st_mode & 07777;
		keep_mode = was >= 0;
	}
	fd = op->n[2] ? ensure(st->rootfd, target, (enum create)op->n[2], err)
		      : resolve(st->rootfd, target, 0);
	if (fd < 0)
		return op->n[2] ? fd : init_fail(err, errno, "openat2", target);
	/* Again, now that ensure() made it: what it made must still be plain. */
	if (plain && (r = check_plain_dir(st->rootfd, op, err)) <= 0)
		return r < 0 ? r : init_fail(err, ENOENT, "openat2", target);
	if (copy_up && (below = open_dir_below(fd, target, err)) < 0)
		return -err->errnum;
	if (op->n[7]) {
		/* A tree H took as host root (OP_MOUNT_SOURCE): attach it, once. */
		int tree = st->trees[op->n[7] - 1];

		r = (int)syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
		close(tree);
		if (r < 0)
			return init_fail(err, errno, "move_mount", target);
	} else if (mount(op->s[0], fdpath(p, fd), op->len[2] ? op->s[2] : NULL, op->n[0],
			 op->len[3] ? op->s[3] : NULL) < 0) {
		return mount_fail(err, errno, target);
	}
	if (!op->n[1] && !op->n[3] && !op->n[4] && !op->n[5] && !copy_up && !keep_mode)
		return 0;
	/* The fd still names what lies under the new mount: look again. */
	close(fd);
	fd = resolve(st->rootfd, target, 0);
	if (fd < 0)
		return init_fail(err, errno, "openat2", target);
	if (keep_mode && chmod(fdpath(p, fd), mode) < 0)
		return init_fail(err, errno, "chmod", target);
	if (copy_up) {
		_cleanup_close_ int top = open_dir_below(fd, target, err);

		if (top < 0 || copy_tree(below, top, target, err) < 0)
			return -err->errnum;
	}
	if (op->n[1] && mount(NULL, fdpath(p, fd), NULL, op->n[1], NULL) < 0)
		return mount_fail(err, errno, target);
	if (op->n[3] && remount(fd, target, op->n[3], err) < 0)
		return -err->errnum;
	if (op->n[4] || op->n[5]) {
		struct mount_attr attr = { .attr_set = op->n[4], .attr_clr = op->n[5] };

		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			return init_fail(err, errno, "mount_setattr", target);
	}
	return 0;
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

/* Undoes mountinfo's octal escapes (\040 for a space…) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*o = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = '\0';
}

/* Reads all of /proc/self/mountinfo first: unmounting while reading it would skip lines. */
static char *read_mountinfo(void)
{
	_cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL, *more;
	ssize_t n;

	if (fd < 0)
		return NULL;
	for (;;) {
		if (!(more = realloc(buf, cap + 1)))
			break;
		buf = more;
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				break;
			buf[len] = '\0';
			return buf;
		}
		len += (size_t)n;
		if (len == cap)
			cap *= 2;
	}
	free(buf);
	return NULL;
}

/*
 * Without pivot_root the host's mounts stay in our namespace below the chroot,
 * and the kernel lets a user namespace mount a fresh procfs or sysfs as long as
 * one full, uncovered mount of it exists there (mnt_already_visible). Detach
 * every full proc/sysfs mount outside root (a slave first, so nothing reaches
 * the host), or cover it where detaching is refused, as runc's msMoveRoot.
 */
static int hide_host_procfs(int rootfd, struct init_error *err)
{
	char rootpath[PATH_MAX], p[FDPATH_MAX];
	ssize_t rl = readlink(fdpath(p, rootfd), rootpath, sizeof(rootpath) - 1);
	char *info, *line, *next;
	size_t rlen;
	int rc = 0;

	if (rl < 0)
		return init_fail(err, errno, "readlink", "rootfs");
	rootpath[rl] = '\0';
	rlen = (size_t)rl;
	if (!(info = read_mountinfo()))
		return init_fail(err, errno ? errno : ENOMEM, "read", "/proc/self/mountinfo");
	for (line = info; rc == 0 && line && *line; line = next) {
		char *f[5], *dash, *fstype, *save = NULL;
		int i;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		dash = strstr(line, " - ");
		if (!dash)
			continue;
		*dash = '\0';
		fstype = strtok_r(dash + 3, " ", &save);
		save = NULL;
		for (i = 0; i < 5 && (f[i] = strtok_r(i ? NULL : line, " ", &save)); i++)
			;
		/* f[3] = root of the mount in its filesystem, f[4] = mount point */
		if (i < 5 || !fstype || strcmp(f[3], "/") != 0 ||
		    (strcmp(fstype, "proc") != 0 && strcmp(fstype, "sysfs") != 0))
			continue;
		unescape(f[4]);
		if (strncmp(f[4], rootpath, rlen) == 0 && (f[4][rlen] == '/' || f[4][rlen] == '\0'))
			continue;
		if (mount(NULL, f[4], NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			if (errno != ENOENT) /* ENOENT: under a mount detached before it */
				rc = init_fail(err, errno, "mount", f[4]);
			continue;
		}
		if (umount2(f[4], MNT_DETACH) == 0)
			continue;
		if (errno != EINVAL && errno != EPERM)
			rc = init_fail(err, errno, "umount2", f[4]);
		/* A mount locked by a user namespace: covering it hides it as well. */
		else if (mount("tmpfs", f[4], "tmpfs", 0, NULL) < 0)
			rc = init_fail(err, errno, "mount", f[4]);
	}
	free(info);
	return rc;
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
			return mount_fail(err, errno, "old root");
		if (umount2(".", MNT_DETACH) < 0)
			return init_fail(err, errno, "umount2", "old root");
	} else if (op->n[0] == 2) {
		/* No mount namespace of our own: chroot only, as runc does. */
		if (chroot(".") < 0)
			return init_fail(err, errno, "chroot", ".");
	} else {
		/* For a rootfs on a ramfs/initramfs, where pivot_root fails. */
		int r = op->n[1] ? hide_host_procfs(st->rootfd, err) : 0;

		if (r < 0)
			return r;
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
			return mount_fail(err, errno, op->s[0]);
		return 0;
	}
	null = open_dev_null(st->rootfd, err);
	if (null < 0)
		return null;
	if (mount(fdpath(src, null), fdpath(p, fd), NULL, MS_BIND, NULL) < 0)
		return mount_fail(err, errno, op->s[0]);
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
		return mount_fail(err, errno, op->s[0]);
	close(fd);
	fd = resolve(st->rootfd, op->s[0], 0);
	if (fd < 0)
		return init_fail(err, errno, "openat2", op->s[0]);
	return remount(fd, op->s[0], MS_RDONLY | MS_REC, err);
}

int op_remount_root_ro(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int fd = -1;

	if (op->len[0]) {
		/* A mount in root (runc's finalizeRootfs for a read-only /dev): its current flags stay. */
		char p[FDPATH_MAX];

		if (need_root(st, err) < 0)
			return -err->errnum;
		fd = resolve(st->rootfd, op->s[0], 0);
		if (fd < 0)
			return init_fail(err, errno, "openat2", op->s[0]);
		if (mount(NULL, fdpath(p, fd), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(fd), NULL) < 0)
			return mount_fail(err, errno, op->s[0]);
		return 0;
	}
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return init_fail(err, errno, "open", "/");
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(fd), NULL) < 0)
		return mount_fail(err, errno, "/");
	return 0;
}
