/**
 * kill --all on the real kernel (cgroup v1 here): pid by pid from cgroup.procs, as runc's
 * signalAllProcesses. A pid read from the list may die and be reused by a process outside the
 * container before it is signalled; the cgroup is frozen meanwhile and each pid is checked again
 * once its pidfd pins it. The reuse is made deterministic by planting a bystander's pid in the
 * list the Cgroups service returns: the bystander must survive.
 */
import { spawn } from "node:child_process"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Cgroups } from "../../effects/cgroups.ts"
import { CgroupsLive } from "../../effects/cgroups-layout.ts"
import { KernelLive } from "../../effects/kernel-live.ts"
import { Container } from "../../machines/container.ts"
import { StateStoreLive } from "../../state/store.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()

/** The live Cgroups service, but its pid lists carry `planted` too, and the calls are logged. */
let planted: number[] = []
const calls: string[] = []
const PlantingCgroups = Layer.effect(
  Cgroups,
  Effect.map(Cgroups, (c) => ({
    ...c,
    pids: (p: Parameters<typeof c.pids>[0]) => c.pids(p).pipe(Effect.map((l) => (calls.push("pids"), [...l, ...planted]))),
    freeze: (p: Parameters<typeof c.freeze>[0], on: boolean) => c.freeze(p, on).pipe(Effect.tap(() => Effect.sync(() => calls.push(on ? "freeze" : "thaw")))),
  })),
).pipe(Layer.provide(CgroupsLive()))
const rt = ManagedRuntime.make(Layer.mergeAll(KernelLive, PlantingCgroups, StateStoreLive))
afterAll(() => rt.dispose())

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe.skipIf(skipReason)("kill --all", () => {
  it("freezes, signals the members only (a planted non-member pid is skipped), thaws", async () => {
    const bystander = spawn("sleep", ["60"], { stdio: "ignore" })
    const exited = new Promise((r) => bystander.once("exit", r))
    const io = capture()
    const id = uniq("killall")
    // The init traps TERM (an init ignores signals it has no handler for) and waits for its child.
    const b = bundle(["sh", "-c", "trap 'echo term; exit 7' TERM; sleep 30 & wait"])
    const c = await rt.runPromise(Container.run({ root, id, bundle: b.dir, stdio: io.stdio }))
    try {
      // Both there: the trap is set.
      for (let i = 0; i < 200 && (await rt.runPromise(c.processes())).length < 2; i++) await new Promise((r) => setTimeout(r, 10))
      planted = [bystander.pid!]
      calls.length = 0
      await rt.runPromise(c.signal(15, { all: true }))
      planted = []
      expect(await rt.runPromise(c.wait())).toEqual({ code: 7, signal: null })
      expect(io.out()).toBe("term\n")
      expect(alive(bystander.pid!)).toBe(true)
      // The list was read with the cgroup frozen, and it was thawed after.
      expect(calls).toEqual(["freeze", "pids", "thaw"])
    } finally {
      planted = []
      bystander.kill("SIGKILL")
      await exited
      await rt.runPromise(c.destroy({ force: true }))
      io.close()
    }
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
