/**
 * Part 5b, the C plan decoder under sanitizers for a bounded time. A coverage-guided fuzzer is
 * used when the host has one (clang's libFuzzer: test/native/decode-fuzz.c built with
 * -DXC_LIBFUZZER -fsanitize=fuzzer); otherwise the harness's own generator (valid plans, then
 * bit flips, length fields, truncation, splices) under gcc's ASan+UBSan, seed after seed until the
 * budget is spent. A crash is a sanitizer report or a non-zero exit.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { figures, note, REPO, type Figures } from "./common.ts"

const has = (cmd: string) => spawnSync(cmd, ["--version"]).status === 0

export async function fuzzPart(o: { budgetMs: number }): Promise<Figures> {
  const f = figures("5b decoder fuzz")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-chaos-fuzz-"))
  const src = path.join(REPO, "test/native/decode-fuzz.c")
  const bin = path.join(dir, "decode-fuzz")
  try {
    if (has("clang")) {
      execFileSync("clang", ["-std=gnu11", "-g", "-O1", "-DXC_LIBFUZZER", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", "-o", bin, src])
      const corpus = path.join(dir, "corpus")
      fs.mkdirSync(corpus)
      const r = spawnSync(bin, [corpus, `-max_total_time=${Math.max(1, Math.round(o.budgetMs / 1000))}`], { encoding: "utf8", timeout: o.budgetMs + 60_000 })
      const runs = /#(\d+)\s+DONE/.exec(r.stderr)?.[1]
      f.runs = Number(runs ?? 0)
      f.notes.push(`libFuzzer (clang), ${f.runs} executions`)
      if (r.status !== 0) {
        f.crashes++
        note(f, r.stderr.split("\n").filter((l) => /ERROR|runtime error/.test(l)).slice(0, 3).join(" | "))
      }
      return f
    }
    const cc = has("cc") ? "cc" : undefined
    if (!cc) {
      f.notes.push("skipped: no C compiler")
      return f
    }
    f.notes.push("no clang (libFuzzer) or AFL++ on this host: the harness's own mutation generator under gcc ASan+UBSan")
    execFileSync(cc, ["-std=gnu11", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-o", bin, src])
    const end = Date.now() + o.budgetMs
    const per = 2000
    let seed = Date.now() % 1_000_000
    const first = seed
    while (Date.now() < end) {
      const r = spawnSync(bin, [String(seed), String(per)], { encoding: "utf8", timeout: 120_000 })
      f.runs += per
      if (r.error || r.signal) {
        f.hangs++
        note(f, `seed ${seed}: ${r.signal ?? String(r.error)}`)
      } else if (r.status !== 0 || /ERROR: AddressSanitizer|runtime error/.test(r.stderr)) {
        f.crashes++
        note(f, `seed ${seed}: ${r.stderr.split("\n").filter((l) => /ERROR|runtime error/.test(l)).slice(0, 2).join(" | ") || r.stdout.slice(0, 200)}`)
      }
      seed++
    }
    f.notes.push(`${f.runs} plans (seeds ${first}–${seed - 1}, ${per} each)`)
    return f
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
