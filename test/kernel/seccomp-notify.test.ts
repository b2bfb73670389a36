/**
 * Seccomp user notification (listenerPath and the in-process Stream), the start checks (a
 * profile that blocks execve), the i386 ABI through int 0x80, and the LSM exec label — on the
 * real kernel.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Fiber, Stream } from "effect"
import { afterAll, describe, expect, it, onTestFinished } from "vitest"
import { lsmHost } from "../../config/lsm.ts"
import type { SeccompProfile } from "../../config/seccomp-spec.ts"
import type { Spec } from "../../config/spec.ts"
import type { SeccompNotification } from "../../effects/seccomp-notify.ts"
import { create, dispose } from "../../promise.ts"
import { bundle, capture, expectNoTrace, runToEnd as runToEndIn, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(async () => {
  await dispose()
})
const runToEnd = (args: string[], mutate: (s: Spec) => Spec) => runToEndIn(root, args, mutate, "scn")
const withSeccomp = (seccomp: SeccompProfile, extra: (s: Spec) => Spec = (s) => s) => (s: Spec): Spec => extra({ ...s, linux: { ...s.linux, seccomp } })
const notifyMkdir = (more: Partial<SeccompProfile> = {}): SeccompProfile => ({
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY" }],
  ...more,
})
const noNnp = (s: Spec): Spec => ({ ...s, process: { ...s.process!, noNewPrivileges: false } })
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "xc-scn-"))

/** Creates + starts a container from `mutate`, returns it with its captured stdio. */
async function started(args: string[], mutate: (s: Spec) => Spec, extra: { seccompNotify?: boolean } = {}) {
  const b = bundle(args, mutate)
  const io = capture()
  const id = uniq("scn")
  const c = await create({ root, id, bundle: b.dir, stdio: io.stdio, ...extra })
  return { c, io, id }
}

