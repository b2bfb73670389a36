/*
 * AppArmor and SELinux: the label the program gets at execve. Which file and
 * what text is the manager's decision (config/lsm.ts); this only writes it,
 * as runc's apparmor.ApplyProfile ("exec <profile>") and selinux.SetExecLabel do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>

#include "init.h"

int op_lsm_exec(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	_cleanup_close_ int fd = open(op->s[0], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return init_fail(err, errno, "open", op->s[0]);
	if (op->n[0] != 1) /* the real thing: only procfs may receive it (CVE-2019-16884) */
		return proc_write_fd(fd, op->s[0], op->s[1], op->len[1], err);
	do
		n = write(fd, op->s[1], op->len[1]);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != op->len[1])
		return init_fail(err, n < 0 ? errno : EIO, "write", op->s[0]);
	return 0;
}
