/**
 * Real-kernel test fixtures: bundles over a busybox rootfs (Debian's
 * busybox-static), a private state root per test file, stdio captured in
 * files, and the leak checks every lifecycle test ends with.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { spawn } from "node:child_process"
import { defaultSpec } from "../../config/default-spec.ts"
import type { Spec } from "../../config/spec.ts"
import { makeBundle } from "../../examples/make-bundle.ts"
import { layoutFromStatfs } from "../../effects/cgroups-layout.ts"
import { loadDbusNext } from "../../effects/systemd-dbus.ts"

export const isRoot = process.getuid?.() === 0
export const hasBusybox = fs.existsSync("/bin/busybox")
/** Why the real-kernel tests would not run here (undefined: they run). */
export const skipReason = !isRoot
  ? "real-kernel tests need root (namespaces, cgroups, pivot_root)"
  : !hasBusybox
    ? "real-kernel tests need /bin/busybox (apt-get install busybox-static)"
    : undefined
if (skipReason) console.warn(`SKIPPING real-kernel tests: ${skipReason}`)

/** This host's cgroup layout (runc's statfs test): "hybrid" here, "v2" in the guest (test/guest/run-suite.sh). */
export const cgroupLayout = layoutFromStatfs()

/**
 * Why the systemd cgroup driver cannot be tried here (undefined: it can): it needs root, systemd as
 * init, a pure cgroup v2 host and the D-Bus client package (loaded only when the rest holds).
 */
export const systemdDriverSkip: string | undefined = !isRoot
  ? "needs root"
  : !fs.existsSync("/run/systemd/system")
    ? "systemd is not this host's init"
    : cgroupLayout !== "v2"
      ? `cgroups are ${cgroupLayout}, not pure v2 (test/guest/run-suite.sh runs this in a v2 guest)`
      : (() => {
          try {
            loadDbusNext()
            return undefined
          } catch (e) {
            return (e as Error).message
          }
        })()
/** The cgroup2 mount: the whole of /sys/fs/cgroup on a pure v2 host, beside the v1 hierarchies on hybrid. */
export const CGROUP2 = cgroupLayout === "v2" ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified"
/** The container's cgroup directory: its one directory on pure v2, else the one in the v1 hierarchy of `ctrl`. */
export const cgroupDirOf = (id: string, ctrl: string): string =>
  cgroupDirsNamed(id).find((d) => (cgroupLayout === "v2" ? true : d.startsWith(`/sys/fs/cgroup/${ctrl}/`)))!

export const WORK = path.resolve(import.meta.dirname, "..", ".work")
const SHARED_ROOTFS = path.join(WORK, "shared-bundle")

export const uniq = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`

/** A state root private to the calling test file. */
export function stateRoot(): string {
  const dir = path.join(WORK, uniq("root"))
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

/** A bundle dir with config.json for `args`; the rootfs is shared (read-only) unless `ownRootfs`. */
export function bundle(args: readonly string[], mutate?: (spec: Spec & { [k: string]: unknown }) => Spec, ownRootfs = false): { dir: string; spec: Spec } {
  fs.mkdirSync(WORK, { recursive: true })
  if (!fs.existsSync(path.join(SHARED_ROOTFS, "rootfs", "bin", "busybox"))) {
    fs.mkdirSync(SHARED_ROOTFS, { recursive: true })
    makeBundle(SHARED_ROOTFS)
  }
  const dir = path.join(WORK, uniq("bundle"))
  fs.mkdirSync(dir, { recursive: true })
  let spec: Spec = defaultSpec(args)
  if (ownRootfs) makeBundle(dir, args)
  else spec = { ...spec, root: { path: path.join(SHARED_ROOTFS, "rootfs"), readonly: true } }
  if (mutate) spec = mutate(structuredClone(spec) as Spec & { [k: string]: unknown })
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec, null, 2))
  return { dir, spec }
}

/** stdio for a container: /dev/null in, stdout and stderr into files read back with out()/err(). */
export function capture() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-io-"))
  const inFd = fs.openSync("/dev/null", "r")
  const outFd = fs.openSync(path.join(dir, "out"), "w+")
  const errFd = fs.openSync(path.join(dir, "err"), "w+")
  return {
    stdio: [inFd, outFd, errFd] as const,
    out: () => fs.readFileSync(path.join(dir, "out"), "utf8"),
    err: () => fs.readFileSync(path.join(dir, "err"), "utf8"),
    close: () => {
      for (const fd of [inFd, outFd, errFd]) fs.closeSync(fd)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Every cgroup directory whose last component is `id`, in any hierarchy. */
export function cgroupDirsNamed(id: string): string[] {
  const found: string[] = []
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries)
      if (e.isDirectory()) {
        const p = path.join(dir, e.name)
        if (e.name === id) found.push(p)
        walk(p, depth + 1)
      }
  }
  walk("/sys/fs/cgroup", 0)
  return found
}

/** Pids of processes whose command line mentions `marker`. */
export function processesWith(marker: string): number[] {
  const pids: number[] = []
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(marker)) pids.push(Number(p))
    } catch {
      /* gone */
    }
  }
  return pids
}

/** The leak check: no state dir, no cgroup, no process, no mount left by container `id`. */
export function expectNoTrace(root: string, id: string, marker?: string): string[] {
  const problems: string[] = []
  if (fs.existsSync(path.join(root, id))) problems.push(`state dir ${path.join(root, id)}`)
  for (const d of cgroupDirsNamed(id)) problems.push(`cgroup ${d}`)
  if (marker) for (const p of processesWith(marker)) problems.push(`process ${p}`)
  const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8")
  if (mounts.includes(id)) problems.push("mount naming the id")
  return problems
}

/** A config mutation adding a new user namespace mapping container ids 0–65535 to host ids from `hostId`. */
export const withUserNs =
  (hostId: number) =>
  (s: Spec): Spec => ({
    ...s,
    linux: {
      ...s.linux,
      namespaces: [...(s.linux?.namespaces ?? []), { type: "user" as const }],
      uidMappings: [{ containerID: 0, hostID: hostId, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: hostId, size: 65536 }],
    },
  })

/** Runs `args` in a fresh container to completion: stdout, stderr, the exit status and the id (destroyed after). */
export async function runToEnd(root: string, args: readonly string[], mutate?: Parameters<typeof bundle>[1], idPrefix = "c") {
  const { run } = await import("../../promise.ts")
  const b = bundle(args, mutate)
  const io = capture()
  const id = uniq(idPrefix)
  try {
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    const status = await c.wait()
    await c.destroy()
    return { out: io.out(), err: io.err(), status, id }
  } finally {
    io.close()
  }
}

/**
 * A unix socket whose listener never takes a connection: its backlog is full and its event loop
 * blocked, so a connect waits for room that never comes (the console socket's bound, issue 19).
 */
export async function stuckListener(): Promise<{ readonly sock: string; readonly stop: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-stuck-"))
  const sock = path.join(dir, "console.sock")
  const script = path.join(dir, "listener.mjs")
  fs.writeFileSync(
    script,
    `import * as net from "node:net"
net.createServer().listen({ path: ${JSON.stringify(sock)}, backlog: 1 })
for (let i = 0; i < 3; i++) net.connect(${JSON.stringify(sock)}).on("error", () => {})
process.stdout.write("ready\\n")
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
`,
  )
  const listener = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve) => listener.stdout.once("data", () => resolve()))
  return {
    sock,
    stop: () => {
      listener.kill(9)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
