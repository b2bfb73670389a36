/**
 * The v2 device program means what the v1 devices cgroup means: over random
 * rule lists (the spec's, then runc's defaults, as the v1 path writes them)
 * and random requests, the generated eBPF (run by test/config/ebpf-interp.ts)
 * answers exactly as a model of the v1 kernel fed the same devices.allow/deny
 * writes (security/device_cgroup.c: an exception list, merged on add, removed by
 * exact match; full match to allow under deny-all, partial match to deny under allow-all).
 */
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { deviceProgram, encodeEbpf, decodeEbpf } from "../../config/device-bpf.ts"
import { ACC, DEV, accessMask, deviceAccessAllowed, isDeviceProblem, reduceDeviceRules, type DeviceState } from "../../config/device-rules.ts"
import type { DeviceRuleSpec } from "../../config/spec.ts"
import { DEFAULT_DEVICE_RULES, deviceLine, deviceWrites } from "../../effects/cgroups-v1-resources.ts"
import { runDeviceProgram, type DeviceRequest } from "./ebpf-interp.ts"

interface Ex {
  type: number
  major: number
  minor: number
  access: number
}

/** The v1 kernel's devices cgroup, driven by the writes the v1 path makes. */
function kernelV1(writes: readonly { file: string; value: string }[]) {
  let allow = true // a new cgroup under an allow-all parent
  let list: Ex[] = []
  for (const w of writes) {
    if (w.value === "a") {
      allow = w.file === "devices.allow"
      list = []
      continue
    }
    const [t, mm, acc] = w.value.split(" ") as [string, string, string]
    const [ma, mi] = mm.split(":").map((s) => (s === "*" ? -1 : Number(s))) as [number, number]
    const ex: Ex = { type: t === "b" ? DEV.block : DEV.char, major: ma, minor: mi, access: accessMask(acc) }
    const same = (e: Ex) => e.type === ex.type && e.major === ex.major && e.minor === ex.minor
    const adds = (w.file === "devices.allow") !== allow
    if (adds) {
      const old = list.find(same)
      if (old) old.access |= ex.access
      else list.push({ ...ex })
    } else {
      for (const e of list.filter(same)) e.access &= ~ex.access
      list = list.filter((e) => e.access !== 0)
    }
  }
  return (r: DeviceRequest) => {
    const m = (e: Ex) => e.type === r.type && (e.major === -1 || e.major === r.major) && (e.minor === -1 || e.minor === r.minor)
    return allow ? !list.some((e) => m(e) && (e.access & r.access) !== 0) : list.some((e) => m(e) && (r.access & ~e.access) === 0)
  }
}

const MAJORS = [-1, 1, 5, 136, 0x7fffffff, 0xffffffff]
const MINORS = [-1, 0, 3, 5, 0x80000000]
const arbAccess = fc.subarray(["r", "w", "m"], { minLength: 1 }).map((a) => a.join(""))
const arbRule: fc.Arbitrary<DeviceRuleSpec> = fc.record({
  allow: fc.boolean(),
  type: fc.constantFrom("a", "b", "c", undefined),
  major: fc.constantFrom(...MAJORS, undefined),
  minor: fc.constantFrom(...MINORS, undefined),
  access: fc.option(arbAccess, { nil: undefined }),
}).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as DeviceRuleSpec)
const arbRequest: fc.Arbitrary<DeviceRequest> = fc.record({
  type: fc.constantFrom(DEV.block, DEV.char),
  major: fc.constantFrom(...MAJORS.filter((m) => m >= 0), 0, 7),
  minor: fc.constantFrom(...MINORS.filter((m) => m >= 0), 1, 9),
  access: fc.integer({ min: 1, max: 7 }),
})

const programFor = (rules: readonly DeviceRuleSpec[]) => {
  const s = reduceDeviceRules(rules)
  if (isDeviceProblem(s)) throw new Error(s.reason)
  return encodeEbpf(deviceProgram(s))
}

