/**
 * The container machine (machines/container.ts) against runc's transition
 * table, over the kernel and cgroups models and the real state store in a temp
 * root: random command sequences (lifecycle-commands.ts), then leak checks.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { Cgroups } from "../../effects/cgroups.ts"
import { CgroupsModelControl, modelLayer } from "../../effects/cgroups-model.ts"
import { InitFailed } from "../../effects/errors.ts"
import { KernelModelControl, type KernelModelOptions } from "../../effects/kernel-model.ts"
import { Container } from "../../machines/container.ts"
import { Op } from "../../native/protocol.ts"
import { StateStoreLive } from "../../state/store.ts"
import { lifecycleCommands, runLifecycle, type SourceKind, type World } from "../../testing/lifecycle.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-lifecycle-model-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
const bundleDir = path.join(tmp, "bundle")
fs.mkdirSync(path.join(bundleDir, "rootfs"), { recursive: true })

const withoutPidNs = (s: ReturnType<typeof defaultSpec>) => ({
  ...s,
  linux: { ...s.linux, namespaces: (s.linux?.namespaces ?? []).filter((n) => n.type !== "pid") },
})

const configs: Record<SourceKind, unknown> = {
  "long-ns": defaultSpec(["sleep", "30"]),
  "long-nons": withoutPidNs(defaultSpec(["sleep", "30"])),
  "short-ns": defaultSpec(["true"]),
  "short-nons": withoutPidNs(defaultSpec(["true"])),
  "invalid-config": { ...defaultSpec(["true"]), mounts: [{ destination: "relative/path", type: "tmpfs", source: "tmpfs" }] },
  "missing-program": defaultSpec(["/bin/does-not-exist"]),
}

let worlds = 0
/** A fresh world: its own models, runtime and state root. */
async function makeWorld(kernel: KernelModelOptions = {}) {
  const rt = ManagedRuntime.make(Layer.merge(modelLayer(kernel), StateStoreLive))
  const kc = await rt.runPromise(KernelModelControl)
  const cc = await rt.runPromise(CgroupsModelControl)
  const root = path.join(tmp, `root-${worlds++}`)
  const world: World = {
    rt,
    root,
    ids: ["a", "b", "c"],
    handles: new Map(),
    source: (kind) => ({ bundle: bundleDir, config: configs[kind] }),
    settleMs: 0,
    waitMs: 2000,
    reality: async (c, expected) => {
      // A stopped container loaded from disk holds no init at all.
      if (c.pid === undefined) return expected === "stopped" ? [] : [`no init pid while ${expected}`]
      const p = kc.all().find((x) => x.pid === c.pid)
      if (!p) return [`no model process for pid ${c.pid}`]
      const want = { created: "barrier", running: "running", paused: "running", stopped: "exited" }[expected as string]
      const problems = want === undefined || p.phase === want ? [] : [`model process ${p.pid} is ${p.phase}`]
      // The machine's word against the freezer's (the model cgroups keep a flag per directory).
      const frozen = await rt.runPromise(Effect.flatMap(Cgroups, (cg) => cg.frozen(c.cgroupPaths())))
      if (expected !== "stopped" && frozen !== (expected === "paused")) problems.push(`freezer says frozen=${frozen} while ${expected}`)
      return problems
    },
    traces: async (id) => {
      const out: string[] = []
      if (fs.existsSync(path.join(root, id))) out.push(`state dir of ${id}`)
      for (const [dir] of cc.groups()) if (path.basename(dir) === id) out.push(`cgroup ${dir}`)
      return out
    },
  }
  return { world, kc, cc, rt }
}

/** After a run: nothing left anywhere, and no misuse of process refs. */
function expectClean(w: World, kc: KernelModelControl["Service"], cc: CgroupsModelControl["Service"]) {
  expect(fs.existsSync(w.root) ? fs.readdirSync(w.root) : []).toEqual([])
  expect(kc.live()).toEqual([])
  expect(kc.holds()).toBe(0)
  expect(kc.problems()).toEqual([])
  expect([...cc.groups().keys()]).toEqual([])
}

describe("the container machine follows runc's table (model kernel)", () => {
  it("random lifecycles: statuses agree, forbidden ops change nothing, nothing leaks", async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(lifecycleCommands(3), { maxCommands: 25 }), async (cmds) => {
        const { world, kc, cc, rt } = await makeWorld()
        try {
          await runLifecycle(world, cmds)
          expectClean(world, kc, cc)
        } finally {
          await rt.dispose()
        }
      }),
      { numRuns: Number(process.env.XC_PROPERTY_RUNS ?? 100) },
    )
  })

  it("an init that fails after joining its cgroups leaves no process, cgroup or state dir", async () => {
    const failAt = (plan: readonly { op: number }[]) =>
      plan.some((o) => o.op === Op.EXEC) ? new InitFailed({ stage: "init", op: "mount", syscall: "mount", errno: "EPERM", path: "/proc" }) : undefined
    const { world, kc, cc, rt } = await makeWorld({ failAt })
    const r = await rt.runPromise(Effect.result(Container.create({ root: world.root, id: "x", ...world.source("long-ns") })))
    expect(r).toMatchObject({ _tag: "Failure", failure: { _tag: "InitFailed", errno: "EPERM" } })
    expect(kc.all()).toHaveLength(1)
    expectClean(world, kc, cc)
    await rt.dispose()
  })

  it("a handle released after destroy does not release the init a second time", async () => {
    const { world, kc, cc, rt } = await makeWorld()
    await rt.runPromise(
      Effect.gen(function* () {
        const c = yield* Container.create({ root: world.root, id: "r", ...world.source("long-ns") })
        yield* c.destroy()
        yield* c.release()
      }),
    )
    expectClean(world, kc, cc)
    await rt.dispose()
  })
})
