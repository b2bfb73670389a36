/**
 * OOM notifications from a container's memory cgroup, as runc's NotifyOOM
 * (libcontainer/notify_linux.go, notify_v2_linux.go), without a thread or a poll:
 *
 * - cgroup v1: an eventfd registered for memory.oom_control by writing
 *   "<eventfd> <fd of memory.oom_control>" to cgroup.event_control; the kernel
 *   signals it once per OOM episode, and once more when the cgroup is removed
 *   (then cgroup.event_control is gone, and that signal is not an OOM). The
 *   eventfd is watched on the event loop by the addon.
 * - cgroup v2: the oom_kill counter of memory.events, watched with inotify
 *   (fs.watch: cgroupfs raises IN_MODIFY when a counter changes); what is
 *   reported is its growth since the watch began.
 *
 * `drain()` reads the source once more without waiting: the OOM killer counts
 * before its victim dies, so a caller that saw the init exit drains to report
 * the kill that caused it, whichever of the two events the loop delivered first.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { addon } from "../native/addon.ts"
import type { Watch } from "../native/addon-types.ts"
import type { CgroupPaths } from "./cgroups.ts"
import { CgroupError } from "./errors.ts"

/** A running OOM watch. */
export interface OomWatch {
  /** Which interface the kernel reports through. */
  readonly source: "memory.oom_control" | "memory.events"
  /** Reports (through the listener) kills counted but not yet reported; returns how many. */
  readonly drain: () => number
  /** Drains, then stops watching; idempotent. */
  readonly close: () => void
}

const exists = (f: string) => fs.existsSync(f)

/** The container's v1 memory cgroup with notifications, else its cgroup2 dir with memory.events. */
export function oomSource(paths: CgroupPaths): { readonly version: 1 | 2; readonly dir: string } | undefined {
  const dirs = Object.values(paths)
  const v1 = dirs.find((d) => exists(path.join(d, "memory.oom_control")) && exists(path.join(d, "cgroup.event_control")))
  if (v1) return { version: 1, dir: v1 }
  const v2 = dirs.find((d) => exists(path.join(d, "memory.events")))
  return v2 ? { version: 2, dir: v2 } : undefined
}

/** The oom_kill counter of a memory.events text (0 when absent). */
export function oomKills(memoryEvents: string): number {
  const m = /^oom_kill (\d+)$/m.exec(memoryEvents)
  return m ? Number(m[1]) : 0
}

const fail = (op: string, p: string) => (e: unknown) =>
  new CgroupError({ op, path: p, reason: (e as NodeJS.ErrnoException).code ?? String(e) })

/** v1: eventfd + cgroup.event_control. */
function watchV1(dir: string, onOom: (count: number) => void): OomWatch {
  const control = path.join(dir, "cgroup.event_control")
  const efd = addon.eventfd()
  let closed = false
  try {
    const cfd = fs.openSync(path.join(dir, "memory.oom_control"), "r")
    try {
      fs.writeFileSync(control, `${efd} ${cfd}`)
    } finally {
      // The kernel took its own references while registering: the file need not stay open.
      fs.closeSync(cfd)
    }
  } catch (e) {
    fs.closeSync(efd)
    throw e
  }
  // A signal while the cgroup is being removed is the kernel unregistering us, not an OOM.
  const report = (count: number) => {
    if (count > 0 && exists(control)) onOom(count)
    return count
  }
  const stop = () => {
    if (closed) return
    closed = true
    watch.close()
    fs.closeSync(efd)
  }
  // The callback only runs from the loop, after this assignment.
  const watch: Watch = addon.watchEventfd(efd, (error, count) => {
    if (error) stop()
    else report(count ?? 0)
  })
  const drain = () => (closed ? 0 : report(addon.readEventfd(efd)))
  return {
    source: "memory.oom_control",
    drain,
    close: () => {
      drain()
      stop()
    },
  }
}

/** v2: the oom_kill counter of memory.events, on inotify. */
function watchV2(dir: string, onOom: (count: number) => void): OomWatch {
  const file = path.join(dir, "memory.events")
  const read = () => {
    try {
      return oomKills(fs.readFileSync(file, "utf8"))
    } catch {
      return undefined // the cgroup is gone
    }
  }
  let seen = read() ?? 0
  let closed = false
  const drain = () => {
    const now = closed ? undefined : read()
    if (now === undefined || now <= seen) return 0
    const grown = now - seen
    seen = now
    onOom(grown)
    return grown
  }
  const watcher = fs.watch(file, { persistent: true }, () => void drain())
  // A removed cgroup makes the inotify watch fail: that is the end, not an error to raise.
  watcher.on("error", () => watcher.close())
  return {
    source: "memory.events",
    drain,
    close: () => {
      drain()
      closed = true
      watcher.close()
    },
  }
}

/**
 * Starts watching the container's cgroup for OOM kills; `onOom(count)` is called on the event loop
 * with the number of kills (v2) or OOM episodes (v1) since the last call.
 */
export const watchOom = (paths: CgroupPaths, onOom: (count: number) => void): Effect.Effect<OomWatch, CgroupError> =>
  Effect.suspend(() => {
    const src = oomSource(paths)
    if (!src)
      return Effect.fail(
        new CgroupError({ op: "watch OOM in", path: Object.values(paths)[0] ?? "/sys/fs/cgroup", reason: "no memory cgroup with memory.oom_control or memory.events" }),
      )
    return Effect.try({
      try: () => (src.version === 1 ? watchV1(src.dir, onOom) : watchV2(src.dir, onOom)),
      catch: fail("watch OOM in", src.dir),
    })
  })
