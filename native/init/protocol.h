/*
 * The wire protocol between the manager (Node, through the addon) and the
 * init helper. TypeScript's native/protocol.ts mirrors every number here.
 *
 *   manager                         helper H (fd 3 = seqpacket socket)
 *   ───────                         ──────────────────────────────────
 *   spawn H from the sealed memfd ─►
 *   MSG_PLAN {op…}              ───► decode (reject unknown/oversize)
 *                                    run OP_JOIN_NS / OP_JOIN_PIDFD / OP_TIME_OFFSETS
 *                                    OP_CLONE: clone3(CLONE_PARENT|CLONE_PIDFD|ns…)
 *                                      H writes uid_map/gid_map of child C
 *                                      (OP_MOUNT_SOURCE: H joins C's mount ns, takes the trees)
 *   MSG_CHILD {pid} + [pidfd]   ◄─── H exits 0
 *   join cgroups (cgroup.procs)
 *   MSG_GO {hook states}        ───► C (same socket, inherited) runs its ops
 *   MSG_SYNC                    ◄─── C at OP_SYNC: prestart/createRuntime hooks run,
 *   MSG_GO                      ───►   then C goes on
 *   MSG_CONSOLE + [pty master]  ◄─── C at OP_CONSOLE (process.terminal)
 *   MSG_SECCOMP + [listener]    ◄─── C at OP_SECCOMP with N1 = 1 (SCMP_ACT_NOTIFY), no reply awaited
 *   MSG_READY                   ◄─── C at OP_WAIT_START, then blocks on exec.fifo
 *   (start: open exec.fifo for reading, read "0")
 *   EOF on the socket           ◄─── C execve'd (socket is CLOEXEC)
 *   MSG_ERROR {errno, op…}      ◄─── any failing step, H or C, then exit(1)
 *
 * Framing: a message is one seqpacket datagram (at most XC_MAX_MSG bytes):
 *   u16 type, u32 length, payload[length]          (little-endian)
 * A MSG_PLAN payload is a sequence of ops, each framed the same way:
 *   u16 op, u32 length, fields[length]
 * and a field (inside an op, or inside MSG_CHILD / MSG_ERROR) is:
 *   u16 tag, u32 length, value[length]
 * Tags XC_F_N0..XC_F_N7 are integers: exactly 8 bytes, u64 little-endian.
 * Tags XC_F_S0..XC_F_S7 are byte strings (no NUL inside, except where an op
 * documents a NUL-separated list); at most XC_MAX_STR bytes each.
 * Anything else (unknown tag/op, a length past the bytes left, a repeated
 * tag, more than XC_MAX_OPS ops) is rejected: CVE-2021-43784 was a length
 * that overflowed in runc's equivalent of this decoder.
 */
#ifndef XC_PROTOCOL_H
#define XC_PROTOCOL_H

/* Sized for what runc accepts: with the default 8 MiB stack an execve takes
 * 2 MiB of argv + env, so one string field may hold 3 MiB. A datagram is one
 * contiguous kernel allocation, and 4 MiB is the largest the kernel makes
 * (KMALLOC_MAX_SIZE; a larger send fails with ENOBUFS). The static buffers
 * these size are BSS: only the pages a plan uses become resident. */
#define XC_MAX_MSG (4u << 20)
#define XC_MAX_STR (3u << 20)
#define XC_MAX_OPS 65536
#define XC_HDR 6 /* u16 + u32 */

/* messages */
enum xc_msg {
	XC_MSG_CHILD = 1, /* N0 = pid of C (in the manager's pid ns); SCM_RIGHTS: pidfd of C */
	XC_MSG_READY = 2, /* no fields: C waits on the exec fifo */
	XC_MSG_CONSOLE = 5, /* no fields; SCM_RIGHTS: the master of the container's terminal */
	XC_MSG_SYNC = 4,  /* no fields: C waits at OP_SYNC for the manager's MSG_GO (it runs its hooks) */
	XC_MSG_SECCOMP = 6, /* no fields; SCM_RIGHTS: the seccomp user-notification listener (OP_SECCOMP, N1 = 1) */
	XC_MSG_ERROR = 3, /* N0 = errno, N1 = index of the op, N2 = op code, S0 = syscall/op name, S1 = path or detail;
	                     SCM_RIGHTS, from H after OP_CLONE only: the pidfd of C, killed, for the manager to reap */
	XC_MSG_PLAN = 16, /* payload = ops */
	XC_MSG_GO = 17,   /* C may run its ops. Optional fields: S0 = the OCI state given to OP_HOOK with N1 = 0
	                     (createContainer), S1 = the one for N1 = 1 (startContainer); only the pid makes
	                     them unknowable when the plan is built. Later MSG_GOs may repeat them. */
};

