/*
 * Every length is compared with the bytes left before it is used, and never
 * added to an offset first: CVE-2021-43784 was a length that overflowed in
 * runc's netlink decoder. Nothing here allocates.
 */
#include <errno.h>
#include <string.h>

#include "decode.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Splits the next record off [*at, len). */
static int next_record(const uint8_t *buf, size_t len, size_t *at, uint16_t *type,
		       const uint8_t **payload, uint32_t *plen)
{
	if (len - *at < XC_HDR)
		return -EINVAL;
	*type = get16(buf + *at);
	*plen = get32(buf + *at + 2);
	*at += XC_HDR;
	if (*plen > len - *at)
		return -EINVAL;
	*payload = buf + *at;
	*at += *plen;
	return 0;
}

int xc_decode_header(const uint8_t *buf, size_t len, uint16_t *type, const uint8_t **payload,
		     uint32_t *plen)
{
	size_t at = 0;

	if (next_record(buf, len, &at, type, payload, plen) < 0 || at != len)
		return -EINVAL;
	return 0;
}

static int known_op(uint16_t code)
{
	return (code >= XC_OP_JOIN_NS && code <= XC_OP_CLONE) ||
	       (code >= XC_OP_SETID_ROOT && code < XC_OP_MAX);
}

/* Runs in H before the clone: joins, the time namespace, and what C
 * inherits but could not set itself inside a new user namespace: rlimits
 * above the namespace's (DESIGN.md §4), and oom_score_adj (a non-dumpable
 * C's /proc/self files belong to the host's root). */
static int before_clone_op(uint16_t code)
{
	return code == XC_OP_JOIN_NS || code == XC_OP_JOIN_PIDFD || code == XC_OP_TIME_OFFSETS ||
	       code == XC_OP_RLIMIT || code == XC_OP_OOM_SCORE_ADJ || code == XC_OP_MOUNT_SOURCE;
}

/* The only fields that carry binary data rather than a C string. */
static int binary_field(uint16_t code, unsigned i)
{
	return (code == XC_OP_EXEC && i <= 1) || (code == XC_OP_HOOK && (i == 1 || i == 2)) || (code == XC_OP_USER && i == 0) ||
	       (code == XC_OP_SECCOMP && i == 0);
}

static int fail(struct xc_decode_error *e, const char *why)
{
	e->why = why;
	return -EINVAL;
}

static int check_shape(const struct plan_op *op, struct xc_decode_error *e)
{
	switch (op->code) {
	case XC_OP_EXEC:
		for (unsigned i = 0; i <= 1; i++)
			if (op->len[i] > 0 && op->s[i][op->len[i] - 1] != '\0')
				return fail(e, "list not NUL-terminated");
		if (op->len[0] == 0)
			return fail(e, "empty argv");
		break;
	case XC_OP_USER:
		if (op->len[0] % 4)
			return fail(e, "gids not a u32 array");
		break;
	case XC_OP_SECCOMP:
		if (op->len[0] % 8 || op->len[0] == 0)
			return fail(e, "filter not a sock_filter array");
		break;
	}
	return 0;
}

static int decode_fields(const uint8_t *buf, uint32_t len, struct plan_op *op, char **arena,
			 struct xc_decode_error *e)
{
	size_t at = 0;

	for (unsigned i = 0; i < XC_NFIELDS; i++)
		op->s[i] = "";
	while (at < len) {
		const uint8_t *val;
		uint16_t tag;
		uint32_t vlen;

		if (next_record(buf, len, &at, &tag, &val, &vlen) < 0)
			return fail(e, "field overruns its op");
		if (tag <= XC_F_N7) {
			if (op->have & 1u << tag)
				return fail(e, "repeated field");
			if (vlen != 8)
				return fail(e, "integer field not 8 bytes");
			op->have |= 1u << tag;
			op->n[tag] = get64(val);
		} else if (tag >= XC_F_S0 && tag <= XC_F_S7) {
			unsigned i = tag - XC_F_S0;

			if (op->have & 1u << (8 + i))
				return fail(e, "repeated field");
			if (vlen > XC_MAX_STR)
				return fail(e, "string field too long");
			if (!binary_field(op->code, i) && memchr(val, '\0', vlen))
				return fail(e, "NUL inside a string field");
			op->have |= 1u << (8 + i);
			memcpy(*arena, val, vlen);
			(*arena)[vlen] = '\0';
			op->s[i] = *arena;
			op->len[i] = vlen;
			*arena += vlen + 1;
		} else {
			return fail(e, "unknown field tag");
		}
	}
	return check_shape(op, e);
}

int xc_decode_plan(const uint8_t *buf, size_t len, struct xc_plan *plan, struct xc_decode_error *e)
{
	const uint8_t *payload;
	char *arena = plan->arena;
	size_t at = 0;
	uint16_t type;
	uint32_t plen;
	int have_clone = 0;

	memset(e, 0, sizeof(*e));
	plan->count = 0;
	plan->clone_at = 0;
	if (len > XC_MAX_MSG || xc_decode_header(buf, len, &type, &payload, &plen) < 0)
		return fail(e, "bad message framing");
	if (type != XC_MSG_PLAN)
		return fail(e, "not a MSG_PLAN");
	while (at < plen) {
		const uint8_t *fields;
		uint32_t flen;
		uint16_t code;
		struct plan_op *op;

		e->index = plan->count;
		e->code = 0;
		if (next_record(payload, plen, &at, &code, &fields, &flen) < 0)
			return fail(e, "op overruns the plan");
		e->code = code;
		if (plan->count == XC_MAX_OPS)
			return fail(e, "too many ops");
		if (!known_op(code))
			return fail(e, "unknown op");
		if (code == XC_OP_CLONE) {
			if (have_clone)
				return fail(e, "second OP_CLONE");
			have_clone = 1;
			plan->clone_at = plan->count;
		} else if (have_clone ? code < XC_OP_SETID_ROOT || code == XC_OP_JOIN_PIDFD || code == XC_OP_MOUNT_SOURCE : !before_clone_op(code)) {
			return fail(e, have_clone ? "op must come before OP_CLONE"
						  : "op must come after OP_CLONE");
		}
		op = &plan->ops[plan->count];
		memset(op, 0, sizeof(*op));
		op->code = code;
		if (decode_fields(fields, flen, op, &arena, e) < 0)
			return -EINVAL;
		plan->count++;
	}
	if (!have_clone) {
		e->index = plan->count;
		e->code = 0;
		return fail(e, "no OP_CLONE");
	}
	return 0;
}
