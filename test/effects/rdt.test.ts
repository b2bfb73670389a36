/**
 * Intel RDT against a FAKE resctrl tree (this machine has no resctrl): features from info/, runc's
 * validation, the group made or joined with its schemata, tasks and monitoring group, and removal
 * of what was made only. The real host's refusal is in test/kernel/rdt.test.ts.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { checkIntelRdtShape } from "../../config/intel-rdt.ts"
import { checkIntelRdtOnHost, findResctrl, joinRdt, liveRdtFs, rdtFeatures, removeRdt, schemataMatch, type RdtFs } from "../../effects/rdt.ts"

const roots: string[] = []
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true })
})

/** A resctrl tree as the kernel lays it out, with what `features` enables. */
function fakeResctrl(features: { cat?: boolean; mba?: boolean; mon?: string[] } = { cat: true, mba: true, mon: ["llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"] }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "xc-resctrl-"))
  roots.push(root)
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
    fs.writeFileSync(path.join(root, rel), text)
  }
  put("schemata", `${features.cat ? "L3:0=fffff;1=fffff\n" : ""}${features.mba ? "MB:0=100;1=100\n" : ""}`)
  put("tasks", "1\n")
  put("info/last_cmd_status", "ok\n")
  if (features.cat) for (const [f, v] of [["cbm_mask", "fffff"], ["min_cbm_bits", "1"], ["num_closids", "16"]]) put(`info/L3/${f}`, `${v}\n`)
  if (features.mba) for (const [f, v] of [["bandwidth_gran", "10"], ["delay_linear", "1"], ["min_bandwidth", "10"], ["num_closids", "8"]]) put(`info/MB/${f}`, `${v}\n`)
  if (features.mon) put("info/L3_MON/mon_features", `${features.mon.join("\n")}\n`)
  return root
}

/** The live fs, except that mkdir also lays out the files resctrl gives a new group, and rmdir takes them along. */
const fakeFs: RdtFs = {
  ...liveRdtFs,
  mkdir: (p) => {
    fs.mkdirSync(p)
    fs.writeFileSync(path.join(p, "tasks"), "")
    fs.writeFileSync(path.join(p, "schemata"), "L3:0=fffff;1=fffff\nMB:0=100;1=100\n")
    if (path.basename(path.dirname(p)) !== "mon_groups") fs.mkdirSync(path.join(p, "mon_groups"))
  },
  rmdir: (p) => fs.rmSync(p, { recursive: true }),
}
const read = (root: string, rel: string) => fs.readFileSync(path.join(root, rel), "utf8")

describe("resctrl discovery", () => {
  it("finds the resctrl mount and its features", () => {
    expect(findResctrl("36 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n40 25 0:40 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw\n")).toBe("/sys/fs/resctrl")
    expect(findResctrl("36 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")).toBeUndefined()
    expect(rdtFeatures(fakeResctrl())).toEqual({ cat: true, mba: true, cmt: true, mbm: true })
    expect(rdtFeatures(fakeResctrl({ cat: true }))).toEqual({ cat: true, mba: false, cmt: false, mbm: false })
  })
})

