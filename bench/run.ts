/**
 * The project's benchmark (`npm run bench`): xcontainer side by side with runc and crun in the
 * same run, reported as ratios (medians; the machine is noisy, so absolute times drift).
 *
 * 1. CLI: whole-process wall time of `RT run -b B id` for /bin/true, every runtime (ours too)
 *    through the same wrapper `unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec "$@"'`
 *    (Debian's crun refuses hybrid cgroups otherwise; see ANCHORS.md), timed by hyperfine in
 *    rounds with the command order rotated, next to `node -e 0` (target: ≤ 1.3×).
 * 2. In-process: `run()` → exit of /bin/true through the library inside this Node process,
 *    interleaved with spawning `crun run` / `runc run` from the same process (target: ≤ 0.5× crun).
 * 1b. CLI commands one by one (bench/cli-commands.ts): state, list, kill, pause, resume, start,
 *    delete, create, run, exec, each against bare `node -e 0` (no NODE_EXTRA_CA_CERTS) and runc
 *    (and crun through the wrapper) in the same loop, with PASS/MISS per target.
 * 3. Memory: peak RSS (and CPU) of each CLI run (`/usr/bin/time -f %M`), and this process's RSS
 *    growth over the in-process runs.
 *
 * Writes a table to stdout and bench/results/latest.json. Exits 0 whether targets are met or not.
 * Knobs (environment): BENCH_ROUNDS (5), BENCH_RUNS (30, per CLI command, split over rounds),
 * BENCH_WARMUP (3, per round), BENCH_N (30, in-process runs), BENCH_MEM_RUNS (7),
 * BENCH_CMD_N (15, iterations of the commands one by one), BENCH_SKIP (comma-separated: runc, crun, commands).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { makeBundle } from "../examples/make-bundle.ts"
import { benchCommands, type CmdResult, type CmdRuntime } from "./cli-commands.ts"

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const RESULTS = path.join(REPO, "bench", "results")
const XCONTAINER = path.join(REPO, "bin", "xcontainer")
const UNSHARE_SCRIPT = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'

const envInt = (name: string, dflt: number): number => {
  const v = Number(process.env[name])
  return Number.isInteger(v) && v > 0 ? v : dflt
}
const ROUNDS = envInt("BENCH_ROUNDS", 5)
const RUNS = envInt("BENCH_RUNS", 30)
const WARMUP = envInt("BENCH_WARMUP", 3)
const N = envInt("BENCH_N", 30)
const MEM_RUNS = envInt("BENCH_MEM_RUNS", 7)
const CMD_N = envInt("BENCH_CMD_N", 15)
const SKIP = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean))

const log = (s: string) => process.stdout.write(s + "\n")
const note = (s: string) => process.stderr.write(`bench: ${s}\n`)

// ---------------------------------------------------------------------------------------------
// statistics and formatting

interface Stats {
  readonly n: number
  readonly median: number
  readonly min: number
  readonly max: number
  readonly mean: number
  readonly p90: number
}

function stats(xs: readonly number[]): Stats | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number) => {
    const i = (s.length - 1) * p
    const lo = Math.floor(i)
    const hi = Math.ceil(i)
    return s[lo]! + (s[hi]! - s[lo]!) * (i - lo)
  }
  return { n: s.length, median: q(0.5), min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length, p90: q(0.9) }
}

const ms = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(1))
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b
const rx = (r: number | undefined) => (r === undefined ? "–" : r.toFixed(2) + "×")

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ")
  return [line(header), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n")
}

// ---------------------------------------------------------------------------------------------
// environment

function findExe(name: string, preferred: string): string | undefined {
  const candidates = [preferred, ...(process.env.PATH ?? "").split(":").map((d) => path.join(d, name))]
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK)
      return c
    } catch {
      // next
    }
  }
  return undefined
}

const firstLine = (cmd: string, args: readonly string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  return (r.stdout || r.stderr || "").split("\n")[0]?.trim() ?? ""
}

/** A runtime under test: its binary and its own --root state dir. */
interface Runtime {
  readonly name: string
  readonly bin: string
  readonly root: string
}