describe.skipIf(skipReason)("seccomp user notification", () => {
  it.each([
    ["with no_new_privs", (s: Spec) => s],
    ["without no_new_privs", noNnp],
  ])("the listener and the container-process-state reach listenerPath; the agent's answers are seen inside (%s)", async (_, extra) => {
    const dir = tmp()
    const sock = path.join(dir, "agent.sock")
    const out = path.join(dir, "agent.json")
    const agent = spawn("python3", [path.join(import.meta.dirname, "fixtures", "seccomp-agent.py"), sock, out], { stdio: ["ignore", "pipe", "inherit"] })
    await new Promise<void>((resolve) => agent.stdout.once("data", () => resolve()))
    const exited = new Promise<number | null>((resolve) => agent.once("exit", resolve))
    const profile = notifyMkdir({ listenerPath: sock, listenerMetadata: "meta-42" })
    const r = await runToEnd(["sh", "-c", "mkdir /dev/shm/a || echo refused; mkdir /dev/shm/b && echo made"], withSeccomp(profile, extra))
    expect(await exited).toBe(0)
    const got = JSON.parse(fs.readFileSync(out, "utf8")) as { state: Record<string, unknown>; fds: number; seen: number[] }
    expect(r.out).toBe("refused\nmade\n")
    expect(r.err).toMatch(/Operation not permitted/)
    expect(got.fds).toBe(1)
    expect(got.seen).toEqual([83, 83]) // mkdir on x86_64, twice
    const state = got.state as { ociVersion: string; fds: string[]; pid: number; metadata: string; state: { id: string; status: string; pid: number; bundle: string } }
    expect(state.fds).toEqual(["seccompFd"])
    expect(state.metadata).toBe("meta-42")
    expect(state.ociVersion).toMatch(/^1\./)
    expect(state.state.id).toBe(r.id)
    expect(state.state.status).toBe("creating")
    expect(state.pid).toBeGreaterThan(1)
    expect(state.state.pid).toBe(state.pid)
    expect(expectNoTrace(root, r.id)).toEqual([])
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("the in-process stream: mkdir answered with EACCES, then let through, then faked", async () => {
    const { c, io, id } = await started(
      ["sh", "-c", "mkdir /dev/shm/a || echo refused; mkdir /dev/shm/b && echo made; mkdir /dev/shm/c && test ! -d /dev/shm/c && echo faked"],
      withSeccomp(notifyMkdir()),
      { seccompNotify: true },
    )
    const seen: SeccompNotification[] = []
    const answers = [{ _tag: "errno", errno: 13 }, { _tag: "continue" }, { _tag: "value", value: 0n }] as const
    const handler = Effect.runFork(
      c.effect.notifications().pipe(
        Stream.take(3),
        Stream.runForEach((n) => n.respond(answers[seen.push(n) - 1]!)),
      ),
    )
    await c.start()
    const status = await c.wait()
    await Effect.runPromise(Fiber.join(handler))
    expect(io.err()).toMatch(/Permission denied/)
    expect(io.out()).toBe("refused\nmade\nfaked\n")
    expect(status).toEqual({ code: 0, signal: null })
    expect(seen.map((n) => [n.syscall, n.arch])).toEqual([["mkdir", "x86_64"], ["mkdir", "x86_64"], ["mkdir", "x86_64"]])
    expect(seen.every((n) => n.pid > 1 && n.args.length === 6)).toBe(true)
    expect(seen[0]!.args[1]).toBe(0o777n) // busybox mkdir's mode
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("NOTIFY without a listener is refused at create, naming listenerPath", async () => {
    const b = bundle(["true"], withSeccomp(notifyMkdir()))
    const id = uniq("scn")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.seccomp.listenerPath" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it.each([
    ["no socket there", () => path.join(tmp(), "gone.sock"), "ENOENT"],
    ["nobody listening (a plain file)", () => { const f = path.join(tmp(), "file.sock"); fs.writeFileSync(f, ""); return f }, "ECONNREFUSED"],
  ])("a listenerPath with no agent (%s) fails create in runc's words, a typed error, leaving nothing", async (_, where, errno) => {
    const listenerPath = where()
    onTestFinished(() => fs.rmSync(path.dirname(listenerPath), { recursive: true, force: true }))
    const b = bundle(["true"], withSeccomp(notifyMkdir({ listenerPath })))
    const id = uniq("scn")
    const t0 = Date.now()
    const err = await create({ root, id, bundle: b.dir }).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ _tag: "SeccompAgentFailed", listenerPath, syscall: "connect", errno })
    expect((err as Error).message).toBe(`failed to connect with seccomp agent specified in the seccomp profile: connect ${listenerPath}: ${errno}`)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("NOTIFY on write is refused at create as runc refuses it, naming the field, leaving nothing", async () => {
    const b = bundle(["true"], withSeccomp(notifyMkdir({ listenerPath: "/nonexistent", syscalls: [{ names: ["mkdir", "write"], action: "SCMP_ACT_NOTIFY" }] })))
    const id = uniq("scn")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({
      _tag: "ConfigError",
      path: "linux.seccomp.syscalls[0].names[1]",
      reason: expect.stringMatching(/^SCMP_ACT_NOTIFY cannot be used for the write syscall/),
    })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("NOTIFY on sendmsg is refused: the init hands the listener over with sendmsg", async () => {
    const b = bundle(["true"], withSeccomp(notifyMkdir({ listenerPath: "/nonexistent", syscalls: [{ names: ["sendmsg"], action: "SCMP_ACT_NOTIFY" }] })))
    const id = uniq("scn")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.seccomp.syscalls[0]", reason: expect.stringMatching(/deadlock/) })
    expect(expectNoTrace(root, id)).toEqual([])
  })
})

describe.skipIf(skipReason)("a profile that blocks execve", () => {
  it.each([
    ["an ERRNO default", { defaultAction: "SCMP_ACT_ERRNO" } as SeccompProfile, "linux.seccomp.defaultAction", /blocks execve \(SCMP_ACT_ERRNO\)/],
    ["a KILL default", { defaultAction: "SCMP_ACT_KILL" } as SeccompProfile, "linux.seccomp.defaultAction", /blocks execve \(SCMP_ACT_KILL\)/],
    ["a KILL_PROCESS rule", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["execve"], action: "SCMP_ACT_KILL_PROCESS" }] } as SeccompProfile, "linux.seccomp.syscalls[0]", /blocks execve \(SCMP_ACT_KILL_PROCESS\)/],
  ])("%s fails create with the cause named, leaving nothing", async (_, profile, at, reason) => {
    const b = bundle(["true"], withSeccomp(profile))
    const id = uniq("scx")
    const t0 = Date.now()
    const err = await create({ root, id, bundle: b.dir }).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ _tag: "ConfigError", path: at })
    expect((err as Error).message).toMatch(reason)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("execve allowed only by an argument condition is let through to the kernel", async () => {
    // The verdict depends on the argument (a pointer): not judged at create; here it holds for every pointer.
    const p: SeccompProfile = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["execve"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0, op: "SCMP_CMP_NE" }] }, { names: ["exit_group", "write", "sendmsg"], action: "SCMP_ACT_ALLOW" }] }
    const b = bundle(["true"], withSeccomp(p))
    const id = uniq("scx")
    // busybox needs more than this to run: the program fails (or is killed) — but create went through.
    const c = await create({ root, id, bundle: b.dir, stdio: [0, 1, 2] })
    expect(c.status()).toBe("created")
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })
})

