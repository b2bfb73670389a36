/*
 * Fuzz target for the init helper's plan decoder (CVE-2021-43784 was a
 * length overflow in runc's equivalent). Builds random valid plans, checks
 * they decode to what was encoded, then mutates them (bit flips, length
 * fields, truncation, splices) and checks the decoder either rejects them or
 * returns a plan that keeps its invariants. Exits 0 when nothing broke.
 *
 *   cc -std=gnu11 -g -fsanitize=address,undefined -o /tmp/decode-fuzz test/native/decode-fuzz.c
 *   /tmp/decode-fuzz [seed] [iterations]
 *
 * With -DXC_LIBFUZZER (and -fsanitize=fuzzer) it is a libFuzzer target instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../native/init/decode.c"

static struct xc_plan plan;

static int check_plan(const struct xc_plan *p)
{
	if (p->count > XC_MAX_OPS || p->clone_at >= p->count || p->ops[p->clone_at].code != XC_OP_CLONE)
		return -1;
	for (uint32_t i = 0; i < p->count; i++) {
		const struct plan_op *op = &p->ops[i];

		for (unsigned f = 0; f < XC_NFIELDS; f++) {
			if (op->len[f] > XC_MAX_STR || op->s[f][op->len[f]] != '\0')
				return -1;
			if (!(op->have & 1u << (8 + f)) && op->len[f] != 0)
				return -1;
			if (op->len[f] && (op->s[f] < p->arena || op->s[f] + op->len[f] >= p->arena + sizeof(p->arena)))
				return -1;
			if (!binary_field(op->code, f) && strlen(op->s[f]) != op->len[f])
				return -1;
		}
	}
	return 0;
}

static void check(const uint8_t *buf, size_t len)
{
	struct xc_decode_error e;

	if (xc_decode_plan(buf, len, &plan, &e) == 0) {
		if (check_plan(&plan) < 0) {
			fprintf(stderr, "decoded plan breaks an invariant (len %zu)\n", len);
			abort();
		}
	} else if (!e.why) {
		fprintf(stderr, "rejected without a reason\n");
		abort();
	}
}

#ifdef XC_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	return 0;
}
#else

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct wbuf {
	uint8_t *b;
	size_t len, cap;
};

static void put_raw(struct wbuf *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2;
		w->b = realloc(w->b, w->cap);
		if (!w->b)
			abort();
	}
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

static size_t put_hdr(struct wbuf *w, uint16_t type, uint32_t len)
{
	uint8_t h[6] = { type & 0xff, type >> 8, len & 0xff, len >> 8 & 0xff, len >> 16 & 0xff, len >> 24 };
	size_t at = w->len;

	put_raw(w, h, 6);
	return at;
}

static void patch_len(struct wbuf *w, size_t at)
{
	uint32_t len = (uint32_t)(w->len - at - 6);

	for (int i = 0; i < 4; i++)
		w->b[at + 2 + i] = len >> 8 * i & 0xff;
}

static const uint16_t c_ops[] = { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
				  25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38 };

/* A valid plan, and what each op should decode to. */
static struct { uint16_t code; uint16_t have; uint64_t n[8]; uint32_t len[8]; } want[64];
static unsigned nwant;

static void gen_op(struct wbuf *w, uint16_t code)
{
	size_t at = put_hdr(w, code, 0);
	unsigned k = nwant++;

	memset(&want[k], 0, sizeof(want[k]));
	want[k].code = code;
	for (unsigned f = 0; f < 8; f++) {
		if (rnd() % 3 == 0) {
			uint64_t v = rnd();
			uint8_t b[8];

			for (int i = 0; i < 8; i++)
				b[i] = v >> 8 * i & 0xff;
			put_hdr(w, (uint16_t)f, 8);
			put_raw(w, b, 8);
			want[k].have |= 1u << f;
			want[k].n[f] = v;
		}
		/* argv and a seccomp filter may not be empty */
		int needed = f == 0 && (code == XC_OP_EXEC || code == XC_OP_SECCOMP);

		if (needed || rnd() % 3 == 0) {
			uint32_t len = (uint32_t)(rnd() % 40);
			uint8_t s[48];

			for (uint32_t i = 0; i < len; i++)
				s[i] = (uint8_t)('a' + rnd() % 26);
			if (binary_field(code, f)) {
				/* lists end in NUL; arrays are whole units */
				len = len / 8 * 8 + 8;
				for (uint32_t i = 0; i < len; i += 3)
					s[i] = 0;
				s[len - 1] = 0;
			}
			put_hdr(w, (uint16_t)(0x10 + f), len);
			put_raw(w, s, len);
			want[k].have |= 1u << (8 + f);
			want[k].len[f] = len;
		}
	}
	patch_len(w, at);
}

