/**
 * The leaf types every config string and id goes through, so that one rule holds for all fields:
 * - a string never holds a NUL byte: C sees it as the end of the string, so "a\0b" would run "a",
 *   "A=b\0c" set A=b and a mount on "/tmp\0/../../etc" land on /etc (runc: "mount field contains
 *   null byte"). The schema refuses it before any path is normalised.
 * - a uid or gid is at most 2^31-1, as runc (libcontainer/user: "uids and gids must be in range
 *   0-2147483647"): setresuid((uid_t)-1, …) means "leave unchanged", so 4294967295 would keep root.
 */
import { Schema as S } from "effect"

/** A string that may reach a syscall: no NUL byte. */
export const Str = S.String.check(S.makeFilter((s) => !s.includes("\0"), { message: "contains a null byte" }))

/** The largest uid or gid a config may name (runc's maxID, 1<<31 - 1). */
export const MAX_ID = 2 ** 31 - 1

/** A uid, gid or id-mapping number. */
export const Id = S.Int.check(S.isBetween({ minimum: 0, maximum: MAX_ID }, { message: `uids and gids must be in range 0-${MAX_ID}` }))

/** RLIM_INFINITY in runc's uint64. */
export const RLIM_INFINITY_TEXT = "18446744073709551615"

/**
 * An rlimit value, a u64 in the spec. A JSON number is a double: 2^64-1 (RLIM_INFINITY) arrives as
 * the float 2^64, so that float means RLIM_INFINITY (as do the few values within 2^11 of it that round
 * to it). A literal of 2^64 or more never gets here as a number: config/json-text.ts reads it as
 * Infinity, refused below (runc refuses it: it does not fit a uint64). Negative and fractional
 * values are refused as runc's decoder does.
 */
export const RlimitValue = S.Number.check(
  S.makeFilter((n) => Number.isInteger(n) && n >= 0 && n <= 2 ** 64, { message: `must be an integer from 0 to ${RLIM_INFINITY_TEXT} (RLIM_INFINITY)` }),
)
