/*
 * H's side: join namespaces, make the time namespace, clone C into the new
 * ones and write C's id maps from outside (a process cannot map itself to
 * more than its own id; runc's nsexec.c asks its parent the same way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>
#include <linux/sched.h>

#include "init.h"

int op_join_ns(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int fd = open(op->s[0], O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return init_fail(err, errno, "open", op->s[0]);
	if (setns(fd, (int)op->n[0]) < 0)
		return init_fail(err, errno, "setns", op->s[0]);
	return 0;
}

int op_join_pidfd(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (setns((int)op->n[0], (int)op->n[1]) < 0)
		return init_fail(err, errno, "setns", "pidfd");
	close((int)op->n[0]);
	return 0;
}

int op_unshare(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	(void)st;
	if (unshare((int)op->n[0]) < 0)
		return init_fail(err, errno, "unshare", "namespaces");
	return 0;
}

/* The offsets can only be written before any process lives in the new
 * namespace: only C (the next clone) will. */
int op_time_offsets(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (unshare(CLONE_NEWTIME) < 0)
		return init_fail(err, errno, "unshare", "CLONE_NEWTIME");
	return proc_write("/proc/self/timens_offsets", op->s[0], op->len[0], err);
}

static int write_map(long pid, const char *file, const char *text, size_t len,
		     struct init_error *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
	return proc_write(path, text, len, err);
}

/* `tool pid a b c …` with the numbers of the map text (newuidmap's
 * argument form), waited for; it checks /etc/subuid itself (setuid root). */
static int run_map_tool(long pid, const char *tool, const char *text, size_t len,
			struct init_error *err)
{
	char *argv[3 + 3 * 340 + 1], pidstr[24], buf[4096];
	size_t argc = 0;
	int status;
	pid_t child;

	if (len >= sizeof(buf))
		return init_fail(err, E2BIG, "map tool", tool);
	memcpy(buf, text, len);
	buf[len] = '\0';
	snprintf(pidstr, sizeof(pidstr), "%ld", pid);
	argv[argc++] = (char *)tool;
	argv[argc++] = pidstr;
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		if (argc >= sizeof(argv) / sizeof(argv[0]) - 1)
			return init_fail(err, E2BIG, "map tool", tool);
		argv[argc++] = t;
	}
	argv[argc] = NULL;
	child = fork();
	if (child < 0)
		return init_fail(err, errno, "fork", tool);
	if (child == 0) {
		char *envp[] = { NULL };
		execve(tool, argv, envp);
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return init_fail(err, errno, "waitpid", tool);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return init_fail(err, EPERM, WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "execve" : "map tool", tool);
	return 0;
}

/* "This *must* be called before we touch gid_map" (nsexec.c): an
 * unprivileged mapper may only write gid_map once setgroups is denied. */
static int write_maps(long pid, const struct plan_op *op, struct init_error *err)
{
	int r = 0;

	if (op->len[0] > 0)
		r = op->len[2] ? run_map_tool(pid, op->s[2], op->s[0], op->len[0], err)
			       : write_map(pid, "uid_map", op->s[0], op->len[0], err);
	if (r == 0 && op->n[1] == 1)
		r = write_map(pid, "setgroups", "deny", 4, err);
	if (r == 0 && op->len[1] > 0)
		r = op->len[3] ? run_map_tool(pid, op->s[3], op->s[1], op->len[1], err)
			       : write_map(pid, "gid_map", op->s[1], op->len[1], err);
	return r;
}

/* Only recorded here: the trees are taken once C's mount namespace exists (take_sources). */
int op_mount_source(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	static const struct plan_op *pending[XC_MAX_OPS];

	st->sources = pending;
	pending[st->nsources++] = op;
	return 0;
}

/*
 * runc's mount fds: as host root, in C's mount namespace, whose copies of the
 * host's mounts carry the flags the user namespace locked (a clone taken in
 * ours would let the container's root lift a source's ro or nosuid). The
 * fds land in the table C shares with us; their numbers in st->trees.
 */
/*
 * A user namespace with a mount's own maps (S1/S2 of OP_MOUNT_SOURCE): a
 * child made in it waits on a pipe while we write its maps (as host root) and
 * open its namespace; our closing the pipe ends it. The fd keeps the
 * namespace alive for mount_setattr.
 */
