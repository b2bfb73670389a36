/**
 * A classic-BPF interpreter for seccomp filters, just big enough for what
 * config/seccomp-bpf.ts emits; anything else (an unknown opcode, a jump out of
 * the program, running off its end) throws, as the kernel's checker would refuse it.
 */

/** struct seccomp_data, args as u64. */
export interface SeccompData {
  readonly nr: number
  readonly arch: number
  readonly ip?: bigint
  readonly args: readonly bigint[]
}

function dataBytes(d: SeccompData): DataView {
  const dv = new DataView(new ArrayBuffer(64))
  dv.setUint32(0, d.nr >>> 0, true)
  dv.setUint32(4, d.arch >>> 0, true)
  dv.setBigUint64(8, d.ip ?? 0n, true)
  for (let i = 0; i < 6; i++) dv.setBigUint64(16 + 8 * i, BigInt.asUintN(64, d.args[i] ?? 0n), true)
  return dv
}

/** Runs `filter` (sock_filter bytes) on `d`; the verdict as a u32. */
export function runBpf(filter: Uint8Array, d: SeccompData): number {
  const prog = new DataView(filter.buffer, filter.byteOffset, filter.byteLength)
  const n = filter.byteLength / 8
  const mem = dataBytes(d)
  let A = 0
  let pc = 0
  for (let steps = 0; steps <= n; steps++) {
    if (pc >= n) throw new Error(`ran off the program at ${pc}`)
    const code = prog.getUint16(pc * 8, true)
    const jt = prog.getUint8(pc * 8 + 2)
    const jf = prog.getUint8(pc * 8 + 3)
    const k = prog.getUint32(pc * 8 + 4, true)
    pc++
    switch (code) {
      case 0x20: // ld [k]
        if (k % 4 || k > 60) throw new Error(`bad load offset ${k}`)
        A = mem.getUint32(k, true)
        break
      case 0x54: // and #k
        A = (A & k) >>> 0
        break
      case 0x05: // ja
        pc += k
        break
      case 0x15:
        pc += A === k ? jt : jf
        break
      case 0x25:
        pc += A > k ? jt : jf
        break
      case 0x35:
        pc += A >= k ? jt : jf
        break
      case 0x06:
        return k
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)} at ${pc - 1}`)
    }
  }
  throw new Error("loop")
}
