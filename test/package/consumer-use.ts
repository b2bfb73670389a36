/**
 * What a new user writes, compiled by the consumer test (test/package/consumer.test.ts) against the
 * packed package under `module: NodeNext`, `strict`, `exactOptionalPropertyTypes`, `skipLibCheck: false`,
 * and run with node: the Promise API and the Effect API (the user's own effect) on a real container
 * (root only), and a property test of the user's own code over the model layer (no root).
 * Not part of the project's own type check: it imports "xcontainer" as a dependency.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { Container, LiveLayer, StateStoreLive, load, run } from "xcontainer"
import { KernelModelControl, defaultSpec, modelLayer } from "xcontainer/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-root-"))
const bundle = process.env["XC_BUNDLE"]
const quiet = (): [number, number, number] => [fs.openSync("/dev/null", "r"), fs.openSync("/dev/null", "w"), fs.openSync("/dev/null", "w")]

if (bundle === undefined) {
  console.log("live: skipped (XC_BUNDLE unset: not root)")
} else {
  // The Promise API.
  const c = await run({ root, id: "promise", bundle, stdio: quiet() })
  const exit = await c.wait()
  await c.destroy()
  console.log(`live promise: ${JSON.stringify(exit)}`)
  // The Effect API, run by the user's own effect runtime; our tagged errors caught with their catchTag.
  const program = Effect.gen(function* () {
    const c = yield* Container.run({ root, id: "effect", bundle, stdio: quiet() })
    const exit = yield* c.wait()
    yield* c.destroy()
    const missing = yield* Container.load({ root, id: "nope" }).pipe(
      Effect.as("found"),
      Effect.catchTag("ContainerNotFound", (e) => Effect.succeed(`not found: ${e._tag}`)),
    )
    return { exit, missing }
  })
  console.log(`live effect: ${JSON.stringify(await Effect.runPromise(Effect.provide(program, LiveLayer)))}`)
  await load({ root, id: "promise" }).then(
    () => {
      throw new Error("a destroyed container loaded")
    },
    (e: { readonly _tag?: string }) => console.log(`live load after destroy: ${e._tag ?? String(e)}`),
  )
}

// The user's own code: run a short job in a container and report its exit code.
const jobBundle = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-bundle-"))
fs.mkdirSync(path.join(jobBundle, "rootfs"))
const job = (id: string, program: string) =>
  Effect.gen(function* () {
    const c = yield* Container.run({ root, id, bundle: jobBundle, config: defaultSpec([program]) })
    const exit = yield* c.wait()
    yield* c.destroy({ force: true })
    return exit?.code ?? null
  })

// Its property, over the model kernel and cgroups (`true` exits 0, `false` 1 there): each job reports
// its program's code, and none leaves a process behind.
let runs = 0
await fc.assert(
  fc.asyncProperty(fc.array(fc.constantFrom("true", "false"), { minLength: 1, maxLength: 3 }), async (programs) => {
    const rt = ManagedRuntime.make(Layer.merge(modelLayer(), StateStoreLive))
    try {
      for (const [i, program] of programs.entries()) {
        const code = await rt.runPromise(job(`job-${runs}-${i}`, program))
        if (code !== (program === "true" ? 0 : 1)) return false
      }
      const kernel = await rt.runPromise(KernelModelControl)
      runs++
      return kernel.live().length === 0 && kernel.problems().length === 0
    } finally {
      await rt.dispose()
    }
  }),
  { numRuns: 15 },
)
console.log(`model property: ${runs} runs passed`)
fs.rmSync(root, { recursive: true, force: true })
fs.rmSync(jobBundle, { recursive: true, force: true })
