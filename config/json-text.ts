/**
 * JSON text → a value, for config.json, process.json and resources.json, with two differences from
 * a bare JSON.parse:
 * - an integer literal of 2^64 or more becomes Infinity, which every integer field refuses by its
 *   path. JSON.parse would round it to the double 2^64, the same double as RLIM_INFINITY (2^64-1),
 *   and an rlimit of 2^64 would silently become unlimited; runc refuses any value that does not fit
 *   its uint64 fields.
 * - a syntax error says where, never what: V8 quotes a piece of the text, and config.json may be a
 *   link to a file its reader should not see (runc's decoder quotes one character).
 */
import { ConfigError } from "../effects/errors.ts"

const TWO_64 = 2n ** 64n
/** A JSON string (skipped) or a JSON number. */
const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g

const tooBig = (literal: string): boolean =>
  /^-?\d+$/.test(literal) ? BigInt(literal) >= TWO_64 : Number(literal) >= 2 ** 64

/** `text` with every number literal of 2^64 or more written as 1e400 (Infinity once parsed). */
export function markHugeNumbers(text: string): string {
  // Most texts have no 20-digit number and no exponent: skip the scan.
  if (!/\d{20}|\d[eE][+-]?\d/.test(text)) return text
  let out = ""
  let last = 0
  for (const m of text.matchAll(TOKEN)) {
    const t = m[0]
    if (t.startsWith('"') || !tooBig(t)) continue
    out += text.slice(last, m.index) + "1e400"
    last = m.index + t.length
  }
  return last === 0 ? text : out + text.slice(last)
}

/** Parses JSON text read from `file`; a ConfigError naming `field` if it is not JSON. */
export function parseJsonText(text: string, field: string, file: string): unknown {
  try {
    return JSON.parse(markHugeNumbers(text)) as unknown
  } catch (e) {
    const why = (e as Error).message.replace(/, ".*"(?:\.\.\.)? is not valid JSON$/s, "")
    throw new ConfigError({ path: field, reason: `${file} is not JSON: ${why}` })
  }
}
