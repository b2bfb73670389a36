/** update: resources changed live, validated first, recorded in state.json. */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, load, run } from "../../promise.ts"
import { mergeResources } from "../../effects/lifecycle.ts"
import { bytes } from "../../cli/update-command.ts"
import { bundle, cgroupLayout, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

/** A file of `pid`'s cgroup: in the v1 hierarchy of `controller`, or its one cgroup on pure v2. */
const cgroupFile = (pid: number, controller: string, file: string) => {
  if (cgroupLayout === "v2") {
    const own = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"))!.slice(3)
    return fs.readFileSync(path.join("/sys/fs/cgroup", own, file), "utf8").trim()
  }
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.split(":")[1]?.split(",").includes(controller))!
  const own = line.split(":")[2]!
  return fs.readFileSync(path.join("/sys/fs/cgroup", controller, own, file), "utf8").trim()
}

describe("update's merge and sizes", () => {
  it("merges field by field and parses runc's sizes", () => {
    expect(mergeResources({ memory: { limit: 1, swap: 2 }, pids: { limit: 3 } }, { memory: { limit: 5 } })).toEqual({ memory: { limit: 5, swap: 2 }, pids: { limit: 3 } })
    expect([bytes("m", "64m"), bytes("m", "1g"), bytes("m", "512"), bytes("m", "-1")]).toEqual([64 * 2 ** 20, 2 ** 30, 512, -1])
  })
})

describe.skipIf(skipReason)("update on the real kernel", () => {
  it("raises memory and swap together, changes pids and cpu shares, and records them", async () => {
    const id = uniq("up")
    const c = await run({
      root,
      id,
      bundle: bundle(["sleep", "30"], (s) => ({ ...s, linux: { ...s.linux, resources: { ...(s.linux?.resources as object), memory: { limit: 32 * 2 ** 20, swap: 48 * 2 ** 20 } } } })).dir,
    })
    const pid = c.pid!
    // Above the old memory+swap: the swap limit has to move first.
    await c.update({ memory: { limit: 256 * 2 ** 20, swap: 512 * 2 ** 20 }, pids: { limit: 40 }, cpu: { shares: 512 } })
    if (cgroupLayout === "v2") {
      // v2's names and units: swap alone (memory+swap minus memory), shares as runc's cpu.weight.
      expect(cgroupFile(pid, "", "memory.max")).toBe(String(256 * 2 ** 20))
      expect(cgroupFile(pid, "", "memory.swap.max")).toBe(String(256 * 2 ** 20))
      expect(cgroupFile(pid, "", "cpu.weight")).toBe("59")
    } else {
      expect(cgroupFile(pid, "memory", "memory.limit_in_bytes")).toBe(String(256 * 2 ** 20))
      expect(cgroupFile(pid, "memory", "memory.memsw.limit_in_bytes")).toBe(String(512 * 2 ** 20))
      expect(cgroupFile(pid, "cpu", "cpu.shares")).toBe("512")
    }
    expect(cgroupFile(pid, "pids", "pids.max")).toBe("40")
    // Another handle sees the recorded resources.
    const other = await load({ root, id })
    expect(JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")).spec.linux.resources).toMatchObject({ pids: { limit: 40 }, memory: { limit: 256 * 2 ** 20 } })
    await other.release()
    await c.destroy({ force: true })
  })

  it("refuses a bad value naming the field, and writes nothing", async () => {
    const c = await run({ root, id: uniq("upbad"), bundle: bundle(["sleep", "30"]).dir })
    const before = cgroupFile(c.pid!, "pids", "pids.max")
    await expect(c.update({ pids: { limit: -7 } })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.resources.pids.limit" })
    await expect(c.update({ cpu: { shares: 1 } })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.resources.cpu.shares" })
    expect(cgroupFile(c.pid!, "pids", "pids.max")).toBe(before)
    await c.destroy({ force: true })
    await expect(c.update({ pids: { limit: 5 } })).rejects.toMatchObject({ _tag: "InvalidTransition" })
  })
})
