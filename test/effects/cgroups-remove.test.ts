/**
 * Removing a cgroup directory against a fake filesystem: EBUSY from a task still dying is retried
 * until it clears, within a bound in time; past the bound the failure is a CgroupError naming the
 * directory that stayed, the attempts and the pids left; child cgroups go first, deepest first
 * (runc's RemovePath); ENOENT is success; other errors are not retried.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { removeCgroupDir, type RemoveFs } from "../../effects/cgroups-remove.ts"

const errno = (code: string) => Object.assign(new Error(code), { code })

/** A directory that stays busy for `busyFor` rmdir calls, then goes (or fails with `then`). */
function fakeFs(busyFor: number, then?: string, procs = "") {
  const calls: string[] = []
  const fsx: RemoveFs = {
    rmdir: (dir) => {
      calls.push(dir)
      if (calls.length <= busyFor) throw errno("EBUSY")
      if (then) throw errno(then)
    },
    read: () => procs,
  }
  return { fsx, calls }
}

/** A tree of directories (path → children); rmdir of one with children is EBUSY, as on cgroupfs. */
function treeFs(dirs: string[], stuck: (dir: string) => boolean = () => false) {
  const live = new Set(dirs)
  const removed: string[] = []
  const kids = (d: string) => [...live].filter((x) => x.startsWith(`${d}/`) && !x.slice(d.length + 1).includes("/")).map((x) => x.slice(d.length + 1))
  const fsx: RemoveFs = {
    rmdir: (d) => {
      if (!live.has(d)) throw errno("ENOENT")
      if (kids(d).length > 0 || stuck(d)) throw errno("EBUSY")
      live.delete(d)
      removed.push(d)
    },
    read: (f) => (stuck(f.replace(/\/cgroup\.procs$/, "")) ? "77\n" : ""),
    subdirs: kids,
  }
  return { fsx, removed, live }
}

const run = (fsx: RemoveFs, timeoutMs: number) => Effect.runPromise(Effect.result(removeCgroupDir(fsx, "/cg/x", { timeoutMs, delayMs: 1 })))

describe("removing a cgroup directory", () => {
  it("retries EBUSY until the dying task is gone", async () => {
    const { fsx, calls } = fakeFs(3)
    expect((await run(fsx, 1000))._tag).toBe("Success")
    expect(calls).toHaveLength(4)
  })

  it("gives up after the time bound with a CgroupError naming the path, the attempts and what is left", async () => {
    const { fsx, calls } = fakeFs(1_000_000, undefined, "4242\n")
    const t0 = Date.now()
    const r = await run(fsx, 50)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(calls.length).toBeGreaterThan(1)
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") {
      expect(r.failure).toMatchObject({ _tag: "CgroupError", op: "remove", path: "/cg/x" })
      expect(r.failure.reason).toMatch(new RegExp(`^EBUSY after ${calls.length} attempts over \\d+ ms \\(bound 50 ms\\): pids 4242 still in it$`))
    }
  })

  it("says when no task is left but the cgroup is still busy", async () => {
    const r = await run(fakeFs(1_000_000).fsx, 5)
    if (r._tag === "Failure") expect(r.failure.reason).toMatch(/no task left/)
    expect(r._tag).toBe("Failure")
  })

  it("takes a directory already gone as removed, even after EBUSY", async () => {
    const { fsx, calls } = fakeFs(2, "ENOENT")
    expect((await run(fsx, 1000))._tag).toBe("Success")
    expect(calls).toHaveLength(3)
  })

  it("does not retry other errors", async () => {
    const { fsx, calls } = fakeFs(0, "EACCES")
    const r = await run(fsx, 1000)
    expect(calls).toHaveLength(1)
    if (r._tag === "Failure") expect(r.failure).toMatchObject({ _tag: "CgroupError", reason: "EACCES" })
    expect(r._tag).toBe("Failure")
  })

  it("removes child cgroups first, deepest first (runc's RemovePath)", async () => {
    const { fsx, removed, live } = treeFs(["/cg/x", "/cg/x/a", "/cg/x/a/b", "/cg/x/c"])
    expect((await run(fsx, 1000))._tag).toBe("Success")
    expect(live.size).toBe(0)
    expect(removed.indexOf("/cg/x/a/b")).toBeLessThan(removed.indexOf("/cg/x/a"))
    expect(removed.at(-1)).toBe("/cg/x")
  })

  it("names the child cgroup that stays busy", async () => {
    const { fsx, live } = treeFs(["/cg/x", "/cg/x/a", "/cg/x/a/b"], (d) => d === "/cg/x/a/b")
    const r = await run(fsx, 20)
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") expect(r.failure).toMatchObject({ _tag: "CgroupError", op: "remove", path: "/cg/x/a/b", reason: expect.stringMatching(/^EBUSY .*pids 77 still in it$/) })
    expect(live.has("/cg/x")).toBe(true)
  })
})
