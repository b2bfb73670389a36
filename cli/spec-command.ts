/**
 * `spec` and `features`: what runc prints for a new bundle and for callers
 * that ask what this runtime supports (runtime-spec features.md). The
 * features are what this build really does; each list is derived from the
 * tables the runtime itself uses.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { bool, str, UsageError } from "./args.ts"
import { parse, type Cmd } from "./common.ts"
import { defaultSpec } from "../config/default-spec.ts"
import { CAPABILITIES, CLONE_FLAGS, MOUNT_FLAG_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS } from "../config/linux-names.ts"
import { ACTIONS, FILTER_FLAGS, OPS } from "../config/seccomp-spec.ts"
import type { Spec } from "../config/spec.ts"
import { ConfigError } from "../effects/errors.ts"
import { layoutFromStatfs } from "../effects/cgroups-layout.ts"

/** Go's json.Marshal order of runtime-spec's Linux struct: what `runc spec` writes, in that order. */
const LINUX_KEYS = ["uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath", "namespaces", "devices", "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths"] as const

/**
 * The config `runc spec` writes (libcontainer/specconv/example.go): a terminal, no seccomp profile,
 * a cgroup namespace only on a pure cgroup v2 host. With `rootless` (ToRootless): no network
 * namespace, a user namespace mapping the caller to root, /sys bound read-only, no uid=/gid=
 * mount options, no resources.
 */
export function runcSpec(opts: { cgroupNs: boolean; rootless?: { uid: number; gid: number } }): Spec {
  const base = defaultSpec(["sh"])
  const namespaces = (base.linux?.namespaces ?? []).filter((n) => n.type !== "cgroup" || opts.cgroupNs)
  const r = opts.rootless
  const linux: Record<string, unknown> = r
    ? {
        ...base.linux,
        resources: undefined,
        namespaces: [...namespaces.filter((n) => n.type !== "network" && n.type !== "user"), { type: "user" }],
        uidMappings: [{ containerID: 0, hostID: r.uid, size: 1 }],
        gidMappings: [{ containerID: 0, hostID: r.gid, size: 1 }],
      }
    : { ...base.linux, namespaces }
  const mounts = r
    ? (base.mounts ?? []).map((m) =>
        m.destination === "/sys"
          ? { destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] }
          : { ...m, ...(m.options ? { options: m.options.filter((o) => !o.startsWith("gid=") && !o.startsWith("uid=")) } : {}) },
      )
    : base.mounts
  const ordered = Object.fromEntries([
    ...LINUX_KEYS.filter((k) => linux[k] !== undefined).map((k) => [k, linux[k]] as const),
    ...Object.entries(linux).filter(([k, v]) => v !== undefined && !(LINUX_KEYS as readonly string[]).includes(k)),
  ])
  return { ...base, process: { ...base.process!, terminal: true }, ...(mounts ? { mounts } : {}), linux: ordered as Spec["linux"] }
}

export const specCmd: Cmd = (args) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [
      { name: "bundle", alias: "b", value: true },
      { name: "rootless", value: false },
    ])
    if (p.positional.length > 0) return yield* Effect.fail(new UsageError(`"spec" requires exactly 0 arguments`))
    const file = path.join(str(p, "bundle") ?? ".", "config.json")
    if (fs.existsSync(file)) return yield* new ConfigError({ path: file, reason: "exists: remove it first" })
    const spec = runcSpec({
      cgroupNs: layoutFromStatfs() === "v2",
      ...(bool(p, "rootless") ? { rootless: { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 } } : {}),
    })
    // As runc (json.MarshalIndent with tabs): no newline after the closing brace, mode 0666 less the umask.
    yield* Effect.try({
      try: () => fs.writeFileSync(file, JSON.stringify(spec, null, "\t"), { mode: 0o666 }),
      catch: (e) => new ConfigError({ path: file, reason: (e as NodeJS.ErrnoException).code ?? String(e) }),
    })
    return 0
  })

/** The runtime-spec features document of this build. */
export function features(): Record<string, unknown> {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.2.0",
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    // "tmpcopyup": runc's one extension (its extensionFlags), for tmpfs mounts.
    mountOptions: [...MOUNT_FLAG_OPTIONS.keys(), ...PROPAGATION_OPTIONS.keys(), ...RECURSIVE_OPTIONS.keys(), "tmpcopyup"].sort(),
    linux: {
      namespaces: Object.keys(CLONE_FLAGS).sort(),
      capabilities: [...CAPABILITIES.keys()],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        // NOTIFY compiles but is refused at create until the listener plumbing lands.
        actions: Object.keys(ACTIONS).filter((a) => a !== "SCMP_ACT_NOTIFY"),
        operators: [...OPS],
        archs: ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        knownFlags: Object.keys(FILTER_FLAGS),
        supportedFlags: Object.keys(FILTER_FLAGS),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: {
      "org.opencontainers.runtime-spec.features.version": "1.2.0",
      // runc's key, read by clients (podman ≥ 5) to offer checkpoint/restore; CRIU itself is found at the call, as runc's.
      "org.opencontainers.runc.checkpoint.enabled": "true",
    },
  }
}

export const featuresCmd: Cmd = (args) =>
  Effect.gen(function* () {
    yield* parse(args, [])
    process.stdout.write(`${JSON.stringify(features(), null, "    ")}\n`)
    return 0
  })
