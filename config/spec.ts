/**
 * The OCI runtime-spec config.json (v1.0.x–1.2.x) as an Effect Schema: the
 * subset of fields a Linux runtime acts on, typed. Unknown fields are ignored
 * (the spec allows extensions); a wrong type or value is reported with its
 * JSON path by config/parse.ts.
 */
import { Schema as S } from "effect"
import { Seccomp } from "./seccomp-spec.ts"
import { Id, RlimitValue, Str } from "./spec-atoms.ts"

const Uint32 = S.Int.check(S.isBetween({ minimum: 0, maximum: 0xffffffff }))
const Int64 = S.Int

export const User = S.Struct({
  uid: Id,
  gid: Id,
  umask: S.optional(Uint32),
  additionalGids: S.optional(S.Array(Id)),
  username: S.optional(Str),
})

export const Capabilities = S.Struct({
  bounding: S.optional(S.Array(Str)),
  effective: S.optional(S.Array(Str)),
  inheritable: S.optional(S.Array(Str)),
  permitted: S.optional(S.Array(Str)),
  ambient: S.optional(S.Array(Str)),
})

/** Limits are u64 in the spec; RLIM_INFINITY (2^64-1) arrives as a float, hence Number (config/spec-atoms.ts). */
export const Rlimit = S.Struct({ type: Str, hard: RlimitValue, soft: RlimitValue })

