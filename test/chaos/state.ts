/**
 * Part 2, state consistency. (a) While the library pauses and resumes a live container (each a
 * state.json write), a reader in another process polls state.json at ~1 kHz: every read must parse
 * as a whole record. (b) A writer process (the real StateStore) is SIGKILLed at random moments,
 * many inside a write (between the temp file and its rename: a `.tmp` left behind shows it): each
 * time the state.json left must parse and be a record the writer had completed or was writing.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { create } from "../../promise.ts"
import { bundleScript, chaosBundle, childEnv, dropScope, figures, note, scope, sleep, type Figures } from "./common.ts"
import { leaks } from "./leaks.ts"

/** A reader process: polls `file` every ~1 ms for `ms`, prints {reads, partial, missing}. */
const READER = `
const fs = require("node:fs")
const [file, ms] = [process.argv[1], Number(process.argv[2])]
const tick = new Int32Array(new SharedArrayBuffer(4))
let reads = 0, partial = 0, missing = 0, first = ""
const end = Date.now() + ms
while (Date.now() < end) {
  let text
  try { text = fs.readFileSync(file, "utf8") } catch { missing++; Atomics.wait(tick, 0, 0, 1); continue }
  reads++
  try { const j = JSON.parse(text); if (typeof j.status !== "string" || typeof j.id !== "string") throw new Error("fields") }
  catch (e) { partial++; if (!first) first = text.slice(0, 80) + "…(" + text.length + " bytes)" }
  Atomics.wait(tick, 0, 0, 1)
}
process.stdout.write(JSON.stringify({ reads, partial, missing, first }))
`

export async function statePart(o: { budgetMs: number }): Promise<Figures> {
  const f = figures("2 state consistency")
  const s = scope("state")
  const half = Math.max(1000, o.budgetMs / 2)
  // (a) the 1 kHz reader against a live container's writes.
  const id = s.id("r")
  const bundleDir = chaosBundle(s, id, ["/bin/sleep", "1000"])
  const devNull = fs.openSync("/dev/null", "r+")
  const c = await create({ root: s.root, id, bundle: bundleDir, stdio: [devNull, devNull, devNull] })
  await c.start()
  const reader = spawn(process.execPath, ["-e", READER, path.join(s.root, id, "state.json"), String(half)], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  reader.stdout.on("data", (d: Buffer) => (out += d.toString()))
  const readerDone = new Promise((r) => reader.on("close", r))
  let writes = 0
  const end = Date.now() + half
  while (Date.now() < end) {
    await c.pause()
    await c.resume()
    writes += 2
  }
  await readerDone
  await c.destroy({ force: true })
  fs.closeSync(devNull)
  const r = JSON.parse(out) as { reads: number; partial: number; missing: number; first: string }
  f.runs += r.reads
  f.crashes += r.partial
  f.notes.push(`reader: ${r.reads} reads (${(r.reads / (half / 1000)).toFixed(0)}/s) over ${writes} writes, ${r.partial} partial, ${r.missing} missing`)
  if (r.partial) note(f, `partial read: ${r.first}`)
  // (b) a writer killed at random moments.
  const wid = s.id("w")
  fs.mkdirSync(path.join(s.root, wid))
  const script = await bundleScript("state-writer")
  const end2 = Date.now() + half
  let kills = 0
  let midWrite = 0
  while (Date.now() < end2) {
    const child = spawn(process.execPath, [script, JSON.stringify({ root: s.root, id: wid, bundle: bundleDir })], { stdio: ["ignore", "pipe", "inherit"], env: childEnv() })
    let wout = ""
    child.stdout.on("data", (d: Buffer) => (wout += d.toString()))
    // Let it start writing, then kill it at a random moment.
    await new Promise<void>((res) => child.stdout.once("data", () => res()))
    await sleep(Math.random() * 30)
    child.kill("SIGKILL")
    await new Promise((res) => child.on("close", res))
    kills++
    const dir = path.join(s.root, wid)
    const tmps = fs.readdirSync(dir).filter((n) => n.endsWith(".tmp"))
    if (tmps.length) midWrite++
    const lastDone = Math.max(...wout.split("\n").filter((l) => l.startsWith("w ")).map((l) => Number(l.slice(2))))
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as { spec: { annotations: { n: string } } }
      const n = Number(rec.spec.annotations.n)
      // The last completed write, or the one whose rename happened before "w n" reached us.
      if (n !== lastDone && n !== lastDone + 1) {
        f.crashes++
        note(f, `after a kill: state.json holds write ${n}, the last completed was ${lastDone}`)
      }
    } catch (e) {
      f.crashes++
      note(f, `after a kill: state.json unreadable: ${String(e).slice(0, 120)}`)
    }
    for (const t of tmps) fs.rmSync(path.join(dir, t))
  }
  f.runs += kills
  f.notes.push(`writer: ${kills} kills, ${midWrite} between the temp file and the rename, every state.json left parsed as a completed write`)
  fs.rmSync(path.join(s.root, wid), { recursive: true, force: true })
  const found = leaks({ tag: s.tag, roots: [s.root], dirs: [s.root, bundleDir] })
  if (found.length) {
    f.leaks++
    note(f, found.slice(0, 3).join("; "))
  }
  fs.rmSync(bundleDir, { recursive: true, force: true })
  dropScope(s)
  return f
}
