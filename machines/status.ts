/**
 * The public shapes of the machine, free of XState's types: a consumer's program (skipLibCheck: false)
 * then never loads xstate's declarations, and what inspection hands out is ours to redact.
 */

/** The statuses a container can be in (machine state names). */
export type Status =
  | "loading"
  | "creating"
  | "created"
  | "starting"
  | "running"
  | "pausing"
  | "paused"
  | "resuming"
  | "stopped"
  | "destroying"
  | "destroyed"
  | "checkpointing"
  | "checkpointed"
  | "restoring"
  | "failed"

/** The status named by a snapshot's state value ("alive.running" → "running"). */
export function statusOf(value: unknown): Status {
  if (typeof value === "string") return (value === "boot" ? "loading" : value) as Status
  if (value && typeof value === "object") {
    const [k, v] = Object.entries(value)[0] ?? []
    return statusOf(k === "alive" ? v : k)
  }
  return "failed"
}

/** A JSON value (the machine definition, redacted snapshots). */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json }

/**
 * One event of the machine's inspection (XState's "@xstate.actor", "@xstate.event",
 * "@xstate.snapshot", "@xstate.microstep", "@xstate.action"), as plain data. Environment values
 * (process.env, hooks' env, extraEnv) read `NAME=<redacted>` unless `secrets: true` was given.
 */
export interface InspectionEvent {
  readonly type: string
  /** The session id of the machine's root actor. */
  readonly rootId: string
  /** The session id of the actor the event concerns (always set by xcontainer). */
  readonly actorId?: string
  /** The session id of the actor that sent the event, if any. */
  readonly sourceId?: string
  /**
   * The actors themselves, opaque here: `@statelyai/inspect`'s inspector reads them (session ids, the
   * machine's definition), so its `inspector.inspect` observer can be passed as `inspect` directly.
   */
  readonly actorRef: { readonly sessionId: string }
  readonly sourceRef?: { readonly sessionId: string }
  /** With "@xstate.event" and "@xstate.microstep": the event. */
  readonly event?: { readonly type: string; readonly [key: string]: unknown }
  /** With "@xstate.snapshot" (and "@xstate.microstep"): the actor's snapshot. */
  readonly snapshot?: { readonly status?: string; readonly value?: unknown; readonly context?: unknown }
}

/** What receives inspection events: a function, or an observer with `next`. */
export type Inspector = ((event: InspectionEvent) => void) | { next(event: InspectionEvent): void }

/** The machine's definition, as JSON (createMachine's config without its functions), for the Stately visualiser. */
export interface MachineDefinition {
  readonly id: string
  readonly initial: string
  readonly states: { readonly [name: string]: Json }
  readonly [key: string]: Json
}

const ENV_KEYS = new Set(["env", "extraEnv"])
const redactEntry = (e: unknown) => (typeof e === "string" && e.includes("=") ? `${e.slice(0, e.indexOf("="))}=<redacted>` : e)

/**
 * A copy of `value` with every environment list's values replaced: arrays under the keys `env` and
 * `extraEnv` (OCI process.env, hooks[].env, CreateOptions.extraEnv), at any depth. Plain objects and
 * arrays are copied; other objects (errors, dates, functions) are kept as they are.
 */
export function redactEnv(value: unknown, seen = new WeakMap<object, unknown>()): unknown {
  if (typeof value !== "object" || value === null) return value
  if (seen.has(value)) return seen.get(value)
  if (Array.isArray(value)) {
    const out: unknown[] = []
    seen.set(value, out)
    for (const v of value) out.push(redactEnv(v, seen))
    return out
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  const out: Record<string, unknown> = {}
  seen.set(value, out)
  for (const [k, v] of Object.entries(value)) out[k] = ENV_KEYS.has(k) && Array.isArray(v) ? v.map(redactEntry) : redactEnv(v, seen)
  return out
}
