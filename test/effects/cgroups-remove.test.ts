/**
 * Removing a cgroup directory against a fake filesystem: EBUSY from a task still dying is retried
 * until it clears, within a bound; past the bound the failure is a CgroupError naming the attempts
 * and the pids left; ENOENT is success; other errors are not retried.
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

const run = (fsx: RemoveFs, retries: number) => Effect.runPromise(Effect.result(removeCgroupDir(fsx, "/cg/x", { retries, delayMs: 1 })))

describe("removing a cgroup directory", () => {
  it("retries EBUSY until the dying task is gone", async () => {
    const { fsx, calls } = fakeFs(3)
    expect((await run(fsx, 5))._tag).toBe("Success")
    expect(calls).toHaveLength(4)
  })

  it("gives up after the bound with a CgroupError naming the attempts and what is left", async () => {
    const { fsx, calls } = fakeFs(1000, undefined, "4242\n")
    const r = await run(fsx, 4)
    expect(calls).toHaveLength(5)
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure")
      expect(r.failure).toMatchObject({ _tag: "CgroupError", op: "remove", path: "/cg/x", reason: "EBUSY after 5 attempts over 4 ms: pids 4242 still in it" })
  })

  it("says when no task is left but the cgroup is still busy", async () => {
    const r = await run(fakeFs(1000).fsx, 2)
    if (r._tag === "Failure") expect(r.failure.reason).toMatch(/no task left/)
    expect(r._tag).toBe("Failure")
  })

  it("takes a directory already gone as removed, even after EBUSY", async () => {
    const { fsx, calls } = fakeFs(2, "ENOENT")
    expect((await run(fsx, 5))._tag).toBe("Success")
    expect(calls).toHaveLength(3)
  })

  it("does not retry other errors", async () => {
    const { fsx, calls } = fakeFs(0, "EACCES")
    const r = await run(fsx, 5)
    expect(calls).toHaveLength(1)
    if (r._tag === "Failure") expect(r.failure).toMatchObject({ _tag: "CgroupError", reason: "EACCES" })
    expect(r._tag).toBe("Failure")
  })
})
