/**
 * The lifecycle property of lifecycle-property.test.ts, run as an unprivileged user (that test starts
 * this file under runuser): the same random sequences over the machine, without pause/resume (a
 * rootless manager on cgroup v1 has no freezer cgroup, as runc's) and with reality read from /proc:
 * the init's state, its host uid (the user's: nothing setuid), and no state dir or process left.
 * Usage: tsx lifecycle-rootless-harness.ts ROOT BUNDLES_JSON RUNS SEED. Exit 0, or 1 with the
 * counterexample on stderr.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ManagedRuntime } from "effect"
import fc from "fast-check"
import { LiveLayer } from "../../live.ts"
import { lifecycleCommands, runLifecycle, type SourceKind, type World } from "../../testing/lifecycle.ts"

const [root, bundlesJson, runs, seed] = process.argv.slice(2)
const bundles = JSON.parse(bundlesJson!) as Record<SourceKind, string>
const uid = process.geteuid!()
let n = 0
const uniq = (p: string) => `${p}-${process.pid}-${n++}`

function procStatus(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/status`, "utf8")
  } catch {
    return undefined
  }
}
const stateOf = (status: string | undefined) => (status ? /^State:\s+(\S)/m.exec(status)?.[1] : undefined)

const rt = ManagedRuntime.make(LiveLayer)
try {
  await fc.assert(
    fc.asyncProperty(fc.commands(lifecycleCommands(2, { freeze: false }), { maxCommands: 8 }), async (cmds) => {
      const ids = [uniq("p"), uniq("q")]
      const world: World = {
        rt,
        root: root!,
        ids,
        handles: new Map(),
        source: (kind) => ({ bundle: bundles[kind] }),
        settleMs: 50,
        waitMs: 5000,
        reality: async (c, expected) => {
          const pid = c.pid
          if (pid === undefined) return expected === "stopped" ? [] : [`no init pid while ${expected}`]
          const status = procStatus(pid)
          const st = stateOf(status)
          if (expected === "stopped") return st === undefined || st === "Z" ? [] : [`init ${pid} still ${st}`]
          if (expected === "exiting") return []
          if (st === undefined || st === "Z") return [`init ${pid} gone (${st})`]
          return new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, "m").test(status!) ? [] : [`init ${pid} has host uids other than ${uid}`]
        },
        traces: async (id) => (fs.existsSync(path.join(root!, id)) ? [`state dir of ${id}`] : []),
      }
      await runLifecycle(world, cmds)
    }),
    { numRuns: Number(runs), seed: Number(seed), endOnFailure: true },
  )
  process.stdout.write("ok\n")
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`)
  process.exitCode = 1
} finally {
  await rt.dispose()
}
process.exit(process.exitCode ?? 0)
