/** What config.json asks for, checked from inside real containers. */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

async function output(args: string[], mutate?: Parameters<typeof bundle>[1], extra: { noPivot?: boolean } = {}) {
  const b = bundle(args, mutate)
  const io = capture()
  const id = uniq("f")
  try {
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio, ...extra })
    const status = await c.wait()
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
    return { out: io.out(), err: io.err(), status }
  } finally {
    io.close()
  }
}

describe.skipIf(skipReason)("config features on the real kernel", () => {
  it("sets domainname, sysctls, oom_score_adj, rlimits and umask", async () => {
    const r = await output(["sh", "-c", "cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj; ulimit -n; umask"], (s) => ({
      ...s,
      domainname: "example.org",
      process: { ...s.process!, oomScoreAdj: 500, rlimits: [{ type: "RLIMIT_NOFILE", soft: 321, hard: 654 }], user: { uid: 0, gid: 0, umask: 0o027 } },
      linux: { ...s.linux, readonlyPaths: [], sysctl: { "net.ipv4.ip_forward": "1" } },
    }))
    expect(r.err).toBe("")
    expect(r.out).toBe("example.org\n1\n500\n321\n0027\n")
  })

  it("sets oom_score_adj and rlimits of a container in a new user namespace (before the clone)", async () => {
    const r = await output(["sh", "-c", "cat /proc/self/oom_score_adj; ulimit -n"], (s) =>
      withUserNs(400000)({ ...s, process: { ...s.process!, oomScoreAdj: 300, rlimits: [{ type: "RLIMIT_NOFILE", soft: 222, hard: 333 }] } }),
    )
    expect(r.err).toBe("")
    expect(r.out).toBe("300\n222\n")
  })

  it("applies personality, I/O priority and the CPU scheduler (runtime-spec 1.2)", async () => {
    const r = await output(["uname", "-m"], (s) => ({ ...s, linux: { ...s.linux, personality: { domain: "LINUX32" } } }))
    expect(r.out.trim()).toMatch(/^i[3-6]86$/)
    const c = await run({
      root,
      id: uniq("sched"),
      bundle: bundle(["sleep", "30"], (s) => ({
        ...s,
        process: { ...s.process!, ioPriority: { class: "IOPRIO_CLASS_BE", priority: 6 }, scheduler: { policy: "SCHED_BATCH", nice: 7 } },
      })).dir,
    })
    const pid = String(c.pid)
    expect(execFileSync("ionice", ["-p", pid], { encoding: "utf8" }).trim()).toBe("best-effort: prio 6")
    expect(execFileSync("chrt", ["-p", pid], { encoding: "utf8" })).toMatch(/SCHED_BATCH/)
    expect(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[16]).toBe("7")
    await c.destroy({ force: true })
  })

  it("brings loopback up in a new network namespace and shows no host interface", async () => {
    const r = await output(["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"])
    // Only lo, and IFF_UP (0x1) is set on it.
    const [ifaces, flags] = [r.out.split("\n")[0], r.out.split("\n")[1]]
    expect(ifaces).toBe("lo")
    expect(Number(flags) & 1).toBe(1)
  })

  it("binds host paths read-only or read-write, files and directories", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-bind-"))
    fs.writeFileSync(path.join(dir, "file"), "from host\n")
    const r = await output(["sh", "-c", "cat /data/file /single; echo x > /data/new 2>/dev/null && echo rw || echo ro; echo y > /rw/new && echo rw2"], (s) => ({
      ...s,
      mounts: [
        ...(s.mounts ?? []),
        { destination: "/data", type: "bind", source: dir, options: ["rbind", "ro"] },
        { destination: "/single", type: "bind", source: path.join(dir, "file"), options: ["bind", "ro"] },
        { destination: "/rw", type: "none", source: dir, options: ["rbind", "rw"] },
      ],
    }))
    expect(r.out).toBe("from host\nfrom host\nro\nrw2\n")
    expect(fs.readFileSync(path.join(dir, "new"), "utf8")).toBe("y\n")
  })

  it("creates configured device nodes with their mode and owner", async () => {
    const r = await output(["sh", "-c", "stat -c '%t:%T %a %u:%g %F' /dev/xnull"], (s) => ({
      ...s,
      linux: { ...s.linux, devices: [{ type: "c", path: "/dev/xnull", major: 1, minor: 3, fileMode: 0o640, uid: 7, gid: 8 }] },
    }))
    expect(r.out.trim()).toBe("1:3 640 7:8 character special file")
  })

  it("gives a new time namespace its clock offsets", async () => {
    const r = await output(["cat", "/proc/uptime"], (s) => ({
      ...s,
      linux: { ...s.linux, namespaces: [...(s.linux?.namespaces ?? []), { type: "time" }], timeOffsets: { boottime: { secs: 86400 * 365, nanosecs: 0 } } },
    }))
    expect(r.err).toBe("")
    expect(Number(r.out.split(" ")[0])).toBeGreaterThan(86400 * 365)
  })

  it("joins an existing namespace by path", async () => {
    const ours = `/proc/${process.pid}/ns/net`
    const r = await output(["readlink", "/proc/self/ns/net"], (s) => ({
      ...s,
      linux: { ...s.linux, namespaces: (s.linux?.namespaces ?? []).map((n) => (n.type === "network" ? { type: "network" as const, path: ours } : n)) },
    }))
    expect(r.out.trim()).toBe(fs.readlinkSync(ours))
  })

  it("works without pivot_root (MS_MOVE + chroot) when asked", async () => {
    const r = await output(["sh", "-c", "echo ok; cat /proc/self/mountinfo | head -1"], undefined, { noPivot: true })
    expect(r.out.startsWith("ok\n")).toBe(true)
    expect(r.status).toEqual({ code: 0, signal: null })
  })
})
