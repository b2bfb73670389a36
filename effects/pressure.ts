/**
 * Memory-pressure notifications from a container's memory cgroup: libcontainer's
 * NotifyMemoryPressure (notify_linux.go), on the event loop, no thread and no poll.
 *
 * - cgroup v1: vmpressure. An eventfd registered by writing "<eventfd> <fd of
 *   memory.pressure_level> <level>" to cgroup.event_control; the kernel signals it when reclaim in
 *   the cgroup (or below it) reaches the level: "low" (reclaim is happening), "medium" (reclaim is
 *   working hard: swapping, evicting caches in use), "critical" (about to OOM). As with the OOM
 *   watch, a signal while the cgroup is being removed is the kernel unregistering us.
 * - cgroup v2: PSI. memory.pressure opened read-write with a trigger "some|full STALL WINDOW"
 *   (µs) written to it; the kernel raises POLLPRI when the tasks stall on memory for STALL within
 *   WINDOW, and POLLERR|POLLPRI on every poll once the cgroup is gone (told apart by the file's absence). The levels map onto triggers as Android's lmkd
 *   maps them (the only established mapping of vmpressure levels onto PSI: some 70 ms/1 s,
 *   some 100 ms/1 s, full 70 ms/1 s), over 2 s windows: low = some 140 ms/2 s, medium = some
 *   200 ms/2 s, critical = full 140 ms/2 s. 2 s is the one window the kernel takes from an opener
 *   without CAP_SYS_RESOURCE (rootless; this development sandbox drops it too: 1 s is EINVAL
 *   there). PSI limits a trigger's rate to one event per window.
 *
 * One watch per level; `onEvent(count)` gets the number of signals since the last call (v1's
 * eventfd counts them; v2 reports 1 per POLLPRI).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Queue, Stream } from "effect"
import { addon } from "../native/addon.ts"
import type { Watch } from "../native/addon-types.ts"
import { Cgroups, type CgroupPaths } from "./cgroups.ts"
import { CgroupError } from "./errors.ts"

export const PRESSURE_LEVELS = ["low", "medium", "critical"] as const
export type PressureLevel = (typeof PRESSURE_LEVELS)[number]

/** The PSI trigger for a level (see above). */
export const psiTrigger = (level: PressureLevel): string =>
  level === "low" ? "some 140000 2000000" : level === "medium" ? "some 200000 2000000" : "full 140000 2000000"

/** A running pressure watch. */
export interface PressureWatch {
  readonly source: "memory.pressure_level" | "memory.pressure"
  /** Stops watching; idempotent. */
  readonly close: () => void
}

/** The watched file of a cgroup directory: v1's memory.pressure_level (with cgroup.event_control), else v2's memory.pressure. */
export function pressureSource(dirs: readonly string[]): { readonly version: 1 | 2; readonly dir: string } | undefined {
  const v1 = dirs.find((d) => fs.existsSync(path.join(d, "memory.pressure_level")) && fs.existsSync(path.join(d, "cgroup.event_control")))
  if (v1) return { version: 1, dir: v1 }
  const v2 = dirs.find((d) => fs.existsSync(path.join(d, "memory.pressure")))
  return v2 ? { version: 2, dir: v2 } : undefined
}

/** v1: eventfd + cgroup.event_control with memory.pressure_level. Throws the errno of what failed. */
export function watchPressureV1(dir: string, level: PressureLevel, onEvent: (count: number) => void, onEnd: () => void): PressureWatch {
  const control = path.join(dir, "cgroup.event_control")
  const efd = addon.eventfd()
  let closed = false
  try {
    const lfd = fs.openSync(path.join(dir, "memory.pressure_level"), "r")
    try {
      fs.writeFileSync(control, `${efd} ${lfd} ${level}`)
    } finally {
      fs.closeSync(lfd) // the kernel holds its own reference once registered
    }
  } catch (e) {
    fs.closeSync(efd)
    throw e
  }
  const stop = () => {
    if (closed) return
    closed = true
    watch.close()
    fs.closeSync(efd)
    onEnd()
  }
  const watch: Watch = addon.watchEventfd(efd, (error, count) => {
    if (error || !fs.existsSync(control)) stop()
    else if ((count ?? 0) > 0) onEvent(count ?? 0)
  })
  return { source: "memory.pressure_level", close: stop }
}

