/**
 * Checkpoint and restore on the real kernel with CRIU 4.1.1 (/usr/local/sbin/criu,
 * installed by .ci/setup through ../shared/deps/criu/install.sh).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { Criu, CriuLive } from "../../effects/criu.ts"
import { skipReason as kernelSkip, WORK, uniq } from "./harness.ts"

const CRIU = "/usr/local/sbin/criu"
const skipReason = kernelSkip ?? (fs.existsSync(CRIU) ? undefined : `CRIU tests need ${CRIU} (bash ../shared/deps/criu/install.sh)`)
if (skipReason) console.warn(`SKIPPING CRIU tests: ${skipReason}`)

const withCriu = <A, E>(f: (c: Criu["Type"]) => Effect.Effect<A, E>) => Effect.runPromise(Effect.provide(Effect.flatMap(Criu, f), CriuLive))

describe.skipIf(skipReason)("the Criu service", () => {
  it("finds CRIU >= 4.1 and asks its version over swrk", async () => {
    const v = await withCriu((c) => c.check)
    expect(v.version).toBeGreaterThanOrEqual(40100)
    expect(v.text).toMatch(/^4\./)
  })

  it("a failing restore says why: the error lines of restore.log with their context", async () => {
    const images = path.join(WORK, uniq("empty-images"))
    fs.mkdirSync(images, { recursive: true })
    const r = await withCriu((c) => Effect.either(c.restore({ imagePath: images, root: "/" })))
    expect(Either.isLeft(r)).toBe(true)
    const e = Either.getLeft(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))
    expect(e).toMatchObject({ _tag: "CriuFailed", action: "restore", logFile: path.join(images, "restore.log") })
    expect(e?.message).toContain("Error (criu/")
    expect(e?.message).toMatch(/inventory|empty-image/)
    // Context: the lines before the error are quoted too, numbered.
    expect((e as { log?: string }).log?.split("\n").length).toBeGreaterThan(3)
    fs.rmSync(images, { recursive: true, force: true })
  })

  it("a missing image directory is a typed error naming it, before CRIU runs", async () => {
    const images = path.join(WORK, uniq("no-images"))
    const r = await withCriu((c) => Effect.either(c.restore({ imagePath: images, root: "/" })))
    expect(Either.getLeft(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))).toMatchObject({ _tag: "SyscallError", syscall: "open", errno: "ENOENT", path: images })
  })

  it("CriuMissing names what was found and how to install CRIU", async () => {
    const saved = process.env["XCONTAINER_CRIU"]
    process.env["XCONTAINER_CRIU"] = "/bin/true"
    try {
      const r = await withCriu((c) => Effect.either(c.check))
      const e = Either.getLeft(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))
      expect(e).toMatchObject({ _tag: "CriuMissing", install: "bash ../shared/deps/criu/install.sh" })
      expect(e?.found).toContain("/bin/true")
    } finally {
      if (saved === undefined) delete process.env["XCONTAINER_CRIU"]
      else process.env["XCONTAINER_CRIU"] = saved
    }
  })
})
