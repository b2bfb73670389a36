/**
 * Part 5, hostile input. fast-check configs, valid (testing/arbitraries.ts's ociConfig), invalid
 * (invalidOciConfig) and adversarial (a valid one with one field made hostile: huge arrays, deep
 * nesting, odd unicode, NUL bytes, `..` and symlinks out of the rootfs in path fields), and hostile
 * container ids, through create → destroy in this process. Counted: a crash (a rejection that is not
 * one of our tagged errors, or a throw), a hang (a create or destroy past 20 s), a leak (leaks.ts after
 * the run, or a state dir left by a failed create), an escape (the host canary changed or mounted on).
 * The rootfs is the scope's own, with symlinks planted that point out of it at the canary.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import fc from "fast-check"
import { create } from "../../promise.ts"
import { ociConfig, invalidOciConfig } from "../../testing/arbitraries.ts"
import { makeBundle } from "../../examples/make-bundle.ts"
import { dropScope, figures, note, scope, type Figures } from "./common.ts"
import { leaks } from "./leaks.ts"

export const TAGS = new Set([
  "ConfigError",
  "SyscallError",
  "InitFailed",
  "InitExited",
  "InvalidTransition",
  "ContainerNotFound",
  "ContainerExists",
  "StateError",
  "CgroupError",
  "HookFailed",
  "CriuMissing",
  "CriuFailed",
  "SeccompAgentFailed",
])

type Json = Record<string, unknown>
type Mutation = { readonly name: string; readonly apply: (c: Json) => unknown }

const set = (obj: Json, at: readonly string[], value: unknown): Json => {
  const [k, ...rest] = at
  if (k === undefined) return obj
  const cur = (obj[k] ?? {}) as Json
  return { ...obj, [k]: rest.length === 0 ? value : set(Array.isArray(cur) ? ({ ...cur } as Json) : cur, rest, value) }
}

/** Fields that carry a path, a name or free text (where hostile strings go). */
const STRING_FIELDS: readonly (readonly string[])[] = [
  ["hostname"],
  ["domainname"],
  ["root", "path"],
  ["process", "cwd"],
  ["process", "args"],
  ["process", "env"],
  ["process", "user", "username"],
  ["process", "apparmorProfile"],
  ["process", "selinuxLabel"],
  ["mounts"],
  ["linux", "maskedPaths"],
  ["linux", "readonlyPaths"],
  ["linux", "cgroupsPath"],
  ["linux", "mountLabel"],
  ["linux", "sysctl"],
  ["annotations"],
  ["hooks", "createRuntime"],
]

const oddStrings = (canary: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(
      "",
      " ",
      "\u0000",
      "a\u0000b",
      "/tmp/\u0000/x",
      "\u202eevil",
      "\ud800",
      "\udfff\ud800",
      "\uffff\ufffe",
      "𝔘𝔫𝔦",
      "e\u0301\u0301\u0301",
      "%s%n%x",
      "\n\r\t",
      "..",
      "../../../../../../..",
      `../../../../../../..${canary}`,
      `/proc/../../../..${canary}`,
      `/..//..//..${canary}/x`,
      "/evil/x",
      "/evil2/x",
      "/evil",
      "/proc/self/root/..",
      "/sys/fs/cgroup/../../..",
      "/dev/../..",
      "x".repeat(70_000),
      "/".repeat(5000),
      "/a".repeat(3000),
    ),
    fc.string({ unit: "binary", maxLength: 64 }),
  )

/** What one string goes into, in the shape that field takes. */
const shaped = (field: readonly string[], s: string): unknown => {
  switch (field.join(".")) {
    case "process.args":
      return [s]
    case "process.env":
      return [`${s}=${s}`, s]
    case "mounts":
      return [{ destination: s, type: "tmpfs", source: "tmpfs" }, { destination: "/mnt", type: "bind", source: s, options: ["rbind"] }]
    case "linux.maskedPaths":
    case "linux.readonlyPaths":
      return [s]
    case "linux.sysctl":
      return { [s]: s }
    case "annotations":
      return { [s]: s }
    case "hooks.createRuntime":
      return [{ path: s, args: [s] }]
    default:
      return s
  }
}

