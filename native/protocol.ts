/**
 * The manager ⇄ init-helper wire format, mirroring native/init/protocol.h
 * (read that file for the exchange and for what each op does). Pure: the
 * encoder and decoder round-trip under fast-check (test/native/protocol.test.ts).
 */

/** The largest datagram (4 MiB: the kernel's largest allocation), string field (3 MiB) and plan (65536 ops). */
export const MAX_MSG = 4 << 20
export const MAX_STR = 3 << 20
export const MAX_OPS = 65536

export const Msg = {
  CHILD: 1,
  READY: 2,
  ERROR: 3,
  SYNC: 4,
  CONSOLE: 5,
  SECCOMP: 6,
  PLAN: 16,
  GO: 17,
} as const

export const Op = {
  JOIN_NS: 1,
  TIME_OFFSETS: 2,
  CLONE: 3,
  SETID_ROOT: 10,
  SETSID: 11,
  ROOT_PROPAGATION: 12,
  ROOTFS: 13,
  MOUNT: 14,
  MKNOD: 15,
  SYMLINK: 16,
  EXEC_FIFO: 17,
  PIVOT_ROOT: 18,
  MASK: 19,
  READONLY: 20,
  REMOUNT_ROOT_RO: 21,
  HOSTNAME: 22,
  DOMAINNAME: 23,
  SYSCTL: 24,
  LOOPBACK_UP: 25,
  OOM_SCORE_ADJ: 26,
  RLIMIT: 27,
  UMASK: 28,
  RESOLVE_EXEC: 29,
  WAIT_START: 30,
  CLOSE_FDS: 31,
  CAPS_BOUNDING: 32,
  USER: 33,
  CAPS: 34,
  CHDIR: 35,
  NO_NEW_PRIVS: 36,
  SECCOMP: 37,
  EXEC: 38,
  UNSHARE: 39,
  SYNC: 40,
  HOOK: 41,
  CONSOLE: 42,
  IOPRIO: 43,
  SCHEDULER: 44,
  PERSONALITY: 45,
  PRESERVE_FDS: 46,
  JOIN_PIDFD: 47,
  LSM_EXEC: 48,
  MOUNT_SOURCE: 49,
  CHOWN_STDIO: 50,
} as const
export type OpCode = (typeof Op)[keyof typeof Op]

const opNames = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]))
/** The op's name as in protocol.h ("MOUNT"), for logs and errors. */
export const opName = (code: number): string => opNames.get(code) ?? `op#${code}`

/**
 * One encoded op: integer fields n[0..7] and byte-string fields s[0..7]; an
 * absent field is simply not sent. Integers are bigint so that 64-bit masks
 * (capabilities, RLIM_INFINITY) survive.
 */
export interface WireOp {
  readonly op: number
  readonly n?: ReadonlyArray<bigint | undefined>
  readonly s?: ReadonlyArray<Uint8Array | string | undefined>
}

export class ProtocolError extends Error {
  override readonly name = "ProtocolError"
}

const HDR = 6
const utf8 = new TextEncoder()

const toBytes = (v: Uint8Array | string): Uint8Array => (typeof v === "string" ? utf8.encode(v) : v)

/** NUL-separated list, every element NUL-terminated (argv, env). */
export const nulList = (items: readonly string[]): Uint8Array => utf8.encode(items.map((i) => `${i}\0`).join(""))

function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HDR + payload.length)
  const dv = new DataView(out.buffer)
  dv.setUint16(0, type, true)
  dv.setUint32(2, payload.length, true)
  out.set(payload, HDR)
  return out
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

function encodeFields(o: WireOp): Uint8Array {
  const parts: Uint8Array[] = []
  o.n?.forEach((v, i) => {
    if (v === undefined) return
    const b = new Uint8Array(8)
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true)
    parts.push(frame(0x00 + i, b))
  })
  o.s?.forEach((v, i) => {
    if (v === undefined) return
    const b = toBytes(v)
    if (b.length > MAX_STR) throw new ProtocolError(`${opName(o.op)}: field S${i} is ${b.length} bytes (max ${MAX_STR})`)
    parts.push(frame(0x10 + i, b))
  })
  return concat(parts)
}

/** Encodes a whole plan as one MSG_PLAN datagram. */
export function encodePlan(ops: readonly WireOp[]): Uint8Array {
  if (ops.length > MAX_OPS) throw new ProtocolError(`plan has ${ops.length} ops (max ${MAX_OPS})`)
  const msg = frame(Msg.PLAN, concat(ops.map((o) => frame(o.op, encodeFields(o)))))
  if (msg.length > MAX_MSG) throw new ProtocolError(`plan is ${msg.length} bytes (max ${MAX_MSG})`)
  return msg
}

/** A message with no payload. */
export const encodeEmpty = (type: number): Uint8Array => frame(type, new Uint8Array(0))

