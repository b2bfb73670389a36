/**
 * The lifecycle commands of testing/lifecycle.ts (xcontainer/testing) on the real
 * kernel (LiveLayer): a few short random sequences, the machine's status
 * checked against /proc and the container's cgroup, and no trace left. With each cgroup driver the
 * host has: the fs manager everywhere, and on a pure v2 host with systemd (the guest suite) the
 * systemd driver too (the container's cgroup is the scope xcontainer-ID.scope in system.slice).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ManagedRuntime } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { LiveLayer } from "../../live.ts"
import { lifecycleCommands, runLifecycle, type SourceKind, type World } from "../../testing/lifecycle.ts"
import { runcSpec } from "../../cli/spec-command.ts"
import { makeBundle } from "../../examples/make-bundle.ts"
import type { Spec } from "../../config/spec.ts"
import { ensureRootlessUser, ROOTLESS_USER, rootlessSkip } from "./rootless-user.ts"
import { bundle, cgroupDirsNamed, cgroupLayout, expectNoTrace, skipReason, stateRoot, systemdDriverSkip, uniq } from "./harness.ts"

if (!skipReason && systemdDriverSkip) console.warn(`SKIPPING the lifecycle property test with the systemd cgroup driver: ${systemdDriverSkip}`)
const drivers = (["cgroupfs", "systemd"] as const).filter((d) => d === "cgroupfs" || !systemdDriverSkip)
/** The container's cgroup directories under a driver: named by the id, or the systemd scope's. */
const cgroupsOf = (driver: (typeof drivers)[number], id: string) =>
  driver === "systemd" ? [`/sys/fs/cgroup/system.slice/xcontainer-${id}.scope`].filter((d) => fs.existsSync(d)) : cgroupDirsNamed(id)
const noTrace = (driver: (typeof drivers)[number], root: string, id: string) => [...expectNoTrace(root, id), ...(driver === "systemd" ? cgroupsOf(driver, id).map((d) => `cgroup ${d}`) : [])]

const noPidNs = (s: Parameters<NonNullable<Parameters<typeof bundle>[1]>>[0]) => ({
  ...s,
  linux: { ...s.linux, namespaces: (s.linux?.namespaces ?? []).filter((n) => n.type !== "pid") },
})

/** "Z" for a zombie, undefined when there is no such process. */
function procState(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0]
  } catch {
    return undefined
  }
}

describe.skipIf(skipReason)("the container machine follows runc's table (real kernel)", () => {
  it.each(drivers)("random lifecycles (%s driver): statuses agree with /proc, forbidden ops change nothing, no trace left", async (driver) => {
    const root = stateRoot()
    const bundles: Record<SourceKind, string> = {
      "long-ns": bundle(["sleep", "30"]).dir,
      "long-nons": bundle(["sleep", "30"], noPidNs).dir,
      "short-ns": bundle(["true"]).dir,
      "short-nons": bundle(["true"], noPidNs).dir,
      "invalid-config": bundle(["true"], (s) => ({ ...s, mounts: [{ destination: "relative/path", type: "tmpfs", source: "tmpfs" }] })).dir,
      "missing-program": bundle(["/bin/does-not-exist"]).dir,
    }
    const rt = ManagedRuntime.make(LiveLayer)
    const allIds: string[] = []
    try {
      await fc.assert(
        fc.asyncProperty(fc.commands(lifecycleCommands(2), { maxCommands: 8 }), async (cmds) => {
          const ids = [uniq("p"), uniq("q")]
          allIds.push(...ids)
          const world: World = {
            rt,
            root,
            ids,
            handles: new Map(),
            source: (kind) => ({ bundle: bundles[kind], ...(driver === "systemd" ? { cgroupDriver: "systemd" as const } : {}) }),
            settleMs: 50,
            waitMs: 5000,
            reality: async (c, expected) => {
              const pid = c.pid
              if (pid === undefined) return expected === "stopped" ? [] : [`no init pid while ${expected}`]
              const st = procState(pid)
              if (expected === "stopped") return st === undefined || st === "Z" ? [] : [`init ${pid} still ${st}`]
              if (expected === "exiting") return []
              const problems = st === undefined || st === "Z" ? [`init ${pid} gone (${st})`] : []
              // v1's freezer.state; on pure v2 the same word from cgroup.events' "frozen" line.
              const freezer = cgroupsOf(driver, c.id).find((d) => cgroupLayout === "v2" || d.startsWith("/sys/fs/cgroup/freezer/"))
              const state = !freezer
                ? "no freezer cgroup"
                : cgroupLayout === "v2"
                  ? /^frozen 1$/m.test(fs.readFileSync(`${freezer}/cgroup.events`, "utf8"))
                    ? "FROZEN"
                    : "THAWED"
                  : fs.readFileSync(`${freezer}/freezer.state`, "utf8").trim()
              if (state !== (expected === "paused" ? "FROZEN" : "THAWED")) problems.push(`freezer ${state} while ${expected}`)
              const inCgroup = await rt.runPromise(c.processes())
              if (!inCgroup.includes(pid)) problems.push(`init ${pid} not in its cgroup (${inCgroup.join(",")})`)
              return problems
            },
            traces: async (id) => noTrace(driver, root, id),
          }
          await runLifecycle(world, cmds)
          for (const id of ids) expect(noTrace(driver, root, id), id).toEqual([])
        }),
        { numRuns: Number(process.env.XC_PROPERTY_RUNS ?? 20), endOnFailure: true },
      )
    } finally {
      await rt.dispose()
    }
    for (const id of allIds) expect(noTrace(driver, root, id), id).toEqual([])
    fs.rmSync(root, { recursive: true, force: true })
  }, Number(process.env.XC_PROPERTY_TIMEOUT_MS ?? 60_000))
})

