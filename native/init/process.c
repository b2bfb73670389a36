/*
 * The process C becomes: ids, capabilities, limits, fds, cwd, seccomp, and
 * the final execve. Credentials go through raw syscalls: after a raw clone3
 * glibc's idea of our threads and tid may be stale (DESIGN.md §2).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "init.h"

int op_setid_root(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		return init_fail(err, errno, "setresgid", "0");
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		return init_fail(err, errno, "setresuid", "0");
	return 0;
}

int op_setsid(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (setsid() < 0)
		return init_fail(err, errno, "setsid", NULL);
	return 0;
}

int op_rlimit(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct rlimit rl = { .rlim_cur = op->n[1], .rlim_max = op->n[2] };
	char what[24];

	if (setrlimit((int)op->n[0], &rl) < 0) {
		snprintf(what, sizeof(what), "resource %d", (int)op->n[0]);
		return init_fail(err, errno, "setrlimit", what);
	}
	return 0;
}

int op_umask(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	umask((mode_t)(op->n[0] & 0777));
	return 0;
}

/* runc's exec.fifo: opened now, while the host path is reachable. */
int op_exec_fifo(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct stat sb;

	st->fifofd = open(op->s[0], O_PATH | O_CLOEXEC);
	if (st->fifofd < 0)
		return init_fail(err, errno, "open", op->s[0]);
	if (fstat(st->fifofd, &sb) < 0)
		return init_fail(err, errno, "fstat", op->s[0]);
	if (!S_ISFIFO(sb.st_mode))
		return init_fail(err, EINVAL, "open", op->s[0]);
	return 0;
}

