/**
 * The CLI commands one by one (what podman and containerd call per operation), xcontainer side by
 * side with runc and crun in the same run: each command's whole-process wall time, paired per
 * iteration (the runtimes alternate, order rotated), against bare `node -e 0` (without
 * NODE_EXTRA_CA_CERTS, which users do not have) and against runc.
 *
 * runc and xcontainer run directly; Debian's crun refuses hybrid cgroups, so it runs through the
 * unshare wrapper of ANCHORS.md, whose own cost is measured in the same loop and shown beside it.
 * A command that needs a container in some state gets it untimed first (a fresh created one for
 * start and delete; a long-lived created or running one for state, list, kill, pause, resume, exec).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

export interface CmdRuntime {
  readonly name: string
  /** argv for `RT --root R ARGS…`. */
  readonly argv: (args: readonly string[]) => string[]
}

export interface CmdRow {
  readonly command: string
  /** runtime name → times (ms) of the successful runs. */
  readonly times: Record<string, number[]>
  readonly fails: Record<string, number>
  /** xcontainer's time over a `node -e 0` run right before it, per iteration (paired: drift cancels). */
  readonly pairedNode: number[]
}

export interface CmdResult {
  readonly rows: CmdRow[]
  readonly node: number[]
  readonly wrapper: number[]
  /** Peak RSS (KiB) medians: node -e 0, xcontainer state, xcontainer run. */
  readonly rss: Record<string, number | undefined>
}

const NO_CA = (() => {
  const { NODE_EXTRA_CA_CERTS: _ca, ...env } = process.env
  return env
})()

const now = () => Number(process.hrtime.bigint()) / 1e6

/** ms from spawn to exit, or undefined when it failed. stdio is /dev/null: a detached container keeps no pipe of ours. */
function timed(argv: readonly string[], env: NodeJS.ProcessEnv = NO_CA): number | undefined {
  const t0 = now()
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", env, timeout: 30_000 })
  const t = now() - t0
  return r.status === 0 ? t : undefined
}

const quiet = (argv: readonly string[]) => void spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", env: NO_CA, timeout: 30_000 })

interface CmdSpec {
  readonly name: string
  /** The long-lived container it works on, if any. */
  readonly on?: "created" | "running"
  /** A fresh created container, made untimed before and removed after. */
  readonly fresh?: boolean
  readonly args: (id: string) => string[]
  readonly before?: (id: string) => string[]
  readonly after?: (id: string) => string[]
}

export function benchCommands(o: {
  readonly runtimes: readonly CmdRuntime[]
  /** argv prefix of the crun wrapper, timed alone with `true`. */
  readonly wrapper: readonly string[]
  readonly sleepBundle: string
  readonly trueBundle: string
  readonly n: number
  readonly tmp: string
  readonly note: (s: string) => void
}): CmdResult {
  const specs: CmdSpec[] = [
    { name: "state", on: "created", args: (id) => ["state", id] },
    { name: "list", on: "created", args: () => ["list"] },
    { name: "kill", on: "running", args: (id) => ["kill", id, "CONT"] },
    { name: "pause", on: "running", args: (id) => ["pause", id], after: (id) => ["resume", id] },
    { name: "resume", on: "running", before: (id) => ["pause", id], args: (id) => ["resume", id] },
    { name: "start", fresh: true, args: (id) => ["start", id], after: (id) => ["delete", "-f", id] },
    { name: "delete", fresh: true, args: (id) => ["delete", id], after: (id) => ["delete", "-f", id] },
    { name: "create", args: (id) => ["create", "-b", o.sleepBundle, id], after: (id) => ["delete", "-f", id] },
    { name: "run", args: (id) => ["run", "-b", o.trueBundle, id], after: (id) => ["delete", "-f", id] },
    { name: "exec", on: "running", args: (id) => ["exec", id, "/bin/true"] },
  ]
  const rows: CmdRow[] = specs.map((s) => ({ command: s.name, times: Object.fromEntries(o.runtimes.map((r) => [r.name, []])), fails: Object.fromEntries(o.runtimes.map((r) => [r.name, 0])), pairedNode: [] as number[] }))
  const node: number[] = []
  const wrapper: number[] = []
  const long = (rt: CmdRuntime, state: "created" | "running") => `${rt.name.slice(0, 2)}-long-${state}`
  for (const rt of o.runtimes) {
    quiet(rt.argv(["create", "-b", o.sleepBundle, long(rt, "created")]))
    quiet(rt.argv(["run", "-d", "-b", o.sleepBundle, long(rt, "running")]))
  }
  let seq = 0
  try {
    for (let i = 0; i < o.n; i++) {
      const t = timed([process.execPath, "-e", "0"])
      if (t !== undefined) node.push(t)
      const w = timed([...o.wrapper, "true"])
      if (w !== undefined) wrapper.push(w)
      specs.forEach((s, k) => {
        for (let j = 0; j < o.runtimes.length; j++) {
          const rt = o.runtimes[(i + j) % o.runtimes.length]!
          const id = s.on ? long(rt, s.on) : `${rt.name.slice(0, 2)}-c${process.pid}-${seq++}`
          if (s.fresh) quiet(rt.argv(["create", "-b", o.sleepBundle, id]))
          if (s.before) quiet(rt.argv(s.before(id)))
          const base = rt.name === "xcontainer" ? timed([process.execPath, "-e", "0"]) : undefined
          const ms = timed(rt.argv(s.args(id)))
          if (base !== undefined && ms !== undefined) rows[k]!.pairedNode.push(ms / base)
          if (s.after) quiet(rt.argv(s.after(id)))
          if (ms === undefined) rows[k]!.fails[rt.name]!++
          else rows[k]!.times[rt.name]!.push(ms)
        }
      })
      if ((i + 1) % 5 === 0) o.note(`commands: ${i + 1}/${o.n} iterations`)
    }
  } finally {
    for (const rt of o.runtimes) for (const st of ["created", "running"] as const) quiet(rt.argv(["delete", "-f", long(rt, st)]))
  }
  // Peak RSS by the kernel's accounting, a few runs each.
  const rss: Record<string, number | undefined> = {}
  const time = "/usr/bin/time"
  const xc = o.runtimes.find((r) => r.name === "xcontainer")
  if (fs.existsSync(time) && xc) {
    const out = path.join(o.tmp, "rss.out")
    const peak = (argv: readonly string[]) => {
      const xs: number[] = []
      for (let i = 0; i < 5; i++) {
        const r = spawnSync(time, ["-f", "%M", "-o", out, ...argv], { stdio: "ignore", env: NO_CA })
        const v = Number(fs.readFileSync(out, "utf8").trim().split("\n").pop())
        if (r.status === 0 && Number.isFinite(v)) xs.push(v)
      }
      return xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined
    }
    rss["node -e 0"] = peak([process.execPath, "-e", "0"])
    const id = `xc-rss-${process.pid}`
    quiet(xc.argv(["create", "-b", o.sleepBundle, id]))
    rss["xcontainer state"] = peak(xc.argv(["state", id]))
    rss["xcontainer kill"] = peak(xc.argv(["kill", id, "CONT"]))
    quiet(xc.argv(["delete", "-f", id]))
    rss["xcontainer run"] = peak(xc.argv(["run", "-b", o.trueBundle, `${id}-run`]))
    quiet(xc.argv(["delete", "-f", `${id}-run`]))
  }
  return { rows, node, wrapper, rss }
}
