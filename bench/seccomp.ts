/**
 * What a cached seccomp profile adds to a container start (issue 4), side by side with runc and
 * crun given the same profile (Moby's default) in the same run, interleaved so drift hits all
 * alike; medians.
 *
 * - library: `run()` → exit of /bin/true in this process. The profile is compiled once (first
 *   run), then cached: the difference is the filter's trip through the plan and its install.
 * - runc / crun: `RT run` of the same bundles, spawned from here through bench/run.ts's wrapper
 *   (unshare -m + umount of the cgroup2 mount: Debian's crun refuses hybrid cgroups otherwise).
 *   They compile the profile with libseccomp on every run.
 *   npx tsx bench/seccomp.ts        (BENCH_N runs each, default 30; needs root; BENCH_SKIP=runc,crun)
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DEFAULT_SECCOMP } from "../config/seccomp-default.ts"
import { makeBundle } from "../examples/make-bundle.ts"
import { dispose, run } from "../promise.ts"

const N = Number(process.env.BENCH_N) || 30
const SKIP = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean))
const work = fs.mkdtempSync(path.join(os.tmpdir(), "xc-bench-seccomp-"))
const plain = path.join(work, "plain")
makeBundle(plain, ["/bin/true"])
const withFilter = path.join(work, "seccomp")
fs.mkdirSync(withFilter)
const spec = JSON.parse(fs.readFileSync(path.join(plain, "config.json"), "utf8")) as { ociVersion: string; root: { path: string }; linux: Record<string, unknown> }
// Debian's crun 1.8.1 refuses ociVersion "1.2.0" ("unknown version specified"): as bench/run.ts, one version for all.
spec.ociVersion = "1.0.2-dev"
fs.writeFileSync(path.join(plain, "config.json"), JSON.stringify(spec))
spec.root.path = path.join(plain, spec.root.path)
spec.linux.seccomp = DEFAULT_SECCOMP
fs.writeFileSync(path.join(withFilter, "config.json"), JSON.stringify(spec))
const root = path.join(work, "state")
const devnull = fs.openSync("/dev/null", "r+")

const UNSHARE_SCRIPT = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'
const runtimes = ["runc", "crun"]
  .filter((n) => !SKIP.has(n) && spawnSync(n, ["--version"]).status === 0)
  .map((name) => ({ name, root: path.join(work, `root-${name}`) }))

async function lib(bundle: string, i: number): Promise<number> {
  const t0 = performance.now()
  const c = await run({ root, id: `b${i}-${path.basename(bundle)}`, bundle, stdio: [devnull, devnull, devnull] })
  const status = await c.wait()
  await c.destroy()
  if (status?.code !== 0) throw new Error(`${bundle}: ${JSON.stringify(status)}`)
  return performance.now() - t0
}

const spawned = (rt: { name: string; root: string }, bundle: string, i: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const argv = ["-m", "sh", "-c", UNSHARE_SCRIPT, "sh", rt.name, "--root", rt.root, "run", "-b", bundle, `${rt.name}-${i}-${path.basename(bundle)}`]
    const child = spawn("unshare", argv, { stdio: "ignore" })
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${rt.name} run ${bundle}: exit ${code}`))))
  })

type Key = string
const times = new Map<Key, number[]>()
const steps: [Key, (i: number) => Promise<number>][] = []
for (const [label, bundle] of [["none", plain], ["default profile", withFilter]] as const) {
  steps.push([`xcontainer run() | ${label}`, (i) => lib(bundle, i)])
  for (const rt of runtimes) steps.push([`${rt.name} run | ${label}`, (i) => spawned(rt, bundle, i)])
}
for (const [k, f] of steps) {
  times.set(k, [])
  await f(-1 - steps.findIndex(([x]) => x === k)) // warm-up; compiles our profile once: later runs hit the cache
}
for (let i = 0; i < N; i++)
  for (let s = 0; s < steps.length; s++) {
    const [k, f] = steps[(i + s) % steps.length]!
    times.get(k)!.push(await f(i))
  }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
console.log(`start → exit of /bin/true, median of ${N} (ms): no seccomp | Moby default profile | added`)
for (const who of ["xcontainer run()", ...runtimes.map((r) => `${r.name} run`)]) {
  const a = median(times.get(`${who} | none`)!)
  const b = median(times.get(`${who} | default profile`)!)
  console.log(`  ${who.padEnd(18)} ${a.toFixed(2).padStart(8)} | ${b.toFixed(2).padStart(8)} | +${(b - a).toFixed(2)}`)
}
await dispose()
fs.rmSync(work, { recursive: true, force: true })
