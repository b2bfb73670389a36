/**
 * A StateStore that keeps container records in memory (directories are still made on disk, under
 * the root given: the model kernel makes its exec fifo there). For the V8 snapshot's warm-up and for
 * property tests that want no state.json on disk (xcontainer/testing).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { ContainerNotFound } from "../effects/errors.ts"
import type { ContainerRecord } from "./record.ts"
import { StateStore, type StateStoreService } from "./store.ts"

/** A fresh in-memory store (records are per store; locks are no-ops: one process). */
export function stateStoreModel(): StateStoreService {
  const records = new Map<string, ContainerRecord>()
  return {
    claim: (root, id) => Effect.sync(() => (fs.mkdirSync(path.join(root, id), { recursive: true }), path.join(root, id))),
    read: (root, id) => {
      const r = records.get(id)
      return r ? Effect.succeed(r) : Effect.fail(new ContainerNotFound({ id, root }))
    },
    write: (_root, r) => Effect.sync(() => void records.set(r.id, r)),
    remove: (root, id) => Effect.sync(() => (records.delete(id), fs.rmSync(path.join(root, id), { recursive: true, force: true }))),
    list: () => Effect.sync(() => [...records.keys()].sort()),
    withLock: (_root, _id, effect) => effect,
  }
}

/** The in-memory store as a layer (a new store each time the layer is built). */
export const StateStoreModel: Layer.Layer<StateStore> = Layer.sync(StateStore, stateStoreModel)
