/**
 * The default seccomp profile: an allow-list equal in effect to Docker/Moby's
 * default (moby/moby profiles/seccomp/default.json, read 2025; the same list
 * podman and containerd ship), rendered for x86_64 the way Moby renders it for
 * a container: the arch-specific entries of amd64/x32/x86 only, and the
 * entries gated on capabilities ("includes"/"excludes" caps) decided by the
 * container's bounding set. Everything not listed fails with EPERM.
 * Our own data, not a copy of the JSON: regenerate by reading that file
 * again when Moby changes it.
 */
import type { SeccompProfile, SeccompRule } from "./seccomp-spec.ts"

/** Allowed for every container (Moby's first, unconditional group, plus ptrace & co: minKernel 4.8). */
const ALLOWED: readonly string[] = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev process_vm_readv process_vm_writev ptrace arch_prctl modify_ldt`
  .trim()
  .split(/\s+/)

/** Allowed only with a capability in the bounding set (Moby's "includes": { caps }). */
const BY_CAPABILITY: Readonly<Record<string, readonly string[]>> = {
  CAP_SYS_ADMIN: ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"],
  CAP_DAC_READ_SEARCH: ["open_by_handle_at"],
  CAP_SYS_BOOT: ["reboot"],
  CAP_SYS_CHROOT: ["chroot"],
  CAP_SYS_MODULE: ["delete_module", "init_module", "finit_module"],
  CAP_SYS_PACCT: ["acct"],
  CAP_SYS_PTRACE: ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
  CAP_SYS_RAWIO: ["iopl", "ioperm"],
  CAP_SYS_TIME: ["settimeofday", "stime", "clock_settime", "clock_settime64"],
  CAP_SYS_TTY_CONFIG: ["vhangup"],
  CAP_SYS_NICE: ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
  CAP_SYSLOG: ["syslog"],
  CAP_BPF: ["bpf"],
  CAP_PERFMON: ["perf_event_open"],
}

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: what clone may not carry without CAP_SYS_ADMIN (Moby's 2114060288). */
const CLONE_NS_MASK = 0x7e020000

/** The default profile for a container whose bounding set is `caps` (Moby's rendering, on x86_64). */
export function defaultSeccompProfile(caps: readonly string[] = []): SeccompProfile {
  const has = (c: string) => caps.includes(c)
  const syscalls: SeccompRule[] = [
    { names: ALLOWED, action: "SCMP_ACT_ALLOW" },
    // socket(AF_VSOCK) is refused: vsock reaches the host past network namespaces.
    { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 40, op: "SCMP_CMP_NE" }] },
    // personality: only the harmless personas (Linux, its 32-bit-address and uname26 variants, query).
    ...[0, 8, 0x20000, 0x20008, 0xffffffff].map((p): SeccompRule => ({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: p, op: "SCMP_CMP_EQ" }] })),
  ]
  for (const [cap, names] of Object.entries(BY_CAPABILITY)) if (has(cap)) syscalls.push({ names, action: "SCMP_ACT_ALLOW" })
  if (!has("CAP_SYS_ADMIN")) {
    // clone without namespace flags; clone3 cannot be filtered on its flags (they sit in memory), so it
    // reports ENOSYS and libc falls back to clone.
    syscalls.push({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NS_MASK, op: "SCMP_CMP_MASKED_EQ" }] })
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 })
  }
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls,
  }
}

/** The default profile for runc's default capabilities (what `spec` writes). */
export const DEFAULT_SECCOMP: SeccompProfile = defaultSeccompProfile(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
