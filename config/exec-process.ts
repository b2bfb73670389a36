/**
 * The process an exec runs when the caller gives no whole process object: the container's own
 * (config) process with the caller's changes on top, as `runc exec` builds it (utils_linux.go's
 * newProcess over the config's process). One rule for the CLI's flags and the library's options.
 */
import type { ProcessSpec } from "./spec.ts"

export interface ExecChanges {
  /** The program and its arguments (required: the config's args are the init's, not an exec's). */
  readonly args: readonly string[]
  /** Allocate a terminal (default false, as runc exec without -t: the config's setting is the init's). */
  readonly terminal?: boolean
  /** Instead of the config's cwd. */
  readonly cwd?: string
  /** Added after the config's env (a later NAME= wins in the program's environ). */
  readonly env?: readonly string[]
  /** Instead of the config's uid (and gid, when given). */
  readonly user?: { readonly uid: number; readonly gid?: number }
  /** Added to the config's additional gids. */
  readonly additionalGids?: readonly number[]
  /** Added to the config's bounding, effective, permitted and ambient sets. */
  readonly capabilities?: readonly string[]
  /** On top of the config's (it can only be turned on). */
  readonly noNewPrivileges?: boolean
  /** Instead of the config's. */
  readonly apparmorProfile?: string
  /** Instead of the config's. */
  readonly selinuxLabel?: string
}

/** The config's process with `changes` applied; everything else (rlimits, umask, oomScoreAdj …) as the config's. */
export function execProcess(base: ProcessSpec, changes: ExecChanges): ProcessSpec {
  const caps = changes.capabilities ?? []
  const withCaps = (xs: readonly string[] | undefined) => [...(xs ?? []), ...caps]
  const u = changes.user
  return {
    ...base,
    args: [...changes.args],
    terminal: changes.terminal ?? false,
    cwd: changes.cwd ?? base.cwd,
    env: [...(base.env ?? []), ...(changes.env ?? [])],
    user: {
      ...base.user,
      ...(u ? { uid: u.uid, gid: u.gid ?? base.user.gid } : {}),
      additionalGids: [...(base.user.additionalGids ?? []), ...(changes.additionalGids ?? [])],
    },
    ...(base.capabilities
      ? {
          capabilities: {
            ...base.capabilities,
            bounding: withCaps(base.capabilities.bounding),
            effective: withCaps(base.capabilities.effective),
            permitted: withCaps(base.capabilities.permitted),
            ambient: withCaps(base.capabilities.ambient),
          },
        }
      : {}),
    noNewPrivileges: changes.noNewPrivileges === true || base.noNewPrivileges,
    // Applied by the same rules as the config's (refused where the host has no such LSM).
    ...(changes.apparmorProfile ? { apparmorProfile: changes.apparmorProfile } : {}),
    ...(changes.selinuxLabel ? { selinuxLabel: changes.selinuxLabel } : {}),
  }
}