/** Builds a start-up snapshot of an empty entry (the floor of `node --snapshot-blob`); undefined if Node cannot. */
function emptySnapshot(tmp: string): string | undefined {
  const entry = path.join(tmp, "empty-snapshot.js")
  const blob = path.join(tmp, "empty.blob")
  fs.writeFileSync(entry, 'require("node:v8").startupSnapshot.setDeserializeMainFunction(() => {})\n')
  const r = spawnSync(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", entry], { stdio: "ignore" })
  return r.status === 0 ? blob : undefined
}

/** argv of `RT --root R run -b B id` through the shared unshare wrapper. */
const wrapped = (rt: Runtime, bundle: string, id: string): string[] =>
  ["unshare", "-m", "sh", "-c", UNSHARE_SCRIPT, "sh", rt.bin, "--root", rt.root, "run", "-b", bundle, id]

/** Force-deletes whatever a runtime left in its root (runs that failed or were interrupted). */
function sweep(rt: Runtime): number {
  let n = 0
  let entries: string[] = []
  try {
    entries = fs.readdirSync(rt.root)
  } catch {
    return 0
  }
  for (const id of entries) {
    if (!fs.statSync(path.join(rt.root, id)).isDirectory()) continue
    spawnSync("unshare", ["-m", "sh", "-c", UNSHARE_SCRIPT, "sh", rt.bin, "--root", rt.root, "delete", "-f", id], { stdio: "ignore" })
    n++
  }
  return n
}

/** The (possibly) leftover container dirs of xcontainer's library runs. */
const sweepLibrary = async (root: string, destroyAll: (id: string) => Promise<void>): Promise<void> => {
  let entries: string[] = []
  try {
    entries = fs.readdirSync(root)
  } catch {
    return
  }
  for (const id of entries) await destroyAll(id).catch(() => undefined)
}

// ---------------------------------------------------------------------------------------------
// 1. CLI via hyperfine

interface CliCommand {
  readonly name: string
  /** Shell words for hyperfine -N (no shell). */
  readonly command: string
  readonly runtime?: Runtime
}

interface CliResult {
  readonly name: string
  readonly command: string
  readonly wall?: Stats
  /** mean user+system CPU per run (ms), from hyperfine. */
  readonly cpu?: number
  readonly fails: number
  readonly times: number[]
}

const shq = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)

function cliBench(cmds: readonly CliCommand[], tmp: string): CliResult[] {
  const acc = new Map(cmds.map((c) => [c.name, { times: [] as number[], cpu: [] as number[], fails: 0 }]))
  const perRound = Math.max(1, Math.ceil(RUNS / ROUNDS))
  for (let r = 0; r < ROUNDS; r++) {
    // rotate the order so that no runtime always runs first (or right after a heavy one)
    const order = cmds.map((_, i) => cmds[(i + r) % cmds.length]!)
    const json = path.join(tmp, `hyperfine-${r}.json`)
    const args = ["-N", "-i", "--style", "none", "--warmup", String(WARMUP), "--runs", String(perRound), "--export-json", json, ...order.map((c) => c.command)]
    note(`hyperfine round ${r + 1}/${ROUNDS}: ${order.map((c) => c.name).join(", ")}`)
    const res = spawnSync("hyperfine", args, { stdio: ["ignore", "inherit", "inherit"] })
    for (const c of order) if (c.runtime) sweep(c.runtime)
    if (res.status !== 0) {
      note(`hyperfine exited with ${res.status ?? res.signal}; round ${r + 1} skipped`)
      continue
    }
    const data = JSON.parse(fs.readFileSync(json, "utf8")) as {
      results: { command: string; times: number[]; exit_codes?: (number | null)[]; user: number; system: number }[]
    }
    data.results.forEach((h, i) => {
      const a = acc.get(order[i]!.name)!
      h.times.forEach((t, j) => {
        if ((h.exit_codes?.[j] ?? 0) === 0) a.times.push(t * 1000)
        else a.fails++
      })
      a.cpu.push((h.user + h.system) * 1000)
    })
  }
  return cmds.map((c) => {
    const a = acc.get(c.name)!
    return { name: c.name, command: c.command, wall: stats(a.times), cpu: stats(a.cpu)?.mean, fails: a.fails, times: a.times }
  })
}

