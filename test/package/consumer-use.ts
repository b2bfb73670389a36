/**
 * What a new user writes, compiled by the consumer test (test/package/consumer.test.ts) against the
 * packed package under `module: NodeNext`, `strict`, `exactOptionalPropertyTypes`, `skipLibCheck: false`,
 * and run with node: the Promise API and the Effect API (the user's own effect) on a real container
 * (root only), and a property test of the user's own code over the model layer (no root).
 * Not part of the project's own type check: it imports "xcontainer" as a dependency.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { Container, LiveLayer, StateStoreLive, dispose, load, machineDefinition, run, type StateEvent, type WaitStatus } from "xcontainer"
import { KernelModelControl, defaultSpec, modelLayer } from "xcontainer/testing"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-root-"))
const bundle = process.env["XC_BUNDLE"]
const quiet = (): [number, number, number] => [fs.openSync("/dev/null", "r"), fs.openSync("/dev/null", "w"), fs.openSync("/dev/null", "w")]

/** The bundle's config, running a long sleep (for exec) as the bundle's own user and env. */
function execConfig(dir: string): unknown {
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { process: { args: string[] } }
  return { ...config, process: { ...config.process, args: ["sleep", "30"] } }
}

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
  // exec with just args (the container's own user, env, cwd), its output through a pipe-backed file;
  // wait() of a handle loaded alongside: not our child, so the status is typed unknowable.
  const long = await run({ root, id: "exec", bundle, stdio: quiet(), config: execConfig(bundle), logger: "warn" })
  const outFile = path.join(root, "exec.out")
  const out = fs.openSync(outFile, "w")
  const p = await long.exec({ args: ["sh", "-c", "echo hello from sh"], stdio: [fs.openSync("/dev/null", "r"), out, out] })
  const pexit: WaitStatus = await p.wait()
  fs.closeSync(out)
  console.log(`live exec: ${fs.readFileSync(outFile, "utf8").trim()} (${pexit.known === false ? "unknown" : String(pexit.code)})`)
  const other = await load({ root, id: "exec" })
  await long.signal("KILL")
  // Loaded in the process that created it: its parent, but the first handle may reap the init first
  // (then this one reads { known: false }); either is a WaitStatus.
  console.log(`live loaded wait (same process): ${JSON.stringify(await other.wait())}`)
  await other.release()
  await long.wait()
  await long.destroy()
  // Created by another process (the CLI, detached): not our child, its exit status is not knowable.
  const cliBundle = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-cli-"))
  fs.writeFileSync(path.join(cliBundle, "config.json"), JSON.stringify(execConfig(bundle)))
  const cli = spawnSync("node_modules/.bin/xcontainer", ["--root", root, "run", "-d", "--bundle", cliBundle, "by-cli"], { stdio: ["ignore", "ignore", "inherit"] })
  if (cli.status !== 0) throw new Error(`xcontainer run -d: ${String(cli.status)}`)
  const foreign = await load({ root, id: "by-cli" })
  await foreign.signal("KILL")
  const foreignExit: WaitStatus = await foreign.wait()
  console.log(`live loaded wait (other process): ${JSON.stringify(foreignExit)}`)
  await foreign.destroy()
  fs.rmSync(cliBundle, { recursive: true, force: true })
  await dispose()
  await load({ root, id: "promise" }).then(
    () => {
      throw new Error("a destroyed container loaded")
    },
    (e: { readonly _tag?: string }) => console.log(`live load after destroy: ${e._tag ?? String(e)}`),
  )
}

// The machine's definition for the Stately visualiser, and subscribe()'s first event (over the models).
const definition = machineDefinition()
const firstStatus = await Effect.runPromise(
  Effect.provide(
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-sub-"))
      fs.mkdirSync(path.join(dir, "rootfs"))
      const c = yield* Container.create({ root, id: "sub", bundle: dir, config: defaultSpec(["true"]), inspect: () => {} })
      const seen: StateEvent[] = []
      c.subscribe((e) => seen.push(e))
      yield* c.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
      return seen[0]?.to
    }),
    Layer.merge(modelLayer(), StateStoreLive),
  ),
)
console.log(`machine: ${definition.id}, first status ${String(firstStatus)}`)

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
