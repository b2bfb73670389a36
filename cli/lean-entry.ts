/**
 * The command line's lean path (dist/cli-lean.cjs): `state`, `list` and `kill` (without --all),
 * what podman and containerd call most, started in about the time of `node -e 0`. The full CLI is a
 * V8 start-up snapshot of ~8 MB whose restore alone costs twice `node -e 0`, and loading Effect
 * as a plain module costs more still; so this entry loads neither: it bundles only plain modules,
 * and those are the same ones the library decides by (one implementation of each rule):
 * state/files.ts (where records are), effects/proc.ts (pid + start time → pidfd),
 * effects/reconcile.ts (the status rule, SIGKILL's thaw), effects/cgroups-mounts.ts (hierarchies,
 * freezer), config/linux-names.ts (signal names), native/addon.ts (pidfd_send_signal),
 * state/oci-state.ts and cli/state-json.ts (what is printed).
 *
 * It handles only the plain case and prints nothing until it has the whole answer. Anything
 * else — a flag it does not know, --debug, a record that does not look exactly as we write it (the
 * full path decodes it with its Schema), a missing container, a cgroup2-only host (another freezer
 * manager), any error — is handed to the full command line (bin/xcontainer again, with
 * XCONTAINER_LEAN=0), which reports it as before. bin/xcontainer picks this entry by argv.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bool, GLOBAL_FLAGS, parseArgs, str, type FlagSpec } from "./args.ts"
import { LIST_FLAGS, listText, ownerOf, runcState, stateText } from "./state-json.ts"
import { defaultRoot, fifoPath, listIds, statePath } from "../state/files.ts"
import { ociState, type OciState } from "../state/oci-state.ts"
import type { RecordedStatus } from "../state/record.ts"
import { attachPid, processMatches } from "../effects/proc.ts"
import { needsFreezer, reconciledStatus, signalThaws } from "../effects/reconcile.ts"
import { parseSignal } from "../config/linux-names.ts"
import { addon } from "../native/addon.ts"
import { detectLayout, frozenNow, parseHierarchies } from "../effects/cgroups-mounts.ts"
import type { Hierarchy } from "../effects/cgroups.ts"

/** Not for the lean path: the full command line answers. */
class Delegate extends Error {}
const delegate = (why: string): never => {
  throw new Delegate(why)
}

const STATUSES: readonly RecordedStatus[] = ["creating", "created", "running", "paused", "stopped"]
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const isStr = (v: unknown): v is string => typeof v === "string"
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

/** What the lean path reads of a record. */
interface LeanRecord {
  readonly id: string
  readonly bundle: string
  readonly created: string
  readonly status: RecordedStatus
  readonly init?: { readonly pid: number; readonly startTime: number }
  readonly cgroups: Record<string, string>
  readonly spec: { readonly root?: { readonly path?: string }; readonly annotations?: Record<string, string> }
}

/**
 * The record's fields this path uses, checked to be what the full path's Schema would accept for
 * them; anything else is the full path's to judge (it decodes the whole record, spec included).
 */
function readRecord(root: string, id: string): LeanRecord {
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(statePath(root, id), "utf8"))
  } catch {
    return delegate("record unreadable")
  }
  if (!isObj(raw) || raw.version !== 1 || raw.id !== id || !isStr(raw.bundle) || !isStr(raw.rootfs) || !isStr(raw.created)) return delegate("record")
  if (!STATUSES.includes(raw.status as RecordedStatus) || typeof raw.ownPidNs !== "boolean") return delegate("record status")
  const init = raw.init
  if (init !== undefined && !(isObj(init) && isNum(init.pid) && isNum(init.startTime))) return delegate("record init")
  const cg = raw.cgroups
  if (!isObj(cg) || !Object.values(cg).every(isStr)) return delegate("record cgroups")
  const spec = raw.spec
  if (!isObj(spec) || !isStr(spec.ociVersion)) return delegate("record spec")
  const r = spec.root
  if (r !== undefined && !(isObj(r) && isStr(r.path))) return delegate("record spec.root")
  const ann = spec.annotations
  if (ann !== undefined && !(isObj(ann) && Object.values(ann).every(isStr))) return delegate("record spec.annotations")
  return raw as unknown as LeanRecord
}

let hierarchies: Hierarchy[] | undefined
/** The host's hierarchies, read once; a cgroup2-only host has another manager (cgroups-v2.ts): the full path. */
const hostHierarchies = (): Hierarchy[] => {
  if (!hierarchies) {
    hierarchies = parseHierarchies(fs.readFileSync("/proc/self/mountinfo", "utf8"))
    if (detectLayout(hierarchies) === "v2") delegate("cgroup2-only host")
  }
  return hierarchies
}

/** Container.load's answer (lifecycle.reconcile + Container.state), without the machine. */
function load(root: string, id: string): { record: LeanRecord; state: OciState } {
  const record = readRecord(root, id)
  // The identity check without the pidfd that attachPid pins the process with: nothing is done to the
  // process here, only its status reported (a read that races with its exit either way). This spares
  // loading the native addon (≈ 9 % of `node -e 0` in instructions).
  const initAlive = record.init !== undefined && processMatches(record.init.pid, record.init.startTime)
  const atBarrier = initAlive && record.status !== "creating" && fs.existsSync(fifoPath(root, id))
  const frozen = needsFreezer(record.status, initAlive, atBarrier) ? frozenNow(record.cgroups, hostHierarchies()) : false
  const status = reconciledStatus(record.status, { initAlive, atBarrier, frozen })
  return { record, state: ociState(id, status, status === "stopped" ? undefined : record.init?.pid, record) }
}

