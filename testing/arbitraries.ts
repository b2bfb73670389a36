/**
 * fast-check arbitraries for OCI configs: valid ones (`ociConfig`) and invalid ones
 * (`invalidOciConfig`: a valid config with one field made wrong, and the JSON path that
 * xcontainer's ConfigError names for it).
 */
import fc from "fast-check"
import { defaultSpec } from "../config/default-spec.ts"
import { CAPABILITIES } from "../config/linux-names.ts"
import type { Spec } from "../config/spec.ts"

const NS = ["pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"] as const
const capNames = [...CAPABILITIES.keys()]

/**
 * Valid OCI configs (runtime-spec config.json) that vary what orders the init's plan: namespaces
 * (new and joined), capabilities, masked and read-only paths, no_new_privs, seccomp, a read-only
 * root, the user, tmpfs mounts, rlimits, oom_score_adj. `rootPath` is root.path (a rootfs directory
 * when the config is to run).
 */
export const ociConfig = (rootPath = "/nonexistent"): fc.Arbitrary<Spec> =>
  fc
  .record({
    ns: fc.subarray([...NS]),
    joined: fc.subarray(["ipc", "uts", "network"] as const),
    caps: fc.option(fc.subarray(capNames, { maxLength: 6 }), { nil: undefined }),
    masked: fc.array(fc.constantFrom("/proc/keys", "/proc/timer_list", "/sys/firmware"), { maxLength: 3 }),
    ro: fc.array(fc.constantFrom("/proc/sys", "/proc/bus"), { maxLength: 2 }),
    nnp: fc.boolean(),
    seccomp: fc.boolean(),
    readonlyRoot: fc.boolean(),
    uid: fc.nat(70000),
    tmpfs: fc.shuffledSubarray(["/tmp", "/run", "/var/tmp"]),
    rlimits: fc.boolean(),
    oom: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
    startHooks: fc.nat(2),
  })
  .map((r) => {
    const base = defaultSpec(["sh"])
    const namespaces = [
      ...r.ns.filter((t) => !(r.joined as readonly string[]).includes(t)).map((type) => ({ type })),
      ...r.joined.map((type) => ({ type, path: `/proc/1/ns/${type}` })),
    ]
    const user = r.ns.includes("user") && !(r.joined as readonly string[]).includes("user")
    return {
      ...base,
      hostname: r.ns.includes("uts") && !(r.joined as readonly string[]).includes("uts") ? "h" : undefined,
      root: { path: rootPath, readonly: r.readonlyRoot },
      ...(r.startHooks ? { hooks: { startContainer: Array.from({ length: r.startHooks }, () => ({ path: "/bin/true" })) } } : {}),
      mounts: [...(base.mounts ?? []), ...r.tmpfs.map((d) => ({ destination: d, type: "tmpfs", source: "tmpfs" }))],
      process: {
        ...base.process!,
        user: { uid: r.uid, gid: r.uid },
        capabilities: r.caps ? { bounding: r.caps, effective: r.caps, permitted: r.caps } : undefined,
        noNewPrivileges: r.nnp,
        rlimits: r.rlimits ? base.process!.rlimits : undefined,
        oomScoreAdj: r.oom,
      },
      linux: {
        namespaces,
        maskedPaths: r.masked,
        ...(r.seccomp ? { seccomp: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] } } : {}),
        readonlyPaths: r.ro,
        ...(user ? { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] } : {}),
      },
    } as Spec
  })

/** One way of breaking a valid config, and the path of the field a ConfigError must name. */
interface Breakage {
  readonly path: string
  readonly apply: (spec: Spec & Record<string, unknown>) => unknown
}
const breakages: readonly Breakage[] = [
  { path: "mounts", apply: (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "relative/path", type: "tmpfs", source: "tmpfs" }] }) },
  { path: "process.args", apply: (s) => ({ ...s, process: { ...s.process, args: [] } }) },
  { path: "linux.namespaces", apply: (s) => ({ ...s, linux: { ...s.linux, namespaces: [{ type: "nope" }] } }) },
  { path: "ociVersion", apply: (s) => ({ ...s, ociVersion: 12 }) },
]

/**
 * Invalid configs: a valid one with one field made wrong. `path` is the JSON path the ConfigError
 * starts with (create and parseSpec fail with it and make nothing).
 */
export const invalidOciConfig = (rootPath = "/nonexistent"): fc.Arbitrary<{ readonly config: unknown; readonly path: string }> =>
  fc.tuple(ociConfig(rootPath), fc.constantFrom(...breakages)).map(([spec, b]) => ({ config: b.apply(spec as Spec & Record<string, unknown>), path: b.path }))
