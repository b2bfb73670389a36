/**
 * A manager to be killed: the library embedded in a Node process that drives one container through
 * create → start → exec → update → pause → resume → destroy and SIGKILLs itself when the machine
 * enters `killAt` (a status such as "creating", "pausing", "destroying"), after `jitterMs` more, or
 * right after the named operation resolves ("exec", "update"). The parent may also kill it at a
 * random moment. Bundled by crash.ts (esbuild) so that a run costs a Node start, not a tsx one.
 *
 * argv[2]: JSON { root, id, bundle, killAt, jitterMs }
 */
import * as fs from "node:fs"
import { create } from "../../promise.ts"
import { statusOf } from "../../machines/container-machine.ts"

interface Args {
  readonly root: string
  readonly id: string
  readonly bundle: string
  readonly killAt: string
  readonly jitterMs: number
}

const a = JSON.parse(process.argv[2] ?? "{}") as Args
const die = () => {
  if (a.jitterMs > 0) setTimeout(() => process.kill(process.pid, "SIGKILL"), a.jitterMs)
  else process.kill(process.pid, "SIGKILL")
}
const at = (phase: string) => {
  if (phase === a.killAt) die()
}
const devNull = fs.openSync("/dev/null", "r+")

const main = async () => {
  const c = await create({
    root: a.root,
    id: a.id,
    bundle: a.bundle,
    stdio: [devNull, devNull, devNull],
    inspect: (e) => {
      if (e.type === "@xstate.snapshot") {
        at(statusOf((e.snapshot as unknown as { value: unknown }).value))
      }
    },
  })
  at("create")
  await c.start()
  at("start")
  const p = await c.exec({ process: { args: ["/bin/sh", "-c", "sleep 0.05"], cwd: "/", user: { uid: 0, gid: 0 } }, stdio: [devNull, devNull, devNull] })
  at("exec")
  await p.wait()
  at("exec-wait")
  await c.update({ pids: { limit: 64 } })
  at("update")
  await c.pause()
  at("pause")
  await c.resume()
  at("resume")
  await c.destroy({ force: true })
  at("destroy")
  process.stdout.write("completed\n")
  process.exit(0)
}
main().catch((e: unknown) => {
  process.stdout.write(`error ${(e as { _tag?: string })._tag ?? ""} ${String((e as { message?: string }).message ?? e)}\n`)
  process.exit(3)
})
