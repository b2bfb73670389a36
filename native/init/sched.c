/*
 * How the process is scheduled: I/O priority, CPU policy, personality
 * (runtime-spec 1.2 process.ioPriority, process.scheduler, linux.personality).
 * glibc 2.36 wraps neither ioprio_set nor sched_setattr: raw syscalls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define IOPRIO_WHO_PROCESS 1

/* The kernel's struct sched_attr (include/uapi/linux/sched/types.h), version 1 size. */
struct xc_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

int op_ioprio(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)op->n[0]) < 0)
		return init_fail(err, errno, "ioprio_set", NULL);
	return 0;
}

int op_scheduler(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	struct xc_sched_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = (uint32_t)op->n[0];
	a.sched_nice = (int32_t)op->n[1];
	a.sched_priority = (uint32_t)op->n[2];
	a.sched_flags = op->n[3];
	a.sched_runtime = op->n[4];
	a.sched_deadline = op->n[5];
	a.sched_period = op->n[6];
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return init_fail(err, errno, "sched_setattr", NULL);
	return 0;
}

int op_personality(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	if (personality((unsigned long)op->n[0]) < 0)
		return init_fail(err, errno, "personality", NULL);
	return 0;
}
