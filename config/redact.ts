/**
 * The plan as the debug log shows it. The env of the process and of its hooks holds the
 * container's secrets (tokens, passwords given as NAME=value), and a --log file is often kept and
 * shared: the log keeps each variable's name and drops its value.
 */
import type { PlanOp } from "./plan.ts"

/** "NAME=value" → "NAME=<redacted>" (an entry without "=" is all name). */
export const redactEnv = (env: readonly string[]): string[] =>
  env.map((e) => (e.includes("=") ? `${e.slice(0, e.indexOf("="))}=<redacted>` : e))

/** The plan's ops with every env value redacted (the exec op's and the hooks'). */
export const redactPlanOps = (ops: readonly PlanOp[]): PlanOp[] =>
  ops.map((op) => (op.op === "exec" || op.op === "hook" ? { ...op, env: redactEnv(op.env) } : op))
