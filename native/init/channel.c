/*
 * The helper's side of the socket (fd 3). Messages are framed as in
 * protocol.h; what the helper sends is small, so it is built on the stack.
 *
 *   H:  recv MSG_PLAN ─► … ─► send MSG_CHILD + [pidfd] ─► exit 0
 *   C:  recv MSG_GO ─► … ─► send MSG_READY ─► (exec.fifo) ─► execve (EOF)
 *   either: send MSG_ERROR ─► exit 1
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "init.h"

static uint8_t msgbuf[XC_MAX_MSG];

int xc_sock = 3;

int init_fail(struct init_error *err, int errnum, const char *op, const char *path)
{
	err->errnum = errnum ? errnum : EIO;
	err->op = op;
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
	return -err->errnum;
}

char *fdpath(char buf[FDPATH_MAX], int fd)
{
	snprintf(buf, FDPATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

struct out {
	uint8_t buf[8192];
	size_t len;
};

static void put(struct out *o, uint16_t tag, const void *val, uint32_t len)
{
	if (len > sizeof(o->buf) - XC_HDR - o->len)
		len = 0; /* cannot happen for our own short fields; never overrun */
	uint8_t *p = o->buf + o->len;
	p[0] = tag & 0xff;
	p[1] = tag >> 8;
	for (int i = 0; i < 4; i++)
		p[2 + i] = (len >> 8 * i) & 0xff;
	memcpy(p + XC_HDR, val, len);
	o->len += XC_HDR + len;
}

static void put_n(struct out *o, uint16_t tag, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (v >> 8 * i) & 0xff;
	put(o, tag, b, 8);
}

/* Sends header + fields, and an fd when fd >= 0. MSG_NOSIGNAL: a gone
 * manager must give EPIPE, not kill us before we can say why on stderr. */
static int send_msg(uint16_t type, const struct out *fields, int fd)
{
	struct out m = { .len = 0 };
	struct iovec iov;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	put(&m, type, fields ? fields->buf : NULL, fields ? fields->len : 0);
	iov.iov_base = m.buf;
	iov.iov_len = m.len;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(XC_SOCK, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int send_child(int pid, int pidfd)
{
	struct out f = { .len = 0 };

	put_n(&f, XC_F_N0, (uint64_t)pid);
	return send_msg(XC_MSG_CHILD, &f, pidfd);
}

int send_ready(void)
{
	return send_msg(XC_MSG_READY, NULL, -1);
}

void report(const struct init_error *err, uint32_t index, uint16_t code)
{
	struct out f = { .len = 0 };
	const char *op = err->op ? err->op : "?";

	put_n(&f, XC_F_N0, (uint64_t)err->errnum);
	put_n(&f, XC_F_N1, index);
	put_n(&f, XC_F_N2, code);
	put(&f, XC_F_S0, op, strlen(op));
	put(&f, XC_F_S1, err->path, strlen(err->path));
	if (send_msg(XC_MSG_ERROR, &f, err->orphan) < 0)
		dprintf(2, "xcontainer-init: %s %s: %s\n", op, err->path, strerror(err->errnum));
}

static ssize_t recv_one(void)
{
	for (;;) {
		/* MSG_TRUNC: the real length comes back, so an oversize
		 * datagram is refused instead of decoded cut short. Any fd
		 * sent along is closed by the kernel (no control buffer). */
		ssize_t n = recv(XC_SOCK, msgbuf, sizeof(msgbuf), MSG_TRUNC);
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

int recv_plan(struct xc_plan *plan, struct init_error *err, uint32_t *index, uint16_t *code)
{
	struct xc_decode_error de;
	ssize_t n = recv_one();

	*index = 0;
	*code = 0;
	if (n < 0)
		return init_fail(err, errno, "recv", "plan");
	if ((size_t)n > sizeof(msgbuf))
		return init_fail(err, EINVAL, "decode", "plan too large");
	if (xc_decode_plan(msgbuf, (size_t)n, plan, &de) < 0) {
		*index = de.index;
		*code = de.code;
		return init_fail(err, EINVAL, "decode", de.why);
	}
	return 0;
}

int send_console(int master)
{
	return send_msg(XC_MSG_CONSOLE, NULL, master);
}

int send_seccomp(int listener)
{
	return send_msg(XC_MSG_SECCOMP, NULL, listener);
}

int send_sync(void)
{
	return send_msg(XC_MSG_SYNC, NULL, -1);
}

/* The OCI states MSG_GO carries for OP_HOOK (S0, S1), NUL-terminated. */
static char hook_state[2][XC_MAX_STR + 1];

const char *go_state(unsigned which)
{
	return which < 2 ? hook_state[which] : "";
}

int wait_go(void)
{
	const uint8_t *payload;
	uint16_t type;
	uint32_t plen;
	ssize_t n = recv_one();

	if (n <= 0 || (size_t)n > sizeof(msgbuf))
		return -1;
	if (xc_decode_header(msgbuf, (size_t)n, &type, &payload, &plen) < 0 || type != XC_MSG_GO)
		return -1;
	/* Fields: u16 tag, u32 length, value; only S0 and S1, each bounded. */
	for (uint32_t at = 0; at < plen;) {
		if (plen - at < XC_HDR)
			return -1;
		uint16_t tag = (uint16_t)(payload[at] | payload[at + 1] << 8);
		uint32_t len = (uint32_t)payload[at + 2] | (uint32_t)payload[at + 3] << 8 |
			       (uint32_t)payload[at + 4] << 16 | (uint32_t)payload[at + 5] << 24;
		at += XC_HDR;
		if (len > plen - at || len > XC_MAX_STR || (tag != XC_F_S0 && tag != XC_F_S1))
			return -1;
		memcpy(hook_state[tag - XC_F_S0], payload + at, len);
		hook_state[tag - XC_F_S0][len] = '\0';
		at += len;
	}
	return 0;
}
