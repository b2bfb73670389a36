/**
 * Re-acquiring a process by pid and start time, the rule every command that finds a container's init
 * again goes by. Plain functions, no Effect: KernelLive.attach (kernel-live.ts) and the command line's
 * lean path (cli/lean-entry.ts) share them.
 */
import * as fs from "node:fs"
import { addon } from "../native/addon.ts"

/** Field 22 of /proc/PID/stat (clock ticks since boot), or undefined if the process is gone. */
export function readStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[19])
  } catch {
    return undefined
  }
}

/**
 * Whether `pid` is still the process that started at `startTime` and is not a zombie: the identity
 * rule. Racy on its own (the pid can be reused right after); attachPid pins it first.
 */
export function processMatches(pid: number, startTime: number): boolean {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return false
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[0] !== "Z" && Number(fields[19]) === startTime
}

/**
 * A pidfd of `pid` if processMatches; undefined when it is gone (or the pid was reused). The caller
 * closes the fd. For a caller that acts on the process (signals it, waits for it).
 */
export function attachPid(pid: number, startTime: number): number | undefined {
  let fd: number
  try {
    fd = addon.pidfdOpen(pid)
  } catch {
    return undefined
  }
  // The pidfd pins the process; only now is the start time check free of races.
  if (!processMatches(pid, startTime)) {
    fs.closeSync(fd)
    return undefined
  }
  return fd
}
