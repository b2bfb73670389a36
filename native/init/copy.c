/*
 * tmpcopyup: the image's directory that a new tmpfs covers, copied into it
 * (runc's mountCopyUp with fileutils.CopyDirectory): files, directories,
 * symlinks (as links, never followed), device nodes and fifos, with their
 * mode, owner and times. The source is the image's, so hostile: nothing is
 * opened through a symlink (O_NOFOLLOW, *at() on directory fds), a regular
 * file is checked to be one after it is opened, and sockets are skipped.
 * The destination is the fresh tmpfs: everything is created O_EXCL.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

struct copy {
	char path[PATH_MAX]; /* for errors: the mount target, then the entry being copied */
	struct init_error *err;
};

static int fail(struct copy *c, const char *op)
{
	return init_fail(c->err, errno, op, c->path);
}

static int copy_file(int from, int to, const char *name, struct copy *c)
{
	static char buf[1 << 16];
	_cleanup_close_ int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct stat sb;
	ssize_t n;

	if (in < 0)
		return fail(c, "open");
	if (fstat(in, &sb) < 0)
		return fail(c, "fstat");
	if (!S_ISREG(sb.st_mode)) { /* swapped for something else since the readdir */
		errno = EINVAL;
		return fail(c, "open");
	}
	out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return fail(c, "open");
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(c, "read");
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(out, buf + off, (size_t)(n - off))) < 0) {
				if (errno != EINTR)
					return fail(c, "write");
				w = 0;
			}
	}
	return 0;
}

static int copy_dir(int from, int to, struct copy *c);

/* One entry, then its owner, mode and times (chown first: it clears set-id bits). */
static int copy_entry(int from, int to, const char *name, struct copy *c)
{
	struct stat sb;
	int r = 0;

	if (fstatat(from, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(c, "fstatat");
	if (S_ISDIR(sb.st_mode)) {
		_cleanup_close_ int sub_from = -1;
		_cleanup_close_ int sub_to = -1;

		if (mkdirat(to, name, 0700) < 0)
			return fail(c, "mkdirat");
		sub_from = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		sub_to = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub_from < 0 || sub_to < 0)
			return fail(c, "open");
		r = copy_dir(sub_from, sub_to, c);
	} else if (S_ISREG(sb.st_mode)) {
		r = copy_file(from, to, name, c);
	} else if (S_ISLNK(sb.st_mode)) {
		char link[PATH_MAX];
		ssize_t n = readlinkat(from, name, link, sizeof(link) - 1);

		if (n < 0)
			return fail(c, "readlinkat");
		link[n] = '\0';
		if (symlinkat(link, to, name) < 0)
			return fail(c, "symlinkat");
	} else if (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) || S_ISFIFO(sb.st_mode)) {
		if (mknodat(to, name, sb.st_mode & S_IFMT, sb.st_rdev) < 0)
			return fail(c, "mknodat");
	} else {
		return 0; /* a socket: nothing to copy */
	}
	if (r < 0)
		return r;
	if (fchownat(to, name, sb.st_uid, sb.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(c, "fchownat");
	if (!S_ISLNK(sb.st_mode) && fchmodat(to, name, sb.st_mode & 07777, 0) < 0)
		return fail(c, "fchmodat");
	struct timespec times[2] = { sb.st_atim, sb.st_mtim };
	if (utimensat(to, name, times, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(c, "utimensat");
	return 0;
}

static int copy_dir(int from, int to, struct copy *c)
{
	int dup_from = fcntl(from, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_from < 0 ? NULL : fdopendir(dup_from);
	size_t len = strlen(c->path);
	struct dirent *e;
	int r = 0;

	if (!d) {
		if (dup_from >= 0)
			close(dup_from);
		return fail(c, "opendir");
	}
	while (r == 0 && (errno = 0, e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (len + 1 + strlen(e->d_name) >= sizeof(c->path)) {
			errno = ENAMETOOLONG;
			r = fail(c, "copy");
			break;
		}
		c->path[len] = '/';
		strcpy(c->path + len + 1, e->d_name);
		r = copy_entry(from, to, e->d_name, c);
		c->path[len] = '\0';
	}
	if (r == 0 && errno)
		r = fail(c, "readdir");
	closedir(d);
	return r;
}

int copy_tree(int from, int to, const char *what, struct init_error *err)
{
	static struct copy c;

	c.err = err;
	snprintf(c.path, sizeof(c.path), "%s", what);
	return copy_dir(from, to, &c);
}
