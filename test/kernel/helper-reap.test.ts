/**
 * The init helper (H) is our own child: spawnInit collects its exit status before it returns or
 * fails, so no create leaves a zombie of it behind for whoever looks next. (A finding of the chaos
 * battery's hostile part: after a failed create the helper stayed a zombie until the event loop
 * next polled, which a run of synchronous ConfigErrors put off for minutes.)
 */
import * as fs from "node:fs"
import { Effect, ManagedRuntime } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose } from "../../promise.ts"
import { Kernel } from "../../effects/kernel.ts"
import { KernelLive } from "../../effects/kernel-live.ts"
import { MAX_STR, nulList, Op } from "../../native/protocol.ts"
import { bundle, capture, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(async () => {
  await dispose()
})

/** Our children still running the helper image, alive or zombie (comm is the memfd's name, cut to 15). */
function helperChildren(): string[] {
  const found: string[] = []
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    let stat: string
    try {
      stat = fs.readFileSync(`/proc/${p}/stat`, "utf8")
    } catch {
      continue // exited meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (Number(ppid) === process.pid && comm.startsWith("memfd:xcontain")) found.push(`${p} ${state} ${comm}`)
  }
  return found
}

describe.skipIf(skipReason)("the init helper is reaped before spawnInit settles", () => {
  it("when the plan cannot be sent (the helper is still waiting for it)", async () => {
    const rt = ManagedRuntime.make(KernelLive)
    const devNull = fs.openSync("/dev/null", "r+")
    try {
      for (let i = 0; i < 3; i++) {
        // A field over MAX_STR: the plan fails to encode after the helper is running.
        const plan = [
          { op: Op.CLONE, n: [0n, 0n] },
          { op: Op.EXEC, s: [nulList(["x".repeat(MAX_STR + 1)]), nulList([])] },
        ]
        const err = await rt.runPromise(
          Effect.gen(function* () {
            const k = yield* Kernel
            return yield* k.spawnInit({ plan, stdio: [devNull, devNull, devNull], beforeGo: () => Effect.void }).pipe(Effect.flip)
          }),
        )
        // Checked synchronously, before the event loop gets another turn.
        const left = helperChildren()
        expect(err).toMatchObject({ _tag: "SyscallError", syscall: "send" })
        expect(left).toEqual([])
      }
    } finally {
      fs.closeSync(devNull)
      await rt.dispose()
    }
  })

  it("when the helper reports a failure before the clone (joining a namespace it cannot open)", async () => {
    // A large plan (2 MiB of environment) makes the helper slower to exit than we are to read its report.
    const b = bundle(["true"], (s) => ({
      ...s,
      process: { ...s.process!, env: [...(s.process?.env ?? []), ...Array.from({ length: 2048 }, (_, i) => `E${i}=${"v".repeat(1024)}`)] },
      linux: { ...s.linux, namespaces: [...(s.linux?.namespaces ?? []).filter((n) => n.type !== "uts"), { type: "uts", path: "/proc/self/fd/no-such" }] },
    }))
    const io = capture()
    for (let i = 0; i < 10; i++) {
      const err = await create({ root, id: uniq("reap"), bundle: b.dir, stdio: io.stdio }).then(
        () => undefined,
        (e: unknown) => e,
      )
      const left = helperChildren()
      expect(err).toMatchObject({ _tag: "InitFailed", stage: "helper", op: "join_ns" })
      expect(left).toEqual([])
    }
    io.close()
  })

  it("when the helper fails after the clone (id maps the kernel refuses): its child, ours by CLONE_PARENT, too", async () => {
    // 400 single-id uid mappings: valid OCI, but uid_map takes at most 340 lines (EINVAL from the
    // helper's write, after the clone). The child is killed; its pidfd must come to us to reap it.
    const b = bundle(["true"], (s) => ({
      ...s,
      linux: {
        ...s.linux,
        namespaces: [...(s.linux?.namespaces ?? []), { type: "user" }],
        uidMappings: Array.from({ length: 400 }, (_, i) => ({ containerID: i, hostID: 100_000 + i, size: 1 })),
        gidMappings: [{ containerID: 0, hostID: 100_000, size: 65_536 }],
      },
    }))
    const io = capture()
    const err = await create({ root, id: uniq("reap"), bundle: b.dir, stdio: io.stdio }).then(
      () => undefined,
      (e: unknown) => e,
    )
    const now = helperChildren()
    // A child nobody holds a pidfd of is never reaped: give the loop a turn to be sure.
    await new Promise((r) => setTimeout(r, 200))
    expect(err).toMatchObject({ _tag: "InitFailed", stage: "helper", op: "clone", syscall: "write", errno: "EINVAL" })
    expect(now).toEqual([])
    expect(helperChildren()).toEqual([])
    io.close()
  })
})
