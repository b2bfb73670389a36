/** xcontainer/testing's OCI config arbitraries keep their promise: valid ones parse, invalid ones fail naming their field. */
import { Effect } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseSpec } from "../../config/parse.ts"
import { invalidOciConfig, ociConfig } from "../../testing/arbitraries.ts"

describe("testing/arbitraries", () => {
  it("ociConfig gives configs that parse", () => {
    fc.assert(fc.property(ociConfig(), (c) => Effect.runSync(Effect.result(parseSpec(c)))._tag === "Success"))
  })
  it("invalidOciConfig gives configs refused with a ConfigError naming the broken field", () => {
    fc.assert(
      fc.property(invalidOciConfig(), ({ config, path }) => {
        const r = Effect.runSync(Effect.result(parseSpec(config)))
        expect(r).toMatchObject({ _tag: "Failure", failure: { _tag: "ConfigError", path: expect.stringMatching(new RegExp(`^${path.replace(".", "\\.")}`)) } })
      }),
    )
  })
})
