/*
 * The container's terminal (process.terminal): a pty from the container's own
 * devpts instance, its peer bound over /dev/console, the master handed to the
 * manager. The peer is opened from the master (TIOCGPTPEER), never by a path
 * the container could have replaced, and /dev/console is resolved inside the
 * root (CVE-2025-52565).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>
#include <linux/magic.h>

#include "init.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int op_console(const struct plan_op *op, struct init_state *st, struct init_error *err)
{
	char src[FDPATH_MAX], dst[FDPATH_MAX];
	struct statfs sfs;
	int unlock = 0;
	_cleanup_close_ int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (master < 0)
		return init_fail(err, errno, "open", "/dev/pts/ptmx");
	/* Only a devpts ptmx gives a pty of this container's instance. */
	if (fstatfs(master, &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC)
		return init_fail(err, EXDEV, "open", "/dev/pts/ptmx is not on devpts");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return init_fail(err, errno, "ioctl", "TIOCSPTLCK");
	_cleanup_close_ int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		return init_fail(err, errno, "ioctl", "TIOCGPTPEER");
	if (op->n[0] || op->n[1]) {
		struct winsize ws = { .ws_row = (unsigned short)op->n[0], .ws_col = (unsigned short)op->n[1] };
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			return init_fail(err, errno, "ioctl", "TIOCSWINSZ");
	}
	if (op->n[2]) {
		_cleanup_close_ int target = ensure_file_in_root(st, "/dev/console", err);
		if (target < 0)
			return -err->errnum;
		if (mount(fdpath(src, peer), fdpath(dst, target), NULL, MS_BIND, NULL) < 0)
			return mount_fail(err, errno, "/dev/console");
	}
	int r = send_console(master);
	if (r < 0)
		return init_fail(err, -r, "send", "console master");
	if (setsid() < 0)
		return init_fail(err, errno, "setsid", NULL);
	if (ioctl(peer, TIOCSCTTY, 0) < 0)
		return init_fail(err, errno, "ioctl", "TIOCSCTTY");
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(peer, fd) < 0)
			return init_fail(err, errno, "dup2", "console");
	return 0;
}
