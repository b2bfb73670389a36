/*
 * xcontainer-init: executes one plan (protocol.h) and decides nothing.
 *
 *   H (exec'ed by the manager)        C (clone3 child, a child of the manager)
 *   recv MSG_PLAN, decode
 *   ops before OP_CLONE
 *   OP_CLONE ──────────────────────►  blocks on fd 3 for MSG_GO
 *   id maps, MSG_CHILD + pidfd
 *   exit 0                            ops after OP_CLONE … OP_EXEC
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "init.h"

static op_fn *const handlers[XC_OP_MAX] = {
	[XC_OP_JOIN_NS] = op_join_ns,
	[XC_OP_JOIN_PIDFD] = op_join_pidfd,
	[XC_OP_TIME_OFFSETS] = op_time_offsets,
	[XC_OP_SETID_ROOT] = op_setid_root,
	[XC_OP_SETSID] = op_setsid,
	[XC_OP_ROOT_PROPAGATION] = op_root_propagation,
	[XC_OP_ROOTFS] = op_rootfs,
	[XC_OP_MOUNT] = op_mount,
	[XC_OP_MKNOD] = op_mknod,
	[XC_OP_SYMLINK] = op_symlink,
	[XC_OP_EXEC_FIFO] = op_exec_fifo,
	[XC_OP_PIVOT_ROOT] = op_pivot_root,
	[XC_OP_MASK] = op_mask,
	[XC_OP_READONLY] = op_readonly,
	[XC_OP_REMOUNT_ROOT_RO] = op_remount_root_ro,
	[XC_OP_HOSTNAME] = op_hostname,
	[XC_OP_DOMAINNAME] = op_domainname,
	[XC_OP_SYSCTL] = op_sysctl,
	[XC_OP_LOOPBACK_UP] = op_loopback_up,
	[XC_OP_OOM_SCORE_ADJ] = op_oom_score_adj,
	[XC_OP_RLIMIT] = op_rlimit,
	[XC_OP_UMASK] = op_umask,
	[XC_OP_RESOLVE_EXEC] = op_resolve_exec,
	[XC_OP_WAIT_START] = op_wait_start,
	[XC_OP_CLOSE_FDS] = op_close_fds,
	[XC_OP_CAPS_BOUNDING] = op_caps_bounding,
	[XC_OP_USER] = op_user,
	[XC_OP_CAPS] = op_caps,
	[XC_OP_CHDIR] = op_chdir,
	[XC_OP_NO_NEW_PRIVS] = op_no_new_privs,
	[XC_OP_SECCOMP] = op_seccomp,
	[XC_OP_EXEC] = op_exec,
	[XC_OP_UNSHARE] = op_unshare,
	[XC_OP_SYNC] = op_sync,
	[XC_OP_HOOK] = op_hook,
	[XC_OP_CONSOLE] = op_console,
	[XC_OP_IOPRIO] = op_ioprio,
	[XC_OP_SCHEDULER] = op_scheduler,
	[XC_OP_PERSONALITY] = op_personality,
	[XC_OP_PRESERVE_FDS] = op_preserve_fds,
	[XC_OP_LSM_EXEC] = op_lsm_exec,
	[XC_OP_MOUNT_SOURCE] = op_mount_source,
	[XC_OP_CHOWN_STDIO] = op_chown_stdio,
};

/* Static (BSS, some 20 MB of address space of which a plan touches only what it
 * uses): too much for a stack, and C gets its own copy. */
static struct xc_plan plan;
static struct init_state state = { .rootfd = -1, .fifofd = -1 };
static struct init_error error = { .orphan = -1 };

static _Noreturn void die(uint32_t index, uint16_t code)
{
	report(&error, index, code);
	_exit(1);
}

int main(void)
{
	uint32_t index;
	uint16_t code;

	/* CVE-2016-9962: nothing in the container may ptrace us while we hold
	 * host fds. execve of the user's program resets it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		init_fail(&error, errno, "prctl", "PR_SET_DUMPABLE");
		die(0, 0);
	}
	/* A closed stdio fd would be taken by our next open and handed to
	 * the container's program as its stdin/stdout. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) {
			init_fail(&error, EBADF, "open", "/dev/null as stdio");
			die(0, 0);
		}
	/* The manager left fd 3 inheritable to reach us; the container's
	 * program must not get it: its EOF tells the manager we exec'ed. */
	if (fcntl(XC_SOCK, F_SETFD, FD_CLOEXEC) < 0) {
		init_fail(&error, errno, "fcntl", "fd 3");
		die(0, 0);
	}
	if (recv_plan(&plan, &error, &index, &code) < 0)
		die(index, code);

	for (uint32_t i = 0; i < plan.count; i++) {
		const struct plan_op *op = &plan.ops[i];

		if (op->code == XC_OP_CLONE) {
			if (do_clone(op, &state, &error) < 0)
				die(i, op->code);
			/* C: the manager has our pid in its cgroups once GO comes.
			 * Anything else (EOF: the manager gave up) ends us quietly. */
			if (wait_go() < 0)
				_exit(1);
			/* OP_CLONE N2 = 1 left us dumpable for H's map writes: no longer. */
			if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
				die(i, op->code);
			continue;
		}
		if (!handlers[op->code]) /* the decoder let an op through that we lack */
			init_fail(&error, ENOSYS, "op", "no handler");
		if (!handlers[op->code] || handlers[op->code](op, &state, &error) < 0)
			die(i, op->code);
	}
	/* OP_EXEC does not return; a plan without it just ends here. */
	return 0;
}
