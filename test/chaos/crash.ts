/**
 * Part 1, manager crash at every phase. A manager (the library in a child Node process, or the CLI)
 * is SIGKILLed at a named phase of create/start/exec/update/pause/resume/destroy (plus 0–15 ms of
 * jitter into it) or at a random moment; then a new manager (this process) runs recovery, gc(),
 * and the CLI's `delete -f` of the id. Counted: a leak (leaks.ts) after that, a phantom (a state
 * dir gc left that `delete -f` cannot remove, or one still "creating" after gc), a hang (a manager
 * or a recovery step that did not end in time), a crash (a manager that died on its own, not of our kill).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { gc } from "../../promise.ts"
import { bundleScript, chaosBundle, childEnv, cli, dropScope, figures, note, pick, REPO, scope, type Figures } from "./common.ts"
import { fdCount, settledLeaks } from "./leaks.ts"

/** The phases the child kills itself at: machine statuses, and the moment just after an operation. */
export const PHASES = [
  "creating",
  "create",
  "starting",
  "start",
  "exec",
  "exec-wait",
  "update",
  "pausing",
  "pause",
  "resuming",
  "resume",
  "destroying",
  "random",
] as const

const runChild = (script: string, args: object, killAfterMs: number | undefined, timeoutMs: number) =>
  new Promise<{ code: number | null; signal: string | null; out: string; hung: boolean }>((resolve) => {
    const child = spawn(process.execPath, [script, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "ignore"],
      cwd: REPO,
      env: childEnv(),
    })
    let out = ""
    let hung = false
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    const killer = killAfterMs !== undefined ? setTimeout(() => child.kill("SIGKILL"), killAfterMs) : undefined
    const timer = setTimeout(() => {
      hung = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      if (killer) clearTimeout(killer)
      setImmediate(() => child.stdout.destroy())
      resolve({ code, signal, out, hung })
    })
  })

/** The CLI steps of one lifecycle; one of them is killed at a random moment. */
const cliSteps = (root: string, id: string, bundleDir: string, resources: string): string[][] => [
  ["--root", root, "create", "--bundle", bundleDir, id],
  ["--root", root, "start", id],
  ["--root", root, "exec", id, "/bin/true"],
  ["--root", root, "update", "-r", resources, id],
  ["--root", root, "pause", id],
  ["--root", root, "resume", id],
  ["--root", root, "delete", "-f", id],
]

export interface CrashOptions {
  readonly budgetMs: number
  readonly maxRuns?: number
  /** "library", "cli" or both alternating. */
  readonly managers?: readonly ("library" | "cli")[]
  readonly log?: (line: string) => void
}

export async function crashPart(o: CrashOptions): Promise<Figures> {
  const f = figures("1 manager crash")
  const s = scope("crash")
  const script = await bundleScript("crash-child")
  const resources = path.join(s.dir, "resources.json")
  fs.writeFileSync(resources, JSON.stringify({ pids: { limit: 64 } }))
  // Warm the shared runtime first: its first use opens what it keeps (not a leak per run).
  await gc({ root: s.root, graceMs: 0 })
  const fdBase = fdCount()
  const end = Date.now() + o.budgetMs
  const managers = o.managers ?? ["library", "cli"]
  const byPhase = new Map<string, number>()
  let n = 0
  while (Date.now() < end && (o.maxRuns === undefined || n < o.maxRuns)) {
    const id = s.id(n)
    const manager = managers[n % managers.length]!
    const bundleDir = chaosBundle(s, id, ["/bin/sleep", "1000"])
    let phase: string
    if (manager === "library") {
      // Every phase in turn, then random ones: a short run still visits each.
      phase = n / managers.length < PHASES.length ? PHASES[Math.floor(n / managers.length)]! : pick(PHASES)
      const killAfter = phase === "random" ? Math.floor(Math.random() * 900) : undefined
      const r = await runChild(script, { root: s.root, id, bundle: bundleDir, killAt: phase, jitterMs: Math.floor(Math.random() * 16) }, killAfter, 30_000)
      if (r.hung) {
        f.hangs++
        note(f, `library manager hung (phase ${phase}, ${id})`)
      } else if (r.signal !== "SIGKILL" && !r.out.includes("completed")) {
        f.crashes++
        note(f, `library manager ended ${r.code ?? r.signal} without our kill (phase ${phase}, ${id}): ${r.out.trim()}`)
      }
    } else {
      const steps = cliSteps(s.root, id, bundleDir, resources)
      const k = Math.floor(Math.random() * steps.length)
      phase = `cli ${steps[k]![2]}`
      for (let i = 0; i <= k; i++) {
        const r = await cli(steps[i]!, { timeoutMs: 30_000, ...(i === k ? { killAfterMs: Math.floor(Math.random() * 200) } : {}) })
        if (r.hung) {
          f.hangs++
          note(f, `cli ${steps[i]![2]} hung (${id})`)
        }
        if (i < k && r.status !== 0) note(f, `cli ${steps[i]![2]} failed before the kill (${id}): ${r.err.trim().slice(0, 200)}`)
      }
    }
    byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1)
    f.runs++
    n++
    // Recovery: a new manager's gc, then delete -f of the id (what an orchestrator would do).
    const report = await gc({ root: s.root, graceMs: 0, cgroupParent: s.cgroupParent })
    for (const x of report.failed) note(f, `gc could not reap ${x.id}: ${x.reason}`)
    for (const left of fs.readdirSync(s.root)) {
      const state = path.join(s.root, left, "state.json")
      if (!fs.existsSync(state) || (JSON.parse(fs.readFileSync(state, "utf8")) as { status: string }).status === "creating") {
        f.leaks++
        note(f, `phantom after gc: ${left} (phase ${phase})`)
      }
    }
    const del = await cli(["--root", s.root, "delete", "-f", id], { timeoutMs: 30_000 })
    if (del.hung) f.hangs++
    if (del.status !== 0) note(f, `delete -f ${id} after ${phase}: ${del.status} ${del.err.trim().slice(0, 200)}`)
    // The init is reparented away from a killed manager: it may take a moment to be gone.
    const found = await settledLeaks({ tag: s.tag, roots: [s.root], dirs: [s.root, bundleDir], fdBaseline: fdBase })
    if (found.length > 0) {
      f.leaks++
      note(f, `after ${phase} (${id}): ${found.slice(0, 3).join("; ")}`)
      o.log?.(`LEAK after ${phase} (${id}): ${found.join("; ")}`)
    }
    fs.rmSync(bundleDir, { recursive: true, force: true })
  }
  f.notes.unshift(`phases: ${[...byPhase].map(([p, c]) => `${p}×${c}`).join(", ")}`)
  dropScope(s)
  return f
}