const deep = (depth: number, leaf: unknown): unknown => {
  let v = leaf
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v }
  return v
}

const mutations = (canary: string): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...STRING_FIELDS), oddStrings(canary)).map(([field, s]) => ({
      name: `string in ${field.join(".")}`,
      apply: (c: Json) => set(c, field, shaped(field, s)),
    })),
    fc.tuple(fc.constantFrom(["process", "args"], ["process", "env"], ["linux", "maskedPaths"], ["linux", "readonlyPaths"], ["linux", "uidMappings"]), fc.integer({ min: 1000, max: 200_000 })).map(([field, n]) => ({
      name: `huge ${field.join(".")}`,
      apply: (c: Json) => set(c, field, Array.from({ length: n }, (_, i) => (field[1] === "uidMappings" ? { containerID: i, hostID: i, size: 1 } : `/x${i}`))),
    })),
    fc.integer({ min: 500, max: 50_000 }).map((n) => ({
      name: "huge mounts",
      apply: (c: Json) => set(c, ["mounts"], Array.from({ length: n }, (_, i) => ({ destination: `/tmp/m${i}`, type: "tmpfs", source: "tmpfs" }))),
    })),
    fc.tuple(fc.constantFrom(["annotations"], ["linux", "resources"], ["process"], ["linux", "seccomp"], ["mounts"], ["x-unknown"]), fc.integer({ min: 100, max: 5000 })).map(([field, d]) => ({
      name: `deep ${field.join(".")}`,
      apply: (c: Json) => set(c, field, deep(d, "leaf")),
    })),
    fc.constantFrom<Mutation>(
      { name: "not an object", apply: () => [] },
      { name: "null", apply: () => null },
      { name: "prototype keys", apply: (c) => JSON.parse(JSON.stringify({ ...c, ["__proto__"]: { polluted: true }, constructor: { prototype: { polluted: true } } })) as unknown },
      { name: "numbers out of range", apply: (c) => set(set(c, ["process", "user"], { uid: -1, gid: 2 ** 53 }), ["process", "oomScoreAdj"], 1e308) },
      { name: "NaN and Infinity", apply: (c) => set(c, ["linux", "resources"], { memory: { limit: Number.NaN }, cpu: { shares: Number.POSITIVE_INFINITY } }) },
    ),
  )

const HOSTILE_IDS = ["..", ".", "../escape", "/abs", "a/b", "x\u0000y", "", " ", "x".repeat(1025), "\u202e", "-f"]