// ---------------------------------------------------------------------------------------------
// 3a. peak RSS of whole CLI runs

interface MemResult {
  readonly name: string
  readonly rssKiB?: Stats
  readonly cpuMs?: Stats
  readonly fails: number
}

function memBench(cmds: readonly { name: string; argv: () => string[]; runtime?: Runtime }[], tmp: string): MemResult[] | string {
  const time = findExe("time", "/usr/bin/time")
  if (!time) return "/usr/bin/time is missing: peak RSS of CLI runs skipped"
  const out = path.join(tmp, "time.out")
  const acc = new Map(cmds.map((c) => [c.name, { rss: [] as number[], cpu: [] as number[], fails: 0 }]))
  for (let r = 0; r < MEM_RUNS; r++) {
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[(i + r) % cmds.length]!
      const a = acc.get(c.name)!
      const res = spawnSync(time, ["-f", "%M %U %S", "-o", out, ...c.argv()], { stdio: "ignore" })
      const [rss, u, s] = fs.readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number)
      if (res.status !== 0 || rss === undefined || !Number.isFinite(rss)) {
        a.fails++
        continue
      }
      a.rss.push(rss)
      a.cpu.push(((u ?? 0) + (s ?? 0)) * 1000)
    }
    for (const c of cmds) if (c.runtime) sweep(c.runtime)
  }
  return cmds.map((c) => {
    const a = acc.get(c.name)!
    return { name: c.name, rssKiB: stats(a.rss), cpuMs: stats(a.cpu), fails: a.fails }
  })
}

// ---------------------------------------------------------------------------------------------
// 2. in-process

const now = () => Number(process.hrtime.bigint()) / 1e6

/** Spawns argv from this process: ms from spawn() to the child's exit event, or undefined on failure. */
const spawnTimed = (argv: readonly string[]): Promise<number | undefined> =>
  new Promise((resolve) => {
    const t0 = now()
    const child = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" })
    child.once("error", () => resolve(undefined))
    child.once("exit", (code) => resolve(code === 0 ? now() - t0 : undefined))
  })

/** A full gc if we can get at one (v8 flag + a fresh context), else a no-op. */
const gc: () => void = (() => {
  try {
    v8.setFlagsFromString("--expose-gc")
    const f = vm.runInNewContext("gc") as () => void
    return typeof f === "function" ? f : () => undefined
  } catch {
    return () => undefined
  }
})()

