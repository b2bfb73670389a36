/**
 * Runs a whole container lifecycle once while the V8 start-up snapshot is
 * built — over the in-memory kernel and cgroups models and a state store on a
 * temp dir — so that what a real `create` compiles and initialises on first
 * use (schemas, plan, wire encoder, Effect runtime and fibers, the machine) is
 * already in the snapshot. Nothing here touches the real kernel, and no
 * native module is loaded (a snapshot cannot hold one).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { defaultSpec } from "../config/default-spec.ts"
import { ModelLayer } from "../effects/cgroups-model.ts"
import { Container } from "../machines/container.ts"
import { StateStoreModel } from "../state/store-model.ts"

export async function warmUp(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "xc-warmup-"))
  const layer = Layer.merge(ModelLayer, StateStoreModel)
  const once = Effect.gen(function* () {
    const c = yield* Container.run({ root, id: "warmup", bundle: "/", config: { ...defaultSpec(["true"]), root: { path: "/" } } })
    yield* c.wait()
    yield* c.destroy()
  })
  try {
    const r = await Effect.runPromise(Effect.provide(Effect.result(once), layer))
    if (process.env.XC_WARMUP_DEBUG) process.stderr.write(`warm-up: ${r._tag} ${r._tag === "Failure" ? String(r.failure) : ""}\n`)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}