export async function hostilePart(o: { budgetMs: number; maxRuns?: number; seed?: number }): Promise<Figures> {
  const f = figures("5 hostile input")
  const s = scope("hostile")
  // Its own rootfs, with symlinks out of it planted: /evil → the canary (absolute), /evil2 → up and over.
  const canary = path.join(s.dir, "canary")
  fs.mkdirSync(canary)
  fs.writeFileSync(path.join(canary, "file"), "canary\n")
  const canaryState = () => JSON.stringify(fs.readdirSync(canary).map((n) => [n, fs.statSync(path.join(canary, n)).mode, fs.readFileSync(path.join(canary, n), "utf8")]))
  const before = canaryState()
  const bundleDir = path.join(s.dir, "bundle")
  makeBundle(bundleDir, ["/bin/sleep", "1000"])
  const rootfs = path.join(bundleDir, "rootfs")
  fs.symlinkSync(canary, path.join(rootfs, "evil"))
  fs.symlinkSync(`../../../../../../../../..${canary}`, path.join(rootfs, "evil2"))
  const seed = o.seed ?? Date.now() % 1_000_000
  f.notes.push(`seed ${seed}`)
  const arb = fc.oneof(
    { weight: 2, arbitrary: ociConfig(rootfs).map((c) => ({ kind: "valid", config: c as unknown })) },
    { weight: 1, arbitrary: invalidOciConfig(rootfs).map((x) => ({ kind: "invalid", config: x.config })) },
    {
      weight: 5,
      arbitrary: fc.tuple(ociConfig(rootfs), mutations(canary)).map(([c, m]) => ({ kind: m.name.replace(/ in .*/, ""), config: m.apply(c as unknown as Json) })),
    },
  )
  const devNull = fs.openSync("/dev/null", "r+")
  const kinds = new Map<string, { runs: number; ok: number; tags: Set<string> }>()
  const end = Date.now() + o.budgetMs
  const within = <A>(p: Promise<A>): Promise<A | "hung"> => Promise.race([p, new Promise<"hung">((r) => setTimeout(() => r("hung"), 20_000).unref())])
  const check = async (n: number, kind: string, id: string, config: unknown, describe: () => string) => {
    const k = kinds.get(kind) ?? { runs: 0, ok: 0, tags: new Set<string>() }
    kinds.set(kind, k)
    k.runs++
    f.runs++
    try {
      // Mounts and cgroups go under the run's tag: each is a test path the leak check watches.
      // (Where a hostile cgroupsPath is the point, it is kept.)
      const plain = typeof config === "object" && config !== null && !Array.isArray(config)
      const withCg =
        plain && (config as { linux?: { cgroupsPath?: unknown } }).linux?.cgroupsPath === undefined
          ? set(config as Json, ["linux", "cgroupsPath"], `${s.cgroupParent}/${id}`)
          : config
      const c = await within(create({ root: s.root, id, bundle: bundleDir, config: withCg, stdio: [devNull, devNull, devNull] }))
      if (c === "hung") {
        f.hangs++
        note(f, `run ${n} (${kind}): create hung: ${describe()}`)
        return
      }
      k.ok++
      if ((await within(c.destroy({ force: true }))) === "hung") {
        f.hangs++
        note(f, `run ${n} (${kind}): destroy hung`)
      }
    } catch (e) {
      const tag = (e as { _tag?: unknown })._tag
      if (typeof tag === "string" && TAGS.has(tag)) k.tags.add(tag)
      else {
        f.crashes++
        note(f, `run ${n} (${kind}): untyped ${String(e).slice(0, 160)}: ${describe()}`)
      }
    }
    // Our own zombies count too: a create settles only once the init helper is reaped
    // (test/kernel/helper-reap.test.ts).
    const found = leaks({ tag: s.tag, roots: [s.root], dirs: [s.root, canary] })
    if (found.length) {
      f.leaks++
      note(f, `run ${n} (${kind}): ${found.slice(0, 3).join("; ")}: ${describe()}`)
      // Clean up, so that one leak is counted once. (A hostile id may be no name the kernel takes.)
      try {
        fs.rmSync(path.join(s.root, id), { recursive: true, force: true })
      } catch {
        /* ENAMETOOLONG and the like: nothing was made under it */
      }
    }
    if (canaryState() !== before) {
      f.escapes++
      note(f, `run ${n} (${kind}): the host canary changed: ${describe()}`)
    }
  }
  // One sample at a time (seed + n): a huge config is garbage once its run is over.
  for (let n = 0; Date.now() < end && n < (o.maxRuns ?? Infinity); n++) {
    const sample = fc.sample(arb, { numRuns: 1, seed: seed + n })[0]!
    const short = () => {
      try {
        return JSON.stringify(sample.config)?.slice(0, 200) ?? String(sample.config)
      } catch {
        return `(too deep to print; fast-check seed ${seed + n})`
      }
    }
    await check(n, sample.kind, s.id(n), sample.config, short)
    // Every few runs, a hostile id with a valid config.
    if (n % 10 === 0) {
      const bad = HOSTILE_IDS[(n / 10) % HOSTILE_IDS.length]!
      await check(n, "hostile id", bad, fc.sample(ociConfig(rootfs), { numRuns: 1, seed: n })[0], () => JSON.stringify(bad))
      if (fs.existsSync(path.join(s.dir, "escape")) || fs.existsSync("/abs") || fs.existsSync("/escape")) {
        f.escapes++
        note(f, `hostile id ${JSON.stringify(bad)} made a directory outside the root`)
      }
    }
  }
  fs.closeSync(devNull)
  for (const [kind, k] of kinds) f.notes.push(`${kind}: ${k.runs} runs, ${k.ok} created, errors ${[...k.tags].join("/") || "none"}`)
  fs.rmSync(path.join(rootfs, "evil"))
  fs.rmSync(path.join(rootfs, "evil2"))
  dropScope(s)
  return f
}
