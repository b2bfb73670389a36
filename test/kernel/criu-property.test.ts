/**
 * Random lifecycles with checkpoint and restore on the real kernel (CRIU
 * 4.1.1): after every step the machine's status equals the model's and
 * reality's (/proc, the freezer), forbidden steps are refused with
 * InvalidTransition touching nothing, and nothing is left at the end.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, restore, run, type ContainerHandle } from "../../promise.ts"
import { bundle, cgroupDirsNamed, expectNoTrace, uniq, WORK } from "./harness.ts"
import { pipes } from "./pipes.ts"
import { COUNTER, criuSkip } from "./criu-fixtures.ts"

const skipReason = criuSkip
afterAll(() => dispose())

type Status = "none" | "running" | "paused" | "checkpointed"
interface Model {
  status: Status
  /** Whether some checkpoint of this container exists to restore. */
  images: boolean
}
interface Real {
  readonly id: string
  readonly bundle: string
  readonly stdio: readonly [number, number, number]
  c: ContainerHandle | undefined
  imagePath: string | undefined
}


/** Runs `op`; when the model forbids it, expects the refusal and an unchanged status. */
async function step(r: Real, allowed: boolean, refusal: string, op: () => Promise<void>) {
  if (allowed) return op()
  const before = r.c?.status()
  await expect(op()).rejects.toMatchObject({ _tag: refusal })
  expect(r.c?.status()).toBe(before)
}

async function check(m: Model, r: Real) {
  if (m.status === "none") {
    expect(r.c).toBeUndefined()
    expect(expectNoTrace(root(), r.id)).toEqual([])
    return
  }
  expect(r.c?.status()).toBe(m.status)
  if (m.status === "checkpointed") return
  const pid = r.c!.pid!
  expect(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0]).not.toBe("Z")
  const freezer = cgroupDirsNamed(r.id).find((d) => d.startsWith("/sys/fs/cgroup/freezer/"))!
  expect(fs.readFileSync(`${freezer}/freezer.state`, "utf8").trim()).toBe(m.status === "paused" ? "FROZEN" : "THAWED")
  expect(await r.c!.processes()).toContain(pid)
}

const root = () => path.join(WORK, "criu-property-root")
const cmd = (
  name: string,
  allowed: (m: Model) => boolean,
  apply: (m: Model, r: Real) => Promise<void>,
  next: (m: Model) => void,
  refusal = "InvalidTransition",
  possible: (m: Model) => boolean = () => true,
): fc.AsyncCommand<Model, Real> => ({
  check: possible,
  run: async (m, r) => {
    const ok = allowed(m)
    await step(r, ok, refusal, () => apply(m, r))
    if (ok) next(m)
    await check(m, r)
  },
  toString: () => name,
})

const started = (m: Model) => m.status === "running" || m.status === "paused"
const runCmd = () =>
  cmd("run", (m) => m.status === "none", async (_m, r) => void (r.c = await run({ root: root(), id: r.id, bundle: r.bundle, stdio: r.stdio })), (m) => void (m.status = "running"), "ContainerExists")
const runFirst = [runCmd()]
const commands = [
  fc.constant(
    cmd("run", (m) => m.status === "none", async (_m, r) => void (r.c = await run({ root: root(), id: r.id, bundle: r.bundle, stdio: r.stdio })), (m) => void (m.status = "running"), "ContainerExists"),
  ),
  fc.constant(cmd("pause", (m) => m.status === "running", (_m, r) => r.c?.pause() ?? Promise.reject({ _tag: "InvalidTransition" }), (m) => void (m.status = "paused"))),
  fc.constant(cmd("resume", (m) => m.status === "paused", (_m, r) => r.c?.resume() ?? Promise.reject({ _tag: "InvalidTransition" }), (m) => void (m.status = "running"))),
  fc.boolean().map((leaveRunning) =>
    cmd(
      `checkpoint(leaveRunning: ${leaveRunning})`,
      started,
      async (_m, r) => {
        if (!r.c) throw { _tag: "InvalidTransition" }
        // Remembered only once it holds a dump: a refused checkpoint must not hide the last good one.
        const imagePath = path.join(WORK, uniq("prop-images"))
        await r.c.checkpoint({ imagePath, leaveRunning })
        r.imagePath = imagePath
      },
      (m) => {
        m.images = true
        if (!leaveRunning) m.status = "checkpointed"
      },
    ),
  ),
  fc.constant(
    cmd(
      "destroy",
      (m) => m.status !== "none",
      async (_m, r) => {
        if (!r.c) throw { _tag: "InvalidTransition" }
        await r.c.destroy({ force: true })
        r.c = undefined
      },
      (m) => void (m.status = "none"),
    ),
  ),
  fc.constant(
    cmd(
      "restore",
      (m) => m.status === "none" && m.images,
      async (_m, r) => {
        const c = await restore({ root: root(), id: r.id, bundle: r.bundle, imagePath: r.imagePath!, stdio: r.stdio })
        r.c = c
      },
      (m) => void (m.status = "running"),
      // While the id is taken a restore is refused before anything is touched; without images there is nothing to try.
      "ContainerExists",
      (m) => m.images,
    ),
  ),
]

describe.skipIf(skipReason)("checkpoint and restore in random lifecycles (real kernel)", () => {
  it("statuses agree with the model and /proc, forbidden steps change nothing, nothing is left", async () => {
    const io = await pipes()
    const b = bundle(COUNTER)
    fs.mkdirSync(root(), { recursive: true })
    const ids: string[] = []
    try {
      await fc.assert(
        // fc.commands' sequences are mostly short here, and each step costs a CRIU run: sequences of 6–10
        // steps, the first a run so that most of them reach checkpoint and restore.
        fc.asyncProperty(fc.array(fc.oneof(...commands), { minLength: 5, maxLength: 9 }).map((cs) => [...runFirst, ...cs]), async (cmds) => {
          const real: Real = { id: uniq("prop"), bundle: b.dir, stdio: io.stdio, c: undefined, imagePath: undefined }
          ids.push(real.id)
          try {
            await fc.asyncModelRun(() => ({ model: { status: "none", images: false } as Model, real }), cmds)
          } finally {
            if (process.env.XC_PROPERTY_LOG) console.log(cmds.map(String).join(","))
            await real.c?.destroy({ force: true }).catch(() => undefined)
          }
          expect(expectNoTrace(root(), real.id)).toEqual([])
        }),
        { numRuns: Number(process.env.XC_PROPERTY_RUNS ?? 10), endOnFailure: true },
      )
    } finally {
      io.close()
    }
    for (const id of ids) expect(expectNoTrace(root(), id), id).toEqual([])
  }, 120_000)
})
