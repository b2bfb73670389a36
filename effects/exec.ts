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
import { Cgroups } from "./cgroups.ts"
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
}

/** The container's own process with the options' changes (no `process` given). */
const fromConfigProcess = (live: Live, o: ExecOptions): Effect.Effect<ProcessSpec, ConfigError> => {
  const base = live.record.spec.process
  if (!o.args || o.args.length === 0) return Effect.fail(new ConfigError({ path: "args", reason: "exec needs args (or a whole process)" }))
  if (!base) return Effect.fail(new ConfigError({ path: "process", reason: "the container has no process to start from: give a whole process" }))
  const { process: _p, stdio: _s, consoleSocket: _c, preserveFds: _f, ignorePaused: _i, ...changes } = o
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
    let consoleFd: number | undefined
    const frozen = o.ignorePaused === true && (yield* cgroups.frozen(live.record.cgroups).pipe(Effect.orElseSucceed(() => false)))
    const ref = yield* kernel.spawnInit({
      plan: toWire(plan),
      stdio: stdioFds(o.stdio),
      extraFds: [...(o.preserveFds ?? []), ...(init.fd >= 0 ? [init.fd] : [])],
      barrier: false,
      // Into a frozen cgroup the process would freeze before it could exec: it joins once it has.
      beforeGo: (p) => (frozen ? Effect.void : cgroups.join(live.record.cgroups, p.pid)),
      onConsole: consoleHandler(o.consoleSocket, (fd) => void (consoleFd = fd)),
      // Its own filter, its own listener: to listenerPath with its pid, the container "running" (runc
      // does the same for exec). Without listenerPath it is closed: its notified syscalls get ENOSYS.
      onSeccomp: (p, fd) => {
        const sc = spec.linux?.seccomp
        const done = Effect.sync(() => fs.closeSync(fd))
        if (!sc?.listenerPath) return done
        return sendListener(sc.listenerPath, fd, containerProcessState(hookState(live.record, "running", init.pid), p.pid, sc.listenerMetadata)).pipe(Effect.ensuring(done))
      },
    })
    if (frozen) yield* cgroups.join(live.record.cgroups, ref.pid)
    return { ref, ...(consoleFd !== undefined ? { console: consoleFd } : {}) }
  })