/* Opening the fifo for writing blocks until `start` opens it for reading. */
int op_wait_start(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char p[FDPATH_MAX];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (st->fifofd < 0)
		return init_fail(err, EINVAL, "open", "no OP_EXEC_FIFO before OP_WAIT_START");
	/* The manager may be gone already (the CLI's create exits): start
	 * still works through the fifo, so a failed send is not fatal. */
	send_ready();
	do
		fd = open(fdpath(p, st->fifofd), O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return init_fail(err, errno, "open", "exec.fifo");
	do
		n = write(fd, "0", 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return init_fail(err, n < 0 ? errno : EIO, "write", "exec.fifo");
	close(st->fifofd);
	st->fifofd = -1;
	return 0;
}

/* 0 = an executable regular file, else the errno execve would give. */
static int check_exe(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return errno;
	if (!S_ISREG(sb.st_mode) || access(path, X_OK) < 0)
		return EACCES;
	return 0;
}

/* As execvp: a name with a '/' is a path; otherwise each PATH entry in turn
 * (an empty entry is the cwd), and EACCES if only non-executables matched. */
int op_resolve_exec(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	const char *name = op->s[0], *dir = op->s[1];
	int seen_eacces = 0, r;

	if (op->len[0] == 0)
		return init_fail(err, ENOENT, "execve", "");
	if (strchr(name, '/')) {
		if ((r = check_exe(name)) != 0)
			return init_fail(err, r, "execve", name);
		snprintf(st->exe, sizeof(st->exe), "%s", name);
		return 0;
	}
	while (op->len[1] > 0) {
		const char *end = strchrnul(dir, ':');
		int dlen = (int)(end - dir);

		if (snprintf(st->exe, sizeof(st->exe), "%.*s%s%s", dlen, dir, dlen ? "/" : "", name) <
		    (int)sizeof(st->exe)) {
			r = check_exe(st->exe);
			if (r == 0)
				return 0;
			seen_eacces |= r == EACCES;
		}
		if (*end == '\0')
			break;
		dir = end + 1;
	}
	st->exe[0] = '\0';
	return init_fail(err, seen_eacces ? EACCES : ENOENT, "execve", name);
}

/* CVE-2024-21626: no host fd (a cgroup dir, the rootfs) may reach the container. */
int op_close_fds(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	DIR *d;
	struct dirent *e;

	if (syscall(SYS_close_range, (unsigned)op->n[0], ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return init_fail(err, errno, "close_range", NULL);
	d = opendir("/proc/self/fd");
	if (!d)
		return init_fail(err, errno, "opendir", "/proc/self/fd");
	while ((e = readdir(d))) {
		long fd = strtol(e->d_name, NULL, 10);

		if (e->d_name[0] != '.' && fd >= (long)op->n[0] && fd != dirfd(d))
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

/* PR_CAPBSET_READ fails with EINVAL past the last cap this kernel knows,
 * which is what /proc/sys/kernel/cap_last_cap would say, without procfs. */
int op_caps_bounding(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char what[16];

	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (r < 0)
			break;
		if (r == 0 || op->n[0] & 1ull << cap)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			snprintf(what, sizeof(what), "cap %d", cap);
			return init_fail(err, errno, "prctl", what);
		}
	}
	return 0;
}

/* A user namespace whose setgroups is "deny" refuses even setgroups(0). */
static int setgroups_denied(void)
{
	char buf[8] = "";
	_cleanup_close_ int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);

	return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && strncmp(buf, "deny", 4) == 0;
}

int op_user(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	static gid_t gids[XC_MAX_STR / 4];
	size_t n = op->len[0] / 4;
	const uint8_t *b = (const uint8_t *)op->s[0];
	char what[24];

	for (size_t i = 0; i < n; i++)
		gids[i] = (gid_t)b[4 * i] | (gid_t)b[4 * i + 1] << 8 | (gid_t)b[4 * i + 2] << 16 |
			  (gid_t)b[4 * i + 3] << 24;
	if (syscall(SYS_setgroups, n, gids) < 0 && !(n == 0 && errno == EPERM && setgroups_denied()))
		return init_fail(err, errno, "setgroups", NULL);
	/* Keep the permitted set across the switch away from uid 0; OP_CAPS
	 * then sets exactly the configured sets. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return init_fail(err, errno, "prctl", "PR_SET_KEEPCAPS");
	snprintf(what, sizeof(what), "%u", (unsigned)op->n[1]);
	if (syscall(SYS_setresgid, (gid_t)op->n[1], (gid_t)op->n[1], (gid_t)op->n[1]) < 0)
		return init_fail(err, errno, "setresgid", what);
	snprintf(what, sizeof(what), "%u", (unsigned)op->n[0]);
	if (syscall(SYS_setresuid, (uid_t)op->n[0], (uid_t)op->n[0], (uid_t)op->n[0]) < 0)
		return init_fail(err, errno, "setresuid", what);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return init_fail(err, errno, "prctl", "PR_SET_KEEPCAPS");
	return 0;
}

/*
 * runc's fixStdioPermissions: the stdio the manager made belongs to the
 * process's user, so that it can use its terminal, but the device of
 * /dev/null is nobody's to take. The gid stays (a devpts may want its own).
 */
int op_chown_stdio(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct stat null, sb;
	char what[8];

	/* No /dev/null in the container (runc fails there): the host's device number still is one. */
	if (stat("/dev/null", &null) < 0)
		null.st_rdev = makedev(1, 3);
	for (int fd = 0; fd <= 2; fd++) {
		snprintf(what, sizeof(what), "fd %d", fd);
		if (fstat(fd, &sb) < 0)
			return init_fail(err, errno, "fstat", what);
		if (sb.st_rdev == null.st_rdev || (S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(1, 3)))
			continue;
		/* EINVAL/EPERM: the owner or the uid is not mapped in our user namespace; EROFS: a
		 * read-only /dev. Better an untouched stdio than no container (runc does the same). */
		if (fchown(fd, (uid_t)op->n[0], (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM &&
		    errno != EROFS)
			return init_fail(err, errno, "fchown", what);
	}
	return 0;
}

/* CVE-2022-29162: the inheritable set is exactly the plan's, empty or not. */
int op_caps(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	char what[16];

	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(op->n[0] >> 32 * i);
		d[i].permitted = (uint32_t)(op->n[1] >> 32 * i);
		d[i].inheritable = (uint32_t)(op->n[2] >> 32 * i);
	}
	if (syscall(SYS_capset, &h, d) < 0)
		return init_fail(err, errno, "capset", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && op->n[3])
		return init_fail(err, errno, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");
	for (int cap = 0; cap < 64; cap++) {
		if (!(op->n[3] & 1ull << cap))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			snprintf(what, sizeof(what), "cap %d", cap);
			return init_fail(err, errno, "PR_CAP_AMBIENT_RAISE", what);
		}
	}
	return 0;
}

/* CVE-2024-21626: a cwd reached through a leaked fd (/proc/self/fd/N) lies
 * outside our root, and getcwd says so with "(unreachable)" or ENOENT.
 * Modes (protocol.h): 1 makes the cwd as runc's MkdirAll after the pivot, 2
 * is the privileged try, 0 the one after the user switch. */
int op_chdir(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char cwd[4096];

	if (op->n[0] == 1) {
		int fd = ensure_dir_in_root(st, op->s[0], err);

		if (fd < 0)
			return -err->errnum;
		close(fd);
		return 0;
	}
	if (op->n[0] == 0 && st->cwd_done)
		return 0;
	if (chdir(op->s[0]) < 0) {
		if (op->n[0] == 2 && (errno == EACCES || errno == EPERM))
			return 0;
		return init_fail(err, errno, "chdir", op->s[0]);
	}
	if (!getcwd(cwd, sizeof(cwd)) || cwd[0] != '/')
		return init_fail(err, ENOENT, "chdir", op->s[0]);
	st->cwd_done = op->n[0] == 2;
	return 0;
}

int op_no_new_privs(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return init_fail(err, errno, "prctl", "PR_SET_NO_NEW_PRIVS");
	return 0;
}

int op_seccomp(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	/* The decoder checked the length is a non-zero multiple of 8; the
	 * kernel copies the filter, so the arena's alignment does not matter. */
	struct sock_fprog prog = {
		.len = (unsigned short)(op->len[0] / sizeof(struct sock_filter)),
		.filter = (struct sock_filter *)(uintptr_t)op->s[0],
	};

	unsigned flags = (unsigned)op->n[0];
	int fd;

	if (op->len[0] / sizeof(struct sock_filter) > 0xffff)
		return init_fail(err, EINVAL, "seccomp", "filter too long");
	if (op->n[1] == 1)
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (fd < 0)
		return init_fail(err, errno, "seccomp", NULL);
	if (op->n[1] != 1)
		return 0;
	/* From here on our own syscalls go through the filter: this sendmsg and
	 * close, then whatever the plan does up to execve. The manager refuses a
	 * profile that notifies sendmsg (config/seccomp-checks.ts): nobody could
	 * answer it before the listener is out. No reply is awaited (runc waits
	 * for procSeccompDone): queued notifications wait for the listener. */
	if (send_seccomp(fd) < 0)
		return init_fail(err, errno, "sendmsg", "seccomp listener");
	close(fd);
	return 0;
}

/* A NUL-terminated list (checked by the decoder) as a NULL-terminated array. */
char **split_list(const char *s, uint32_t len)
{
	size_t count = 0, k = 0;
	char **v;

	for (uint32_t i = 0; i < len; i++)
		count += s[i] == '\0';
	v = calloc(count + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < len; i += (uint32_t)strlen(s + i) + 1)
		v[k++] = (char *)(uintptr_t)(s + i);
	return v;
}

int op_exec(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char **argv = split_list(op->s[0], op->len[0]);
	char **envp = split_list(op->s[1], op->len[1]);

	if (!argv || !envp)
		return init_fail(err, ENOMEM, "execve", NULL);
	if (!st->exe[0])
		return init_fail(err, EINVAL, "execve", "no OP_RESOLVE_EXEC before OP_EXEC");
	/* A pipe the manager gave as stdio may be O_NONBLOCK, which most
	 * programs do not expect (libuv's uv__process_child_init does the same). */
	for (int fd = 0; fd <= 2; fd++) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	execve(st->exe, argv, envp);
	return init_fail(err, errno, "execve", st->exe);
}

/*
 * runc's --preserve-fds: the manager gave them to the helper at 4…; the program
 * gets them at 3…, without close-on-exec. The socket sits at 3: it moves above
 * them first, so a failing execve can still be reported.
 */
int op_preserve_fds(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	int n = (int)op->n[0];
	int s;

	if (n <= 0)
		return 0;
	s = fcntl(xc_sock, F_DUPFD_CLOEXEC, 4 + n);
	if (s < 0)
		return init_fail(err, errno, "fcntl", "socket");
	close(xc_sock);
	xc_sock = s;
	/* Ascending: each source is above its target, and read before it is overwritten. */
	for (int i = 0; i < n; i++)
		if (dup2(4 + i, 3 + i) < 0)
			return init_fail(err, errno, "dup2", "preserved fd");
	close(3 + n); /* the last source, now copied one below */
	return 0;
}
