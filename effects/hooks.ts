/**
 * The OCI hooks that run in the runtime namespace (prestart, createRuntime,
 * poststart, poststop): each gets the container's state JSON on stdin, its
 * own argv and env, and is killed at its timeout. The container-namespace ones
 * (createContainer, startContainer) are run by the init helper (OP_HOOK).
 */
import { spawn } from "node:child_process"
import { Cause, Effect } from "effect"
import type { Spec } from "../config/spec.ts"
import { HookFailed } from "./errors.ts"

export type HookName = "prestart" | "createRuntime" | "createContainer" | "startContainer" | "poststart" | "poststop"

/** The state a hook reads on stdin (runtime-spec "State"). */
export interface HookState {
  readonly ociVersion: string
  readonly id: string
  readonly status: "creating" | "created" | "running" | "stopped"
  readonly pid?: number
  readonly bundle: string
  readonly annotations?: Readonly<Record<string, string>>
}

const runOne = (name: HookName, index: number, hook: NonNullable<Spec["hooks"]>[string][number], stdin: string) =>
  Effect.callback<void, HookFailed>((resume) => {
    const fail = (reason: string) => resume(Effect.fail(new HookFailed({ hook: name, index, path: hook.path, reason })))
    const [argv0, ...args] = hook.args ?? [hook.path]
    const child = spawn(hook.path, args, {
      argv0,
      env: Object.fromEntries((hook.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
      stdio: ["pipe", "ignore", "inherit"],
    })
    const timer = hook.timeout ? setTimeout(() => child.kill("SIGKILL"), hook.timeout * 1000) : undefined
    child.stdin.on("error", () => undefined) // a hook that does not read its stdin
    child.stdin.end(stdin)
    child.on("error", (e) => {
      clearTimeout(timer)
      fail((e as NodeJS.ErrnoException).code ?? e.message)
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resume(Effect.void)
      else if (signal === "SIGKILL" && hook.timeout) fail(`timed out after ${hook.timeout} s`)
      else fail(signal ? `killed by ${signal}` : `exited ${code}`)
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Runs the hooks named `name` in order; the first failure stops them (create/start semantics). */
export const runHooks = (spec: Spec, name: HookName, state: HookState): Effect.Effect<void, HookFailed> =>
  Effect.forEach(spec.hooks?.[name] ?? [], (h, i) => runOne(name, i, h, JSON.stringify(state)), { discard: true })

/** Runs them all, logging failures instead (poststart and poststop: the spec says warn and go on). */
export const runHooksLogged = (spec: Spec, name: HookName, state: HookState): Effect.Effect<void> =>
  Effect.forEach(spec.hooks?.[name] ?? [], (h, i) =>
    runOne(name, i, h, JSON.stringify(state)).pipe(Effect.catch((e) => Effect.logWarning(e.message))),
  { discard: true })

/**
 * Hooks a library user runs in-process, as Effects, at the runtime-namespace points: createRuntime
 * (the init waits before pivot_root; a failure aborts create), poststart and poststop (a failure is
 * logged). The container-namespace points have no in-process form: they run inside the container.
 */
export interface InProcessHooks {
  readonly createRuntime?: (state: HookState) => Effect.Effect<void, unknown>
  readonly poststart?: (state: HookState) => Effect.Effect<void, unknown>
  readonly poststop?: (state: HookState) => Effect.Effect<void, unknown>
}

/** Runs one in-process hook; a failure becomes HookFailed (path "(in-process)"). */
export const runInProcess = (name: HookName, hook: ((s: HookState) => Effect.Effect<void, unknown>) | undefined, state: HookState) =>
  hook
    ? Effect.suspend(() => hook(state)).pipe(
        Effect.catchCause((cause) =>
          Effect.fail(new HookFailed({ hook: name, index: -1, path: "(in-process)", reason: String(Cause.squash(cause)) })),
        ),
      )
    : Effect.void
