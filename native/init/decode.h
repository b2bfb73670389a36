/*
 * The strict MSG_PLAN decoder: a pure function over a byte buffer, so that it
 * can be fuzzed on its own (test/native/decode-fuzz.c). It depends on nothing
 * but protocol.h and libc.
 */
#ifndef XC_DECODE_H
#define XC_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define XC_NFIELDS 8

struct plan_op {
	uint16_t code;
	uint16_t have;             /* bit i: N<i> was sent; bit 8+i: S<i> was sent */
	uint64_t n[XC_NFIELDS];    /* 0 when absent */
	const char *s[XC_NFIELDS]; /* NUL-terminated copy in the plan's arena; "" when absent */
	uint32_t len[XC_NFIELDS];  /* length of s[i], without the added NUL */
};

struct xc_plan {
	uint32_t count;
	uint32_t clone_at; /* index of the one OP_CLONE */
	struct plan_op ops[XC_MAX_OPS];
	/* Each string costs at least its 6-byte header on the wire and one NUL
	 * here, so the copies never need more bytes than the message had. */
	char arena[XC_MAX_MSG];
};

struct xc_decode_error {
	uint32_t index;   /* op index (count so far when the framing itself is bad) */
	uint16_t code;    /* op code, 0 if unknown */
	const char *why;  /* static text */
};

/* Decodes one whole MSG_PLAN datagram. Returns 0, or -EINVAL with *e set. */
int xc_decode_plan(const uint8_t *buf, size_t len, struct xc_plan *plan, struct xc_decode_error *e);

/* Reads the single framed record that must fill buf exactly. Returns 0 or -EINVAL. */
int xc_decode_header(const uint8_t *buf, size_t len, uint16_t *type, const uint8_t **payload,
		     uint32_t *plen);

#endif
