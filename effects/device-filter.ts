/**
 * Installs a cgroup v2 device filter: the eBPF program for the container's
 * device rules (config/device-bpf.ts) loaded and attached to its cgroup
 * directory through the addon. runc's algorithm (devices/ebpf_linux.go):
 *
 * - list what is attached to this very cgroup (not what it inherits);
 * - one program there (ours, from create or the last update): attach the new
 *   one with BPF_F_REPLACE naming it, so that the swap is atomic; no access
 *   is ever decided by neither or by both;
 * - none, or several (someone else's too): attach with BPF_F_ALLOW_MULTI, then
 *   detach the old ones. BPF_F_ALLOW_MULTI because a parent's programs (a
 *   systemd unit's, say) must keep running on top of ours: the kernel allows an
 *   access only when every program up the tree allows it.
 *
 * An attached program lives as long as the cgroup: the fds we hold while
 * attaching are closed before we return, and the CLI process may exit.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { deviceProgram, encodeEbpf } from "../config/device-bpf.ts"
import { isDeviceProblem, reduceDeviceRules } from "../config/device-rules.ts"
import type { DeviceRuleSpec } from "../config/spec.ts"
import { addon } from "../native/addon.ts"
import { CgroupError } from "./errors.ts"

/** Loads and attaches `program` (encoded instructions) to the cgroup directory `dir`. */
export type AttachDeviceProgram = (dir: string, program: Uint8Array) => Effect.Effect<void, CgroupError>

/** The program for the rules (the spec's, with runc's defaults already appended by the caller). */
export const deviceFilterProgram = (rules: readonly DeviceRuleSpec[], dir: string): Effect.Effect<Uint8Array, CgroupError> => {
  const state = reduceDeviceRules(rules)
  // Validation refuses these first (config/resources-v2.ts); reaching here is a caller's bug, and fails closed.
  return isDeviceProblem(state)
    ? Effect.fail(new CgroupError({ op: "build device filter for", path: dir, reason: `devices[${state.index}]: ${state.reason}` }))
    : Effect.succeed(encodeEbpf(deviceProgram(state)))
}

const errnoOf = (e: unknown) => {
  const err = e as NodeJS.ErrnoException & { log?: string }
  const log = err.log?.trim().split("\n").slice(-3).join(" | ")
  return `${err.code ?? String(e)}${log ? ` (verifier: ${log})` : ""}`
}

/** The live attach, through the addon's bpf(2) wrappers. */
export const attachDeviceProgram: AttachDeviceProgram = (dir, program) =>
  Effect.try({
    try: () => {
      const fds: number[] = []
      try {
        const olds = addon.bpfQueryDevicePrograms(dir).flatMap((id) => {
          try {
            return [addon.bpfProgramFdById(id)]
          } catch (e) {
            // runc skips programs an LSM hides from us: they can only deny more, never allow.
            if ((e as NodeJS.ErrnoException).code === "EPERM" || (e as NodeJS.ErrnoException).code === "EACCES") return []
            throw e
          }
        })
        fds.push(...olds)
        const prog = addon.bpfLoadDeviceProgram(program, "GPL")
        fds.push(prog)
        if (olds.length === 1) addon.bpfAttachDeviceProgram(dir, prog, olds[0])
        else {
          addon.bpfAttachDeviceProgram(dir, prog)
          for (const old of olds) addon.bpfDetachDeviceProgram(dir, old)
        }
      } finally {
        for (const fd of fds) fs.closeSync(fd)
      }
    },
    catch: (e) => new CgroupError({ op: "attach device filter to", path: dir, reason: errnoOf(e) }),
  })
