/**
 * Part 3, fd hygiene. Lifecycles of three kinds (run + exec, a terminal init whose master we
 * keep and close, an exec with a preserved fd) in this process: over all of them the manager's fd
 * count changes by 0; and while each lives, the container's init and exec'd process hold only
 * stdio and the preserved fds (read from /proc/PID/fd: 0, 1, 2 and 3 when one was preserved).
 */
import * as fs from "node:fs"
import { load, run } from "../../promise.ts"
import { chaosBundle, dropScope, figures, note, scope, type Figures } from "./common.ts"
import { fdCount, leaks } from "./leaks.ts"

const fdsOf = (pid: number): number[] => fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b)
const only = (got: number[], allowed: number[]) => got.every((fd) => allowed.includes(fd))

export async function fdsPart(o: { budgetMs: number }): Promise<Figures> {
  const f = figures("3 fd hygiene")
  const s = scope("fds")
  const devNull = fs.openSync("/dev/null", "r+")
  const stdio = [devNull, devNull, devNull] as const
  const extra = fs.openSync("/dev/null", "r")
  const kinds = ["exec", "terminal", "preserve"] as const
  // One lifecycle of each first: the shared runtime, the addon and the helper open what they keep once.
  const lifecycle = async (n: number): Promise<void> => {
    const kind = kinds[n % kinds.length]!
    const id = s.id(n)
    const bundleDir = chaosBundle(s, id, ["/bin/sleep", "1000"], (spec) => (kind === "terminal" ? { ...spec, process: { ...spec.process!, terminal: true } } : spec))
    try {
      const c = await run({ root: s.root, id, bundle: bundleDir, stdio, ...(kind === "preserve" ? { preserveFds: [extra] } : {}) })
      const allowed = kind === "preserve" ? [0, 1, 2, 3] : [0, 1, 2]
      if (c.pid !== undefined && !only(fdsOf(c.pid), allowed)) {
        f.escapes++
        note(f, `${kind}: the init holds fds ${fdsOf(c.pid).join(",")}`)
      }
      const p = await c.exec({
        process: { args: ["/bin/sleep", "1000"], cwd: "/", user: { uid: 0, gid: 0 }, ...(kind === "terminal" ? { terminal: true } : {}) },
        stdio,
        ...(kind === "preserve" ? { preserveFds: [extra] } : {}),
      })
      if (!only(fdsOf(p.pid), allowed)) {
        f.escapes++
        note(f, `${kind}: the exec'd process holds fds ${fdsOf(p.pid).join(",")}`)
      }
      if (p.console !== undefined) fs.closeSync(p.console)
      const master = c.console()
      if (master !== undefined) fs.closeSync(master)
      await p.signal(9)
      await p.wait()
      await c.destroy({ force: true })
      f.runs++
    } catch (e) {
      f.crashes++
      note(f, `${kind}: ${(e as { _tag?: string })._tag ?? ""} ${String((e as Error).message ?? e).slice(0, 200)}`)
      // What the failed lifecycle left is destroyed here; the leak check below still counts it if that fails.
      await load({ root: s.root, id })
        .then((c) => c.destroy({ force: true }))
        .catch(() => undefined)
    } finally {
      fs.rmSync(bundleDir, { recursive: true, force: true })
    }
  }
  for (let n = 0; n < kinds.length; n++) await lifecycle(n)
  const base = fdCount()
  const end = Date.now() + o.budgetMs
  for (let n = kinds.length; Date.now() < end; n++) await lifecycle(n)
  const after = fdCount()
  f.notes.push(`manager fds ${base} → ${after} over ${f.runs - kinds.length} lifecycles`)
  if (after !== base) {
    f.leaks++
    note(f, `manager fd count changed by ${after - base}: ${fs.readdirSync("/proc/self/fd").map((fd) => { try { return `${fd}→${fs.readlinkSync(`/proc/self/fd/${fd}`)}` } catch { return fd } }).slice(-8).join(" ")}`)
  }
  fs.closeSync(devNull)
  fs.closeSync(extra)
  const found = leaks({ tag: s.tag, roots: [s.root], dirs: [s.root] })
  if (found.length) {
    f.leaks++
    note(f, found.slice(0, 3).join("; "))
  }
  dropScope(s)
  return f
}
