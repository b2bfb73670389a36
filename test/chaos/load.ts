/**
 * Part 6, load: `containers` containers alive at once (200 in the soak), then `execs` concurrent
 * execs (50) spread over them, each exiting with its own status; then every container destroyed.
 * Counted: a crash (an EMFILE, or any failure to create, exec or destroy), a lost exit status (an
 * exec whose wait did not return the code it exited with), a hang, and the leak check at the end.
 */
import * as fs from "node:fs"
import { run, type ContainerHandle } from "../../promise.ts"
import { chaosBundle, dropScope, figures, note, scope, type Figures } from "./common.ts"
import { fdCount, leaks } from "./leaks.ts"

const within = <A>(p: Promise<A>, ms: number): Promise<A | "hung"> => Promise.race([p, new Promise<"hung">((r) => setTimeout(() => r("hung"), ms).unref())])

export async function loadPart(o: { containers: number; execs: number; budgetMs: number }): Promise<Figures> {
  const f = figures("6 load")
  const s = scope("load")
  const devNull = fs.openSync("/dev/null", "r+")
  const stdio = [devNull, devNull, devNull] as const
  const fdBase = fdCount()
  const alive: ContainerHandle[] = []
  const bundles: string[] = []
  const t0 = Date.now()
  const fail = (what: string, e: unknown) => {
    f.crashes++
    const msg = `${(e as { _tag?: string })._tag ?? ""} ${String((e as Error).message ?? e)}`
    note(f, `${what}: ${msg.slice(0, 200)}${msg.includes("EMFILE") ? " (EMFILE)" : ""}`)
  }
  // Created a few at a time (each create is a clone and a handful of cgroup writes).
  for (let i = 0; i < o.containers && Date.now() - t0 < o.budgetMs; i += 4) {
    const batch = Array.from({ length: Math.min(4, o.containers - i) }, (_, j) => i + j)
    await Promise.all(
      batch.map(async (n) => {
        const id = s.id(n)
        const b = chaosBundle(s, id, ["/bin/sleep", "100000"])
        bundles.push(b)
        try {
          alive.push(await run({ root: s.root, id, bundle: b, stdio }))
        } catch (e) {
          fail(`create ${id}`, e)
        }
      }),
    )
  }
  const created = Date.now()
  f.notes.push(`${alive.length} containers alive in ${((created - t0) / 1000).toFixed(1)} s, manager fds ${fdBase} → ${fdCount()}`)
  // The execs, all at once: each exits with its own code, which its wait must return.
  let lost = 0
  const results = await Promise.all(
    Array.from({ length: o.execs }, async (_, k) => {
      const c = alive[k % Math.max(1, alive.length)]
      if (!c) return
      const code = k % 120
      try {
        const p = await c.exec({ process: { args: ["/bin/sh", "-c", `sleep 0.$((RANDOM % 5)); exit ${code}`], cwd: "/", user: { uid: 0, gid: 0 } }, stdio })
        const st = await within(p.wait(), 60_000)
        if (st === "hung") {
          f.hangs++
          note(f, `exec ${k} in ${c.id}: wait hung`)
        } else if (st?.code !== code) {
          lost++
          note(f, `exec ${k} in ${c.id}: exit ${code} came back as ${JSON.stringify(st)}`)
        }
      } catch (e) {
        fail(`exec ${k} in ${c.id}`, e)
      }
    }),
  )
  f.runs = alive.length + results.length
  f.notes.push(`${o.execs} concurrent execs in ${((Date.now() - created) / 1000).toFixed(1)} s, ${lost} exit statuses lost`)
  f.crashes += lost
  const d0 = Date.now()
  for (let i = 0; i < alive.length; i += 8)
    await Promise.all(
      alive.slice(i, i + 8).map(async (c) => {
        const r = await within(c.destroy({ force: true }), 60_000).catch((e: unknown) => fail(`destroy ${c.id}`, e))
        if (r === "hung") {
          f.hangs++
          note(f, `destroy ${c.id} hung`)
        }
      }),
    )
  f.notes.push(`all destroyed in ${((Date.now() - d0) / 1000).toFixed(1)} s`)
  fs.closeSync(devNull)
  const found = leaks({ tag: s.tag, roots: [s.root], dirs: [s.root, ...bundles], fdBaseline: fdBase })
  if (found.length) {
    f.leaks += found.length
    note(f, found.slice(0, 4).join("; "))
  }
  for (const b of bundles) fs.rmSync(b, { recursive: true, force: true })
  dropScope(s)
  return f
}
