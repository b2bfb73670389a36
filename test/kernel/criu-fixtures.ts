/**
 * What the CRIU suites share: where CRIU is (and why they skip without it), the Criu service on
 * its live layer, and the busybox counter whose value a restore must carry on from.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { Criu, CriuLive } from "../../effects/criu.ts"
import { skipReason as kernelSkip, WORK, uniq } from "./harness.ts"

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
