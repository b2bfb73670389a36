/**
 * Intel RDT on this host: asked for without resctrl (or without the feature), create refuses with a
 * ConfigError naming the field before anything exists. Runs where resctrl is absent (this machine);
 * the resctrl logic itself is tested against a fake tree in test/effects/rdt.test.ts.
 */
import { afterAll, describe, expect, it } from "vitest"
import { dispose, create } from "../../promise.ts"
import { resctrlRoot } from "../../effects/rdt.ts"
import { bundle, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())
const hasResctrl = resctrlRoot() !== undefined
if (hasResctrl) console.warn("SKIPPING the no-resctrl refusal: this host has resctrl mounted")

describe.skipIf(skipReason ?? (hasResctrl ? "resctrl is mounted here" : undefined))("Intel RDT on a host without resctrl", () => {
  it("refuses linux.intelRdt at create, creating nothing", async () => {
    for (const intelRdt of [{ l3CacheSchema: "L3:0=f" }, { closID: "gold" }, { enableCMT: true }]) {
      const id = uniq("rdt")
      const b = bundle(["true"], (s) => ({ ...s, linux: { ...s.linux, intelRdt } }))
      await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.intelRdt", reason: expect.stringMatching(/no resctrl filesystem/) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })
})
