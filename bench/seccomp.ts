/**
 * What a cached seccomp profile adds to a container start (issue 4): `run()` → exit of
 * /bin/true in this process, with Moby's default profile and without seccomp, interleaved
 * so drift hits both alike; medians. The profile is compiled once (first run, then cached),
 * so the difference is the filter's trip through the plan and its install in the init.
 *   npx tsx bench/seccomp.ts        (BENCH_N runs each, default 30; needs root)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DEFAULT_SECCOMP } from "../config/seccomp-default.ts"
import { makeBundle } from "../examples/make-bundle.ts"
import { dispose, run } from "../promise.ts"

const N = Number(process.env.BENCH_N) || 30
const work = fs.mkdtempSync(path.join(os.tmpdir(), "xc-bench-seccomp-"))
const plain = path.join(work, "plain")
makeBundle(plain, ["/bin/true"])
const withFilter = path.join(work, "seccomp")
fs.mkdirSync(withFilter)
const spec = JSON.parse(fs.readFileSync(path.join(plain, "config.json"), "utf8")) as { root: { path: string }; linux: Record<string, unknown> }
spec.root.path = path.join(plain, spec.root.path)
spec.linux.seccomp = DEFAULT_SECCOMP
fs.writeFileSync(path.join(withFilter, "config.json"), JSON.stringify(spec))
const root = path.join(work, "state")
const devnull = fs.openSync("/dev/null", "r+")

async function once(bundle: string, i: number): Promise<number> {
  const t0 = performance.now()
  const c = await run({ root, id: `b${i}-${path.basename(bundle)}`, bundle, stdio: [devnull, devnull, devnull] })
  const status = await c.wait()
  await c.destroy()
  if (status?.code !== 0) throw new Error(`${bundle}: ${JSON.stringify(status)}`)
  return performance.now() - t0
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
const times = { plain: [] as number[], seccomp: [] as number[] }
await once(plain, -1)
await once(withFilter, -1) // compiles the profile: later runs hit the cache
for (let i = 0; i < N; i++) {
  const order = i % 2 ? (["plain", "seccomp"] as const) : (["seccomp", "plain"] as const)
  for (const k of order) times[k].push(await once(k === "plain" ? plain : withFilter, i))
}
const p = median(times.plain)
const s = median(times.seccomp)
console.log(`run()→exit of /bin/true, median of ${N}: no seccomp ${p.toFixed(2)} ms, default profile ${s.toFixed(2)} ms, +${(s - p).toFixed(2)} ms`)
await dispose()
fs.rmSync(work, { recursive: true, force: true })
