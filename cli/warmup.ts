/**
 * Runs the command line's pure paths once while the V8 start-up snapshot is
 * built, so that what a `create` compiles and initialises on first use (the
 * schemas, the plan builder, the wire encoder, the Effect runtime, the
 * machine) is already in the snapshot. Nothing here touches the kernel: the
 * services are stubs whose first call fails, ending the machine in `failed`.
 */
import { Effect, Layer } from "effect"
import { createActor } from "xstate"
import { defaultSpec } from "../config/default-spec.ts"
import { parseSpec } from "../config/parse.ts"
import { buildPlan } from "../config/plan.ts"
import { toWire } from "../config/plan-wire.ts"
import { Cgroups } from "../effects/cgroups.ts"
import { CgroupError } from "../effects/errors.ts"
import { Kernel } from "../effects/kernel.ts"
import { encodePlan } from "../native/protocol.ts"
import { StateStore } from "../state/store.ts"
import { containerMachine } from "../machines/container-machine.ts"

const refuse = () => Effect.fail(new CgroupError({ op: "warmup", path: "", reason: "snapshot build" }))
/** A service whose every method refuses (whatever methods the interface grows). */
const refusing = <T extends object>(): T => new Proxy({} as T, { get: () => refuse })
const stubs = Layer.mergeAll(
  Layer.succeed(Cgroups, refusing<Cgroups["Type"]>()),
  Layer.succeed(Kernel, refusing<Kernel["Type"]>()),
  Layer.succeed(StateStore, refusing<StateStore["Type"]>()),
)

export function warmUp(): void {
  const spec = Effect.runSync(parseSpec(defaultSpec(["/bin/true"])))
  const plan = buildPlan({ spec, rootfs: "/", bundleDir: "/", fifoPath: "/nonexistent/exec.fifo", cgroupBinds: [{ name: "memory", hostPath: "/nonexistent" }] })
  encodePlan(toWire(plan))
  const rt = Effect.runSync(Effect.runtime<Cgroups | Kernel | StateStore>().pipe(Effect.provide(stubs)))
  const actor = createActor(containerMachine(rt), { input: { mode: "create", root: "/nonexistent", options: { root: "/nonexistent", id: "warmup", config: defaultSpec(), bundle: "/" } } })
  actor.start()
  actor.stop()
}