/** MSG_GO, with the OCI states the helper hands to its createContainer (S0) and startContainer (S1) hooks. */
export const encodeGo = (states?: { readonly create: string; readonly start: string }): Uint8Array =>
  frame(Msg.GO, states ? encodeFields({ op: 0, s: [states.create, states.start] }) : new Uint8Array(0))

export interface DecodedFields {
  readonly n: Array<bigint | undefined>
  readonly s: Array<Uint8Array | undefined>
}

function decodeFields(buf: Uint8Array): DecodedFields {
  const n: Array<bigint | undefined> = []
  const s: Array<Uint8Array | undefined> = []
  for (const { type: tag, payload } of records(buf)) {
    if (tag <= 0x07) {
      if (payload.length !== 8) throw new ProtocolError(`integer field ${tag} has ${payload.length} bytes`)
      if (n[tag] !== undefined) throw new ProtocolError(`repeated field ${tag}`)
      n[tag] = new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0, true)
    } else if (tag >= 0x10 && tag <= 0x17) {
      if (payload.length > MAX_STR) throw new ProtocolError(`string field ${tag} too long`)
      if (s[tag - 0x10] !== undefined) throw new ProtocolError(`repeated field ${tag}`)
      s[tag - 0x10] = payload.slice()
    } else throw new ProtocolError(`unknown field tag ${tag}`)
  }
  return { n, s }
}

/** Splits a framed buffer into its records ({type, payload}). */
function records(buf: Uint8Array): Array<{ type: number; payload: Uint8Array }> {
  const out: Array<{ type: number; payload: Uint8Array }> = []
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let at = 0
  while (at < buf.length) {
    if (buf.length - at < HDR) throw new ProtocolError("truncated header")
    const type = dv.getUint16(at, true)
    const len = dv.getUint32(at + 2, true)
    at += HDR
    if (len > buf.length - at) throw new ProtocolError(`record ${type} overruns the message`)
    out.push({ type, payload: buf.subarray(at, at + len) })
    at += len
  }
  return out
}

/** Decodes a MSG_PLAN datagram back into ops (tests; the C decoder is the real consumer). */
export function decodePlan(buf: Uint8Array): Array<{ op: number } & DecodedFields> {
  const [msg, ...rest] = records(buf)
  if (!msg || rest.length > 0 || msg.type !== Msg.PLAN) throw new ProtocolError("not a single MSG_PLAN")
  return records(msg.payload).map((r) => ({ op: r.type, ...decodeFields(r.payload) }))
}

/** A message from the helper. */
export type HelperMessage =
  | { readonly type: "child"; readonly pid: number }
  | { readonly type: "ready" }
  | { readonly type: "sync" }
  | { readonly type: "console" }
  /** The seccomp user-notification listener rides along as SCM_RIGHTS. */
  | { readonly type: "seccomp" }
  | {
      readonly type: "error"
      readonly errno: number
      readonly index: number
      readonly op: number
      readonly syscall: string
      readonly detail: string
    }

const utf8d = new TextDecoder()

/** Decodes one datagram from the helper. */
export function decodeMessage(buf: Uint8Array): HelperMessage {
  const [msg, ...rest] = records(buf)
  if (!msg || rest.length > 0) throw new ProtocolError("expected exactly one message per datagram")
  const f = decodeFields(msg.payload)
  switch (msg.type) {
    case Msg.CHILD:
      return { type: "child", pid: Number(f.n[0] ?? 0n) }
    case Msg.READY:
      return { type: "ready" }
    case Msg.SYNC:
      return { type: "sync" }
    case Msg.CONSOLE:
      return { type: "console" }
    case Msg.SECCOMP:
      return { type: "seccomp" }
    case Msg.ERROR:
      return {
        type: "error",
        errno: Number(f.n[0] ?? 0n),
        index: Number(f.n[1] ?? 0n),
        op: Number(f.n[2] ?? 0n),
        syscall: utf8d.decode(f.s[0] ?? new Uint8Array()),
        detail: utf8d.decode(f.s[1] ?? new Uint8Array()),
      }
    default:
      throw new ProtocolError(`unknown message type ${msg.type}`)
  }
}

/** Encodes a helper message (the test model of the helper speaks it). */
export function encodeMessage(m: HelperMessage): Uint8Array {
  switch (m.type) {
    case "child":
      return frame(Msg.CHILD, encodeFields({ op: 0, n: [BigInt(m.pid)] }))
    case "ready":
      return frame(Msg.READY, new Uint8Array(0))
    case "sync":
      return frame(Msg.SYNC, new Uint8Array(0))
    case "console":
      return frame(Msg.CONSOLE, new Uint8Array(0))
    case "seccomp":
      return frame(Msg.SECCOMP, new Uint8Array(0))
    case "error":
      return frame(
        Msg.ERROR,
        encodeFields({ op: 0, n: [BigInt(m.errno), BigInt(m.index), BigInt(m.op)], s: [m.syscall, m.detail] }),
      )
  }
}