/**
 * Issue 18: the same property as an unprivileged user. The commands run in a child node (tsx) started
 * with runuser, over bundles from runc's `spec --rootless` made here; a bounded number of runs
 * (XC_ROOTLESS_PROPERTY_RUNS, default 5): each child pays node + tsx start-up once, the runs are cheap.
 */
const rootlessPropertySkip = skipReason ?? rootlessSkip
if (rootlessPropertySkip && !skipReason) console.warn(`SKIPPING the rootless lifecycle property: ${rootlessPropertySkip}`)
describe.skipIf(rootlessPropertySkip)("the container machine follows runc's table as an unprivileged user (real kernel)", () => {
  it("random lifecycles without pause/resume (no freezer cgroup rootless on v1): statuses agree with /proc, no trace left", () => {
    const user = ensureRootlessUser()
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "xc-rootless-prop-"))
    try {
      makeBundle(path.join(base, "image"))
      const rootfs = path.join(base, "image", "rootfs")
      const make = (name: string, args: readonly string[], edit: (s: Spec) => Spec = (s) => s) => {
        const dir = path.join(base, name)
        fs.mkdirSync(dir)
        const r = runcSpec({ cgroupNs: false, rootless: { uid: user.uid, gid: user.gid } })
        const spec = edit({ ...r, root: { path: rootfs, readonly: true }, process: { ...r.process!, terminal: false, args: [...args] } })
        fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec))
        return dir
      }
      // Without a pid namespace of its own a user namespace may not mount a fresh proc (the host's pid
      // namespace is not its own: EPERM, runc's too): /proc is bound from the host, as podman does rootless.
      const nons = (s: Spec): Spec => ({
        ...noPidNs(s),
        mounts: (s.mounts ?? []).map((m) => (m.type === "proc" ? { destination: "/proc", type: "bind", source: "/proc", options: ["rbind", "nosuid", "noexec", "nodev"] } : m)),
      })
      const bundles: Record<SourceKind, string> = {
        "long-ns": make("long-ns", ["sleep", "30"]),
        "long-nons": make("long-nons", ["sleep", "30"], nons),
        "short-ns": make("short-ns", ["true"]),
        "short-nons": make("short-nons", ["true"], nons),
        "invalid-config": make("invalid-config", ["true"], (s) => ({ ...s, mounts: [{ destination: "relative/path", type: "tmpfs", source: "tmpfs" }] })),
        "missing-program": make("missing-program", ["/bin/does-not-exist"]),
      }
      const root = path.join(base, "state")
      fs.mkdirSync(root)
      spawnSync("chmod", ["-R", "a+rX", base])
      fs.chownSync(root, user.uid, user.gid)
      const harness = path.join(import.meta.dirname, "lifecycle-rootless-harness.ts")
      const tsx = path.join(import.meta.dirname, "..", "..", "node_modules", ".bin", "tsx")
      const runs = process.env.XC_ROOTLESS_PROPERTY_RUNS ?? "5"
      const seed = String(Date.now() % 2 ** 31)
      const r = spawnSync("runuser", ["-u", ROOTLESS_USER, "--", tsx, harness, root, JSON.stringify(bundles), runs, seed], { encoding: "utf8", timeout: 170_000 })
      expect(r.stderr.slice(-4000), `seed ${seed}`).not.toMatch(/Property failed|Error/)
      expect(r.status, `seed ${seed}: ${r.stderr.slice(-2000)}`).toBe(0)
      expect(r.stdout).toContain("ok")
      expect(fs.readdirSync(root)).toEqual([])
    } finally {
      fs.rmSync(base, { recursive: true, force: true })
    }
  }, 180_000)
})
