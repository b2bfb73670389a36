/** Linux's numbers for the names config.json uses (capabilities, rlimits, namespaces, mount options). */

const capNames = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
]
/** "CAP_CHOWN" → 0 … "CAP_CHECKPOINT_RESTORE" → 40. */
export const CAPABILITIES: ReadonlyMap<string, number> = new Map(capNames.map((n, i) => [`CAP_${n}`, i]))

const rlimitNames = [
  "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING",
  "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
]
/** "RLIMIT_CPU" → 0 … "RLIMIT_RTTIME" → 15. */
export const RLIMITS: ReadonlyMap<string, number> = new Map(rlimitNames.map((n, i) => [`RLIMIT_${n}`, i]))

/** CLONE_NEW* flag of each OCI namespace type. */
export const CLONE_FLAGS = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  cgroup: 0x02000000,
  time: 0x00000080,
} as const

/** Mount flags (sys/mount.h). */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  POSIXACL: 1 << 16,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  I_VERSION: 1 << 23,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const

/** Mount options that set (or clear) a flag, as runc's parseMountOptions knows them. */
export const MOUNT_FLAG_OPTIONS: ReadonlyMap<string, { readonly clear: boolean; readonly flag: number }> = new Map([
  ["ro", { clear: false, flag: MS.RDONLY }],
  ["rw", { clear: true, flag: MS.RDONLY }],
  ["nosuid", { clear: false, flag: MS.NOSUID }],
  ["suid", { clear: true, flag: MS.NOSUID }],
  ["nodev", { clear: false, flag: MS.NODEV }],
  ["dev", { clear: true, flag: MS.NODEV }],
  ["noexec", { clear: false, flag: MS.NOEXEC }],
  ["exec", { clear: true, flag: MS.NOEXEC }],
  ["sync", { clear: false, flag: MS.SYNCHRONOUS }],
  ["async", { clear: true, flag: MS.SYNCHRONOUS }],
  ["dirsync", { clear: false, flag: MS.DIRSYNC }],
  ["mand", { clear: false, flag: MS.MANDLOCK }],
  ["nomand", { clear: true, flag: MS.MANDLOCK }],
  ["noatime", { clear: false, flag: MS.NOATIME }],
  ["atime", { clear: true, flag: MS.NOATIME }],
  ["nodiratime", { clear: false, flag: MS.NODIRATIME }],
  ["diratime", { clear: true, flag: MS.NODIRATIME }],
  ["relatime", { clear: false, flag: MS.RELATIME }],
  ["norelatime", { clear: true, flag: MS.RELATIME }],
  ["strictatime", { clear: false, flag: MS.STRICTATIME }],
  ["nostrictatime", { clear: true, flag: MS.STRICTATIME }],
  ["nosymfollow", { clear: false, flag: MS.NOSYMFOLLOW }],
  ["symfollow", { clear: true, flag: MS.NOSYMFOLLOW }],
  ["acl", { clear: false, flag: MS.POSIXACL }],
  ["noacl", { clear: true, flag: MS.POSIXACL }],
  ["iversion", { clear: false, flag: MS.I_VERSION }],
  ["noiversion", { clear: true, flag: MS.I_VERSION }],
  ["lazytime", { clear: false, flag: MS.LAZYTIME }],
  ["nolazytime", { clear: true, flag: MS.LAZYTIME }],
  ["silent", { clear: false, flag: MS.SILENT }],
  ["loud", { clear: true, flag: MS.SILENT }],
  ["defaults", { clear: false, flag: 0 }],
  ["bind", { clear: false, flag: MS.BIND }],
  ["rbind", { clear: false, flag: MS.BIND | MS.REC }],
])

/** mount_setattr(2) attributes (linux/mount.h). */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  ATIME: 0x70, // the mask of the atime mode: set one, clear this
  RELATIME: 0,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  NOSYMFOLLOW: 0x200000,
} as const

/**
 * Options applied to a mount and every mount below it (mount_setattr AT_RECURSIVE), as runc's
 * recAttrFlags: "rro" makes the submounts of a bind read-only too.
 */
export const RECURSIVE_OPTIONS: ReadonlyMap<string, { readonly clear: boolean; readonly attr: number }> = new Map([
  ["rro", { clear: false, attr: MOUNT_ATTR.RDONLY }],
  ["rrw", { clear: true, attr: MOUNT_ATTR.RDONLY }],
  ["rnosuid", { clear: false, attr: MOUNT_ATTR.NOSUID }],
  ["rsuid", { clear: true, attr: MOUNT_ATTR.NOSUID }],
  ["rnodev", { clear: false, attr: MOUNT_ATTR.NODEV }],
  ["rdev", { clear: true, attr: MOUNT_ATTR.NODEV }],
  ["rnoexec", { clear: false, attr: MOUNT_ATTR.NOEXEC }],
  ["rexec", { clear: true, attr: MOUNT_ATTR.NOEXEC }],
  ["rnodiratime", { clear: false, attr: MOUNT_ATTR.NODIRATIME }],
  ["rdiratime", { clear: true, attr: MOUNT_ATTR.NODIRATIME }],
  ["rrelatime", { clear: false, attr: MOUNT_ATTR.RELATIME }],
  ["rnorelatime", { clear: true, attr: MOUNT_ATTR.RELATIME }],
  ["rnoatime", { clear: false, attr: MOUNT_ATTR.NOATIME }],
  ["ratime", { clear: true, attr: MOUNT_ATTR.NOATIME }],
  ["rstrictatime", { clear: false, attr: MOUNT_ATTR.STRICTATIME }],
  ["rnostrictatime", { clear: true, attr: MOUNT_ATTR.STRICTATIME }],
  ["rnosymfollow", { clear: false, attr: MOUNT_ATTR.NOSYMFOLLOW }],
  ["rsymfollow", { clear: true, attr: MOUNT_ATTR.NOSYMFOLLOW }],
])

/** Propagation options. */
export const PROPAGATION_OPTIONS: ReadonlyMap<string, number> = new Map([
  ["private", MS.PRIVATE],
  ["rprivate", MS.PRIVATE | MS.REC],
  ["shared", MS.SHARED],
  ["rshared", MS.SHARED | MS.REC],
  ["slave", MS.SLAVE],
  ["rslave", MS.SLAVE | MS.REC],
  ["unbindable", MS.UNBINDABLE],
  ["runbindable", MS.UNBINDABLE | MS.REC],
])

/** Signals by name (without "SIG"), x86_64 numbering. */
export const SIGNALS: ReadonlyMap<string, number> = new Map([
  ["HUP", 1], ["INT", 2], ["QUIT", 3], ["ILL", 4], ["TRAP", 5], ["ABRT", 6], ["IOT", 6], ["BUS", 7], ["FPE", 8],
  ["KILL", 9], ["USR1", 10], ["SEGV", 11], ["USR2", 12], ["PIPE", 13], ["ALRM", 14], ["TERM", 15],
  ["STKFLT", 16], ["CHLD", 17], ["CONT", 18], ["STOP", 19], ["TSTP", 20], ["TTIN", 21], ["TTOU", 22],
  ["URG", 23], ["XCPU", 24], ["XFSZ", 25], ["VTALRM", 26], ["PROF", 27], ["WINCH", 28], ["IO", 29],
  ["POLL", 29], ["PWR", 30], ["SYS", 31],
])

/** A signal by number or name ("15", "TERM", "SIGTERM", any case); undefined for an unknown name. */
export const parseSignal = (sig: string): number | undefined => (/^\d+$/.test(sig) ? Number(sig) : SIGNALS.get(sig.toUpperCase().replace(/^SIG/, "")))
