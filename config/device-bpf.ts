/**
 * A BPF_PROG_TYPE_CGROUP_DEVICE program from reduced device rules
 * (config/device-rules.ts): what cgroup v2 has instead of devices.allow/deny.
 * The kernel runs it on every open/mknod of a device node by a task in the
 * cgroup (and its descendants); it returns 1 to allow, 0 to deny (EPERM).
 *
 * Its context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
 * minor; }, access_type = (ACC bits << 16) | DEV type. The layout follows
 * runc's devicefilter.go (itself crun's ebpf.c): load the four fields into
 * r2..r5 once, then one block per exception that jumps to the next block on
 * any mismatch and returns the exception's verdict, then the default verdict.
 * The access test differs from runc's on purpose: an exception to allow-all
 * (a deny) matches when it shares ANY bit with the request, as the v1 kernel's
 * match_exception_partial does; runc's "request ⊆ rule" would let "rw" through
 * a deny of "w". An exception to deny-all (an allow) must hold every bit asked.
 *
 * Majors and minors are compared with 32-bit jumps (BPF_JMP32): an imm is
 * sign-extended in 64-bit compares, which would mismatch numbers ≥ 2^31.
 * Only forward jumps, each within the program: what the verifier accepts.
 */
import { ACC, type DeviceState } from "./device-rules.ts"

/** One eBPF instruction (struct bpf_insn). */
export interface EbpfInsn {
  readonly code: number
  readonly dst: number
  readonly src: number
  readonly off: number
  readonly imm: number
}

/** The opcodes this generator emits (class | op | source). */
export const OP = {
  LDX_MEM_W: 0x61, // dst = *(u32 *)(src + off)
  ALU32_AND_K: 0x54, // dst = (u32)(dst & imm)
  ALU32_RSH_K: 0x74, // dst = (u32)dst >> imm
  ALU32_MOV_K: 0xb4, // dst = (u32)imm
  ALU32_MOV_X: 0xbc, // dst = (u32)src
  JMP32_JNE_K: 0x56, // if ((u32)dst != (u32)imm) pc += off
  JMP_JSET_K: 0x45, // if (dst & imm) pc += off
  JMP_JEQ_K: 0x15, // if (dst == imm) pc += off
  EXIT: 0x95, // return r0
} as const

const R = { r0: 0, ctx: 1, tmp: 1, type: 2, access: 3, major: 4, minor: 5 } as const
const ALL = ACC.read | ACC.write | ACC.mknod

const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): EbpfInsn => ({ code, dst, src, off, imm })

/** The program for `state`; `next` jumps are resolved to the block after each rule's. */
export function deviceProgram(state: DeviceState): EbpfInsn[] {
  const out: EbpfInsn[] = [
    insn(OP.LDX_MEM_W, R.type, R.ctx, 0),
    insn(OP.ALU32_AND_K, R.type, 0, 0, 0xffff),
    insn(OP.LDX_MEM_W, R.access, R.ctx, 0),
    insn(OP.ALU32_RSH_K, R.access, 0, 0, 16),
    insn(OP.LDX_MEM_W, R.major, R.ctx, 4),
    insn(OP.LDX_MEM_W, R.minor, R.ctx, 8),
  ]
  const verdict = (allow: boolean) => [insn(OP.ALU32_MOV_K, R.r0, 0, 0, allow ? 1 : 0), insn(OP.EXIT)]
  for (const e of state.exceptions) {
    // Each test is a jump to the end of this block, written as a placeholder offset and fixed below.
    const block: Array<EbpfInsn | "skip"> = []
    const skipIf = (code: number, dst: number, imm: number) => block.push(insn(code, dst, 0, 0, imm), "skip")
    skipIf(OP.JMP32_JNE_K, R.type, e.type === "b" ? 1 : 2)
    if (e.major >= 0) skipIf(OP.JMP32_JNE_K, R.major, e.major | 0)
    if (e.minor >= 0) skipIf(OP.JMP32_JNE_K, R.minor, e.minor | 0)
    if (state.defaultAllow) {
      // A deny: skip unless the request shares a bit with it.
      if ((e.access & ALL) !== ALL) {
        block.push(insn(OP.ALU32_MOV_X, R.tmp, R.access), insn(OP.ALU32_AND_K, R.tmp, 0, 0, e.access))
        skipIf(OP.JMP_JEQ_K, R.tmp, 0)
      }
    } else if ((e.access & ALL) !== ALL) {
      // An allow: skip if the request asks a bit it lacks.
      skipIf(OP.JMP_JSET_K, R.access, ALL & ~e.access)
    }
    block.push(...verdict(!state.defaultAllow))
    const real = block.filter((b): b is EbpfInsn => b !== "skip")
    let at = 0
    const fixed = block.flatMap((b, i) => {
      if (b === "skip") return []
      at++
      // The instruction before a "skip" marker jumps to the block's end: off counts from the next insn.
      return block[i + 1] === "skip" ? [{ ...b, off: real.length - at }] : [b]
    })
    out.push(...fixed)
  }
  out.push(...verdict(state.defaultAllow))
  return out
}

/** The bytes BPF_PROG_LOAD takes (little-endian struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm). */
export function encodeEbpf(prog: readonly EbpfInsn[]): Uint8Array {
  const buf = Buffer.alloc(prog.length * 8)
  prog.forEach((p, i) => {
    buf.writeUInt8(p.code, i * 8)
    buf.writeUInt8((p.src << 4) | p.dst, i * 8 + 1)
    buf.writeInt16LE(p.off, i * 8 + 2)
    buf.writeInt32LE(p.imm | 0, i * 8 + 4)
  })
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length)
}

/** The inverse of encodeEbpf (tests, and reading back what was generated). */
export function decodeEbpf(bytes: Uint8Array): EbpfInsn[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const out: EbpfInsn[] = []
  for (let i = 0; i + 8 <= buf.length; i += 8) {
    const regs = buf.readUInt8(i + 1)
    out.push({ code: buf.readUInt8(i), dst: regs & 0xf, src: regs >> 4, off: buf.readInt16LE(i + 2), imm: buf.readInt32LE(i + 4) })
  }
  return out
}
