/**
 * `npm run chaos [-- --budget SECONDS] [--parts crash,state,fds,pids,hostile,fuzz,load]`: the
 * reliability and security battery as a bounded soak (issue 19). The budget is shared evenly by the
 * parts; each prints its figures, and the closing table has them all. Exits 1 if any part counted
 * a leak, crash, hang or escape. Root and /bin/busybox needed (as the real-kernel tests).
 */
import { skipReason } from "../kernel/harness.ts"
import type { Figures } from "./common.ts"
import { PARTS, type PartName } from "./parts.ts"

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
}
const budgetS = Number(flag("budget") ?? "600")
const seed = flag("seed")
const names = (flag("parts")?.split(",") ?? Object.keys(PARTS)) as PartName[]
for (const n of names) if (!(n in PARTS)) throw new Error(`unknown part ${n}: one of ${Object.keys(PARTS).join(", ")}`)
if (skipReason) {
  console.error(`chaos: cannot run: ${skipReason}`)
  process.exit(2)
}

const each = (budgetS * 1000) / names.length
const results: Figures[] = []
for (const n of names) {
  const t0 = Date.now()
  console.log(`\n== ${n} (budget ${Math.round(each / 1000)} s)`)
  const f = await PARTS[n]({ budgetMs: each, soak: true, ...(seed ? { seed: Number(seed) } : {}), log: (l) => console.log(`  ${l}`) })
  results.push(f)
  console.log(`  runs ${f.runs}, leaks ${f.leaks}, crashes ${f.crashes}, hangs ${f.hangs}, escapes ${f.escapes} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  for (const line of f.notes) console.log(`  · ${line}`)
}
const pad = (s: string | number, w: number) => String(s).padEnd(w)
console.log(`\n${pad("part", 22)}${pad("runs", 8)}${pad("leaks", 7)}${pad("crashes", 9)}${pad("hangs", 7)}escapes`)
for (const f of results) console.log(`${pad(f.part, 22)}${pad(f.runs, 8)}${pad(f.leaks, 7)}${pad(f.crashes, 9)}${pad(f.hangs, 7)}${f.escapes}`)
const bad = results.some((f) => f.leaks + f.crashes + f.hangs + f.escapes > 0)
const { dispose } = await import("../../promise.ts")
await dispose()
process.exit(bad ? 1 : 0)