describe("validation (runc's intelrdtCheck)", () => {
  it.each([
    [{ closID: "a/b" }, "linux.intelRdt.closID"],
    [{ closID: ".." }, "linux.intelRdt.closID"],
    [{ l3CacheSchema: "MB:0=10" }, "linux.intelRdt.l3CacheSchema"],
    [{ memBwSchema: "L3:0=f" }, "linux.intelRdt.memBwSchema"],
  ])("refuses the shape of %j", (rdt, field) => {
    expect(checkIntelRdtShape(rdt)?.path).toBe(field)
  })

  it("refuses what the host lacks, naming the field", () => {
    expect(checkIntelRdtOnHost({}, undefined)).toMatchObject({ path: "linux.intelRdt", reason: expect.stringMatching(/no resctrl filesystem/) })
    const catOnly = fakeResctrl({ cat: true })
    expect(checkIntelRdtOnHost({ l3CacheSchema: "L3:0=f" }, catOnly)).toBeUndefined()
    expect(checkIntelRdtOnHost({ memBwSchema: "MB:0=50" }, catOnly)?.path).toBe("linux.intelRdt.memBwSchema")
    expect(checkIntelRdtOnHost({ enableCMT: true }, catOnly)?.path).toBe("linux.intelRdt.enableCMT")
    expect(checkIntelRdtOnHost({ enableMBM: true }, catOnly)?.path).toBe("linux.intelRdt.enableMBM")
    expect(checkIntelRdtOnHost({ closID: "nope" }, catOnly)).toMatchObject({ path: "linux.intelRdt.closID", reason: expect.stringMatching(/does not exist/) })
  })

  it("joins an existing closID only when its schemata are the config's", () => {
    const root = fakeResctrl()
    fakeFs.mkdir(path.join(root, "gold"))
    fs.writeFileSync(path.join(root, "gold", "schemata"), "L3:0=000ff;1=0f\nMB:0=50;1=100\n")
    expect(checkIntelRdtOnHost({ closID: "gold", l3CacheSchema: "L3:1=f;0=ff", memBwSchema: "MB:0=50;1=100" }, root)).toBeUndefined()
    expect(checkIntelRdtOnHost({ closID: "gold" }, root)).toBeUndefined()
    expect(checkIntelRdtOnHost({ closID: "gold", l3CacheSchema: "L3:0=f;1=f", memBwSchema: "MB:0=50;1=100" }, root)).toMatchObject({ path: "linux.intelRdt.closID", reason: expect.stringMatching(/other schemata/) })
    expect(schemataMatch("L3:0=ff\nMB:0=10\n", "L3:0=ff")).toBe(false)
  })
})

describe("joining and removing (a fake resctrl tree)", () => {
  it("makes the container's group, writes both schemata in one write, the task, and removes it at delete", async () => {
    const root = fakeResctrl()
    await Effect.runPromise(joinRdt(root, { l3CacheSchema: "L3:0=f0;1=f", memBwSchema: "MB:0=70;1=20" }, "web", 4242, fakeFs))
    expect(read(root, "web/schemata")).toBe("L3:0=f0;1=f\nMB:0=70;1=20\n")
    expect(read(root, "web/tasks")).toBe("4242")
    await Effect.runPromise(removeRdt(root, { l3CacheSchema: "L3:0=f0;1=f" }, "web", fakeFs))
    expect(fs.existsSync(path.join(root, "web"))).toBe(false)
  })

  it("joins a shared closID as it is, with a monitoring group of the container's own, and leaves the group at delete", async () => {
    const root = fakeResctrl()
    fakeFs.mkdir(path.join(root, "gold"))
    const before = read(root, "gold/schemata")
    const rdt = { closID: "gold", enableCMT: true, enableMBM: true }
    await Effect.runPromise(joinRdt(root, rdt, "db", 77, fakeFs))
    expect(read(root, "gold/schemata")).toBe(before)
    expect(read(root, "gold/tasks")).toBe("77")
    expect(read(root, "gold/mon_groups/db/tasks")).toBe("77")
    await Effect.runPromise(removeRdt(root, rdt, "db", fakeFs))
    expect(fs.existsSync(path.join(root, "gold/mon_groups/db"))).toBe(false)
    expect(fs.existsSync(path.join(root, "gold"))).toBe(true)
    // Removing again (a second delete, a crash before) is fine.
    await Effect.runPromise(removeRdt(root, rdt, "db", fakeFs))
  })

  it("reports a refused write with the kernel's last_cmd_status", async () => {
    const root = fakeResctrl()
    fs.writeFileSync(path.join(root, "info/last_cmd_status"), "Mask out of range\n")
    const refusing: RdtFs = { ...fakeFs, write: (p, d) => (p.endsWith("schemata") ? (() => { throw Object.assign(new Error("EINVAL"), { code: "EINVAL" }) })() : liveRdtFs.write(p, d)) }
    const r = await Effect.runPromise(Effect.result(joinRdt(root, { l3CacheSchema: "L3:0=fffffff" }, "bad", 1, refusing)))
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") expect(r.failure).toMatchObject({ _tag: "CgroupError", reason: "EINVAL (resctrl: Mask out of range)" })
  })
})
