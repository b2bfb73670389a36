/**
 * An eBPF interpreter for BPF_PROG_TYPE_CGROUP_DEVICE programs, just big enough
 * for what config/device-bpf.ts emits. Anything else throws, as the verifier
 * would refuse it: an unknown opcode, a read of an unset register, a load
 * outside the 12-byte context, a backward or out-of-range jump, running off the end.
 */
import { decodeEbpf } from "../../config/device-bpf.ts"

/** struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type. */
export interface DeviceRequest {
  readonly type: number
  readonly access: number
  readonly major: number
  readonly minor: number
}

const U32 = 0xffffffffn
const u32 = (v: bigint) => v & U32
const asU32 = (imm: number) => BigInt(imm >>> 0)
/** An imm sign-extended to 64 bits, as the kernel does for 64-bit ALU/JMP. */
const asS64 = (imm: number) => BigInt.asUintN(64, BigInt(imm | 0))

/** Runs the program (bytes) on `req`; returns r0. */
export function runDeviceProgram(bytes: Uint8Array, req: DeviceRequest): number {
  const prog = decodeEbpf(bytes)
  const ctx = [u32(BigInt(((req.access << 16) | req.type) >>> 0)), BigInt(req.major >>> 0), BigInt(req.minor >>> 0)]
  // r1 holds the context pointer: only usable as the base of a load, until overwritten.
  const regs: Array<bigint | "ctx" | undefined> = new Array(11).fill(undefined)
  regs[1] = "ctx"
  const get = (r: number): bigint => {
    const v = regs[r]
    if (v === undefined || v === "ctx") throw new Error(`read of r${r} as a number while it is ${v ?? "unset"}`)
    return v
  }
  let pc = 0
  for (let steps = 0; steps <= prog.length; steps++) {
    const i = prog[pc]
    if (!i) throw new Error(`ran off the program at ${pc}`)
    pc++
    const jump = (taken: boolean) => {
      if (i.off < 0) throw new Error(`backward jump at ${pc - 1}`)
      if (taken) pc += i.off
      if (pc > prog.length) throw new Error(`jump out of the program at ${pc - 1}`)
    }
    switch (i.code) {
      case 0x61: {
        if (regs[i.src] !== "ctx" || i.off % 4 || i.off < 0 || i.off > 8) throw new Error(`bad load r${i.src}+${i.off}`)
        regs[i.dst] = ctx[i.off / 4]!
        break
      }
      case 0x54:
        regs[i.dst] = u32(get(i.dst) & asU32(i.imm))
        break
      case 0x74:
        regs[i.dst] = u32(get(i.dst)) >> BigInt(i.imm & 31)
        break
      case 0xb4:
        regs[i.dst] = asU32(i.imm)
        break
      case 0xbc:
        regs[i.dst] = u32(get(i.src))
        break
      case 0x56:
        jump(u32(get(i.dst)) !== asU32(i.imm))
        break
      case 0x45:
        jump((get(i.dst) & asS64(i.imm)) !== 0n)
        break
      case 0x15:
        jump(get(i.dst) === asS64(i.imm))
        break
      case 0x95:
        return Number(get(0))
      default:
        throw new Error(`unknown opcode 0x${i.code.toString(16)} at ${pc - 1}`)
    }
  }
  throw new Error("no exit")
}
