/**
 * The battery's shared leak check, run after every chaos run. Everything a test creates carries a
 * tag (in its ids and its cgroupsPath parent) or lives under a test directory; this looks for any
 * of it left in the kernel: cgroup dirs in every hierarchy (each v1 one and the unified one), the
 * processes in them or holding an fd or cwd under a test dir (a pivoted init's /proc/PID/root reads
 * "/", so the root link alone would find nothing), mounts in the host's mountinfo, entries in the
 * state root, our own zombies, and the manager's open fd count against a baseline.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface LeakScope {
  /** A string every id and cgroup of the run contains. */
  readonly tag: string
  /** State roots: each must be empty (or absent). */
  readonly roots: readonly string[]
  /** Directories no process may hold an fd or cwd under, and no mount may be under. */
  readonly dirs: readonly string[]
  /** The manager's fd count before the run (checked when given). */
  readonly fdBaseline?: number
  /** Pids exempt from the process check (e.g. a bystander the test owns). */
  readonly exempt?: readonly number[]
}

/** The open fds of a process (default: this one). */
export function fdCount(pid: number | "self" = "self"): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length
}

/** Every cgroup directory whose name contains `tag`, in every hierarchy (v1 ones and the unified one). */
export function taggedCgroups(tag: string): string[] {
  const found: string[] = []
  const walk = (dir: string, depth: number, inside: boolean) => {
    if (depth > 8) return
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue
      const p = path.join(dir, e.name)
      const tagged = inside || e.name.includes(tag)
      if (tagged) found.push(p)
      walk(p, depth + 1, tagged)
    }
  }
  walk("/sys/fs/cgroup", 0, false)
  return found
}

const readOr = (file: string, fallback = ""): string => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return fallback
  }
}

const under = (p: string, dirs: readonly string[]) => dirs.some((d) => p === d || p.startsWith(d.endsWith("/") ? d : `${d}/`))

const statFields = (pid: string): string[] => {
  const stat = readOr(`/proc/${pid}/stat`)
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}
const isZombie = (pid: string) => statFields(pid)[0] === "Z"
const ppidOf = (pid: string) => Number(statFields(pid)[1])

/** Processes in a tagged cgroup, or with an fd or cwd under one of `dirs`, or a tag in their cgroup path. */
export function taggedProcesses(tag: string, dirs: readonly string[], cgroupDirs: readonly string[]): string[] {
  const problems: string[] = []
  const seen = new Set<number>()
  for (const d of cgroupDirs)
    for (const line of readOr(path.join(d, "cgroup.procs")).split("\n"))
      if (line && !seen.has(Number(line))) {
        seen.add(Number(line))
        problems.push(`process ${line} in cgroup ${d}`)
      }
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    const pid = Number(p)
    if (pid === process.pid || seen.has(pid)) continue
    // An exited process another parent has yet to reap (a killed manager's init goes to pid 1, which
    // here reaps when it gets to it) holds nothing but its pid; our own zombies are ourZombies()'s.
    if (isZombie(p) && ppidOf(p) !== process.pid) continue
    if (readOr(`/proc/${p}/cgroup`).includes(tag)) {
      seen.add(pid)
      problems.push(`process ${p} (${readOr(`/proc/${p}/comm`).trim()}) in a tagged cgroup`)
      continue
    }
    let cwd = ""
    try {
      cwd = fs.readlinkSync(`/proc/${p}/cwd`)
    } catch {
      /* gone, or a kernel thread */
    }
    if (cwd && under(cwd, dirs)) {
      seen.add(pid)
      problems.push(`process ${p} (${readOr(`/proc/${p}/comm`).trim()}) has its cwd at ${cwd}`)
      continue
    }
    let fds: string[] = []
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let target = ""
      try {
        target = fs.readlinkSync(`/proc/${p}/fd/${fd}`)
      } catch {
        continue
      }
      if (under(target, dirs) || target.includes(tag)) {
        seen.add(pid)
        problems.push(`process ${p} (${readOr(`/proc/${p}/comm`).trim()}) holds fd ${fd} → ${target}`)
        break
      }
    }
  }
  return problems
}

/** Mounts under a test dir or naming the tag, in the host's mountinfo (ours and pid 1's). */
export function taggedMounts(tag: string, dirs: readonly string[]): string[] {
  const problems = new Set<string>()
  for (const file of ["/proc/self/mountinfo", "/proc/1/mountinfo"])
    for (const line of readOr(file).split("\n")) {
      const f = line.split(" ")
      const [root, mountPoint] = [f[3] ?? "", f[4] ?? ""]
      if (under(mountPoint, dirs) || mountPoint.includes(tag) || root.includes(tag)) problems.add(`mount ${mountPoint} (root ${root})`)
    }
  return [...problems]
}

/** Zombies whose parent is this process (an exit status nobody collected). */
export function ourZombies(): string[] {
  const problems: string[] = []
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    if (isZombie(p) && ppidOf(p) === process.pid) problems.push(`zombie ${p} (${readOr(`/proc/${p}/comm`).trim()}, ${/NSpid:.*/.exec(readOr(`/proc/${p}/status`))?.[0] ?? ""})`)
  }
  return problems
}

/** Everything the run left behind (empty: nothing). */
export function leaks(scope: LeakScope): string[] {
  const cgroups = taggedCgroups(scope.tag)
  const problems = [
    ...cgroups.map((d) => `cgroup ${d}`),
    ...taggedProcesses(scope.tag, scope.dirs, cgroups).filter((p) => !(scope.exempt ?? []).some((pid) => p.startsWith(`process ${pid} `))),
    ...taggedMounts(scope.tag, scope.dirs),
    ...ourZombies(),
  ]
  for (const root of scope.roots) for (const e of fs.existsSync(root) ? fs.readdirSync(root) : []) problems.push(`state root entry ${path.join(root, e)}`)
  if (scope.fdBaseline !== undefined) {
    const now = fdCount()
    // Only growth: an fd of an earlier, unrelated task (a child's pipe, a test runner's) may close meanwhile.
    if (now > scope.fdBaseline) problems.push(`manager fd count ${scope.fdBaseline} → ${now}`)
  }
  return problems
}

/**
 * leaks(), asked again for up to `ms` while it finds something: a killed manager's orphans are
 * still dying (their parent is gone; the kernel and pid 1 finish them) for a moment after recovery.
 */
export async function settledLeaks(scope: LeakScope, ms = 2000): Promise<string[]> {
  const end = Date.now() + ms
  let found = leaks(scope)
  while (found.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50))
    found = leaks(scope)
  }
  return found
}
