/**
 * The checkpoint and restore options that need checking before CRIU runs: runc's
 * --empty-ns, --page-server, --status-fd, and the CRIU features that pre-dump,
 * parent images and lazy pages depend on (runc's checkCriuFeatures). A bad value
 * is a ConfigError naming the option, returned before anything is frozen,
 * written or created.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { CLONE_FLAGS } from "../config/linux-names.ts"
import type { CriuFeatures, PageServer } from "./criu.ts"
import { ConfigError, CriuFailed } from "./errors.ts"

/**
 * The CLONE_NEW* mask for CRIU's empty_ns. CRIU can leave only a network namespace empty (it then
 * neither dumps its devices, addresses, routes and iptables nor restores them: the restored tree gets
 * a fresh one), so that is the one runc accepts too.
 */
export function emptyNsMask(types: readonly string[] | undefined, field = "emptyNamespaces"): Effect.Effect<number, ConfigError> {
  let mask = 0
  for (const [i, t] of (types ?? []).entries()) {
    if (t !== "network") return Effect.fail(new ConfigError({ path: `${field}[${i}]`, reason: `namespace "${t}" cannot be left empty (CRIU supports only "network")` }))
    mask |= CLONE_FLAGS.network
  }
  return Effect.succeed(mask)
}

/** A page server's address and port, checked. */
export function checkPageServer(ps: PageServer, field = "pageServer"): Effect.Effect<PageServer, ConfigError> {
  if (ps.address === "") return Effect.fail(new ConfigError({ path: `${field}.address`, reason: "empty address" }))
  if (!Number.isInteger(ps.port) || ps.port < 1 || ps.port > 65535)
    return Effect.fail(new ConfigError({ path: `${field}.port`, reason: `port ${ps.port} is not in 1–65535` }))
  return Effect.succeed(ps)
}

/** runc's --page-server ADDRESS:PORT ("[::1]:27" for IPv6), as a PageServer. */
export function parsePageServer(text: string): PageServer | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text)
  return m ? { address: m[1] ?? m[2] ?? "", port: Number(m[3]) } : undefined
}

/**
 * A status fd must be open for writing: its access mode, as /proc/self/fdinfo shows it (runc checks
 * F_GETFL). A zero-byte write would test the same on a pipe but sends an empty datagram on a socket.
 */
export function checkStatusFd(fd: number, lazyPages: boolean): Effect.Effect<number, ConfigError> {
  if (!lazyPages) return Effect.fail(new ConfigError({ path: "statusFd", reason: "only a lazy-pages checkpoint reports readiness (set lazyPages)" }))
  let flags: number
  try {
    flags = parseInt(/^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1] ?? "", 8)
  } catch (e) {
    return Effect.fail(new ConfigError({ path: "statusFd", reason: `fd ${fd} is not open (${(e as NodeJS.ErrnoException).code ?? String(e)})` }))
  }
  // O_ACCMODE: 0 O_RDONLY, 1 O_WRONLY, 2 O_RDWR.
  return (flags & 3) === 1 || (flags & 3) === 2 ? Effect.succeed(fd) : Effect.fail(new ConfigError({ path: "statusFd", reason: `fd ${fd} is not open for writing` }))
}

/**
 * Refuses a request whose CRIU feature this kernel lacks, naming it (runc: "criu is missing
 * features: [MemTrack]"). Memory tracking is the soft-dirty bit: kernels built without
 * CONFIG_MEM_SOFT_DIRTY have none, and then neither pre-dumps nor parent images work.
 */
export function requireFeatures(
  action: string,
  have: CriuFeatures,
  want: { readonly memTrack?: boolean; readonly lazyPages?: boolean },
): Effect.Effect<void, CriuFailed> {
  const missing = [
    ...(want.memTrack && !have.memTrack ? ["MemTrack (memory dirty tracking: this kernel has no soft-dirty bits, CONFIG_MEM_SOFT_DIRTY)"] : []),
    ...(want.lazyPages && !have.lazyPages ? ["LazyPages (userfaultfd)"] : []),
  ]
  return missing.length ? Effect.fail(new CriuFailed({ action, reason: `CRIU is missing features: ${missing.join(", ")}` })) : Effect.void
}

/** Writes the lazy-pages "ready" byte to a status fd and closes it (runc's status-ready handling). */
export const signalStatusFd = (fd: number): Effect.Effect<void> =>
  Effect.sync(() => {
    try {
      fs.writeSync(fd, Buffer.from([0]))
    } catch {
      /* the reader is gone: nobody to tell */
    }
    closeQuietly(fd)
  })

export const closeQuietly = (fd: number) => {
  try {
    fs.closeSync(fd)
  } catch {
    /* already closed */
  }
}
