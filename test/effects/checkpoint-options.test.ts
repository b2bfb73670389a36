/** The checks runc's checkpoint flags go through before CRIU runs (no kernel, no CRIU needed). */
import * as fs from "node:fs"
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { checkPageServer, checkStatusFd, emptyNsMask, parsePageServer, requireFeatures } from "../../effects/checkpoint-options.ts"

const left = <A, E>(e: Effect.Effect<A, E>) => Result.getFailure(Effect.runSync(Effect.result(e))).pipe((o) => (o._tag === "Some" ? o.value : undefined))

describe("checkpoint options", () => {
  it("parses --page-server ADDRESS:PORT as runc (net.SplitHostPort), IPv6 in brackets", () => {
    expect(parsePageServer("10.0.0.2:27")).toEqual({ address: "10.0.0.2", port: 27 })
    expect(parsePageServer("[::1]:1234")).toEqual({ address: "::1", port: 1234 })
    expect(parsePageServer("nowhere")).toBeUndefined()
    expect(parsePageServer("host:port")).toBeUndefined()
  })

  it("names the field of a bad page server", () => {
    expect(left(checkPageServer({ address: "", port: 27 }))).toMatchObject({ _tag: "ConfigError", path: "pageServer.address" })
    expect(left(checkPageServer({ address: "h", port: 0 }))).toMatchObject({ _tag: "ConfigError", path: "pageServer.port" })
    expect(left(checkPageServer({ address: "h", port: 1.5 }))).toMatchObject({ path: "pageServer.port" })
  })

  it("leaves only the network namespace empty, as CRIU and runc can", () => {
    expect(Effect.runSync(emptyNsMask(["network"]))).toBe(0x40000000)
    expect(Effect.runSync(emptyNsMask(undefined))).toBe(0)
    expect(left(emptyNsMask(["network", "mount"]))).toMatchObject({ _tag: "ConfigError", path: "emptyNamespaces[1]" })
  })

  it("takes a status fd only for lazy pages, and only one open for writing", () => {
    const w = fs.openSync("/dev/null", "w")
    const r = fs.openSync("/dev/null", "r")
    expect(Effect.runSync(checkStatusFd(w, true))).toBe(w)
    expect(left(checkStatusFd(w, false))).toMatchObject({ path: "statusFd", reason: expect.stringMatching(/lazyPages/) })
    expect(left(checkStatusFd(r, true))).toMatchObject({ path: "statusFd", reason: expect.stringMatching(/not open for writing/) })
    fs.closeSync(w)
    fs.closeSync(r)
    expect(left(checkStatusFd(999_999, true))).toMatchObject({ path: "statusFd", reason: expect.stringMatching(/fd 999999 is not open/) })
  })

  it("refuses a request whose CRIU feature is missing, naming it", () => {
    const have = { memTrack: false, lazyPages: true }
    expect(left(requireFeatures("pre-dump", have, { memTrack: true }))?.message).toMatch(/criu pre-dump: CRIU is missing features: MemTrack .*CONFIG_MEM_SOFT_DIRTY/)
    expect(left(requireFeatures("dump", have, { lazyPages: true }))).toBeUndefined()
  })
})
