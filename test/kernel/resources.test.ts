/**
 * linux.resources on the real kernel (cgroup v1 here): limits land in the
 * container's cgroup files before it runs, and the kernel enforces them: an
 * allocation past the memory limit is OOM-killed, forks past the pids limit
 * fail, and devices outside the rules cannot be opened.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { ResourcesSpec, Spec } from "../../config/spec.ts"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, cgroupDirOf, cgroupLayout, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const withResources =
  (resources: ResourcesSpec | undefined, extra: (s: Spec) => Spec = (s) => s) =>
  (s: Spec): Spec =>
    extra({ ...s, linux: { ...s.linux, resources } })

/** The container's cgroup directory in the v1 hierarchy mounted at /sys/fs/cgroup/<ctrl> (its one directory on pure v2). */
const cgDir = cgroupDirOf
const cgRead = (id: string, ctrl: string, file: string) => fs.readFileSync(path.join(cgDir(id, ctrl), file), "utf8").trim()
// The first two tests read v1's files; their pure v2 counterparts are in v2-host.test.ts and cgroups-v2.test.ts.
const v1Only = skipReason ?? (cgroupLayout === "v2" ? "reads v1 files (memory.limit_in_bytes, memory.oom_control); v2-host.test.ts covers pure v2" : undefined)
if (v1Only && !skipReason) console.warn(`SKIPPING v1 resource file checks: ${v1Only}`)


describe.skipIf(skipReason)("resources on the real kernel", () => {
  it.skipIf(v1Only)("writes every limit before the init runs", async () => {
    const id = uniq("res")
    const b = bundle(["sleep", "30"], withResources({
      memory: { limit: 64 << 20, swap: 64 << 20, reservation: 32 << 20, swappiness: 7 },
      cpu: { shares: 512, quota: 25000, period: 50000, cpus: "1", mems: "0" },
      pids: { limit: 16 },
    }))
    const c = await create({ root, id, bundle: b.dir })
    try {
      expect({
        limit: cgRead(id, "memory", "memory.limit_in_bytes"),
        memsw: cgRead(id, "memory", "memory.memsw.limit_in_bytes"),
        soft: cgRead(id, "memory", "memory.soft_limit_in_bytes"),
        swappiness: cgRead(id, "memory", "memory.swappiness"),
        shares: cgRead(id, "cpu", "cpu.shares"),
        quota: cgRead(id, "cpu", "cpu.cfs_quota_us"),
        period: cgRead(id, "cpu", "cpu.cfs_period_us"),
        cpus: cgRead(id, "cpuset", "cpuset.cpus"),
        pids: cgRead(id, "pids", "pids.max"),
      }).toEqual({ limit: `${64 << 20}`, memsw: `${64 << 20}`, soft: `${32 << 20}`, swappiness: "7", shares: "512", quota: "25000", period: "50000", cpus: "1", pids: "16" })
      // The init (still at its barrier) is already inside them.
      expect(fs.readFileSync(path.join(cgDir(id, "memory"), "cgroup.procs"), "utf8").trim()).toBe(`${c.pid}`)
    } finally {
      await c.destroy()
    }
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it.skipIf(v1Only)("OOM-kills a process allocating past the memory limit", async () => {
    const id = uniq("oom")
    // The shell holds the whole command substitution in its own memory: 200 MB against a 32 MB limit.
    const b = bundle(["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"], withResources({ memory: { limit: 32 << 20, swap: 32 << 20 } }))
    const io = capture()
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    expect(await c.wait()).toEqual({ code: null, signal: 9 })
    expect(io.out()).toBe("")
    expect(cgRead(id, "memory", "memory.oom_control")).toMatch(/^oom_kill [1-9]/m)
    expect(Number(cgRead(id, "memory", "memory.max_usage_in_bytes"))).toBeGreaterThan(30 << 20)
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("makes forks fail past the pids limit", async () => {
    const id = uniq("pids")
    // busybox sh gives up at the first failed fork: the count it reached is what the limit allowed.
    const b = bundle(["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo $i; done"], withResources({ pids: { limit: 16 } }))
    const io = capture()
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await c.wait()
    // The shell itself is one of the 16.
    expect(io.out().trim().split("\n").at(-1)).toBe("15")
    expect(io.err()).toMatch(/can't fork: Resource temporarily unavailable/)
    expect(Number(cgRead(id, "pids", "pids.events").split(" ")[1])).toBeGreaterThan(0)
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  // GHSA-g54h-m393-cpwq: with no device rules, nothing but runc's defaults may be opened. CAP_MKNOD is granted
  // so that mknod succeeds (runc allows "m" on every device): the open is what the devices cgroup refuses.
  // c 5:1 is the host's console (runc's defaults leave it out): the container's own /dev/console is its pty.
  const mknodCaps = (s: Spec): Spec => {
    const caps = [...(s.process?.capabilities?.bounding ?? []), "CAP_MKNOD"]
    return { ...s, process: { ...s.process!, capabilities: { bounding: caps, effective: caps, permitted: caps } } }
  }
  const probe = [
    "sh",
    "-c",
    "mknod /dev/xsda b 8 0 && mknod /dev/xmem c 1 1 && mknod /dev/xcon c 5 1 && echo made; head -c1 /dev/xsda >/dev/null; head -c1 /dev/xmem >/dev/null; echo x > /dev/xcon; echo x > /dev/null && echo null-ok",
  ]
  it.each<[string, ResourcesSpec | undefined]>([
    ["no resources at all", undefined],
    ["an empty device list", { devices: [] }],
    ["the runc spec's deny-all", { devices: [{ allow: false, access: "rwm" }] }],
  ])("refuses to open 8:0, 1:1 and the host console 5:1 with %s (EPERM), allows /dev/null", async (_what, resources) => {
    const id = uniq("dev")
    const b = bundle(probe, withResources(resources, mknodCaps))
    const io = capture()
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await c.wait()
    await c.destroy()
    expect(io.out()).toBe("made\nnull-ok\n")
    expect(io.err().match(/Operation not permitted/g)?.length, io.err()).toBe(3)
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses, naming the field, what this host cannot honour; nothing is created", async () => {
    const id = uniq("badres")
    for (const [resources, field] of [
      [{ cpu: { cpus: "0-63" } }, "linux.resources.cpu.cpus"],
      // Hybrid here: no v1 hugetlb hierarchy. Pure v2 (all controllers): a page size the kernel lacks.
      cgroupLayout === "v2"
        ? [{ hugepageLimits: [{ pageSize: "3MB", limit: 0 }] }, "linux.resources.hugepageLimits[0].pageSize"]
        : [{ hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }, "linux.resources.hugepageLimits"],
      [{ memory: { limit: -5 } }, "linux.resources.memory.limit"],
      [{ devices: [{ allow: true, type: "c", access: "q" }] }, "linux.resources.devices[0].access"],
    ] as const) {
      const b = bundle(["true"], withResources(resources as ResourcesSpec))
      await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: field })
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })
})