static void gen_plan(struct wbuf *w)
{
	size_t at;
	unsigned before = (unsigned)(rnd() % 3), after = (unsigned)(rnd() % 40);

	w->len = 0;
	nwant = 0;
	at = put_hdr(w, XC_MSG_PLAN, 0);
	for (unsigned i = 0; i < before; i++)
		gen_op(w, (uint16_t)(rnd() % 2 ? XC_OP_JOIN_NS : XC_OP_RLIMIT));
	gen_op(w, XC_OP_CLONE);
	for (unsigned i = 0; i < after; i++)
		gen_op(w, c_ops[rnd() % (sizeof(c_ops) / sizeof(c_ops[0]))]);
	patch_len(w, at);
}

static void roundtrip(const struct wbuf *w)
{
	struct xc_decode_error e;

	if (xc_decode_plan(w->b, w->len, &plan, &e) < 0) {
		fprintf(stderr, "valid plan rejected: op %u: %s\n", e.index, e.why);
		abort();
	}
	if (plan.count != nwant || check_plan(&plan) < 0)
		abort();
	for (unsigned i = 0; i < nwant; i++) {
		const struct plan_op *op = &plan.ops[i];

		if (op->code != want[i].code || op->have != want[i].have)
			abort();
		for (unsigned f = 0; f < 8; f++)
			if (op->n[f] != want[i].n[f] ||
			    op->len[f] != want[i].len[f])
				abort();
	}
}

static void mutate(struct wbuf *w)
{
	unsigned n = 1 + (unsigned)(rnd() % 4);

	for (unsigned k = 0; k < n && w->len > 0; k++) {
		size_t at = rnd() % w->len;

		switch (rnd() % 6) {
		case 0: w->b[at] ^= (uint8_t)(1u << rnd() % 8); break;
		case 1: w->b[at] = (uint8_t)rnd(); break;
		case 2: /* a length field's high byte: the overflow case */
			w->b[at] = 0xff;
			break;
		case 3: w->len = at; break;
		case 4: { /* duplicate a slice (repeated tags, extra ops) */
			size_t from = rnd() % w->len, len = rnd() % 64;
			uint8_t tmp[64];

			if (from + len > w->len)
				len = w->len - from;
			memcpy(tmp, w->b + from, len);
			put_raw(w, tmp, len);
			break;
		}
		default: { /* an interesting small or huge u32 */
			static const uint32_t v[] = { 0, 1, 5, 6, 7, 8, 9, XC_MAX_STR, XC_MAX_STR + 1,
						      0x7fffffff, 0xfffffffa, 0xffffffff };
			uint32_t x = v[rnd() % (sizeof(v) / sizeof(v[0]))];

			if (at + 4 <= w->len)
				for (int i = 0; i < 4; i++)
					w->b[at + i] = x >> 8 * i & 0xff;
		}
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 0) : 20000;
	struct wbuf w = { 0 };

	rng = seed * 0x9e3779b97f4a7c15ull | 1;
	for (unsigned long i = 0; i < iters; i++) {
		gen_plan(&w);
		roundtrip(&w);
		for (int m = 0; m < 8; m++) {
			struct wbuf c = { 0 };

			put_raw(&c, w.b, w.len);
			mutate(&c);
			check(c.b, c.len);
			free(c.b);
		}
		/* pure noise too */
		uint8_t noise[256];
		size_t nlen = rnd() % sizeof(noise);
		for (size_t j = 0; j < nlen; j++)
			noise[j] = (uint8_t)rnd();
		if (nlen >= 2)
			noise[0] = XC_MSG_PLAN, noise[1] = 0;
		check(noise, nlen);
	}
	free(w.b);
	printf("decode-fuzz: seed %llu, %lu plans, ok\n", (unsigned long long)seed, iters);
	return 0;
}
#endif