const rssMiB = () => process.memoryUsage().rss / 2 ** 20
const heapMiB = () => process.memoryUsage().heapUsed / 2 ** 20

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now()
  if (process.getuid?.() !== 0) note("not root: container runs will most likely fail")

  // build the CLI bundle (dist/cli.js) from the current sources
  note("building dist/cli.js (node cli/bundle.mjs)")
  const b = spawnSync(process.execPath, ["cli/bundle.mjs"], { cwd: REPO, stdio: "inherit" })
  if (b.status !== 0) throw new Error("node cli/bundle.mjs failed")

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-bench-"))
  const runtimes: Runtime[] = []
  const skipped: string[] = []
  let cleanupLib: () => Promise<void> = async () => undefined
  const cleanup = async () => {
    for (const rt of runtimes) sweep(rt)
    await cleanupLib()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  process.once("SIGINT", () => {
    void cleanup().finally(() => process.exit(130))
  })

  try {
    // one bundle for every runtime
    const bundle = makeBundle(path.join(tmp, "bundle"), ["/bin/true"])
    // Debian's crun 1.8.1 refuses ociVersion "1.2.0" ("unknown version specified"); use what
    // `runc spec` 1.1.5 writes, which all three accept.
    const cfgPath = path.join(bundle, "config.json")
    const cfg = JSON.parse(fs.readFileSync(cfgPath, "utf8")) as { ociVersion: string }
    const specVersion = cfg.ociVersion
    cfg.ociVersion = "1.0.2-dev"
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2))

    for (const [name, preferred] of [["runc", "/usr/sbin/runc"], ["crun", "/usr/bin/crun"]] as const) {
      const bin = SKIP.has(name) ? undefined : findExe(name, preferred)
      if (SKIP.has(name)) skipped.push(`${name}: skipped by BENCH_SKIP`)
      else if (bin) runtimes.push({ name, bin, root: path.join(tmp, `root-${name}`) })
      else skipped.push(`${name}: not installed (${preferred}), column skipped`)
    }
    const xc: Runtime = { name: "xcontainer", bin: XCONTAINER, root: path.join(tmp, "root-xcontainer") }
    runtimes.push(xc)
    for (const rt of runtimes) fs.mkdirSync(rt.root, { recursive: true })
    const runc = runtimes.find((r) => r.name === "runc")
    const crun = runtimes.find((r) => r.name === "crun")
    for (const s of skipped) note(s)

    const versions: Record<string, string> = {
      node: process.version,
      kernel: os.release(),
      hyperfine: firstLine("hyperfine", ["--version"]),
      xcontainer: firstLine(XCONTAINER, ["--version"]),
    }
    if (runc) versions.runc = firstLine(runc.bin, ["--version"])
    if (crun) versions.crun = firstLine(crun.bin, ["--version"])

    // sanity: one run of each before timing anything
    for (const rt of runtimes) {
      const r = spawnSync(wrapped(rt, bundle, "probe")[0]!, wrapped(rt, bundle, "probe").slice(1), { encoding: "utf8" })
      sweep(rt)
      if (r.status !== 0) note(`${rt.name} run failed in the probe (status ${r.status}): ${(r.stderr || "").trim()}`)
    }

    // ---- 1. CLI ----
    let cli: CliResult[] = []
    const hyperfine = findExe("hyperfine", "/usr/bin/hyperfine")
    const cmdFor = (rt: Runtime): CliCommand => ({
      name: `${rt.name} run`,
      // "$$" (the wrapper shell's pid) gives each run its own container id
      command: ["unshare", "-m", "sh", "-c", `${UNSHARE_SCRIPT} run -b ${bundle} ${rt.name.slice(0, 2)}-$$`, "sh", rt.bin, "--root", rt.root].map(shq).join(" "),
      runtime: rt,
    })
    const floorCmd = `unshare -mupin --fork chroot ${path.join(bundle, "rootfs")} /bin/true`
    // The floor of the CLI's technique: Node started from a user-land V8 snapshot that holds nothing
    // of ours. Whatever xcontainer's snapshot adds to Node's start-up is measured against this row.
    const emptyBlob = emptySnapshot(tmp)
    const cliCmds: CliCommand[] = [
      ...runtimes.map(cmdFor),
      { name: "node -e 0", command: `${shq(process.execPath)} -e 0` },
      { name: "xcontainer --version", command: `${shq(XCONTAINER)} --version` },
      // bin/xcontainer drops NODE_EXTRA_CA_CERTS (no TLS in a runtime); where the caller sets it, Node's own
      // start-up without it is the fair floor, and is shown beside the plain node -e 0.
      ...(process.env["NODE_EXTRA_CA_CERTS"] ? [{ name: "node -e 0, no extra CAs", command: `env -u NODE_EXTRA_CA_CERTS ${shq(process.execPath)} -e 0` }] : []),
      ...(emptyBlob ? [{ name: "node, empty V8 snapshot", command: `${shq(process.execPath)} --snapshot-blob ${shq(emptyBlob)}` }] : []),
      { name: "floor (unshare+chroot)", command: floorCmd },
    ]
    if (hyperfine) cli = cliBench(cliCmds, tmp)
    else skipped.push("hyperfine is missing: CLI comparison skipped")

    // ---- 1b. CLI commands one by one ----
    let cmdRes: CmdResult | undefined
    if (!SKIP.has("commands")) {
      const sleepBundle = makeBundle(path.join(tmp, "bundle-sleep"), ["sleep", "1000"])
      const sleepCfg = path.join(sleepBundle, "config.json")
      fs.writeFileSync(sleepCfg, JSON.stringify({ ...(JSON.parse(fs.readFileSync(sleepCfg, "utf8")) as object), ociVersion: "1.0.2-dev" }, null, 2))
      const wrapper = ["unshare", "-m", "sh", "-c", UNSHARE_SCRIPT, "sh"]
      const cmdRuntimes: CmdRuntime[] = runtimes.map((rt) => ({
        name: rt.name,
        argv: (args) => [...(rt.name === "crun" ? wrapper : []), rt.bin, "--root", path.join(rt.root, "cmds"), ...args],
      }))
      for (const rt of runtimes) fs.mkdirSync(path.join(rt.root, "cmds"), { recursive: true })
      note(`commands one by one: ${CMD_N} iterations × 10 commands × ${runtimes.length} runtimes`)
      cmdRes = benchCommands({ runtimes: cmdRuntimes, wrapper, sleepBundle, trueBundle: bundle, n: CMD_N, tmp, note })
    }

    // ---- 2. in-process ----
    note(`in-process: ${N} runs (+3 warm-up) each, interleaved`)
    const { run, load, dispose, create } = await import("../promise.ts")
    const libRoot = path.join(tmp, "root-library")
    fs.mkdirSync(libRoot, { recursive: true })
    cleanupLib = async () => {
      await sweepLibrary(libRoot, async (id) => {
        const c = await load({ root: libRoot, id })
        await c.destroy({ force: true })
      })
      await dispose().catch(() => undefined)
    }
    const lib = { start: [] as number[], exit: [] as number[], destroyed: [] as number[], fails: 0, errors: [] as string[], firstExit: undefined as number | undefined }
    const spawned = new Map<string, { times: number[]; fails: number }>()
    for (const rt of [crun, runc]) if (rt) spawned.set(rt.name, { times: [], fails: 0 })
    let seq = 0
    const libOnce = async (record: boolean) => {
      const id = `lib-${process.pid}-${seq++}`
      const t0 = now()
      try {
        const c = await run({ root: libRoot, id, bundle })
        const t1 = now()
        const st = await c.wait()
        const t2 = now()
        await c.destroy()
        const t3 = now()
        if (st?.code !== 0) throw new Error(`exit status ${JSON.stringify(st)}`)
        lib.firstExit ??= t2 - t0
        if (record) {
          lib.start.push(t1 - t0)
          lib.exit.push(t2 - t0)
          lib.destroyed.push(t3 - t0)
        }
      } catch (e) {
        lib.fails++
        if (lib.errors.length < 3) lib.errors.push(String((e as Error)?.message ?? e))
        await sweepLibrary(libRoot, async (cid) => (await load({ root: libRoot, id: cid })).destroy({ force: true }))
      }
    }
    const spawnOnce = async (rt: Runtime, record: boolean) => {
      const t = await spawnTimed(wrapped(rt, bundle, `sp-${process.pid}-${seq++}`))
      if (t === undefined) {
        spawned.get(rt.name)!.fails++
        sweep(rt)
      } else if (record) spawned.get(rt.name)!.times.push(t)
    }
    const steps: ((record: boolean) => Promise<void>)[] = [libOnce, ...[crun, runc].filter((r): r is Runtime => !!r).map((rt) => (rec: boolean) => spawnOnce(rt, rec))]
    gc()
    const rss0 = rssMiB()
    for (let i = 0; i < 3; i++) for (const s of steps) await s(false)
    gc()
    const rssWarm = rssMiB()
    const heapWarm = heapMiB()
    const rssSamples: number[] = []
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!(true)
      rssSamples.push(rssMiB())
    }
    const rssEnd = rssMiB()
    // The init at its start barrier is the helper before execve: its peak RSS is the helper's.
    let helperRss = "not measured"
    try {
      const c = await create({ root: libRoot, id: `rss-${process.pid}`, bundle })
      const status = fs.readFileSync(`/proc/${c.pid}/status`, "utf8")
      const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1])
      helperRss = `${(kib("VmHWM") / 1024).toFixed(2)} MiB peak (VmHWM), ${(kib("VmRSS") / 1024).toFixed(2)} MiB resident, at the start barrier`
      await c.destroy()
    } catch (e) {
      helperRss = `not measured: ${(e as Error).message}`
    }
    gc()
    const rssEndGc = rssMiB()
    const heapEndGc = heapMiB()
    await dispose()

    // ---- 3. memory of CLI runs ----
    note(`peak RSS: ${MEM_RUNS} runs of each under /usr/bin/time`)
    const memCmds = [
      ...runtimes.map((rt) => ({ name: `${rt.name} run`, argv: () => wrapped(rt, bundle, `m-${seq++}`), runtime: rt })),
      { name: "node -e 0", argv: () => [process.execPath, "-e", "0"] },
    ]
    const mem = memBench(memCmds, tmp)
    if (typeof mem === "string") skipped.push(mem)

    // ---- report ----
    const byName = (n: string) => cli.find((c) => c.name === n)?.wall?.median
    const crunMed = byName("crun run")
    const runcMed = byName("runc run")
    const nodeMed = byName("node -e 0")
    const out: string[] = []
    out.push("")
    out.push(`xcontainer bench — ${new Date().toISOString()} — ${os.cpus().length} CPUs, kernel ${os.release()}, node ${process.version}`)
    out.push(`versions: ${Object.entries(versions).map(([k, v]) => `${k}: ${v}`).join("; ")}`)
    out.push(`bundle: busybox /bin/true (makeBundle), ociVersion ${specVersion} → 1.0.2-dev for crun 1.8.1; same bundle for all`)
    out.push("")
    if (cli.length) {
      out.push(`1. CLI, whole process, ms (hyperfine -N, ${ROUNDS} rounds × ${Math.ceil(RUNS / ROUNDS)} runs + ${WARMUP} warm-up each, order rotated per round).`)
      out.push(`   "RT run" = unshare -m sh -c '${UNSHARE_SCRIPT}' sh RT --root R run -b B id (same wrapper for all, ≈ 8 ms itself)`)
      out.push(
        table(
          ["command", "median", "min", "max", "p90", "cpu", "×crun", "×runc", "×node-e0", "fails"],
          cli.map((c) => [
            c.name,
            ms(c.wall?.median),
            ms(c.wall?.min),
            ms(c.wall?.max),
            ms(c.wall?.p90),
            ms(c.cpu),
            rx(ratio(c.wall?.median, crunMed)),
            rx(ratio(c.wall?.median, runcMed)),
            rx(ratio(c.wall?.median, nodeMed)),
            String(c.fails),
          ]),
        ),
      )
      out.push("")
    }
    const cmdTargets: { target: string; value: number | undefined; limit: number }[] = []
    if (cmdRes) {
      const nodeCmd = stats(cmdRes.node)?.median
      const wrap = stats(cmdRes.wrapper)?.median
      const med = (row: CmdResult["rows"][number], rt: string) => stats(row.times[rt] ?? [])?.median
      out.push(`1b. CLI commands one by one, whole process, ms (medians of ${CMD_N}; runtimes alternate, order rotated; spawned with stdio /dev/null).`)
      out.push(`    "×node paired": the median of xcontainer's time over a node -e 0 run right before it, what the ≤ 1.3× targets use.`)
      out.push(`    node -e 0 (no NODE_EXTRA_CA_CERTS): ${ms(nodeCmd)} ms; crun runs through the unshare wrapper, which alone takes ${ms(wrap)} ms.`)
      const rows = cmdRes.rows.map((row) => {
        const light = !["create", "run", "exec"].includes(row.command)
        const x = med(row, "xcontainer")
        const paired = stats(row.pairedNode)?.median
        const target = light ? { against: "node", value: paired, limit: 1.3 } : { against: "runc", value: ratio(x, med(row, "runc")), limit: 2 }
        cmdTargets.push({ target: `CLI ${row.command} ≤ ${target.limit}× ${target.against === "node" ? "node -e 0" : "runc"}`, value: target.value, limit: target.limit })
        const fails = Object.entries(row.fails).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ")
        return [row.command, ms(x), ms(med(row, "runc")), ms(med(row, "crun")), rx(ratio(x, nodeCmd)), rx(paired), rx(ratio(x, med(row, "runc"))), rx(ratio(x, med(row, "crun"))), `≤ ${target.limit}× ${target.against}`, target.value === undefined ? "N/A" : target.value <= target.limit ? "PASS" : "MISS", fails || "0"]
      })
      out.push(table(["command", "xcontainer", "runc", "crun+wrap", "×node-e0", "×node paired", "×runc", "×crun+wrap", "target", "verdict", "fails"], rows))
      const mib = (k: number | undefined) => (k === undefined ? "–" : (k / 1024).toFixed(1))
      const nodeRss = cmdRes.rss["node -e 0"]
      out.push(`    peak RSS, MiB (median of 5): ${Object.entries(cmdRes.rss).map(([k, v]) => `${k} ${mib(v)}`).join(", ")}`)
      for (const k of ["xcontainer state", "xcontainer kill", "xcontainer run"]) {
        const v = cmdRes.rss[k]
        cmdTargets.push({ target: `peak RSS of ${k} ≤ node -e 0 + 10 MiB (MiB over)`, value: v === undefined || nodeRss === undefined ? undefined : (v - nodeRss) / 1024, limit: 10 })
      }
      out.push("")
    }
    const libExit = stats(lib.exit)
    const libDestroyed = stats(lib.destroyed)
    const libStart = stats(lib.start)
    const crunSp = crun ? stats(spawned.get("crun")!.times) : undefined
    const runcSp = runc ? stats(spawned.get("runc")!.times) : undefined
    out.push(`2. In-process, ms, N=${N} each after 3 warm-up, interleaved, in this Node process.`)
    out.push("   The library runs in the host mount namespace (no unshare wrapper); crun/runc are spawned through the wrapper.")
    const inRows: [string, Stats | undefined, number][] = [
      ["library run() → started", libStart, lib.fails],
      ["library run() → exit (wait)", libExit, lib.fails],
      ["library run() → destroyed", libDestroyed, lib.fails],
    ]
    if (crun) inRows.push(["spawn crun run → exit event", crunSp, spawned.get("crun")!.fails])
    if (runc) inRows.push(["spawn runc run → exit event", runcSp, spawned.get("runc")!.fails])
    out.push(
      table(
        ["measure", "median", "min", "max", "p90", "×crun", "×runc", "fails"],
        inRows.map(([n, s, f]) => [n, ms(s?.median), ms(s?.min), ms(s?.max), ms(s?.p90), rx(ratio(s?.median, crunSp?.median)), rx(ratio(s?.median, runcSp?.median)), String(f)]),
      ),
    )
    out.push(`   first library run in this process (cold: JIT, lazy init), run() → exit: ${ms(lib.firstExit)} ms`)
    if (lib.errors.length) out.push(`   library errors: ${lib.errors.join(" | ")}`)
    out.push("")
    out.push("3. Memory")
    if (typeof mem !== "string") {
      const crunRss = mem.find((m) => m.name === "crun run")?.rssKiB?.median
      const runcRss = mem.find((m) => m.name === "runc run")?.rssKiB?.median
      out.push(`   peak RSS of whole CLI runs (/usr/bin/time -f %M, ${MEM_RUNS} runs each, rotated), MiB; cpu = user+sys ms (10 ms resolution)`)
      out.push(
        table(
          ["command", "median", "min", "max", "cpu", "×crun", "×runc", "fails"],
          mem.map((m) => {
            const mib = (x: number | undefined) => (x === undefined ? "–" : (x / 1024).toFixed(1))
            return [m.name, mib(m.rssKiB?.median), mib(m.rssKiB?.min), mib(m.rssKiB?.max), ms(m.cpuMs?.median), rx(ratio(m.rssKiB?.median, crunRss)), rx(ratio(m.rssKiB?.median, runcRss)), String(m.fails)]
          }),
        ),
      )
    }
    const perRun = (rssEndGc - rssWarm) / Math.max(1, N)
    out.push(
      `   manager (this process) RSS: ${rss0.toFixed(1)} MiB after import → ${rssWarm.toFixed(1)} after warm-up → ${rssEnd.toFixed(1)} after ${N} library runs ` +
        `(${rssEndGc.toFixed(1)} after gc; growth ${(rssEndGc - rssWarm).toFixed(1)} MiB, ${(perRun * 1024).toFixed(0)} KiB/run; ` +
        `heap ${heapWarm.toFixed(1)} → ${heapEndGc.toFixed(1)} MiB). The interleaved crun/runc spawns share this process.`,
    )
    out.push(`   helper (pre-execve) RSS of the container init: ${helperRss}`)
    out.push("")

    const xcCli = byName("xcontainer run")
    const targets = [
      { target: "CLI: xcontainer run ≤ 1.3× node -e 0 (medians)", value: ratio(xcCli, nodeMed), limit: 1.3 },
      { target: "library: run() → exit ≤ 0.5× spawned crun run (medians)", value: ratio(libExit?.median, crunSp?.median), limit: 0.5 },
      ...cmdTargets,
    ].map((t) => ({ ...t, verdict: t.value === undefined ? "N/A" : t.value <= t.limit ? "PASS" : "MISS" }))
    out.push("Targets")
    for (const t of targets) out.push(`   ${t.verdict.padEnd(4)}  ${t.target}: ${t.target.includes("MiB over") ? `${t.value?.toFixed(1) ?? "–"} MiB` : rx(t.value)}`)
    if (xcCli !== undefined && crunMed !== undefined) out.push(`   (info) xcontainer run vs crun run: ${rx(ratio(xcCli, crunMed))}, vs runc run: ${rx(ratio(xcCli, runcMed))}`)
    const noCaMed = byName("node -e 0, no extra CAs")
    if (noCaMed !== undefined)
      out.push(`   (info) NODE_EXTRA_CA_CERTS is set here; against node -e 0 without it: xcontainer run ${rx(ratio(xcCli, noCaMed))}, --version ${rx(ratio(byName("xcontainer --version"), noCaMed))}`)
    const emptyMed = byName("node, empty V8 snapshot")
    if (emptyMed !== undefined)
      out.push(`   (info) the technique's floor, node from an empty V8 snapshot: ${rx(ratio(emptyMed, nodeMed))} node -e 0; xcontainer --version: ${rx(ratio(byName("xcontainer --version"), nodeMed))}`)
    for (const s of skipped) out.push(`   skipped: ${s}`)
    out.push(`   total bench time ${((Date.now() - started) / 1000).toFixed(0)} s`)
    log(out.join("\n"))

    fs.mkdirSync(RESULTS, { recursive: true })
    const json = {
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, kernel: os.release(), loadavg: os.loadavg() },
      versions,
      config: { rounds: ROUNDS, runsPerCommand: RUNS, warmupPerRound: WARMUP, inProcessN: N, memRuns: MEM_RUNS, wrapper: UNSHARE_SCRIPT, ociVersion: { original: specVersion, used: "1.0.2-dev" } },
      commands: cmdRes,
      cli: cli.map((c) => ({ ...c, ratioCrun: ratio(c.wall?.median, crunMed), ratioRunc: ratio(c.wall?.median, runcMed), ratioNode: ratio(c.wall?.median, nodeMed) })),
      inProcess: {
        note: "library in the host mount namespace; crun/runc spawned through the unshare wrapper",
        library: { runToStarted: libStart, runToExit: libExit, runToDestroyed: libDestroyed, fails: lib.fails, errors: lib.errors, raw: lib },
        spawn: Object.fromEntries([...spawned].map(([k, v]) => [k, { stats: stats(v.times), fails: v.fails, times: v.times }])),
      },
      memory: {
        cli: mem,
        manager: { rssAfterImportMiB: rss0, rssAfterWarmupMiB: rssWarm, rssAfterRunsMiB: rssEnd, rssAfterGcMiB: rssEndGc, heapAfterWarmupMiB: heapWarm, heapAfterGcMiB: heapEndGc, perRunKiB: perRun * 1024, samplesMiB: rssSamples },
      },
      targets,
      skipped,
    }
    fs.writeFileSync(path.join(RESULTS, "latest.json"), JSON.stringify(json, null, 2) + "\n")
    note(`results written to ${path.relative(process.cwd(), path.join(RESULTS, "latest.json"))}`)
  } finally {
    await cleanup()
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? e}\n`)
    process.exit(1)
  },
)
