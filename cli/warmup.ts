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
import { ContainerNotFound } from "../effects/errors.ts"
import { Container } from "../machines/container.ts"
import type { ContainerRecord } from "../state/record.ts"
import { StateStore } from "../state/store.ts"

/** Records in memory, directories on disk (the model kernel makes its fifo there). */
function memoryStore(): StateStore["Service"] {
  const records = new Map<string, ContainerRecord>()
  return {
    claim: (root, id) => Effect.sync(() => (fs.mkdirSync(path.join(root, id), { recursive: true }), path.join(root, id))),
    read: (root, id) => {
      const r = records.get(id)
      return r ? Effect.succeed(r) : Effect.fail(new ContainerNotFound({ id, root }))
    },
    write: (_root, r) => Effect.sync(() => void records.set(r.id, r)),
    remove: (root, id) => Effect.sync(() => (records.delete(id), fs.rmSync(path.join(root, id), { recursive: true, force: true }))),
    list: () => Effect.sync(() => [...records.keys()]),
    withLock: (_root, _id, effect) => effect,
  }
}

export async function warmUp(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "xc-warmup-"))
  const layer = Layer.merge(ModelLayer, Layer.succeed(StateStore, memoryStore()))
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
