/**
 * xcontainer/testing: the in-memory model layers that stand in for the kernel and the
 * cgroup filesystem, for property tests of code that embeds containers (no root needed).
 * Imports no test framework.
 */
export {
  kernelModel,
  KernelModel,
  KernelModelControl,
  DEFAULT_PROGRAMS,
  type KernelModelOptions,
  type KernelModelControlService,
  type ModelProcess,
  type ProgramBehaviour,
} from "../effects/kernel-model.ts"
export {
  cgroupsModel,
  CgroupsModel,
  CgroupsModelControl,
  modelLayer,
  ModelLayer,
  type CgroupsModelOptions,
  type CgroupsModelControlService,
} from "../effects/cgroups-model.ts"
/** runc's `spec`: a minimal valid OCI config running `args`, to build test configs from. */
export { defaultSpec } from "../config/default-spec.ts"
/**
 * The lifecycle property harness: fast-check commands with runc's transition table as the model,
 * run against any layer (the models above or LiveLayer) through a `World`. See README "Testing".
 */
export {
  lifecycleCommands,
  runLifecycle,
  checkAgreement,
  teardown,
  CreateCmd,
  CreateBadIdCmd,
  StartCmd,
  SignalCmd,
  DestroyCmd,
  FreezeCmd,
  LoadCmd,
  WaitCmd,
  type LifecycleCommand,
  type Model,
  type ModelContainer,
  type ModelStatus,
  type Program,
  type SourceKind,
  type World,
} from "./lifecycle.ts"
/** The state store with records in memory (no state.json written). */
export { stateStoreModel, StateStoreModel } from "../state/store-model.ts"
/** fast-check arbitraries for OCI configs, valid and invalid. */
export { ociConfig, invalidOciConfig } from "./arbitraries.ts"