static int made_userns(const struct plan_op *src, struct init_error *err)
{
	struct clone_args args = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
	int pipefd[2], fd = -1, r = 0;
	char path[64], c;
	long child;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return init_fail(err, errno, "pipe2", "id-mapped mount");
	child = syscall(SYS_clone3, &args, sizeof(args));
	if (child == 0) {
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pipefd[0]);
	if (child < 0) {
		close(pipefd[1]);
		return init_fail(err, errno, "clone3", "id-mapped mount's user namespace");
	}
	r = write_map(child, "uid_map", src->s[1], src->len[1], err);
	if (r == 0)
		r = write_map(child, "gid_map", src->s[2], src->len[2], err);
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%ld/ns/user", child);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = init_fail(err, errno, "open", path);
	}
	close(pipefd[1]);
	while (waitpid((pid_t)child, NULL, 0) < 0 && errno == EINTR)
		;
	return r < 0 ? -1 : fd;
}

static int take_sources(long pid, int pidfd, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int userns = -1;
	char path[64];

	/* An id-mapped source gets C's user namespace (maps written) as its mapping,
	 * opened before setns, or, with maps of its own, one made for it (its
	 * /proc entry is in the procfs C's copy of our mounts still shows). */
	for (uint32_t k = 0; k < st->nsources && userns < 0; k++)
		if (st->sources[k]->n[1] && st->sources[k]->len[1] == 0) {
			snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
			userns = open(path, O_RDONLY | O_CLOEXEC);
			if (userns < 0)
				return init_fail(err, errno, "open", path);
		}
	if (setns(pidfd, CLONE_NEWNS) < 0)
		return init_fail(err, errno, "setns", "the container's mount namespace");
	for (uint32_t k = 0; k < st->nsources; k++) {
		const struct plan_op *src = st->sources[k];
		unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (src->n[0] ? AT_RECURSIVE : 0);
		int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src->s[0], flags);

		if (fd < 0)
			return init_fail(err, errno, "open_tree", src->s[0]);
		st->trees[k] = fd;
		if (src->n[1]) {
			int own = src->len[1] > 0 ? made_userns(src, err) : -1;
			struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP,
						   .userns_fd = (uint64_t)(own >= 0 ? own : userns) };
			unsigned at = AT_EMPTY_PATH | (src->n[1] == 2 ? AT_RECURSIVE : 0);
			int r;

			if (src->len[1] > 0 && own < 0)
				return -1;
			r = (int)syscall(SYS_mount_setattr, fd, "", at, &attr, sizeof(attr));
			if (own >= 0)
				close(own);
			/* EINVAL: the filesystem cannot be id-mapped (or is already). */
			if (r < 0)
				return init_fail(err, errno, "mount_setattr MOUNT_ATTR_IDMAP", src->s[0]);
		}
	}
	return 0;
}

int do_clone(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	int pidfd = -1;
	/* CLONE_PARENT makes C the manager's child, which holds it by pidfd;
	 * the kernel then gives C our exit signal and ignores exit_signal. */
	struct clone_args args = {
		.flags = op->n[0] | CLONE_PARENT | CLONE_PIDFD | (st->nsources ? CLONE_FILES : 0),
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = 0,
	};
	long pid;
	int r;

	/* An unprivileged H opens C's /proc files (uid_map …), owned by root while
	 * C is not dumpable; C inherits this flag and clears it at MSG_GO, before
	 * any op runs (main.c). Only the manager's own user can ptrace it meanwhile. */
	if (op->n[2] == 1 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return init_fail(err, errno, "prctl", "PR_SET_DUMPABLE");
	if (st->nsources) {
		void *page = mmap(NULL, st->nsources * sizeof(int), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			return init_fail(err, errno, "mmap", "mount sources");
		st->trees = page;
	}
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return init_fail(err, errno, "clone3", NULL);
	if (pid == 0)
		return 0;
	r = write_maps(pid, op, err);
	if (r == 0 && st->nsources)
		r = take_sources(pid, pidfd, st, err);
	if (r == 0 && (r = send_child((int)pid, pidfd)) < 0)
		init_fail(err, -r, "sendmsg", "MSG_CHILD");
	if (r < 0) {
		/* C waits for MSG_GO that will never come: do not leave it. C is the
		 * manager's child, not ours: only the manager can reap it, and the
		 * report carries its pidfd for that. */
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		err->orphan = pidfd;
		return r;
	}
	close(pidfd); /* C's table too, when shared */
	_exit(0);
}
