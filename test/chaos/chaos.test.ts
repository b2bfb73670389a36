/**
 * The short version of `npm run chaos` (issue 19), for CI: each part of the battery for a few
 * seconds, asserting 0 leaks, crashes, hangs and escapes; about a minute in all. The soak is
 * `npm run chaos -- --budget SECONDS`.
 */
import * as fs from "node:fs"
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { gc, load } from "../../promise.ts"
import { skipReason } from "../kernel/harness.ts"
import { bundleScript, chaosBundle, childEnv, dropScope, scope, type Figures } from "./common.ts"
import { settledLeaks } from "./leaks.ts"
import { crashPart } from "./crash.ts"
import { statePart } from "./state.ts"
import { fdsPart } from "./fds.ts"
import { pidReusePart, unshareMissing } from "./pid-reuse.ts"
import { hostilePart } from "./hostile.ts"
import { fuzzPart } from "./fuzz.ts"
import { loadPart } from "./load.ts"

const clean = (f: Figures) => {
  console.log(`${f.part}: runs ${f.runs}, leaks ${f.leaks}, crashes ${f.crashes}, hangs ${f.hangs}, escapes ${f.escapes}\n  ${f.notes.join("\n  ")}`)
  expect({ leaks: f.leaks, crashes: f.crashes, hangs: f.hangs, escapes: f.escapes }, f.notes.join("\n")).toEqual({ leaks: 0, crashes: 0, hangs: 0, escapes: 0 })
}

describe.skipIf(skipReason !== undefined)("chaos battery (short)", () => {
  it("gc() alone reaps a create whose manager was SIGKILLed mid-create: no state dir, cgroup or process left", async () => {
    const s = scope("gc")
    const script = await bundleScript("crash-child")
    // Killed on entering "creating" plus a few ms, i.e. inside create: the record says "creating".
    for (const [n, jitter] of [[0, 0], [1, 3], [2, 8]] as const) {
      const id = s.id(n)
      const bundleDir = chaosBundle(s, id, ["/bin/sleep", "1000"])
      await new Promise((res) => spawn(process.execPath, [script, JSON.stringify({ root: s.root, id, bundle: bundleDir, killAt: "creating", jitterMs: jitter })], { stdio: "ignore", env: childEnv() }).on("exit", res))
      const report = await gc({ root: s.root, graceMs: 0, cgroupParent: s.cgroupParent })
      expect(report.failed).toEqual([])
      // A kill that landed after create finished left a real container ("created"): gc keeps those
      // by design, and its owner deletes it. Anything else must be gone by gc alone.
      for (const left of fs.readdirSync(s.root)) {
        const c = await load({ root: s.root, id: left })
        expect(c.status()).toBe("created")
        await c.destroy({ force: true })
      }
      expect(await settledLeaks({ tag: s.tag, roots: [s.root], dirs: [s.root, bundleDir] })).toEqual([])
      fs.rmSync(bundleDir, { recursive: true, force: true })
    }
    dropScope(s)
  }, 60_000)

  it("1: manager crash at every phase, recovered by gc() and delete -f", async () => clean(await crashPart({ budgetMs: 12_000 })), 90_000)
  it("2: state.json is never read partial, and a killed writer leaves a whole one", async () => clean(await statePart({ budgetMs: 4_000 })), 60_000)
  it("3: fd hygiene", async () => clean(await fdsPart({ budgetMs: 4_000 })), 60_000)
  it.skipIf(unshareMissing !== undefined)("4: pid reuse never touches the bystander", async () => {
    const f = await pidReusePart({ budgetMs: 4_000 })
    clean(f)
    expect(f.runs).toBeGreaterThan(0)
  }, 90_000)
  it("5: hostile configs and ids: typed errors, nothing left", async () => clean(await hostilePart({ budgetMs: 8_000 })), 90_000)
  it("5b: the plan decoder under sanitizers", async () => clean(await fuzzPart({ budgetMs: 3_000 })), 90_000)
  it("6: load", async () => clean(await loadPart({ containers: 50, execs: 20, budgetMs: 60_000 })), 120_000)
})
