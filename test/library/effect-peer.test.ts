/**
 * The built library (dist/index.js, what `import "xcontainer"` loads) runs on the user's Effect, a
 * peer dependency: it imports "effect" rather than carrying a copy of its own, so there is one
 * runtime and one Layer graph, and its tagged errors are caught by the user's Effect.catchTag.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"

const dist = path.resolve(import.meta.dirname, "../../dist/index.js")
const load = () => import(dist) as Promise<typeof import("../../index.ts")>

describe("the built library", () => {
  it("imports effect instead of bundling a copy", () => {
    // dist/index.js checks the peers and loads dist/lib/index.js, whose modules share dist/chunks/.
    const dir = path.dirname(dist)
    const text = [path.join(dir, "lib", "index.js"), ...fs.readdirSync(path.join(dir, "chunks")).filter((f) => f.endsWith(".js")).map((f) => path.join(dir, "chunks", f))]
      .map((f) => fs.readFileSync(f, "utf8"))
      .join("\n")
    expect(text).toMatch(/from\s*"effect"/)
    // Effect's own type ids ("~effect/Effect", "~effect/Cause" …): a bundled copy defines them.
    expect(text).not.toContain("~effect/")
  })

  it("runs under the user's Effect: its errors meet the user's catchTag, its layers the user's provide", async () => {
    const lib = await load()
    const bad = { ociVersion: "1.0.0", root: { path: "rootfs" }, process: { user: { uid: -1, gid: 0 }, args: ["sh"], cwd: "/" } }
    const caught = Effect.runSync(
      lib.parseSpec(bad).pipe(
        Effect.as("accepted"),
        Effect.catchTag("ConfigError", (e) => Effect.succeed(e.path)),
      ),
    )
    expect(caught).toBe("process.user.uid")

    const root = fs.mkdtempSync(path.join(os.tmpdir(), "xc-peer-"))
    try {
      fs.mkdirSync(path.join(root, "a"))
      fs.writeFileSync(path.join(root, "a", "state.json"), "{}")
      const layer = Layer.merge(lib.StateStoreLive, Layer.empty)
      const program = Effect.gen(function* () {
        const store = yield* lib.StateStore
        const ids = yield* store.list(root)
        const corrupt = yield* store.read(root, "a").pipe(Effect.flip)
        return { ids, tag: corrupt._tag }
      })
      expect(await Effect.runPromise(Effect.provide(program, layer))).toEqual({ ids: ["a"], tag: "StateError" })
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
