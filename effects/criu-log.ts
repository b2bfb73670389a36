/**
 * What a failed CRIU run says: the lines of its log (dump.log, restore.log) that
 * contain "Error", each with the lines before it, as `grep -n -B5 Error` would
 * print them (runc's logCriuErrors). CRIU's own answer on the socket is only an
 * errno; the reason is in the log.
 */
import * as fs from "node:fs"

/** The "Error" lines of a CRIU log with `before` lines of context each, numbered, gaps marked "...". */
export function criuLogExcerpt(text: string, before = 5, maxLines = 60): string | undefined {
  const lines = text.split("\n")
  const keep = new Set<number>()
  lines.forEach((line, i) => {
    if (!line.includes("Error")) return
    for (let j = Math.max(0, i - before); j <= i; j++) keep.add(j)
  })
  if (keep.size === 0) return undefined
  const out: string[] = []
  let last = -1
  for (const i of [...keep].sort((a, b) => a - b)) {
    if (last >= 0 && i > last + 1) out.push("...")
    out.push(`${i + 1}:${lines[i]}`)
    last = i
  }
  // The last errors are the ones that stopped CRIU: keep those when the log is long.
  return (out.length > maxLines ? ["...", ...out.slice(-maxLines)] : out).join("\n")
}

/** Error lines that say nothing about the failure: the closing summary, and the rlimit complaint of a root without CAP_SYS_RESOURCE. */
const NOISE = /(Dumping|Restoring) FAILED|rlimit: Can't setup RLIMIT_NOFILE/

/** The error line of an excerpt that names the cause (the first that is not noise), without its line number and timestamp. */
export function criuErrorCause(excerpt: string): string | undefined {
  const errors = excerpt.split("\n").filter((l) => l.includes("Error"))
  // CRIU's own lines say "Error (file.c:line)"; the output of tools it runs (ip: "Error: ipv4: Address
  // already assigned.") is logged too, and is rarely the cause.
  const own = errors.filter((l) => /Error \(/.test(l) && !NOISE.test(l))
  const line = own[0] ?? errors.find((l) => !NOISE.test(l)) ?? errors.at(-1)
  return line?.replace(/^\d+:\(\s*[\d.]+\)\s*/, "")
}

/** The excerpt of the log file at `file`, or undefined when it is missing or has no error line. */
export function readCriuLog(file: string): string | undefined {
  try {
    return criuLogExcerpt(fs.readFileSync(file, "utf8"))
  } catch {
    return undefined
  }
}
