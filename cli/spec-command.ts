/**
 * `spec` and `features`: what runc prints for a new bundle and for callers
 * that ask what this runtime supports (runtime-spec features.md). The
 * features are what this build really does; each list is derived from the
 * tables the runtime itself uses.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { bool, str } from "./args.ts"
import { parse, type Cmd } from "./common.ts"
import { defaultSpec } from "../config/default-spec.ts"
import { CAPABILITIES, CLONE_FLAGS, MOUNT_FLAG_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS } from "../config/linux-names.ts"
import { DEFAULT_SECCOMP } from "../config/seccomp-default.ts"
import { ACTIONS, FILTER_FLAGS, OPS } from "../config/seccomp-spec.ts"
import type { Spec } from "../config/spec.ts"
import { ConfigError } from "../effects/errors.ts"

/** runc's `spec --rootless`: the caller's ids mapped to root, no network namespace, /sys bound read-only. */
export function rootlessSpec(uid: number, gid: number): Spec {
  const base = defaultSpec(["sh"])
  return {
    ...base,
    // runc 1.1.5's keeps every mount (the cgroup one included) and binds /sys read-only.
    mounts: (base.mounts ?? []).map((m) =>
        m.destination === "/sys"
          ? { destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] }
          : m.destination === "/dev/pts"
            ? { ...m, options: (m.options ?? []).filter((o) => o !== "gid=5") }
            : m,
      ),
    linux: {
      ...base.linux,
      resources: undefined,
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "cgroup" }, { type: "user" }],
      uidMappings: [{ containerID: 0, hostID: uid, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: gid, size: 1 }],
    },
  }
}

export const specCmd: Cmd = (args) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [
      { name: "bundle", alias: "b", value: true },
      { name: "rootless", value: false },
    ])
    const file = path.join(str(p, "bundle") ?? ".", "config.json")
    if (fs.existsSync(file)) return yield* new ConfigError({ path: file, reason: "exists: remove it first" })
    const base = bool(p, "rootless") ? rootlessSpec(process.geteuid?.() ?? 0, process.getegid?.() ?? 0) : defaultSpec(["sh"])
    // As `runc spec` writes none, but a runtime that ships Docker's default profile should offer it.
    const spec: Spec = { ...base, linux: { ...base.linux, seccomp: DEFAULT_SECCOMP } }
    yield* Effect.try({
      try: () => fs.writeFileSync(file, `${JSON.stringify(spec, null, "\t")}\n`),
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
