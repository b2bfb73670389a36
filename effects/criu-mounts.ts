/**
 * What runc decides about mounts and configuration around CRIU (libcontainer/container_linux.go,
 * v1.1.5), kept apart from the checkpoint flow:
 *
 * - inRootfs: the mountpoint CRIU sees for a destination. The init resolves every destination inside
 *   the rootfs (openat2 RESOLVE_IN_ROOT), so a bind at /link, a symlink to /mnt/real, is at /mnt/real in
 *   the mountinfo CRIU reads: the external key must be that path (runc's addCriuDumpMount and
 *   addCriuRestoreMount, through securejoin).
 * - criuConfigFile: the `org.criu.config` annotation (handleCriuConfigurationFile).
 * - prepareRestoreMountpoints: the mountpoints a restore needs before CRIU runs
 *   (prepareCriuRestoreMounts / makeCriuRestoreMountpoints).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { Spec } from "../config/spec.ts"
import type { ContainerError } from "./errors.ts"
import { toSyscallError } from "./kernel-live.ts"

/** As filepath-securejoin: at most this many symlinks on the way (then the path is taken as written). */
const MAX_SYMLINKS = 255

/** A bind made before: what the container sees at `dest` (a resolved container path) is the host's `source`. */
export interface Bound {
  readonly dest: string
  readonly source: string
}

/** Where the container path `p` is on the host: in the source of the deepest earlier bind holding it, else in the rootfs. */
const hostPath = (root: string, binds: readonly Bound[], p: string): string => {
  const b = binds.filter((x) => p === x.dest || p.startsWith(x.dest === "/" ? "/" : `${x.dest}/`)).sort((x, y) => y.dest.length - x.dest.length)[0]
  return b ? path.join(b.source, p.slice(b.dest.length)) : path.join(root, p)
}

/**
 * `dest` resolved inside `root` as the container sees it, as an absolute container path: symlinks are
 * followed with `root` as their "/", ".." stops at the root, and components that do not exist (yet)
 * are kept as written. Components below an earlier bind are looked up in its source, as the init's
 * openat2 finds them once that bind is mounted (runc binds them for the moment instead). Mounts of
 * other kinds are not looked into: their content does not exist before they are mounted. The host
 * is only read (lstat, readlink), never written.
 */
export function inRootfs(root: string, dest: string, binds: readonly Bound[] = []): string {
  const done: string[] = []
  let todo = dest.split("/")
  let links = 0
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === "" || part === ".") continue
    if (part === "..") {
      done.pop()
      continue
    }
    const here = `/${[...done, part].join("/")}`
    let target: string | undefined
    // A bind's mountpoint is the mounted directory, never a symlink.
    if (!binds.some((b) => b.dest === here))
      try {
        const host = hostPath(root, binds, here)
        if (fs.lstatSync(host).isSymbolicLink()) target = fs.readlinkSync(host)
      } catch {
        // Missing (or unreadable): kept as written, as securejoin does for a path not created yet.
      }
    if (target === undefined) {
      done.push(part)
      continue
    }
    // A loop: runc's securejoin fails and runc keeps the destination as written.
    if (++links > MAX_SYMLINKS) return path.posix.join("/", dest)
    if (target.startsWith("/")) done.length = 0
    todo = [...target.split("/"), ...todo]
  }
  return `/${done.join("/")}`
}

/** runc's default CRIU configuration file for containers without the annotation. */
export const RUNC_CRIU_CONFIG = "/etc/criu/runc.conf"

/**
 * The CRIU configuration file for a container (criu_opts.config_file), as runc's
 * handleCriuConfigurationFile: the `org.criu.config` annotation if it names one; none if it is set
 * to ""; /etc/criu/runc.conf without the annotation. CRIU ignores a file that does not exist (its
 * parse_config gives up on fopen), so the default costs nothing where there is none. Its settings
 * override the ones the request carries.
 */
export function criuConfigFile(annotations: Spec["annotations"]): string | undefined {
  const named = annotations?.["org.criu.config"]
  if (named === undefined) return RUNC_CRIU_CONFIG
  return named === "" ? undefined : named
}

const isBind = (m: NonNullable<Spec["mounts"]>[number]) => m.type === "bind" || (m.options ?? []).some((o) => o === "bind" || o === "rbind")

/**
 * Creates, before CRIU restores the mount tree, the mountpoints it will look for: CRIU mounts into
 * the tree as it finds it and fails on a missing one ("Can't stat mountpoint …"). A restore into a
 * new rootfs (another host, a fresh copy) lacks the directories create made, and a bind nested in
 * another bind (/data from one host directory, /data/sub from another) needs `sub` in the outer
 * one's source, which a restore may name anew.
 *
 * As runc's prepareCriuRestoreMounts, in the config's order: a bind's mountpoint is made as a
 * directory, or a file when its source is one; any other mount's as a directory; cgroup mounts need
 * none (CRIU restores /sys/fs/cgroup's tmpfs, or cgroup2 appears with /sys). runc skips what lies
 * in a tmpfs, whose content CRIU restores; here also what lies in any mount that is not a bind
 * (proc, sysfs, mqueue: the kernel provides their entries, a directory made below would only
 * litter the rootfs). Where runc bind-mounts each bind for the moment so that the mountpoints nested
 * in it land in its source, this maps the path onto that source instead: the same directories,
 * without mounting on the host.
 */
export const prepareRestoreMountpoints = (spec: Spec, rootfs: string, bundleDir: string): Effect.Effect<void, ContainerError> =>
  Effect.gen(function* () {
    /** Earlier mounts: their resolved destination, and the host directory a bind shows there. */
    const earlier: { dest: string; source?: string }[] = []
    const bound: Bound[] = []
    for (const m of spec.mounts ?? []) {
      const dest = inRootfs(rootfs, m.destination, bound)
      const under = earlier
        .filter((e) => dest !== e.dest && dest.startsWith(e.dest === "/" ? "/" : `${e.dest}/`))
        .sort((a, b) => b.dest.length - a.dest.length)[0]
      // Below a bind: the path in its source (the deepest bind holding it), else in the rootfs.
      const host = hostPath(rootfs, bound, dest)
      const source = isBind(m) ? path.resolve(bundleDir, m.source ?? "") : undefined
      earlier.push({ dest, ...(source !== undefined ? { source } : {}) })
      if (source !== undefined) bound.push({ dest, source })
      if (m.type === "cgroup" || (under && under.source === undefined)) continue
      const st = source !== undefined ? fs.statSync(source, { throwIfNoEntry: false }) : undefined
      yield* Effect.try({
        try: () => {
          if (st && !st.isDirectory()) {
            fs.mkdirSync(path.dirname(host), { recursive: true, mode: 0o755 })
            if (!fs.existsSync(host)) fs.closeSync(fs.openSync(host, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o755))
          } else fs.mkdirSync(host, { recursive: true, mode: 0o755 })
        },
        catch: toSyscallError("mkdir", host),
      })
    }
  })
