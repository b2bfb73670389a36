import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import { decodeMessage, decodePlan, encodeMessage, encodePlan, MAX_STR, type HelperMessage, type WireOp } from "../../native/protocol.ts"

const arbOp: fc.Arbitrary<WireOp> = fc.record({
  op: fc.integer({ min: 1, max: 38 }),
  n: fc.array(fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }), { maxLength: 8 }),
  s: fc.array(fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), { maxLength: 8 }),
})

const present = <T>(xs: ReadonlyArray<T | undefined> | undefined): Array<T | undefined> => {
  const out = [...(xs ?? [])]
  while (out.length && out[out.length - 1] === undefined) out.pop()
  return out
}

describe("the init plan wire format", () => {
  test.prop([fc.array(arbOp, { maxLength: 40 })])("a plan survives the wire", (ops) => {
    const back = decodePlan(encodePlan(ops))
    expect(back.map((o) => o.op)).toEqual(ops.map((o) => o.op))
    back.forEach((o, i) => {
      expect(present(o.n)).toEqual(present(ops[i]!.n))
      expect(present(o.s).map((b) => (b ? [...b] : b))).toEqual(present(ops[i]!.s).map((b) => (b ? [...(b as Uint8Array)] : b)))
    })
  })

  test.prop([
    fc.oneof(
      fc.record({ type: fc.constant("child" as const), pid: fc.integer({ min: 1, max: 4194304 }) }),
      fc.constant({ type: "ready" as const }),
      fc.constant({ type: "seccomp" as const }),
      fc.record({
        type: fc.constant("error" as const),
        errno: fc.integer({ min: 1, max: 4095 }),
        index: fc.nat(4095),
        op: fc.integer({ min: 1, max: 38 }),
        syscall: fc.string({ maxLength: 20 }),
        detail: fc.string({ maxLength: 100 }),
      }),
    ),
  ])("helper messages round-trip", (m: HelperMessage) => {
    expect(decodeMessage(encodeMessage(m))).toEqual(m)
  })

  test.prop([fc.uint8Array({ maxLength: 64 })])("garbage is rejected, never misread", (bytes) => {
    try {
      const m = decodeMessage(bytes)
      // The rare random buffer that is a valid message must re-encode to itself.
      expect(encodeMessage(m).length).toBeGreaterThan(0)
    } catch (e) {
      expect((e as Error).name).toBe("ProtocolError")
    }
  })

  test("a string over the limit is refused at encoding", () => {
    expect(() => encodePlan([{ op: 22, s: ["x".repeat(MAX_STR + 1)] }])).toThrow(/max/)
  })
})