enum xc_field {
	XC_F_N0 = 0x00, XC_F_N1, XC_F_N2, XC_F_N3, XC_F_N4, XC_F_N5, XC_F_N6, XC_F_N7,
	XC_F_S0 = 0x10, XC_F_S1, XC_F_S2, XC_F_S3, XC_F_S4, XC_F_S5, XC_F_S6, XC_F_S7,
};

/*
 * Ops, in the order a plan normally has them. H runs every op before
 * OP_CLONE (and OP_CLONE itself); C runs every op after it, once MSG_GO came.
 * "in root" = a path relative to the rootfs of OP_ROOTFS, resolved with
 * openat2(RESOLVE_IN_ROOT) so that no symlink leads outside (CVE-2021-30465);
 * after OP_PIVOT_ROOT, paths are absolute in the container.
 */
enum xc_op {
	/* ── H, before the clone ── */
	XC_OP_JOIN_NS = 1,      /* N0 = CLONE_NEW* type, S0 = path: setns(open(path), type) */
	XC_OP_TIME_OFFSETS = 2, /* S0 = text for /proc/self/timens_offsets: unshare(CLONE_NEWTIME) then write it */
	XC_OP_CLONE = 3,        /* N0 = CLONE_NEW* flags to create (CLONE_NEWTIME excluded),
	                           S0 = uid_map text, S1 = gid_map text (both empty = no maps),
	                           N1 = 1: write "deny" to setgroups before gid_map,
	                           S2/S3 = path of newuidmap/newgidmap: run it as `S2 <pid> <S0's numbers>`
	                           (S3 with S1) instead of writing the map ("" = write it directly),
	                           N2 = 1: H makes itself dumpable before the clone so that, unprivileged, it may
	                           open C's /proc files; C clears it again once MSG_GO came */
	/* ── C ── */
	XC_OP_SETID_ROOT = 10,  /* setresgid(0,0,0), setresuid(0,0,0): become root of the new user ns */
	XC_OP_SETSID = 11,      /* setsid() */
	XC_OP_ROOT_PROPAGATION = 12, /* N0 = flags: mount(NULL, "/", NULL, N0, NULL) (MS_REC|MS_SLAVE …) */
	XC_OP_ROOTFS = 13,      /* S0 = absolute rootfs path: bind it onto itself (MS_BIND|MS_REC) unless N0 = 1 (no mount namespace); it becomes "root" */
	XC_OP_MOUNT = 14,       /* S0 = source (host path, or a name for proc/tmpfs…), S1 = target in root,
	                           S2 = fstype ("" for binds), S3 = data, N0 = mount flags,
	                           N1 = propagation flags applied after (0 = none),
	                           N2 = create the target if missing: 0 no, 1 directory, 2 empty file,
	                           N3 = if non-zero: remount with MS_REMOUNT|MS_BIND|N3 (ro/nosuid… of a bind),
	                           N4/N5 = mount_setattr(AT_RECURSIVE) attributes to set/clear after it,
	                           N6 = bits: 1 the target must be a plain directory (proc, sysfs), 2 copy up: fill
	                           the new mount with a copy of the directory it covers (tmpcopyup), 4 a target that
	                           exists before the op gives its mode to the new mount's root (runc's tmpfs chmod),
	                           N7 = k > 0: attach the k-th OP_MOUNT_SOURCE tree (move_mount) instead of mount(2).
	                           The mount goes through an O_PATH fd of the resolved target (/proc/self/fd/N). */
	XC_OP_MKNOD = 15,       /* S0 = target in root, N0 = mode (S_IFCHR|perm …), N1 = major, N2 = minor,
	                           N3 = uid, N4 = gid: mknod (replacing nothing: EEXIST is an error) then chown */
	XC_OP_SYMLINK = 16,     /* S0 = link path in root, S1 = link text: symlink; EEXIST is ignored */
	XC_OP_EXEC_FIFO = 17,   /* S0 = host path of exec.fifo: open O_PATH|O_CLOEXEC, kept for OP_WAIT_START */
	XC_OP_PIVOT_ROOT = 18,  /* N0 = 0: pivot_root into root and detach the old root; 1: MS_MOVE root onto / and chroot; 2: chroot only (no mount namespace).
	                           N1 = 1 (with N0 = 1): first make every full proc/sysfs mount outside root a slave
	                           and detach it (or cover it with a tmpfs where that is refused): a mount the chroot
	                           cannot see still lets the kernel allow a fresh procfs (runc's msMoveRoot) */
	XC_OP_MASK = 19,        /* S0 = absolute path: a directory gets a read-only tmpfs, anything else a bind of
	                           /dev/null (verified to be char 1:3 through an O_PATH fd, CVE-2025-31133);
	                           ENOENT is ignored */
	XC_OP_READONLY = 20,    /* S0 = absolute path: bind onto itself, remount read-only; ENOENT is ignored */
	XC_OP_REMOUNT_ROOT_RO = 21, /* remount / read-only, keeping the flags the kernel has locked; with S0 = an
	                               absolute path in root: remount that mount read-only, keeping its other flags */
	XC_OP_HOSTNAME = 22,    /* S0 */
	XC_OP_DOMAINNAME = 23,  /* S0 */
	XC_OP_SYSCTL = 24,      /* S0 = path under /proc/sys ("net/ipv4/ip_forward"), S1 = value; the fd written
	                           must be on procfs (fstatfs PROC_SUPER_MAGIC) */
	XC_OP_LOOPBACK_UP = 25, /* bring "lo" up (SIOCSIFFLAGS) */
	XC_OP_OOM_SCORE_ADJ = 26, /* N0 = value as a two's-complement u64 */
	XC_OP_RLIMIT = 27,      /* N0 = resource, N1 = soft, N2 = hard (u64, RLIM_INFINITY = ~0) */
	XC_OP_UMASK = 28,       /* N0 */
	XC_OP_RESOLVE_EXEC = 29, /* S0 = argv[0], S1 = PATH: find the program now (ENOENT/EACCES name it), as
	                            execvp would; remembered for OP_EXEC */
	XC_OP_WAIT_START = 30,  /* send MSG_READY, then open the OP_EXEC_FIFO fd through /proc/self/fd for writing
	                           (blocks until start), write "0", close it */
	XC_OP_CLOSE_FDS = 31,   /* N0 = first fd: mark N0..~0 close-on-exec (CVE-2024-21626) */
	XC_OP_CAPS_BOUNDING = 32, /* N0 = mask of caps to keep in the bounding set: drop every other cap up to
	                             /proc/sys/kernel/cap_last_cap */
	XC_OP_USER = 33,        /* N0 = uid, N1 = gid, S0 = additional gids as u32 little-endian array:
	                           setgroups, setresgid, then setresuid with PR_SET_KEEPCAPS */
	XC_OP_CAPS = 34,        /* N0 = effective, N1 = permitted, N2 = inheritable, N3 = ambient (64-bit masks):
	                           capset, then raise each ambient cap */
	XC_OP_CHDIR = 35,       /* S0 = cwd, N0 = mode. 0: chdir unless an earlier mode-2 chdir succeeded; 1: only
	                           create what is missing of it (directories 0755, in root); 2: chdir, but leave
	                           EACCES/EPERM to a later mode-0 op (runc chdirs while privileged, then retries
	                           after the user switch). A chdir refuses a cwd outside the root (getcwd
	                           "(unreachable)") */
	XC_OP_NO_NEW_PRIVS = 36,
	XC_OP_SECCOMP = 37,     /* S0 = struct sock_filter[] bytes, N0 = seccomp() flags; N1 = 1: add
	                           SECCOMP_FILTER_FLAG_NEW_LISTENER and send the listener fd in MSG_SECCOMP */
	XC_OP_EXEC = 38,        /* S0 = argv, S1 = env, both NUL-separated lists (each string NUL-terminated):
	                           execve of the OP_RESOLVE_EXEC result */
	XC_OP_UNSHARE = 39,     /* N0 = CLONE_NEW* flags: unshare() in C. A cgroup namespace is made here, after
	                           MSG_GO, so that its root is the container's cgroup (joined by then), as in
	                           runc's nsexec; OP_CLONE must not carry CLONE_NEWCGROUP */
	XC_OP_SYNC = 40,        /* send MSG_SYNC and wait for MSG_GO: the manager runs the prestart and
	                           createRuntime hooks at this point (EOF instead: exit 1) */
	XC_OP_HOOK = 41,        /* S0 = path, S1 = argv, S2 = env (NUL lists as OP_EXEC), N0 = timeout in seconds
	                           (0: none), N1 = which state from MSG_GO goes to its stdin, N2 = 1: its cwd is the
	                           rootfs (runc chdirs there before createContainer): run it in our namespaces
	                           and wait; a non-zero exit, a signal or the timeout fails the op */
	XC_OP_CONSOLE = 42,     /* N0 = rows, N1 = columns (0: leave), N2 = 1: bind the peer over /dev/console
	                           (the init's; not an exec'd process's). After OP_PIVOT_ROOT: open a pty in
	                           the container's devpts (/dev/pts/ptmx), bind through fds (CVE-2025-52565),
	                           send the master in MSG_CONSOLE, then make the peer our controlling
	                           terminal and stdio (setsid, TIOCSCTTY, dup2) */
	XC_OP_IOPRIO = 43,      /* N0 = ioprio value ((class << 13) | level): ioprio_set(IOPRIO_WHO_PROCESS, 0, N0) */
	XC_OP_SCHEDULER = 44,   /* N0 = policy, N1 = nice (two's complement), N2 = priority, N3 = sched_flags,
	                           N4 = runtime, N5 = deadline, N6 = period (ns): sched_setattr(0, …, 0) */
	XC_OP_PERSONALITY = 45, /* N0 = persona: personality(N0) */
	XC_OP_PRESERVE_FDS = 46, /* N0 = count: the helper got them at 4…; right before execve they move to
	                            3… without close-on-exec (runc's --preserve-fds), the socket out of the way */
	XC_OP_JOIN_PIDFD = 47,  /* N0 = fd (the manager passed the target's pidfd to the helper at that number),
	                           N1 = CLONE_NEW* flags: setns(pidfd, N1) joins them all at once, race-free
	                           (no /proc path that a reused pid could redirect); runs in H before OP_CLONE */
	XC_OP_LSM_EXEC = 48,    /* S0 = attr file ("/proc/thread-self/attr/apparmor/exec" …), S1 = text: write it
	                           once, so that the next execve enters that AppArmor profile / SELinux label.
	                           The file must be on procfs unless N0 = 1 (a test stand-in, see config/lsm.ts) */
	XC_OP_MOUNT_SOURCE = 49, /* H, before OP_CLONE: S0 = host path, N0 = 1: recursive, N1 = 1/2: id-map the
	                           tree (2: its submounts too) with C's user namespace (mount_setattr MOUNT_ATTR_IDMAP), or with
	                           S1/S2 = uid_map/gid_map text, one H makes for it (a child in a new user ns). Taken after the clone,
	                            as host root: H joins C's mount namespace (so that the copy keeps the
	                            flags the kernel locked there) and takes open_tree(OPEN_TREE_CLONE) of S0
	                            into the fd table C shares with it (the clone adds CLONE_FILES when a plan
	                            has one): a bind source a user namespace's root cannot reach (runc's mount
	                            fds). The k-th (from 1) is OP_MOUNT's N7 = k */
	XC_OP_CHOWN_STDIO = 50, /* N0 = uid: fchown fds 0-2 to it, except one that is the device of /dev/null;
	                           EINVAL/EPERM/EROFS leave that fd as it is (runc's fixStdioPermissions) */
	XC_OP_MAX
};

#endif
