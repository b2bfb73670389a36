/** The CRIU log excerpt put into CriuFailed: error lines with their context, as runc's logCriuErrors. */
import { describe, expect, it } from "vitest"
import { criuLogExcerpt, criuErrorCause } from "../../effects/criu-log.ts"

const log = (n: number, errors: Record<number, string>) =>
  Array.from({ length: n }, (_, i) => errors[i + 1] ?? `(00.0000${i + 1}) line ${i + 1}`).join("\n")

describe("criuLogExcerpt", () => {
  it("has nothing to say about a log without errors", () => {
    expect(criuLogExcerpt(log(20, {}))).toBeUndefined()
  })

  it("quotes each error line with the five lines before it, numbered, gaps marked", () => {
    const text = log(30, { 8: "(00.1) Error (criu/a.c:1): first", 28: "(00.2) Error (criu/b.c:2): second" })
    const out = criuLogExcerpt(text)!.split("\n")
    expect(out.slice(0, 6)).toEqual(["3:(00.00003) line 3", "4:(00.00004) line 4", "5:(00.00005) line 5", "6:(00.00006) line 6", "7:(00.00007) line 7", "8:(00.1) Error (criu/a.c:1): first"])
    expect(out[6]).toBe("...")
    expect(out.at(-1)).toBe("28:(00.2) Error (criu/b.c:2): second")
    expect(out).toHaveLength(13)
  })

  it("merges overlapping contexts and keeps the last lines of a long log", () => {
    const errors: Record<number, string> = {}
    for (let i = 10; i <= 400; i += 3) errors[i] = `(00.${i}) Error (x.c:${i}): e${i}`
    const out = criuLogExcerpt(log(400, errors), 5, 60)!.split("\n")
    expect(out[0]).toBe("...")
    expect(out).toHaveLength(61)
    expect(out.at(-1)).toContain("e400")
    expect(out.slice(1)).not.toContain("...")
  })

  it("names the cause: the first error that is not noise, without its line number and timestamp", () => {
    const excerpt = [
      "3:(00.1) x",
      "4:(00.2) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
      "5:Error: ipv4: Address already assigned.",
      "9:( 01.500) Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=0 path=/dev/null",
      "10:(01.6) Error (criu/cr-dump.c:1681): Dump files (pid: 1) failed with -1",
      "12:(01.7) Error (criu/cr-dump.c:2111): Dumping FAILED.",
    ].join("\n")
    expect(criuErrorCause(excerpt)).toBe("Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=0 path=/dev/null")
    expect(criuErrorCause("12:(01.7) Error (criu/cr-dump.c:2111): Dumping FAILED.")).toBe("Error (criu/cr-dump.c:2111): Dumping FAILED.")
  })
})
