/**
 * A state writer to be killed: writes a container's record through the real StateStore, over and
 * over, each time with a different (large) annotation, until SIGKILLed. Prints "w <n>" after each
 * completed write, so the parent knows which records were complete.
 *
 * argv[2]: JSON { root, id, bundle }
 */
import { Effect } from "effect"
import { defaultSpec } from "../../config/default-spec.ts"
import { StateStore, StateStoreLive } from "../../state/store.ts"

const a = JSON.parse(process.argv[2] ?? "{}") as { root: string; id: string; bundle: string }
const record = (n: number) => ({
  version: 1 as const,
  id: a.id,
  bundle: a.bundle,
  rootfs: `${a.bundle}/rootfs`,
  created: new Date().toISOString(),
  status: "running" as const,
  cgroups: {},
  ownPidNs: true,
  // ~256 KiB: a write takes long enough for a kill to land inside it.
  spec: { ...defaultSpec(["sh"]), annotations: { n: String(n), pad: "x".repeat(1 << 18) } },
})
const program = Effect.gen(function* () {
  const store = yield* StateStore
  for (let n = 0; ; n++) {
    yield* store.write(a.root, record(n))
    process.stdout.write(`w ${n}\n`)
  }
})
Effect.runPromise(Effect.provide(program, StateStoreLive)).catch((e: unknown) => {
  process.stdout.write(`error ${String(e)}\n`)
  process.exit(3)
})