/** The fixture built once: a static x86_64 program making getpid through int 0x80. */
function buildInt80(): { bin?: string; reason?: string } {
  const bin = path.join(tmp(), "int80")
  const cc = spawnSync("gcc", ["-static", "-nostdlib", "-O1", "-o", bin, path.join(import.meta.dirname, "fixtures", "int80.c")], { encoding: "utf8" })
  if (cc.status !== 0) return { reason: `gcc could not build the int 0x80 fixture: ${cc.stderr}` }
  // Outside any container first: without IA32 emulation int 0x80 is a #GP (SIGSEGV), no syscall at all.
  const host = spawnSync(bin)
  if (host.signal === "SIGSEGV")
    return { reason: "this kernel has no IA32 emulation (int 0x80 raises SIGSEGV before syscall entry): seccomp never sees an i386 syscall here; the arch logic is tested on the BPF interpreter (test/config/seccomp-equivalence.test.ts)" }
  if (host.status !== 0) return { reason: `the int 0x80 fixture fails on the host: ${host.status ?? host.signal}` }
  return { bin }
}
const int80 = skipReason ? { reason: skipReason } : buildInt80()
if (int80.reason) console.warn(`SKIPPING int 0x80 tests: ${int80.reason}`)

describe.skipIf(int80.reason)("a 32-bit syscall (int 0x80) from an x86_64 container", () => {
  const withFixture = (p: SeccompProfile) => withSeccomp(p, (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/dev/int80", type: "bind", source: int80.bin!, options: ["bind", "ro"] }] }))
  it("is killed (SIGSYS) when x86 is not in architectures", async () => {
    const r = await runToEnd(["/dev/int80"], withFixture({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"] }))
    expect(r.status).toEqual({ code: null, signal: 31 })
  })
  it("runs when x86 is listed, and follows the i386 rules", async () => {
    const ok = await runToEnd(["/dev/int80"], withFixture({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] }))
    expect(ok.status).toEqual({ code: 0, signal: null })
    const refused = await runToEnd(["/dev/int80"], withFixture({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], syscalls: [{ names: ["getpid"], action: "SCMP_ACT_ERRNO", errnoRet: 7 }] }))
    expect(refused.status).toEqual({ code: 7, signal: null })
  })
})

const host = lsmHost({})
const hostLsm = host.apparmor || host.selinux ? "this host has AppArmor or SELinux enabled: the missing-LSM error cannot occur" : undefined
if (hostLsm) console.warn(`SKIPPING the missing-LSM test: ${hostLsm}`)
describe.skipIf(skipReason)("AppArmor and SELinux labels", () => {
  it.skipIf(hostLsm)("a label the host cannot apply is refused at create, naming the field", async () => {
    for (const [mutate, at] of [
      [(s: Spec): Spec => ({ ...s, process: { ...s.process!, apparmorProfile: "docker-default" } }), "process.apparmorProfile"],
      [(s: Spec): Spec => ({ ...s, process: { ...s.process!, selinuxLabel: "system_u:system_r:container_t:s0" } }), "process.selinuxLabel"],
    ] as const) {
      const b = bundle(["true"], mutate)
      const id = uniq("lsm")
      const err = await create({ root, id, bundle: b.dir }).then(() => undefined, (e: unknown) => e)
      expect(err).toMatchObject({ _tag: "ConfigError", path: at })
      expect((err as Error).message).toMatch(/host has no (AppArmor|SELinux) enabled/)
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })

  it.skipIf(hostLsm)("linux.mountLabel on a host without SELinux is left out of the mounts, as runc: the container runs", async () => {
    const b = bundle(["true"], (s) => ({ ...s, linux: { ...s.linux, mountLabel: "system_u:object_r:container_file_t:s0" } }))
    const id = uniq("lsm")
    const c = await create({ root, id, bundle: b.dir })
    expect(c.status()).toBe("created")
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it.each([
    ["apparmorProfile", { apparmorProfile: "xc-test" }, "exec xc-test"],
    ["selinuxLabel", { selinuxLabel: "system_u:system_r:container_t:s0:c1,c2" }, "system_u:system_r:container_t:s0:c1,c2"],
  ])("the init writes %s to the attr file before execve (redirected by XCONTAINER_TEST_LSM_ATTR)", async (_, proc, text) => {
    const dir = tmp()
    const attr = path.join(dir, "attr-exec")
    fs.writeFileSync(attr, "")
    process.env.XCONTAINER_TEST_LSM_ATTR = "/dev/lsm-attr"
    try {
      const r = await runToEnd(["sh", "-c", "echo ran"], (s) => ({
        ...s,
        process: { ...s.process!, ...proc },
        mounts: [...(s.mounts ?? []), { destination: "/dev/lsm-attr", type: "bind", source: attr, options: ["bind"] }],
      }))
      expect(r.out).toBe("ran\n")
      expect(fs.readFileSync(attr, "utf8")).toBe(text)
    } finally {
      delete process.env.XCONTAINER_TEST_LSM_ATTR
    }
  })
})
