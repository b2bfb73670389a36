/**
 * What a profile must let the init do after the filter is in, checked at create so that a
 * profile that cannot work fails with its cause named instead of a hang or a bare SIGSYS:
 *
 * - execve: the filter is installed before it (runc does the same); a profile whose every
 *   possible verdict for execve blocks it (the default action, or an unconditional rule) could
 *   never start the program. With ERRNO the init might not even be able to report it (its
 *   sendmsg and exit_group may be refused too) and would spin in _exit; with KILL it dies of
 *   SIGSYS and nothing says why.
 * - SCMP_ACT_NOTIFY: the init hands the listener fd over with sendmsg after installing the
 *   filter; if the profile notifies sendmsg nobody holds the listener yet to answer it (a
 *   deadlock), and if it blocks sendmsg the listener never arrives.
 * - SCMP_ACT_NOTIFY on write, or as the default action, is refused as runc refuses it
 *   (libcontainer/seccomp/seccomp_linux.go, InitSeccomp), in its words: runc's init writes the
 *   listener's number to its parent after the filter is in. Ours writes to exec.fifo at `start`
 *   after the filter is in: start would hang on the agent's answer, or fail on its errno. runc
 *   refuses any rule naming write with NOTIFY, conditional or not; so do we.
 *
 * Only the x86_64 section is judged: that is the ABI the init and execve use.
 */
import { ABIS, defaultRet, ENOSYS_RET, enosysCutoff, rulesByNr } from "./seccomp-compile.ts"
import { SECCOMP_RET, type SeccompProfile } from "./seccomp-spec.ts"

const action = (ret: number) => (ret & 0xffff0000) >>> 0
/** Verdicts under which the call goes ahead (TRACE without a tracer fails it with ENOSYS). */
const passes = (ret: number) => [SECCOMP_RET.ALLOW, SECCOMP_RET.LOG, SECCOMP_RET.USER_NOTIF].includes(action(ret) as never)

/** Every verdict the x86_64 section can give `name`, whatever its arguments. */
export function verdicts(profile: SeccompProfile, name: string): number[] {
  const nr = ABIS.x86_64.table[name]
  const cutoff = enosysCutoff(profile, ABIS.x86_64)
  if (nr !== undefined && cutoff !== undefined && nr > cutoff) return [ENOSYS_RET] // newer than the profile
  const rules = nr === undefined ? [] : (rulesByNr(profile, ABIS.x86_64).get(nr) ?? [])
  const out: number[] = []
  for (const r of rules) {
    out.push(r.ret)
    if (r.conds.length === 0) return out // later rules and the default are unreachable
  }
  return [...out, defaultRet(profile)]
}

/** The profile's words for why `name` gets what it gets: the first unconditional rule, else the default. */
function cause(profile: SeccompProfile, name: string): { path: string; what: string } {
  const i = (profile.syscalls ?? []).findIndex((s) => s.names.includes(name) && (s.args ?? []).length === 0 && s.action !== profile.defaultAction)
  if (i >= 0) return { path: `linux.seccomp.syscalls[${i}]`, what: `${profile.syscalls?.[i]?.action}` }
  return { path: "linux.seccomp.defaultAction", what: profile.defaultAction }
}

/** The first reason the init could not get through to the program under this profile, or undefined. */
export function startProblem(profile: SeccompProfile, notify: boolean): { path: string; reason: string } | undefined {
  if (!verdicts(profile, "execve").some(passes)) {
    const c = cause(profile, "execve")
    return { path: c.path, reason: `the seccomp profile blocks execve (${c.what}): the container's program could never start` }
  }
  if (notify) {
    const bad = notifyOnWrite(profile)
    if (bad) return bad
    const v = verdicts(profile, "sendmsg")
    if (v.some((r) => action(r) === SECCOMP_RET.USER_NOTIF)) {
      const c = cause(profile, "sendmsg")
      return { path: c.path, reason: "SCMP_ACT_NOTIFY on sendmsg would deadlock: the init sends the listener fd with sendmsg after the filter is in" }
    }
    if (!v.some(passes)) {
      const c = cause(profile, "sendmsg")
      return { path: c.path, reason: `the seccomp profile blocks sendmsg (${c.what}), which hands the SCMP_ACT_NOTIFY listener over` }
    }
  }
  return undefined
}

/** runc's two refusals of SCMP_ACT_NOTIFY: on write (any rule naming it), and as the default action. */
function notifyOnWrite(profile: SeccompProfile): { path: string; reason: string } | undefined {
  for (const [i, s] of (profile.syscalls ?? []).entries()) {
    const j = s.names.indexOf("write")
    if (s.action === "SCMP_ACT_NOTIFY" && j >= 0)
      return { path: `linux.seccomp.syscalls[${i}].names[${j}]`, reason: "SCMP_ACT_NOTIFY cannot be used for the write syscall (the init writes to exec.fifo at start, after the filter is in)" }
  }
  if (profile.defaultAction === "SCMP_ACT_NOTIFY")
    return { path: "linux.seccomp.defaultAction", reason: "SCMP_ACT_NOTIFY cannot be used as default action (it would notify write too)" }
  return undefined
}
