/**
 * The state directory: `<root>/<id>/state.json`, written atomically (temp file,
 * then rename), and `<root>/<id>/lock`, an flock
 * held while a command changes the container so two commands never interleave.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, Result, Schema } from "effect"
import { addon } from "../native/addon.ts"
import { ContainerExists, ContainerNotFound, StateError } from "../effects/errors.ts"
import { ContainerRecord } from "./record.ts"
import { containerDir, listIds, statePath } from "./files.ts"

export { containerDir, DEFAULT_ROOT, defaultRoot } from "./files.ts"


const LOCK_EX = 2

export interface StateStoreService {
  /** Creates `<root>/<id>/` (mode 0711); fails with ContainerExists if it is there. */
  readonly claim: (root: string, id: string) => Effect.Effect<string, ContainerExists | StateError>
  readonly read: (root: string, id: string) => Effect.Effect<ContainerRecord, ContainerNotFound | StateError>
  readonly write: (root: string, record: ContainerRecord) => Effect.Effect<void, StateError>
  /** Removes the whole state directory (idempotent). */
  readonly remove: (root: string, id: string) => Effect.Effect<void, StateError>
  /** Ids under root, sorted. */
  readonly list: (root: string) => Effect.Effect<string[], StateError>
  /** Runs `effect` holding the container's lock. */
  readonly withLock: <A, E, R>(root: string, id: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StateError, R>
}

export class StateStore extends Context.Service<StateStore, StateStoreService>()("xcontainer/StateStore") {}

const decodeRecord = Schema.decodeUnknownResult(Schema.fromJsonString(ContainerRecord))
const encodeRecord = Schema.encodeSync(ContainerRecord)

const reason = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e)

/**
 * Write to a temp file, then rename over state.json: a reader (another command) sees the old or the
 * new state, never half of one, and a manager killed mid-write leaves the old state. No fsync: it
 * guards only against the machine going down, and that ends every container with it (runc and crun
 * do not sync either); on this disk it cost ~1 ms per write, three writes per create.
 */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, data, { mode: 0o600 })
  fs.renameSync(tmp, file)
}

/** The store over the real filesystem. */
export const StateStoreLive = Layer.succeed(StateStore, {
  claim: (root, id) =>
    Effect.try({
      try: () => {
        fs.mkdirSync(root, { recursive: true, mode: 0o711 })
        const dir = containerDir(root, id)
        fs.mkdirSync(dir, { mode: 0o711 })
        return dir
      },
      catch: (e) =>
        reason(e) === "EEXIST" ? new ContainerExists({ id, root }) : new StateError({ id, path: root, reason: reason(e) }),
    }),
  read: (root, id) =>
    Effect.gen(function* () {
      const file = statePath(root, id)
      const text = yield* Effect.try({
        try: () => fs.readFileSync(file, "utf8"),
        catch: (e) =>
          reason(e) === "ENOENT" ? new ContainerNotFound({ id, root }) : new StateError({ id, path: file, reason: reason(e) }),
      })
      const rec = decodeRecord(text)
      if (Result.isFailure(rec))
        return yield* new StateError({ id, path: file, reason: `corrupt: ${rec.failure.message.split("\n")[0]}` })
      return rec.success
    }),
  write: (root, record) =>
    Effect.try({
      try: () => writeAtomic(statePath(root, record.id), JSON.stringify(encodeRecord(record))),
      catch: (e) => new StateError({ id: record.id, path: containerDir(root, record.id), reason: reason(e) }),
    }),
  remove: (root, id) =>
    Effect.try({
      try: () => fs.rmSync(containerDir(root, id), { recursive: true, force: true }),
      catch: (e) => new StateError({ id, path: containerDir(root, id), reason: reason(e) }),
    }),
  list: (root) =>
    Effect.try({
      try: () => listIds(root),
      catch: (e) => new StateError({ id: "", path: root, reason: reason(e) }),
    }).pipe(Effect.catchIf((e) => e.reason === "ENOENT", () => Effect.succeed([]))),
  withLock: (root, id, effect) =>
    Effect.acquireUseRelease(
      Effect.tryPromise({
        try: async () => {
          const fd = fs.openSync(path.join(containerDir(root, id), "lock"), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600) // libuv opens O_CLOEXEC
          try {
            await addon.flock(fd, LOCK_EX)
          } catch (e) {
            fs.closeSync(fd)
            throw e
          }
          return fd
        },
        catch: (e) => new StateError({ id, path: containerDir(root, id), reason: `lock: ${reason(e)}` }),
      }),
      () => effect,
      // Closing the descriptor drops the flock.
      (fd) => Effect.sync(() => fs.closeSync(fd)),
    ),
})
