/**
 * What `<root>/<id>/state.json` holds: enough for another process to load the
 * container and go on, and for `delete` to clean up after a crash at any point
 * (each resource is recorded before it is taken).
 */
import { Schema as S } from "effect"
import { Spec } from "../config/spec.ts"

/** The last status written; `load` reconciles it with the kernel (runc's refreshState). */
export const RecordedStatus = S.Literals(["creating", "created", "running", "paused", "stopped"])
export type RecordedStatus = typeof RecordedStatus.Type

export const ExitStatusSchema = S.Struct({ code: S.NullOr(S.Number), signal: S.NullOr(S.Number) })

export const ContainerRecord = S.Struct({
  version: S.Literal(1),
  id: S.String,
  bundle: S.String,
  rootfs: S.String,
  created: S.String,
  status: RecordedStatus,
  /** The init process: a pid is only trusted together with its start time (field 22 of /proc/PID/stat). */
  init: S.optional(S.Struct({ pid: S.Number, startTime: S.Number })),
  /** Hierarchy mount point → the container's cgroup directory in it. */
  cgroups: S.Record(S.String, S.String),
  /** The cgroup driver that made `cgroups` (absent: the fs manager); delete and update go through the same one. */
  cgroupDriver: S.optional(S.Literal("systemd")),
  /** Whether the init has its own pid namespace (then killing it kills everything). */
  ownPidNs: S.Boolean,
  exit: S.optional(ExitStatusSchema),
  /** The last checkpoint (CRIU images) taken of the container; with status "stopped" the container is checkpointed. */
  checkpoint: S.optional(S.Struct({ imagePath: S.String, at: S.String })),
  spec: Spec,
})
export type ContainerRecord = typeof ContainerRecord.Type
