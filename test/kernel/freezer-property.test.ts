/**
 * Property (real kernel, v1 freezer): random sequences of pause, resume, update and signal keep
 * the machine's status equal to what freezer.state says, forbidden operations fail with
 * InvalidTransition and change nothing, updates land in the cgroup whether paused or not, and
 * SIGKILL ends a paused container too (thawed to deliver, as runc). A modest run count keeps CI
 * time small (XC_PROPERTY_RUNS raises it).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, run } from "../../promise.ts"
import { bundle, cgroupDirsNamed, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

type Op =
  | { readonly op: "pause" }
  | { readonly op: "resume" }
  | { readonly op: "update"; readonly pids: number }
  | { readonly op: "signal"; readonly sig: number; readonly all: boolean }
  | { readonly op: "kill" }

// Signals the pid-namespace init ignores (it installs no handler): they must change no status.
const harmless = fc.constantFrom(1, 10, 12, 15, 18, 28) // HUP USR1 USR2 TERM CONT WINCH
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ op: "pause" as const }) },
  { weight: 4, arbitrary: fc.constant({ op: "resume" as const }) },
  { weight: 3, arbitrary: fc.integer({ min: 8, max: 4096 }).map((pids) => ({ op: "update" as const, pids })) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("signal" as const), sig: harmless, all: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: "kill" as const }) },
)

const cg = (id: string, ctrl: string) => cgroupDirsNamed(id).find((d) => d.startsWith(`/sys/fs/cgroup/${ctrl}/`))
const read = (id: string, ctrl: string, file: string) => {
  const d = cg(id, ctrl)
  return d ? fs.readFileSync(path.join(d, file), "utf8").trim() : undefined
}

describe.skipIf(skipReason)("pause/resume/update/signal keep status and freezer together (real kernel)", () => {
  it("the machine's status is the freezer's state after every step", async () => {
    const b = bundle(["sh", "-c", "while :; do sleep 1; done"]).dir
    const devNull = [fs.openSync("/dev/null", "r"), fs.openSync("/dev/null", "w"), fs.openSync("/dev/null", "w")] as const
    await fc.assert(
      fc.asyncProperty(fc.array(arbOp, { minLength: 1, maxLength: 10 }), async (ops) => {
        const id = uniq("fprop")
        const c = await run({ root, id, bundle: b, stdio: devNull })
        let model: "running" | "paused" | "stopped" = "running"
        let pidsMax = "max"
        try {
          for (const o of ops) {
            // runc's Signal: `all` is allowed on a stopped container too (it signals what is left in the cgroup).
            const allOnStopped = model === "stopped" && (o.op === "kill" || (o.op === "signal" && o.all))
            const allowed = allOnStopped || (model !== "stopped" && !(o.op === "pause" && model === "paused") && !(o.op === "resume" && model === "running"))
            const act = () => {
              switch (o.op) {
                case "pause":
                  return c.pause()
                case "resume":
                  return c.resume()
                case "update":
                  return c.update({ pids: { limit: o.pids } })
                case "signal":
                  return c.signal(o.sig, { all: o.all })
                case "kill":
                  return c.signal(9, { all: true })
              }
            }
            if (!allowed) {
              await expect(act(), JSON.stringify(o)).rejects.toMatchObject({ _tag: "InvalidTransition" })
            } else {
              await act()
              if (o.op === "pause") model = "paused"
              if (o.op === "resume") model = "running"
              if (o.op === "update") pidsMax = `${o.pids}`
              if (o.op === "kill") {
                await c.wait()
                model = "stopped"
              }
            }
            expect(c.status(), JSON.stringify(o)).toBe(model)
            if (model !== "stopped") {
              const freezer = read(id, "freezer", "freezer.state")
              expect(freezer, JSON.stringify(o)).toBe(model === "paused" ? "FROZEN" : "THAWED")
              expect(read(id, "pids", "pids.max")).toBe(pidsMax)
            }
          }
        } finally {
          await c.destroy({ force: true })
        }
        expect(expectNoTrace(root, id)).toEqual([])
      }),
      { numRuns: Number(process.env.XC_PROPERTY_RUNS ?? 6), endOnFailure: true },
    )
    for (const fd of devNull) fs.closeSync(fd)
  }, 120_000)
})
