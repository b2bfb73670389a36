/**
 * Removing a container's cgroup directories. rmdir on cgroupfs fails with EBUSY while a task is
 * still attached: a process SIGKILLed a moment ago leaves its cgroup only once the kernel has
 * finished tearing it down (exit_mm, exit_files … can take a while under memory pressure or with
 * a large address space). So EBUSY is retried, a bounded number of times (runc's rmdir retries
 * for ~2 s too, libcontainer/cgroups/utils.go RemovePath), and then reported with what still sits
 * in the cgroup; ENOENT means someone removed it already. The filesystem is a parameter so that
 * the retry logic is tested against a fake.
 */
import * as path from "node:path"
import { Duration, Effect, Schedule } from "effect"
import { CgroupError } from "./errors.ts"

/** What removal needs of the filesystem. */
export interface RemoveFs {
  /** rmdir(2); throws an Error with `code` (EBUSY, ENOENT …). */
  readonly rmdir: (dir: string) => void
  /** Reads a file ("" when unreadable): the pids still in cgroup.procs, for the report. */
  readonly read: (file: string) => string
}

export interface RemoveOptions {
  /** Retries after the first EBUSY (default 100). */
  readonly retries?: number
  /** Between attempts (default 10 ms): the whole bound is retries × delayMs. */
  readonly delayMs?: number
}

const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e)

/**
 * Removes `dir`: done at once or after EBUSY cleared, nothing to do when it is gone, else a
 * CgroupError{op: "remove"} — for EBUSY after the bound, naming the attempts and the pids left.
 */
export const removeCgroupDir = (fsx: RemoveFs, dir: string, opts: RemoveOptions = {}): Effect.Effect<void, CgroupError> => {
  const retries = opts.retries ?? 100
  const delayMs = opts.delayMs ?? 10
  let attempts = 0
  const once = Effect.try({
    try: () => {
      attempts++
      fsx.rmdir(dir)
    },
    catch: codeOf,
  })
  return once.pipe(
    Effect.catchIf((code) => code === "ENOENT", () => Effect.void),
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(delayMs)), times: retries, while: (code) => code === "EBUSY" }),
    Effect.mapError((code) => {
      if (code !== "EBUSY") return new CgroupError({ op: "remove", path: dir, reason: code })
      const left = fsx
        .read(path.join(dir, "cgroup.procs"))
        .split("\n")
        .filter((l) => l.trim() !== "")
      return new CgroupError({
        op: "remove",
        path: dir,
        reason: `EBUSY after ${attempts} attempts over ${retries * delayMs} ms${left.length > 0 ? `: pids ${left.join(",")} still in it` : " (no task left: a dying one is still attached)"}`,
      })
    }),
  )
}
