/**
 * Removing a container's cgroup directories. rmdir on cgroupfs fails with EBUSY while a task is
 * still attached, and while the directory has child cgroups: a container with a writable cgroup
 * mount (or a tool on the host) may have made sub-cgroups inside its own. So, as runc's
 * RemovePath (libcontainer/cgroups/utils.go): try the directory, and if that fails remove its
 * sub-directories depth-first, then the directory again. A process SIGKILLed a moment ago leaves
 * its cgroup only once the kernel has finished tearing it down (exit_mm, exit_files … can take a
 * while under memory pressure), so EBUSY is retried, within a bound in time (runc retries for
 * ~2 s too), and then reported with the path that stayed and what still sits in it; ENOENT means
 * someone removed it already. The filesystem is a parameter so that the logic is tested against
 * a fake.
 */
import * as path from "node:path"
import { Duration, Effect } from "effect"
import { CgroupError } from "./errors.ts"

/** What removal needs of the filesystem. */
export interface RemoveFs {
  /** rmdir(2); throws an Error with `code` (EBUSY, ENOENT …). */
  readonly rmdir: (dir: string) => void
  /** Reads a file ("" when unreadable): the pids still in cgroup.procs, for the report. */
  readonly read: (file: string) => string
  /** The names of the sub-directories (child cgroups) of `dir`; [] when it is gone or unreadable. */
  readonly subdirs?: (dir: string) => readonly string[]
}

export interface RemoveOptions {
  /** How long EBUSY is retried, from the first attempt (default 2000 ms). */
  readonly timeoutMs?: number
  /** Between attempts (default 10 ms). */
  readonly delayMs?: number
}

const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e)

/** rmdir of `dir` after its sub-directories, deepest first; the first failure says where it stuck. */
function removeTree(fsx: RemoveFs, dir: string): { path: string; code: string } | undefined {
  try {
    fsx.rmdir(dir)
    return undefined
  } catch (e) {
    const code = codeOf(e)
    if (code === "ENOENT") return undefined
    // Children make cgroupfs say EBUSY (another filesystem, a test's tree, says ENOTEMPTY); anything else is the answer.
    if ((code !== "EBUSY" && code !== "ENOTEMPTY") || !fsx.subdirs) return { path: dir, code }
  }
  for (const name of fsx.subdirs(dir)) {
    const stuck = removeTree(fsx, path.join(dir, name))
    if (stuck) return stuck
  }
  try {
    fsx.rmdir(dir)
    return undefined
  } catch (e) {
    const code = codeOf(e)
    return code === "ENOENT" ? undefined : { path: dir, code }
  }
}

/**
 * Removes `dir` and every cgroup below it: done at once or after EBUSY cleared, nothing to do
 * when it is gone, else a CgroupError{op: "remove"} naming the directory that stayed — for EBUSY
 * after the bound, with the attempts, the time and the pids left in it.
 */
export const removeCgroupDir = (fsx: RemoveFs, dir: string, opts: RemoveOptions = {}): Effect.Effect<void, CgroupError> =>
  Effect.gen(function* () {
    const timeoutMs = opts.timeoutMs ?? 2000
    const delayMs = opts.delayMs ?? 10
    const started = Date.now()
    for (let attempts = 1; ; attempts++) {
      const stuck = removeTree(fsx, dir)
      if (!stuck) return
      if (stuck.code !== "EBUSY") return yield* new CgroupError({ op: "remove", path: stuck.path, reason: stuck.code })
      const elapsed = Date.now() - started
      if (elapsed >= timeoutMs) {
        const left = fsx
          .read(path.join(stuck.path, "cgroup.procs"))
          .split("\n")
          .filter((l) => l.trim() !== "")
        return yield* new CgroupError({
          op: "remove",
          path: stuck.path,
          reason: `EBUSY after ${attempts} attempts over ${elapsed} ms (bound ${timeoutMs} ms)${left.length > 0 ? `: pids ${left.join(",")} still in it` : " (no task left: a dying one is still attached)"}`,
        })
      }
      yield* Effect.sleep(Duration.millis(Math.min(delayMs, Math.max(1, timeoutMs - elapsed))))
    }
  })
