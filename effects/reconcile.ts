/**
 * The status a record has in reality (runc's refreshState), as one pure rule: lifecycle.reconcile
 * (every Container.load) and the command line's lean path (cli/lean-entry.ts) both decide by it.
 */
import type { RecordedStatus } from "../state/record.ts"

export interface Observed {
  /** The recorded init is still the process it was (pid and start time), not a zombie. */
  readonly initAlive: boolean
  /** The exec fifo exists: the init waits at its start barrier. */
  readonly atBarrier: boolean
  /** The container's freezer reports it frozen (only asked when alive and past the barrier). */
  readonly frozen: boolean
}

/** init gone (or never past "creating") → stopped; at the barrier → created; frozen → paused; else running. */
export function reconciledStatus(recorded: RecordedStatus, o: Observed): RecordedStatus {
  if (!o.initAlive || recorded === "creating") return "stopped"
  if (o.atBarrier) return "created"
  return o.frozen ? "paused" : "running"
}

/** Whether the rule needs the freezer's answer (reading it costs file reads, so the callers skip it). */
export const needsFreezer = (recorded: RecordedStatus, initAlive: boolean, atBarrier: boolean): boolean =>
  initAlive && recorded !== "creating" && !atBarrier

/**
 * A frozen task takes no signal until thawed, so SIGKILL to a paused container thaws it to deliver
 * (runc's Signal: "only thaw the cgroup for SIGKILL"); other signals stay pending until resume.
 */
export const signalThaws = (sig: number): boolean => sig === 9
