/**
 * What the CRIU suites share: where CRIU is (and why they skip without it), the Criu service on
 * its live layer, and the busybox counter whose value a restore must carry on from.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { expect } from "vitest"
import { Criu, CriuLive } from "../../effects/criu.ts"
import { restore, run } from "../../promise.ts"
import { pipes } from "./pipes.ts"
import { expectNoTrace, skipReason as kernelSkip, WORK, uniq } from "./harness.ts"

export const CRIU = "/usr/local/sbin/criu"
/** Why the CRIU tests would not run here (undefined: they run). */
export const criuSkip = kernelSkip ?? (fs.existsSync(CRIU) ? undefined : `CRIU tests need ${CRIU} (bash ../shared/deps/criu/install.sh)`)

export const withCriu = <A, E>(f: (c: Criu["Service"]) => Effect.Effect<A, E>) => Effect.runPromise(Effect.provide(Effect.flatMap(Criu, f), CriuLive))

/** A shell that writes an ever-growing count to /dev/shm/c every 0.1 s. */
export const COUNTER = ["sh", "-c", "i=0; while true; do echo $i > /dev/shm/c; i=$((i+1)); sleep 0.1; done"]
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The counter's value, read through the init's root; `echo > c` truncates before it writes, so an empty read is looked at again. */
export function counter(pid: number): number {
  for (let i = 0; ; i++) {
    const text = fs.readFileSync(`/proc/${pid}/root/dev/shm/c`, "utf8").trim()
    if (text !== "" || i === 50) return Number(text)
  }
}
/** A fresh images directory under the suite's work dir. */
export const images = () => path.join(WORK, uniq("images"))

/**
 * A bind moved to a new host directory across checkpoint/restore: the container of bundle `first`
 * counts into `src1/c` through its mounts; it is checkpointed, and restored from bundle `second`,
 * which binds `src2` there instead: the count goes on in `src2`. The file the dump may have caught
 * open is copied across first (CRIU reopens it and checks its size). `afterRestore` gets the count
 * at the checkpoint for a test's own checks; the restored container is then destroyed, leaving nothing.
 */
export async function restoreOntoNewSource(o: {
  readonly root: string
  readonly id: string
  readonly src1: string
  readonly src2: string
  readonly first: string
  readonly second: string
  readonly afterRestore?: (at: number) => void
}): Promise<void> {
  const io = await pipes()
  const c = await run({ root: o.root, id: o.id, bundle: o.first, stdio: io.stdio })
  await sleep(400)
  const imagePath = images()
  await c.checkpoint({ imagePath })
  await c.destroy()
  const at = Number(fs.readFileSync(path.join(o.src1, "c"), "utf8"))
  fs.copyFileSync(path.join(o.src1, "c"), path.join(o.src2, "c"))
  const r = await restore({ root: o.root, id: o.id, bundle: o.second, imagePath, stdio: io.stdio })
  await sleep(400)
  expect(Number(fs.readFileSync(path.join(o.src2, "c"), "utf8"))).toBeGreaterThan(at)
  o.afterRestore?.(at)
  await r.destroy({ force: true })
  expect(expectNoTrace(o.root, o.id)).toEqual([])
  io.close()
}
