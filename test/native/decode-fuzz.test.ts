/**
 * The init helper's plan decoder, fuzzed standalone under AddressSanitizer and UBSan
 * (CVE-2021-43784 was a length overflow in runc's equivalent): test/native/decode-fuzz.c.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const repo = path.resolve(import.meta.dirname, "..", "..")
const cc = spawnSync("cc", ["--version"]).status === 0

describe.skipIf(!cc)("the plan decoder under sanitizers", () => {
  it("decodes every valid plan exactly and survives mutated and random input", () => {
    const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xc-fuzz-")), "decode-fuzz")
    execFileSync("cc", ["-std=gnu11", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-o", bin, path.join(repo, "test/native/decode-fuzz.c")])
    const seed = String(Date.now() % 100000)
    const r = spawnSync(bin, [seed, "20000"], { encoding: "utf8", timeout: 120_000 })
    expect(r.stderr, `seed ${seed}`).not.toMatch(/ERROR: AddressSanitizer|runtime error/)
    expect(r.status, `seed ${seed}: ${r.stdout}${r.stderr}`).toBe(0)
  }, 150_000)
})