export const Process = S.Struct({
  terminal: S.optional(S.Boolean),
  consoleSize: S.optional(S.Struct({ height: Uint32, width: Uint32 })),
  user: User,
  args: S.Array(Str).check(S.isMinLength(1, { message: "must hold at least the program to run" })),
  env: S.optional(S.Array(Str)),
  cwd: Str,
  capabilities: S.optional(Capabilities),
  rlimits: S.optional(S.Array(Rlimit)),
  noNewPrivileges: S.optional(S.Boolean),
  apparmorProfile: S.optional(Str),
  oomScoreAdj: S.optional(S.Int.check(S.isBetween({ minimum: -1000, maximum: 1000 }))),
  /** runtime-spec 1.2: the I/O scheduling class and priority (ioprio_set). */
  ioPriority: S.optional(S.Struct({ class: S.Literals(["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]), priority: S.Int.check(S.isBetween({ minimum: 0, maximum: 7 })) })),
  /** runtime-spec 1.2: the scheduling policy (sched_setattr). */
  scheduler: S.optional(
    S.Struct({
      policy: S.Literals(["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"]),
      nice: S.optional(S.Int.check(S.isBetween({ minimum: -20, maximum: 19 }))),
      priority: S.optional(S.Int.check(S.isBetween({ minimum: 0, maximum: 99 }))),
      flags: S.optional(S.Array(Str)),
      runtime: S.optional(S.Int.check(S.isGreaterThanOrEqualTo(0))),
      deadline: S.optional(S.Int.check(S.isGreaterThanOrEqualTo(0))),
      period: S.optional(S.Int.check(S.isGreaterThanOrEqualTo(0))),
    }),
  ),
  selinuxLabel: S.optional(Str),
})

/** Each number within runc's id range (config/spec-atoms.ts), the sizes too. */
export const IdMapping = S.Struct({ containerID: Id, hostID: Id, size: Id })

export const Mount = S.Struct({
  destination: Str,
  type: S.optional(Str),
  source: S.optional(Str),
  options: S.optional(S.Array(Str)),
  /** An id-mapped bind (runtime-spec 1.2, runc 1.2): the ids the mount shows, by the same rule as linux.uidMappings. */
  uidMappings: S.optional(S.Array(IdMapping)),
  gidMappings: S.optional(S.Array(IdMapping)),
})

export const NamespaceType = S.Literals(["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"])
export type NamespaceType = typeof NamespaceType.Type

export const Namespace = S.Struct({ type: NamespaceType, path: S.optional(Str) })

export const Device = S.Struct({
  type: S.Literals(["c", "b", "u", "p"]),
  path: Str,
  major: S.optional(Int64),
  minor: S.optional(Int64),
  fileMode: S.optional(Uint32),
  uid: S.optional(Uint32),
  gid: S.optional(Uint32),
})

const TimeOffset = S.Struct({ secs: S.optional(Int64), nanosecs: S.optional(Uint32) })

export const Hook = S.Struct({
  path: Str,
  args: S.optional(S.Array(Str)),
  env: S.optional(S.Array(Str)),
  timeout: S.optional(S.Int),
})

/** A device cgroup rule; an absent type means "a" (all), an absent major/minor or -1 means any. */
export const DeviceRule = S.Struct({
  allow: S.Boolean,
  type: S.optional(S.Literals(["a", "c", "b"])),
  major: S.optional(Int64),
  minor: S.optional(Int64),
  access: S.optional(Str),
})

/** blockIO.weightDevice: a weight (and CFQ leaf weight) for one block device. */
export const WeightDevice = S.Struct({ major: Int64, minor: Int64, weight: S.optional(Int64), leafWeight: S.optional(Int64) })
/** blockIO.throttle*Device: a rate (bytes or I/O operations per second) for one block device. */
export const ThrottleDevice = S.Struct({ major: Int64, minor: Int64, rate: Int64 })

/**
 * linux.resources (runtime-spec config-linux.md). Limits are int64 where the spec
 * says so: -1 means unlimited, 0 (or absent) leaves the kernel's value, as in runc.
 * Knobs not applied yet are typed as unknown so that a config using them is refused
 * by name (config/resources.ts) rather than silently ignored.
 */
export const Resources = S.Struct({
  memory: S.optional(
    S.Struct({
      limit: S.optional(Int64),
      reservation: S.optional(Int64),
      /** On v1 memory+swap, as runc: must be >= limit. */
      swap: S.optional(Int64),
      kernel: S.optional(Int64),
      kernelTCP: S.optional(Int64),
      swappiness: S.optional(Int64),
      disableOOMKiller: S.optional(S.Boolean),
      useHierarchy: S.optional(S.Boolean),
      checkBeforeUpdate: S.optional(S.Unknown),
    }),
  ),
  cpu: S.optional(
    S.Struct({
      shares: S.optional(Int64),
      quota: S.optional(Int64),
      burst: S.optional(Int64),
      period: S.optional(Int64),
      realtimeRuntime: S.optional(Int64),
      realtimePeriod: S.optional(Int64),
      cpus: S.optional(Str),
      mems: S.optional(Str),
      idle: S.optional(Int64),
    }),
  ),
  pids: S.optional(S.Struct({ limit: Int64 })),
  blockIO: S.optional(
    S.Struct({
      weight: S.optional(Int64),
      leafWeight: S.optional(Int64),
      weightDevice: S.optional(S.Array(WeightDevice)),
      throttleReadBpsDevice: S.optional(S.Array(ThrottleDevice)),
      throttleWriteBpsDevice: S.optional(S.Array(ThrottleDevice)),
      throttleReadIOPSDevice: S.optional(S.Array(ThrottleDevice)),
      throttleWriteIOPSDevice: S.optional(S.Array(ThrottleDevice)),
    }),
  ),
  hugepageLimits: S.optional(S.Array(S.Struct({ pageSize: Str, limit: Int64 }))),
  devices: S.optional(S.Array(DeviceRule)),
  network: S.optional(S.Struct({ classID: S.optional(Uint32), priorities: S.optional(S.Array(S.Struct({ name: Str, priority: Uint32 }))) })),
  rdma: S.optional(S.Record(Str, S.Struct({ hcaHandles: S.optional(Uint32), hcaObjects: S.optional(Uint32) }))),
  unified: S.optional(S.Unknown),
})

export const Linux = S.Struct({
  namespaces: S.optional(S.Array(Namespace)),
  uidMappings: S.optional(S.Array(IdMapping)),
  gidMappings: S.optional(S.Array(IdMapping)),
  timeOffsets: S.optional(S.Struct({ monotonic: S.optional(TimeOffset), boottime: S.optional(TimeOffset) })),
  devices: S.optional(S.Array(Device)),
  cgroupsPath: S.optional(Str),
  resources: S.optional(Resources),
  rootfsPropagation: S.optional(
    S.Literals(["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"]),
  ),
  maskedPaths: S.optional(S.Array(Str)),
  readonlyPaths: S.optional(S.Array(Str)),
  mountLabel: S.optional(Str),
  sysctl: S.optional(S.Record(Str, Str)),
  seccomp: S.optional(Seccomp),
  personality: S.optional(S.Struct({ domain: S.Literals(["LINUX", "LINUX32"]), flags: S.optional(S.Array(Str)) })),
  intelRdt: S.optional(
    S.Struct({
      closID: S.optional(Str),
      l3CacheSchema: S.optional(Str),
      memBwSchema: S.optional(Str),
      enableCMT: S.optional(S.Boolean),
      enableMBM: S.optional(S.Boolean),
    }),
  ),
})

export const Spec = S.Struct({
  ociVersion: Str,
  process: S.optional(Process),
  root: S.optional(S.Struct({ path: Str, readonly: S.optional(S.Boolean) })),
  hostname: S.optional(Str),
  domainname: S.optional(Str),
  mounts: S.optional(S.Array(Mount)),
  hooks: S.optional(S.Record(Str, S.Array(Hook))),
  annotations: S.optional(S.Record(Str, Str)),
  linux: S.optional(Linux),
})

/** A config.json as decoded: every field typed, unknown fields dropped. */
export type Spec = typeof Spec.Type
export type ProcessSpec = typeof Process.Type
export type MountSpec = typeof Mount.Type
export type DeviceSpec = typeof Device.Type
export type IdMappingSpec = typeof IdMapping.Type
export type ResourcesSpec = typeof Resources.Type
export type DeviceRuleSpec = typeof DeviceRule.Type
