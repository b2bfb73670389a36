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
