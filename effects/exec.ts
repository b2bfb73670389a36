/**
 * exec: a new process in a created or running container. Its process spec is
 * validated as the config's would be (a ConfigError names e.g.
 * "process.cwd"), it joins the init's namespaces and the container's cgroups,
 * and it is held by a pidfd like the init.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { buildExecPlan } from "../config/exec-plan.ts"
import { execProcess, type ExecChanges } from "../config/exec-process.ts"
import { noNul, parseSpec } from "../config/parse.ts"
import { planLimitProblem, toWire } from "../config/plan-wire.ts"
import type { ProcessSpec } from "../config/spec.ts"
import { Cgroups, type CgroupPaths } from "./cgroups.ts"
import { checkSubCgroups, type SubCgroups } from "./cgroups-sub.ts"
import { ConfigError, InvalidTransition, type ContainerError } from "./errors.ts"
import { Kernel, type ProcessRef } from "./kernel.ts"
import { consoleHandler, hookState, stdioFds, type Live, type Services } from "./lifecycle.ts"
import { homeOf } from "./passwd.ts"
import { containerProcessState, sendListener } from "./seccomp-notify.ts"

/**
 * What to run. Either a whole OCI process object (`process`), or — as `runc exec` — just `args`: the
 * process is then the container's own (user, env, cwd, capabilities, noNewPrivileges, AppArmor/SELinux
 * labels, rlimits …) with these options on top (config/exec-process.ts, the CLI's rule too).
 */
export interface ExecOptions extends Partial<ExecChanges> {
  /** A whole OCI process object (args, env, cwd, user, capabilities …); the options below are then ignored. */
  readonly process?: unknown
  /** Host fds for its stdin, stdout, stderr (default: ours), or "pipe" for Node streams (the handle's stdin/stdout/stderr). */
  readonly stdio?: readonly [number, number, number] | "pipe"
  /** With process.terminal: where the pty master goes (runc's --console-socket); else the handle keeps it. */
  readonly consoleSocket?: string
  /** Host fds the program gets at 3, 4, … (runc's --preserve-fds). */
  readonly preserveFds?: readonly number[]
  /** Allow exec into a paused container (runc's --ignore-paused); the process starts frozen. */
  readonly ignorePaused?: boolean
  /**
   * Join existing sub-cgroups of the container's cgroup instead (runc's `exec --cgroup`, effects/cgroups-sub.ts):
   * controller → path below the container's cgroup, "" for every hierarchy.
   */
  readonly subCgroups?: SubCgroups
  /** Bound on the console socket's connect and send (default 10 s, or XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS). */
  readonly consoleSocketTimeoutMs?: number
}

/** The container's cgroups with the named sub-cgroups in place of its own directories. */
const subCgroupTarget = (live: Live, subs: SubCgroups): Effect.Effect<CgroupPaths, ContainerError, Cgroups> =>
  Effect.gen(function* () {
    const cgroups = yield* Cgroups
    const checked = checkSubCgroups("subCgroups", subs)
    if (checked instanceof ConfigError) return yield* checked
    if (!cgroups.subPaths) return yield* new ConfigError({ path: "subCgroups", reason: "this cgroup manager cannot place a process in a sub-cgroup" })
    return yield* cgroups.subPaths(live.record.cgroups, checked)
  })

/** The container's own process with the options' changes (no `process` given). */
const fromConfigProcess = (live: Live, o: ExecOptions): Effect.Effect<ProcessSpec, ConfigError> => {
  const base = live.record.spec.process
  if (!o.args || o.args.length === 0) return Effect.fail(new ConfigError({ path: "args", reason: "exec needs args (or a whole process)" }))
  if (!base) return Effect.fail(new ConfigError({ path: "process", reason: "the container has no process to start from: give a whole process" }))
  const { process: _p, stdio: _s, consoleSocket: _c, preserveFds: _f, ignorePaused: _i, subCgroups: _g, consoleSocketTimeoutMs: _t, ...changes } = o
  return Effect.succeed(execProcess(base, { ...changes, args: o.args }))
}

/** Starts the process; resolves once it has exec'd its program (with its terminal's master, if kept). */
export const exec = (live: Live, o: ExecOptions): Effect.Effect<{ ref: ProcessRef; console?: number }, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const cgroups = yield* Cgroups
    const init = live.init
    if (!init) return yield* new InvalidTransition({ id: live.record.id, from: "stopped", operation: "exec" })
    yield* noNul("consoleSocket", o.consoleSocket)
    const wanted = o.process !== undefined ? o.process : yield* fromConfigProcess(live, o)
    // The container's own config with this process in it: one validator for both.
    const spec = yield* parseSpec({ ...live.record.spec, process: wanted })
    const proc = spec.process as ProcessSpec
    const home = yield* homeOf(live.record.rootfs, proc)
    const plan = buildExecPlan({ spec, initPid: init.pid, process: proc, home, preserveFds: o.preserveFds?.length ?? 0,
      // The init's pidfd rides along after the preserved fds (the helper's 4…).
      initPidfdAt: init.fd >= 0 ? 4 + (o.preserveFds?.length ?? 0) : undefined })
    const tooBig = planLimitProblem(plan, spec)
    if (tooBig) return yield* new ConfigError(tooBig)
    // Where it goes, checked before it exists: a sub-cgroup that is missing or outside is refused with nothing started.
    const target = o.subCgroups ? yield* subCgroupTarget(live, o.subCgroups) : live.record.cgroups
    let consoleFd: number | undefined
    const frozen = o.ignorePaused === true && (yield* cgroups.frozen(live.record.cgroups).pipe(Effect.orElseSucceed(() => false)))
    const ref = yield* kernel.spawnInit({
      plan: toWire(plan),
      stdio: stdioFds(o.stdio),
      extraFds: [...(o.preserveFds ?? []), ...(init.fd >= 0 ? [init.fd] : [])],
      barrier: false,
      // Into a frozen cgroup the process would freeze before it could exec: it joins once it has.
      beforeGo: (p) => (frozen ? Effect.void : cgroups.join(target, p.pid)),
      onConsole: consoleHandler(o.consoleSocket, (fd) => void (consoleFd = fd), o.consoleSocketTimeoutMs),
      // Its own filter, its own listener: to listenerPath with its pid, the container "running" (runc
      // does the same for exec). Without listenerPath it is closed: its notified syscalls get ENOSYS.
      onSeccomp: (p, fd) => {
        const sc = spec.linux?.seccomp
        const done = Effect.sync(() => fs.closeSync(fd))
        if (!sc?.listenerPath) return done
        return sendListener(sc.listenerPath, fd, containerProcessState(hookState(live.record, "running", init.pid), p.pid, sc.listenerMetadata)).pipe(Effect.ensuring(done))
      },
    })
    if (frozen) yield* cgroups.join(target, ref.pid)
    return { ref, ...(consoleFd !== undefined ? { console: consoleFd } : {}) }
  })