/** v2: a PSI trigger on memory.pressure. Throws the errno of what failed (EINVAL: PSI not enabled, or a bad trigger). */
export function watchPressureV2(dir: string, level: PressureLevel, onEvent: (count: number) => void, onEnd: () => void): PressureWatch {
  const fd = fs.openSync(path.join(dir, "memory.pressure"), "r+")
  let closed = false
  let watch: Watch | undefined
  const stop = () => {
    if (closed) return
    closed = true
    watch?.close()
    fs.closeSync(fd)
    onEnd()
  }
  try {
    // One write() of the whole trigger, as the kernel parses it (with its NUL).
    fs.writeSync(fd, `${psiTrigger(level)}\0`)
    // When the cgroup goes, the kernel destroys the trigger and kernfs answers every poll with
    // POLLERR|POLLPRI, which libuv reports as priority data, level-triggered: a "pressure event" on
    // every loop turn. The file is gone then: that is the end, not an event.
    const file = path.join(dir, "memory.pressure")
    watch = addon.watchPriority(fd, (error) => (error || !fs.existsSync(file) ? stop() : onEvent(1)))
  } catch (e) {
    fs.closeSync(fd)
    throw e
  }
  return { source: "memory.pressure", close: stop }
}

/**
 * Starts a pressure watch on the container's memory cgroup (the live layers' memoryPressure):
 * `onEvent(count)` on the event loop, `onEnd()` once when the watch ends (closed, or the cgroup gone).
 */
export const watchMemoryPressure = (
  paths: CgroupPaths,
  level: PressureLevel,
  onEvent: (count: number) => void,
  onEnd: () => void,
): Effect.Effect<PressureWatch, CgroupError> =>
  Effect.suspend(() => {
    const src = pressureSource(Object.values(paths))
    if (!src)
      return Effect.fail(
        new CgroupError({ op: "watch memory pressure in", path: Object.values(paths)[0] ?? "/sys/fs/cgroup", reason: "no memory cgroup with memory.pressure_level or memory.pressure" }),
      )
    return Effect.try({
      try: () => (src.version === 1 ? watchPressureV1 : watchPressureV2)(src.dir, level, onEvent, onEnd),
      catch: (e) =>
        new CgroupError({
          op: `watch ${level} memory pressure in`,
          path: src.dir,
          reason: (e as NodeJS.ErrnoException).code === "EINVAL" && src.version === 2 ? "EINVAL: the kernel refused the PSI trigger (psi=0, or PSI triggers not supported)" : ((e as NodeJS.ErrnoException).code ?? String(e)),
        }),
    })
  })

/**
 * The pressure events of `level` as a Stream (one element, the level, per event): through the
 * Cgroups service's memoryPressure, so that the model can drive it. It ends when the cgroup goes;
 * interrupting it closes the watch.
 */
export const memoryPressureStream = (paths: CgroupPaths, level: PressureLevel): Stream.Stream<PressureLevel, CgroupError, Cgroups> =>
  Stream.callback<PressureLevel, CgroupError, Cgroups>((queue) =>
    Effect.gen(function* () {
      const cgroups = yield* Cgroups
      if (!cgroups.memoryPressure)
        return yield* new CgroupError({ op: "watch memory pressure in", path: Object.values(paths)[0] ?? "", reason: "this Cgroups layer has no memory-pressure notifications" })
      const watch = cgroups.memoryPressure
      yield* Effect.acquireRelease(
        watch(
          paths,
          level,
          (count) => {
            for (let i = 0; i < count; i++) Queue.offerUnsafe(queue, level)
          },
          () => void Queue.endUnsafe(queue),
        ),
        (w) => Effect.sync(() => w.close()),
      )
    }),
  )
