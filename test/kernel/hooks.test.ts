/** The six OCI hooks, at the points and in the namespaces the runtime-spec prescribes. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

/** A host hook that appends "<name> <state JSON> <its uts namespace>" to `log`. */
const logHook = (name: string, log: string) => ({ path: "/bin/sh", args: ["sh", "-c", `echo "${name} $(cat) $(readlink /proc/self/ns/uts)" >> ${log}`] })

describe.skipIf(skipReason)("OCI hooks", () => {
  it("runs all six in order, each with the state and in its namespace", async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xc-hooks-")), "log")
    const hostUts = fs.readlinkSync("/proc/self/ns/uts")
    const b = bundle(["sh", "-c", "sleep 0.1; cat /dev/shm/start-state"], (s) => ({
      ...s,
      hostname: "hooked",
      hooks: {
        prestart: [logHook("prestart", log)],
        createRuntime: [logHook("createRuntime", log)],
        createContainer: [logHook("createContainer", log)],
        // Inside the container after pivot_root: its path resolves in the rootfs.
        startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "cat > /dev/shm/start-state"] }],
        poststart: [logHook("poststart", log)],
        poststop: [logHook("poststop", log)],
      },
    }))
    const io = capture()
    const id = uniq("hk")
    const c = await create({ root, id, bundle: b.dir, stdio: io.stdio })
    const pid = c.pid
    await c.start()
    await c.wait()
    await c.destroy()
    const lines = fs.readFileSync(log, "utf8").trim().split("\n")
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["prestart", "createRuntime", "createContainer", "poststart", "poststop"])
    const state = (l: string) => JSON.parse(l.slice(l.indexOf(" ") + 1, l.lastIndexOf(" "))) as { id: string; status: string; pid?: number; bundle: string }
    expect(state(lines[0]!)).toMatchObject({ id, status: "creating", pid, bundle: b.dir })
    expect(state(lines[3]!)).toMatchObject({ status: "running", pid })
    expect(state(lines[4]!)).toMatchObject({ status: "stopped" })
    // Runtime namespace for prestart/createRuntime/poststart, the container's uts namespace for createContainer.
    expect(lines[0]!.endsWith(` ${hostUts}`)).toBe(true)
    expect(lines[3]!.endsWith(` ${hostUts}`)).toBe(true)
    expect(lines[2]!.endsWith(` ${hostUts}`)).toBe(false)
    expect(JSON.parse(io.out())).toMatchObject({ id, status: "created", pid })
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a failing createRuntime hook aborts create and leaves nothing", async () => {
    const id = uniq("hkf")
    const b = bundle(["true"], (s) => ({ ...s, hooks: { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", "exit 3"] }] } }))
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "HookFailed", hook: "createRuntime", reason: "exited 3" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a failing createContainer hook is reported by the init, and nothing is left", async () => {
    const id = uniq("hkc")
    const b = bundle(["true"], (s) => ({ ...s, hooks: { createContainer: [{ path: "/bin/sh", args: ["sh", "-c", "exit 4"] }] } }))
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "InitFailed", op: "hook", path: "/bin/sh exited 4" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("kills a hook at its timeout", async () => {
    const id = uniq("hkt")
    const b = bundle(["true"], (s) => ({ ...s, hooks: { prestart: [{ path: "/bin/sleep", args: ["sleep", "10"], timeout: 1 }] } }))
    const t0 = Date.now()
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "HookFailed", reason: "timed out after 1 s" })
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a failing poststop hook does not block delete", async () => {
    const id = uniq("hkp")
    const b = bundle(["true"], (s) => ({ ...s, hooks: { poststop: [{ path: "/bin/false" }] } }))
    const c = await run({ root, id, bundle: b.dir })
    await c.wait()
    await c.destroy()
    expect(c.status()).toBe("destroyed")
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("runs in-process Effect hooks at createRuntime, poststart and poststop", async () => {
    const seen: string[] = []
    const note = (name: string) => (s: { status: string; pid?: number }) => Effect.sync(() => void seen.push(`${name}:${s.status}:${s.pid !== undefined}`))
    const id = uniq("hki")
    const c = await create({ root, id, bundle: bundle(["true"]).dir, hooks: { createRuntime: note("createRuntime"), poststart: note("poststart"), poststop: note("poststop") } })
    await c.start()
    await c.wait()
    await c.destroy()
    expect(seen).toEqual(["createRuntime:creating:true", "poststart:running:true", "poststop:stopped:false"])
    // A failing in-process createRuntime aborts create like an OCI one.
    const id2 = uniq("hkj")
    await expect(create({ root, id: id2, bundle: bundle(["true"]).dir, hooks: { createRuntime: () => Effect.fail("nope") } })).rejects.toMatchObject({
      _tag: "HookFailed",
      hook: "createRuntime",
      path: "(in-process)",
    })
    expect(expectNoTrace(root, id2)).toEqual([])
  })

  it("rejects a relative hook path naming the field", async () => {
    const b = bundle(["true"], (s) => ({ ...s, hooks: { poststart: [{ path: "bin/true" }] } }))
    await expect(create({ root, id: uniq("hkr"), bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: "hooks.poststart[0].path" })
  })
})
