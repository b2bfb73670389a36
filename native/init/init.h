/*
 * Shared by the helper's files: the error every step fills, the state the
 * ops hand on to each other, and one handler per op.
 */
#ifndef XC_INIT_H
#define XC_INIT_H

#include <unistd.h>

#include "decode.h"

/* The socket to the manager: fd 3 until OP_EXEC moves it out of the way of preserved fds. */
extern int xc_sock;
#define XC_SOCK xc_sock

struct init_error {
	int errnum;
	const char *op;  /* syscall or step: "mount", "pivot_root" … */
	char path[4096]; /* path or detail, truncated */
	int orphan;      /* pidfd of a child H killed after a failed clone, sent with the report, or -1 */
};

struct init_state {
	int rootfd;          /* O_PATH of the rootfs (of "/" after OP_PIVOT_ROOT), -1 before OP_ROOTFS */
	int fifofd;          /* O_PATH of exec.fifo, -1 until OP_EXEC_FIFO */
	char exe[4096];      /* OP_RESOLVE_EXEC result */
	int cwd_done;        /* a mode-2 OP_CHDIR got there while privileged */
	/* OP_MOUNT_SOURCE: the ops H records before the clone, and the tree fds it takes after it, in a
	 * MAP_SHARED page that C reads (the fds themselves are in the table they share). */
	const struct plan_op **sources;
	uint32_t nsources;
	int *trees;
};

/* Every handler has this one signature, used or not. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
typedef int op_fn(const struct plan_op *op, struct init_state *st, struct init_error *err);

/* Fills err without allocating; returns -errnum. */
int init_fail(struct init_error *err, int errnum, const char *op, const char *path);

static inline void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ __attribute__((cleanup(close_fdp)))

/* "/proc/self/fd/N": how the old mount API reaches an fd we resolved safely. */
#define FDPATH_MAX 32
char *fdpath(char buf[FDPATH_MAX], int fd);

/* channel.c */
int recv_plan(struct xc_plan *plan, struct init_error *err, uint32_t *index, uint16_t *code);
int wait_go(void);
int send_sync(void);
const char *go_state(unsigned which); /* what the last MSG_GO carried for OP_HOOK */
int send_child(int pid, int pidfd);
int send_ready(void);
void report(const struct init_error *err, uint32_t index, uint16_t code);

/* ns.c: H */
op_fn op_join_ns, op_join_pidfd, op_time_offsets, op_unshare, op_mount_source;
int do_clone(const struct plan_op *op, struct init_state *st, struct init_error *err); /* 0 in C; never returns in H */

/* mounts.c */
int mount_fail(struct init_error *err, int errnum, const char *path); /* names /proc when it is no procfs */
op_fn op_root_propagation, op_rootfs, op_mount, op_mknod, op_symlink, op_pivot_root, op_mask,
	op_readonly, op_remount_root_ro;
/* copy.c: the contents of directory fd `from` into directory fd `to` (tmpcopyup) */
int copy_tree(int from, int to, const char *what, struct init_error *err);

/* system.c */
int proc_write(const char *path, const char *data, size_t len, struct init_error *err);
int proc_write_fd(int fd, const char *path, const char *data, size_t len, struct init_error *err);
op_fn op_hostname, op_domainname, op_sysctl, op_loopback_up, op_oom_score_adj;

/* process.c */
op_fn op_setid_root, op_setsid, op_rlimit, op_umask, op_exec_fifo, op_wait_start, op_resolve_exec,
	op_close_fds, op_caps_bounding, op_user, op_caps, op_chdir, op_no_new_privs, op_seccomp,
	op_exec, op_chown_stdio;
char **split_list(const char *s, uint32_t len);

/* An O_PATH fd of path in the root, an empty file created if missing (never through a symlink out). */
int ensure_file_in_root(const struct init_state *st, const char *path, struct init_error *err);
int ensure_dir_in_root(const struct init_state *st, const char *path, struct init_error *err);
int send_console(int master);

/* sched.c */
op_fn op_ioprio, op_scheduler, op_personality;
op_fn op_preserve_fds; /* process.c */

/* console.c */
op_fn op_console;

/* hooks.c */
op_fn op_sync, op_hook;

/* lsm.c */
op_fn op_lsm_exec;
int send_seccomp(int listener); /* channel.c */

#endif
