/**
 * A classic-BPF assembler for seccomp filters: instructions with symbolic jump
 * targets, resolved into the `struct sock_filter[]` bytes the kernel takes
 * (u16 code, u8 jt, u8 jf, u32 k; little-endian, as on every arch we build for).
 * Conditional jumps reach at most 255 instructions ahead; the compiler keeps
 * them local (within one rule or one dispatch chunk) and uses `ja` (32-bit
 * offset) for anything farther, so resolution failing is a compiler bug.
 */

export const BPF = {
  LD_W_ABS: 0x20,
  ALU_AND_K: 0x54,
  JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  RET_K: 0x06,
} as const

/** Offsets in struct seccomp_data: nr, arch, instruction_pointer, then six u64 args. */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  /** Low 32 bits of argument i (little-endian u64). */
  argLo: (i: number) => 16 + 8 * i,
  argHi: (i: number) => 16 + 8 * i + 4,
} as const

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096

export type Label = { readonly label: number }
type Target = number | Label

interface Insn {
  readonly code: number
  readonly jt: Target
  readonly jf: Target
  readonly k: number | Label
}

/** Builds one program; labels may be placed before or after the jumps that name them. */
export class Assembler {
  private readonly insns: Insn[] = []
  private readonly places: (number | undefined)[] = []

  /** A fresh label, placed later with `place`. */
  label(): Label {
    this.places.push(undefined)
    return { label: this.places.length - 1 }
  }

  /** Places `l` at the next instruction emitted. */
  place(l: Label): void {
    this.places[l.label] = this.insns.length
  }

  get length(): number {
    return this.insns.length
  }

  ld(offset: number): void {
    this.insns.push({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset })
  }
  and(k: number): void {
    this.insns.push({ code: BPF.ALU_AND_K, jt: 0, jf: 0, k })
  }
  ret(k: number): void {
    this.insns.push({ code: BPF.RET_K, jt: 0, jf: 0, k })
  }
  /** Unconditional jump (`ja`, 32-bit offset): the long-distance jump. */
  ja(to: Label): void {
    this.insns.push({ code: BPF.JA, jt: 0, jf: 0, k: to })
  }
  /** Conditional jump on A against k; a target of 0 means the next instruction. */
  jmp(code: typeof BPF.JEQ_K | typeof BPF.JGT_K | typeof BPF.JGE_K, k: number, jt: Target, jf: Target): void {
    this.insns.push({ code, jt, jf, k })
  }

  /** The resolved program as struct sock_filter bytes. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8)
    const dv = new DataView(out.buffer)
    const offset = (at: number, t: Target): number => {
      if (typeof t === "number") return t
      const where = this.places[t.label]
      if (where === undefined) throw new Error(`seccomp-bpf: label ${t.label} never placed`)
      const off = where - at - 1
      if (off < 0) throw new Error("seccomp-bpf: backward jump")
      return off
    }
    this.insns.forEach((insn, at) => {
      const jt = offset(at, insn.jt)
      const jf = offset(at, insn.jf)
      if (jt > 255 || jf > 255) throw new Error(`seccomp-bpf: conditional jump too far at ${at}`)
      dv.setUint16(at * 8, insn.code, true)
      dv.setUint8(at * 8 + 2, jt)
      dv.setUint8(at * 8 + 3, jf)
      dv.setUint32(at * 8 + 4, typeof insn.k === "number" ? insn.k >>> 0 : offset(at, insn.k), true)
    })
    return out
  }
}