describe("the device eBPF program", () => {
  test.prop([fc.array(arbRule, { maxLength: 8 }), fc.array(arbRequest, { minLength: 1, maxLength: 20 }), fc.boolean()], { numRuns: 400 })(
    "answers every request as the v1 kernel does after the same writes",
    (rules, requests, withDefaults) => {
      const all = withDefaults ? [...rules, ...DEFAULT_DEVICE_RULES] : rules
      const state = reduceDeviceRules(all)
      if (isDeviceProblem(state)) {
        // Refused only where the v1 kernel would silently keep access the rule meant to take away.
        expect(state.reason).toMatch(/cannot punch a hole/)
        return
      }
      const prog = encodeEbpf(deviceProgram(state))
      // The v1 path's writes: "a" to devices.deny, then each rule (deviceWrites appends the defaults itself).
      const writes = withDefaults
        ? deviceWrites(rules)
        : [{ file: "devices.deny", value: "a" }, ...all.map((d) => ({ file: d.allow ? "devices.allow" : "devices.deny", value: deviceLine(d) }))]
      const kernel = kernelV1(writes)
      for (const r of requests) {
        const want = kernel(r)
        expect(runDeviceProgram(prog, r), JSON.stringify({ all, r })).toBe(want ? 1 : 0)
        expect(deviceAccessAllowed(state, r.type, r.major, r.minor, r.access)).toBe(want)
      }
    },
  )

  it("with no rules allows runc's defaults only: /dev/null yes, /dev/mem no, mknod of anything", () => {
    const p = programFor(DEFAULT_DEVICE_RULES)
    const open = (major: number, minor: number, access = ACC.read | ACC.write) => runDeviceProgram(p, { type: DEV.char, major, minor, access })
    expect(open(1, 3)).toBe(1)
    expect(open(136, 7)).toBe(1)
    expect(open(1, 1)).toBe(0)
    expect(open(1, 1, ACC.mknod)).toBe(1)
    // The host's console (c 5:1) is not among them: a container with CAP_MKNOD could write to it.
    expect(open(5, 1)).toBe(0)
    expect(open(5, 1, ACC.write)).toBe(0)
    expect(open(5, 1, ACC.mknod)).toBe(1)
    expect(runDeviceProgram(p, { type: DEV.block, major: 8, minor: 0, access: ACC.read })).toBe(0)
    expect(runDeviceProgram(p, { type: DEV.block, major: 8, minor: 0, access: ACC.mknod })).toBe(1)
  })

  it("denies a request needing bits no single exception holds (v1 needs one full match)", () => {
    const s = reduceDeviceRules([
      { allow: true, type: "c", major: 1, minor: 3, access: "r" },
      { allow: true, type: "c", major: 1, minor: -1, access: "w" },
    ]) as DeviceState
    const p = encodeEbpf(deviceProgram(s))
    expect(runDeviceProgram(p, { type: DEV.char, major: 1, minor: 3, access: ACC.read })).toBe(1)
    expect(runDeviceProgram(p, { type: DEV.char, major: 1, minor: 3, access: ACC.read | ACC.write })).toBe(0)
  })

  it("under allow-all denies a request sharing any bit with a deny (runc's subset test would allow rw past a deny of w)", () => {
    const p = programFor([
      { allow: true, access: "rwm" },
      { allow: false, type: "c", major: 1, minor: 3, access: "w" },
    ])
    expect(runDeviceProgram(p, { type: DEV.char, major: 1, minor: 3, access: ACC.read })).toBe(1)
    expect(runDeviceProgram(p, { type: DEV.char, major: 1, minor: 3, access: ACC.read | ACC.write })).toBe(0)
    expect(runDeviceProgram(p, { type: DEV.char, major: 1, minor: 5, access: ACC.write })).toBe(1)
  })

  it("refuses to punch a hole in a wildcard rule, naming both", () => {
    const s = reduceDeviceRules([
      { allow: true, type: "c", major: 1, access: "rwm" },
      { allow: false, type: "c", major: 1, minor: 3, access: "r" },
    ])
    expect(s).toEqual({ index: 1, reason: expect.stringMatching(/c 1:3 cannot punch a hole in the wildcard rule c 1:\*/) })
  })

  it("merges access of the same device and drops it when all is taken back", () => {
    const s = reduceDeviceRules([
      { allow: true, type: "c", major: 1, minor: 3, access: "r" },
      { allow: true, type: "c", major: 1, minor: 3, access: "w" },
      { allow: false, type: "c", major: 1, minor: 3, access: "rw" },
      { allow: true, type: "b", major: 8, minor: 0, access: "m" },
    ])
    expect(s).toEqual({ defaultAllow: false, exceptions: [{ type: "b", major: 8, minor: 0, access: ACC.mknod }] })
  })

  it("encodes to 8-byte instructions and back", () => {
    const prog = deviceProgram(reduceDeviceRules(DEFAULT_DEVICE_RULES) as DeviceState)
    const bytes = encodeEbpf(prog)
    expect(bytes.length).toBe(prog.length * 8)
    expect(decodeEbpf(bytes)).toEqual(prog.map((i) => ({ ...i, imm: i.imm | 0 })))
  })
})
