/**
 * xcontainer: Linux containers for Node.
 *
 * Two ways in. The Effect API: `Container.create/load/run` return Effects that
 * need the `Kernel`, `Cgroups` and `StateStore` services (`LiveLayer` provides
 * the real ones) and fail with tagged errors. The Promise facade (`create`,
 * `load`, `run`) runs the same code on a shared runtime and rejects with the
 * same tagged errors.
 */
export { Container, type OciState, type StateEvent, type ActorOptions, type OomEvent } from "./machines/container.ts"
export { containerMachine, type Status } from "./machines/container-machine.ts"
export * from "./effects/errors.ts"
export { Kernel, type ExitStatus, type ProcessRef } from "./effects/kernel.ts"
export { KernelLive } from "./effects/kernel-live.ts"
export { Cgroups } from "./effects/cgroups.ts"
export { CgroupsFs } from "./effects/cgroups-fs.ts"
export { StateStore, StateStoreLive, DEFAULT_ROOT } from "./state/store.ts"
export type { CreateOptions } from "./effects/lifecycle.ts"
export type { GcOptions, GcReport } from "./effects/gc.ts"
export { LiveLayer } from "./live.ts"
export { parseSpec, loadBundle } from "./config/parse.ts"
export { buildPlan, type InitPlan, type PlanOp } from "./config/plan.ts"
export * from "./promise.ts"
