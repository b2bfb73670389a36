/**
 * Memory-pressure notifications through the Cgroups service, in the model (the kernel's side is
 * CgroupsModelControl.pressure): the stream yields the level per event of that level only, and ends
 * when the cgroup is removed; the PSI triggers the v2 side writes for each level.
 */
import { Effect, Fiber, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { Cgroups } from "../../effects/cgroups.ts"
import { CgroupsModelControl, cgroupsModel } from "../../effects/cgroups-model.ts"
import { memoryPressureStream, psiTrigger } from "../../effects/pressure.ts"

describe("memory pressure (model)", () => {
  it("yields the level once per event of that level, and ends with the cgroup", async () => {
    const program = Effect.gen(function* () {
      const cgroups = yield* Cgroups
      const control = yield* CgroupsModelControl
      const paths = yield* cgroups.paths(undefined, "p1")
      yield* cgroups.create(paths)
      const dir = Object.values(paths)[0]!
      const fiber = yield* memoryPressureStream(paths, "medium").pipe(Stream.runCollect, Effect.forkChild)
      // Let the stream register its watch.
      yield* Effect.yieldNow
      yield* Effect.sleep("1 millis")
      const got = [control.pressure(dir, "medium", 2), control.pressure(dir, "low"), control.pressure(dir, "medium")]
      yield* cgroups.destroy(paths)
      const levels = yield* Fiber.join(fiber)
      return { got, levels: [...levels] }
    })
    const r = await Effect.runPromise(program.pipe(Effect.provide(cgroupsModel())))
    expect(r).toEqual({ got: [1, 0, 1], levels: ["medium", "medium", "medium"] })
  })

  it("a cgroup that does not exist is a CgroupError", async () => {
    const r = await Effect.runPromise(
      Effect.gen(function* () {
        const cgroups = yield* Cgroups
        const paths = yield* cgroups.paths(undefined, "nope")
        return yield* memoryPressureStream(paths, "low").pipe(Stream.runCollect, Effect.flip)
      }).pipe(Effect.provide(cgroupsModel())),
    )
    expect(r._tag).toBe("CgroupError")
  })

  it("maps the levels onto PSI triggers with lmkd's ratios over 2 s windows (what an opener without CAP_SYS_RESOURCE may set)", () => {
    expect([psiTrigger("low"), psiTrigger("medium"), psiTrigger("critical")]).toEqual(["some 140000 2000000", "some 200000 2000000", "full 140000 2000000"])
  })
})
