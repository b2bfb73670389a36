/*
 * OCI hooks at the points only C reaches. OP_SYNC hands the init's pause to
 * the manager, which runs prestart and createRuntime in the runtime
 * namespace; OP_HOOK runs createContainer (before pivot_root: its path
 * resolves on the host) and startContainer (after it) in our namespaces, with
 * the OCI state on stdin, as the runtime-spec prescribes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

int op_sync(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	int r = send_sync();

	if (r < 0)
		return init_fail(err, -r, "send", "sync");
	if (wait_go() < 0)
		return init_fail(err, ECANCELED, "sync", "the manager did not answer");
	return 0;
}

/* Writes all of buf; a hook that does not read its stdin is not an error. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

int op_hook(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char **argv = split_list(op->s[1], op->len[1]);
	char **envp = split_list(op->s[2], op->len[2]);
	const char *state = go_state((unsigned)op->n[1]);
	int in[2], status;
	char detail[4200];

	if (!argv || !envp)
		return init_fail(err, ENOMEM, "hook", op->s[0]);
	if (pipe2(in, O_CLOEXEC) < 0)
		return init_fail(err, errno, "pipe2", op->s[0]);
	/* A raw fork: glibc's view of our pid is stale after clone3, and the
	 * child only dup2s and execs. */
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return init_fail(err, errno, "fork", op->s[0]);
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in[0], 0) < 0)
			_exit(127);
		if (op->n[2] && fchdir(st->rootfd) < 0)
			_exit(127);
		execve(op->s[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	/* A hook that exits without reading would SIGPIPE us. */
	signal(SIGPIPE, SIG_IGN);
	write_all(in[1], state, strlen(state));
	signal(SIGPIPE, SIG_DFL);
	close(in[1]);

	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0 && op->n[0] > 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r;
		do
			r = poll(&p, 1, (int)(op->n[0] > 86400 ? 86400000 : op->n[0] * 1000));
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			close(pidfd);
			return init_fail(err, ETIMEDOUT, "hook", op->s[0]);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return init_fail(err, errno, "waitpid", op->s[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(detail, sizeof(detail), "%s exited %d", op->s[0], WEXITSTATUS(status));
	else
		snprintf(detail, sizeof(detail), "%s killed by signal %d", op->s[0], WTERMSIG(status));
	return init_fail(err, ECANCELED, "hook", detail);
}
