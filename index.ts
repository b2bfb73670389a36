/**
 * xcontainer: Linux containers for Node.
 *
 * Two ways in. The Effect API: `Container.create/load/run` return Effects that
 * need the `Kernel`, `Cgroups` and `StateStore` services (`LiveLayer` provides
 * the real ones) and fail with tagged errors. The Promise facade (`create`,
 * `load`, `run`) runs the same code on a shared runtime and rejects with the
 * same tagged errors.
 */
export {
  Container,
  type OciState,
  type StateEvent,
  type ActorOptions,
  type OomEvent,
  type WaitStatus,
  type UnknownExit,
  type LoggerLike,
  type LogLevelName,
  type ExecProcess,
} from "./machines/container.ts"
export type { Status, InspectionEvent, Inspector, MachineDefinition, Json } from "./machines/status.ts"
/** The container machine's definition (JSON) for the Stately visualiser; no runtime needed. */
export { machineDefinition } from "./machines/definition.ts"
export * from "./effects/errors.ts"
export { Kernel, type ExitStatus, type ProcessRef } from "./effects/kernel.ts"
export { KernelLive } from "./effects/kernel-live.ts"
export { Cgroups } from "./effects/cgroups.ts"
export { CgroupsFs } from "./effects/cgroups-fs.ts"
export { SystemdCgroups, SystemdCgroupsLive, type SystemdCgroupsOptions } from "./effects/cgroups-systemd-live.ts"
export type { SystemdBus, SystemdProperty } from "./effects/cgroups-systemd.ts"
export { PRESSURE_LEVELS, type PressureLevel } from "./effects/pressure.ts"
export { StateStore, StateStoreLive, DEFAULT_ROOT, defaultRoot } from "./state/store.ts"
export type { CreateOptions } from "./effects/lifecycle.ts"
export type { ExecOptions } from "./effects/exec.ts"
export type { GcOptions, GcReport } from "./effects/gc.ts"
export { LiveLayer } from "./live.ts"
export { parseSpec, loadBundle } from "./config/parse.ts"
export { buildPlan, type InitPlan, type PlanOp } from "./config/plan.ts"
export * from "./promise.ts"
export { PeerDependencyError, PEER_RANGES } from "./peers.ts"
export { NotBuilt } from "./native/addon.ts"
