/**
 * JSON as Go's encoding/json writes it, for output callers compare with runc's: keys in the
 * order given, no spaces, and integers printed exactly. JSON.stringify prints a uint64 such as
 * v1's "no limit" 9223372036854771712 (exact in a double) as 9223372036854772000.
 */
export function goJson(v: unknown): string {
  if (v === null || v === undefined) return "null"
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v).toString() : JSON.stringify(v)
  if (typeof v === "bigint") return v.toString()
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined)
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${goJson(x)}`).join(",")}}`
}