const json = (root: string, id: string, owner?: string) => {
  const { record, state } = load(root, id)
  return runcState(state, record.spec.root?.path, record.created, owner)
}

const HELP: FlagSpec = { name: "help", alias: "h", value: false }

/** The output of the command, or a Delegate thrown. */
function answer(argv: readonly string[]): string {
  const g = parseArgs(argv, GLOBAL_FLAGS, true)
  if (bool(g, "version") || bool(g, "help") || bool(g, "debug")) return delegate("global flag")
  const format = str(g, "log-format") ?? "text"
  if (format !== "text" && format !== "json") return delegate("log format")
  // The full path opens --log (creating it) before it runs a command, as runc does.
  const logFile = str(g, "log")
  if (logFile !== undefined) fs.closeSync(fs.openSync(logFile, "a"))
  const root = path.resolve(str(g, "root") ?? defaultRoot())
  const [name, ...rest] = g.rest
  if (name === "state") {
    const p = parseArgs(rest, [HELP])
    if (bool(p, "help") || p.positional.length !== 1 || !p.positional[0]) return delegate("state usage")
    return stateText(json(root, p.positional[0]))
  }
  if (name === "list") {
    const p = parseArgs(rest, [...LIST_FLAGS, HELP])
    const fmt = str(p, "format") ?? "table"
    if (bool(p, "help") || (fmt !== "table" && fmt !== "json")) return delegate("list usage")
    let ids: string[]
    try {
      ids = listIds(root)
    } catch (e) {
      ids = (e as NodeJS.ErrnoException).code === "ENOENT" ? [] : delegate("list root")
    }
    return listText(
      ids.map((id) => json(root, id, ownerOf(path.join(root, id)))),
      fmt,
      bool(p, "quiet"),
    )
  }
  if (name === "kill") {
    const p = parseArgs(rest, [{ name: "all", alias: "a", value: false }, HELP])
    const [id, sigArg] = p.positional
    // --all walks the cgroup under its freezer: the full path's.
    if (bool(p, "help") || bool(p, "all") || !id || p.positional.length > 2) return delegate("kill usage")
    const sig = parseSignal(sigArg ?? "TERM")
    if (sig === undefined) return delegate("kill signal")
    kill(root, id, sig)
    return ""
  }
  return delegate("command")
}

/**
 * kill without --all: the init, through a pidfd that pins it (attachPid, as KernelLive.attach), while
 * the container lives (the machine allows a signal in every status but stopped). A stopped container
 * (the full path's InvalidTransition) and SIGKILL to a frozen one (the full path thaws it after: see
 * signalThaws) are handed over before anything is sent, as is a failed send (nothing was sent).
 */
function kill(root: string, id: string, sig: number): void {
  const record = readRecord(root, id)
  const fd = record.init ? attachPid(record.init.pid, record.init.startTime) : undefined
  if (fd === undefined) return delegate("kill: not alive")
  try {
    const atBarrier = record.status !== "creating" && fs.existsSync(fifoPath(root, id))
    const thawing = signalThaws(sig) && needsFreezer(record.status, true, atBarrier)
    const frozen = thawing ? frozenNow(record.cgroups, hostHierarchies()) : false
    if (reconciledStatus(record.status, { initAlive: true, atBarrier, frozen }) === "stopped") return delegate("kill: stopped")
    if (frozen) return delegate("kill: SIGKILL thaws")
    try {
      addon.pidfdSendSignal(fd, sig)
    } catch {
      return delegate("kill: send")
    }
  } finally {
    fs.closeSync(fd)
  }
}

/** The full command line, with our argv and stdio; its exit status. */
function full(argv: readonly string[]): number {
  const self = process.env.XCONTAINER_SELF
  if (!self) {
    process.stderr.write("xcontainer: the lean entry runs from bin/xcontainer (XCONTAINER_SELF unset)\n")
    return 1
  }
  // Required here, not at the top: loading child_process costs every plain call ≈ 2 % of `node -e 0`.
  // (This entry only runs bundled as CommonJS, where require is the module's own.)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require("node:child_process") as typeof import("node:child_process")
  const r = spawnSync(self, argv, { stdio: "inherit", env: { ...process.env, XCONTAINER_LEAN: "0" } })
  if (r.error) {
    process.stderr.write(`xcontainer: ${r.error.message}\n`)
    return 1
  }
  return r.status ?? 128 + (r.signal ? os.constants.signals[r.signal] : 0)
}

const argv = process.argv.slice(2)
let out: string | undefined
try {
  out = answer(argv)
} catch (e) {
  if (process.env.XC_LEAN_DEBUG) process.stderr.write(`lean: handing over: ${e instanceof Delegate ? e.message : String(e)}\n`)
  out = undefined
}
if (out === undefined) process.exitCode = full(argv)
else process.stdout.write(out)
