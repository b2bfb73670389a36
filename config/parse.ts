/**
 * config.json → a validated Spec, or a ConfigError naming the JSON path and the
 * reason. Structure is checked by the schema (config/spec.ts); the rules a
 * Linux runtime adds on top (runc's libcontainer/configs/validate) are here.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Result, Schema, SchemaIssue } from "effect"
import { ConfigError } from "../effects/errors.ts"
import { CAPABILITIES, RLIMITS } from "./linux-names.ts"
import { idMappedProblem, mountOptionProblem, SCHED_FLAGS } from "./plan.ts"
import { seccompProblem } from "./seccomp-compile.ts"
import { lsmHost, lsmProblem } from "./lsm.ts"
import { checkResourceShape } from "./resources.ts"
import { checkIntelRdtShape } from "./intel-rdt.ts"
import { Spec } from "./spec.ts"
import { parseJsonText } from "./json-text.ts"
import { readBoundedFile } from "./read-file.ts"

// reportInput: a message names the rejected value ("Expected number, got \"x\""), as Effect 3's "actual" did.
const decode = Schema.decodeUnknownResult(Spec, { errors: "all", onExcessProperty: "ignore", reportInput: true })
const issues = SchemaIssue.makeFormatterStandardSchemaV1()

const jsonPath = (p: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string =>
  p
    .map((s) => (typeof s === "object" ? s.key : s))
    .reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), "")

/** Container ids as runc accepts them: no path separators, no "." or "..". */
export const validateId = (id: string): Effect.Effect<string, ConfigError> =>
  /^[\w+.-]+$/.test(id) && id !== "." && id !== ".." && id.length <= 1024
    ? Effect.succeed(id)
    : Effect.fail(new ConfigError({ path: "id", reason: `"${id}" is not a valid container id (letters, digits, _ + - . only)` }))

/**
 * How deep a config may nest. The deepest field of the spec is a few levels down (a seccomp
 * argument: linux.seccomp.syscalls[i].args[j].value); a config nested thousands of levels deep
 * would overflow the stack of every recursive walk (the schema's, its error formatter's).
 */
export const MAX_DEPTH = 64

/**
 * What the schema cannot say of a config, found in one iterative walk: a value nested deeper than
 * `max`, or an object key with a NUL byte (a sysctl name; the schema drops a key its key type
 * refuses instead of failing, and the string values' rule is in config/spec-atoms.ts).
 */
export function shapeProblem(input: unknown, max = MAX_DEPTH): Problem {
  const stack: { v: unknown; at: PropertyKey[] }[] = [{ v: input, at: [] }]
  for (let top = stack.pop(); top; top = stack.pop()) {
    if (typeof top.v !== "object" || top.v === null) continue
    const here = jsonPath(top.at) || "(root)"
    if (top.at.length >= max) return { path: here, reason: `nests deeper than ${max} levels` }
    const array = Array.isArray(top.v)
    for (const [k, v] of Object.entries(top.v)) {
      if (!array && k.includes("\0")) return { path: here, reason: `key ${JSON.stringify(k)} contains a null byte` }
      stack.push({ v, at: [...top.at, array ? Number(k) : k] })
    }
  }
  return undefined
}

/** An option that is not part of the config but reaches a syscall as a C string (a console socket path). */
export const noNul = (field: string, value: string | undefined): Effect.Effect<void, ConfigError> =>
  value?.includes("\0") ? Effect.fail(new ConfigError({ path: field, reason: "contains a null byte" })) : Effect.void

/** Decodes and validates a config object. */
export const parseSpec = (input: unknown): Effect.Effect<Spec, ConfigError> =>
  Effect.gen(function* () {
    const shape = shapeProblem(input)
    if (shape) return yield* new ConfigError(shape)
    const decoded = yield* Effect.try({
      try: () => {
        const r = decode(input)
        if (!Result.isFailure(r)) return Result.succeed(r.success)
        const [first] = issues(r.failure.issue).issues
        return Result.fail(new ConfigError({ path: jsonPath(first?.path ?? []) || "(root)", reason: first?.message ?? "invalid" }))
      },
      // A last guard: whatever the schema or its error formatter cannot walk is a bad config, not a crash.
      catch: (e) => new ConfigError({ path: "(root)", reason: `cannot be decoded: ${e instanceof Error ? e.message : String(e)}` }),
    })
    if (Result.isFailure(decoded)) return yield* decoded.failure
    const spec = decoded.success
    const problem = checkRules(spec)
    if (problem) return yield* new ConfigError(problem)
    return spec
  })

type Problem = { path: string; reason: string } | undefined

/** The cross-field rules; the first violation, or undefined. */
export function checkRules(spec: Spec): Problem {
  if (!/^1\.\d+\.\d+/.test(spec.ociVersion))
    return { path: "ociVersion", reason: `unsupported version "${spec.ociVersion}" (this runtime speaks 1.x)` }
  if (!spec.root) return { path: "root", reason: "is required" }
  if (!spec.process) return { path: "process", reason: "is required to create a container" }
  const proc = spec.process
  if (!path.isAbsolute(proc.cwd)) return { path: "process.cwd", reason: `"${proc.cwd}" is not an absolute path` }
  for (const [set, names] of Object.entries(proc.capabilities ?? {})) {
    const i = (names ?? []).findIndex((n) => !CAPABILITIES.has(n))
    if (i >= 0) return { path: `process.capabilities.${set}[${i}]`, reason: `unknown capability "${names?.[i]}"` }
  }
  for (const [i, r] of (proc.rlimits ?? []).entries()) {
    if (!RLIMITS.has(r.type)) return { path: `process.rlimits[${i}].type`, reason: `unknown rlimit "${r.type}"` }
    if (r.soft > r.hard) return { path: `process.rlimits[${i}]`, reason: "soft limit exceeds hard limit" }
  }
  const seen = new Set<string>()
  for (const [i, r] of (proc.rlimits ?? []).entries()) {
    if (seen.has(r.type)) return { path: `process.rlimits[${i}].type`, reason: `duplicate rlimit "${r.type}"` }
    seen.add(r.type)
  }
  const lsm = lsmProblem(spec, lsmHost())
  if (lsm) return lsm

  for (const [i, f] of (proc.scheduler?.flags ?? []).entries())
    if (!SCHED_FLAGS.has(f)) return { path: `process.scheduler.flags[${i}]`, reason: `unknown flag "${f}"` }
  if ((spec.linux?.personality?.flags?.length ?? 0) > 0)
    return { path: "linux.personality.flags", reason: "personality flags are not supported (as runc)" }
  const HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
  for (const [name, list] of Object.entries(spec.hooks ?? {})) {
    if (!HOOKS.includes(name)) return { path: `hooks.${name}`, reason: `unknown hook (one of ${HOOKS.join(", ")})` }
    for (const [i, h] of list.entries()) {
      if (!path.isAbsolute(h.path)) return { path: `hooks.${name}[${i}].path`, reason: `"${h.path}" is not an absolute path` }
      if (h.timeout !== undefined && h.timeout <= 0) return { path: `hooks.${name}[${i}].timeout`, reason: "must be a positive number of seconds" }
    }
  }
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (!path.isAbsolute(m.destination))
      return { path: `mounts[${i}].destination`, reason: `"${m.destination}" is not an absolute path` }
  }
  const mountOption = mountOptionProblem(spec.mounts ?? []) ?? idMappedProblem(spec)
  if (mountOption) return mountOption

  const linux = spec.linux ?? {}
  const nsTypes = new Set<string>()
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (nsTypes.has(ns.type)) return { path: `linux.namespaces[${i}].type`, reason: `duplicate namespace "${ns.type}"` }
    nsTypes.add(ns.type)
    if (ns.path !== undefined && !path.isAbsolute(ns.path))
      return { path: `linux.namespaces[${i}].path`, reason: `"${ns.path}" is not an absolute path` }
  }
  const newNs = (t: string) => (linux.namespaces ?? []).some((n) => n.type === t && !n.path)
  const userNs = (linux.namespaces ?? []).find((n) => n.type === "user")
  const hasMaps = (linux.uidMappings?.length ?? 0) > 0 || (linux.gidMappings?.length ?? 0) > 0
  if (hasMaps && !userNs) return { path: "linux.uidMappings", reason: "id mappings need a user namespace" }
  if (userNs && !userNs.path && (!linux.uidMappings?.length || !linux.gidMappings?.length))
    return { path: "linux.uidMappings", reason: "a new user namespace needs uidMappings and gidMappings" }
  if (userNs?.path && hasMaps) return { path: "linux.uidMappings", reason: "cannot set id mappings of a joined user namespace" }
  if (spec.hostname && !nsTypes.has("uts")) return { path: "hostname", reason: "setting a hostname needs a uts namespace (new or joined)" }
  if (spec.domainname && !nsTypes.has("uts")) return { path: "domainname", reason: "setting a domainname needs a uts namespace (new or joined)" }
  if (linux.timeOffsets && !newNs("time")) return { path: "linux.timeOffsets", reason: "time offsets need a new time namespace" }
  for (const key of Object.keys(linux.sysctl ?? {})) {
    const need = sysctlNamespace(key)
    if (need && !nsTypes.has(need))
      return { path: `linux.sysctl.${key}`, reason: `needs the container's own ${need} namespace` }
    if (!need && !key.startsWith("fs.mqueue."))
      return { path: `linux.sysctl.${key}`, reason: "is not namespaced: it would change the host" }
    if (key.includes("/") || key.includes(".."))
      return { path: `linux.sysctl.${key}`, reason: "is not a sysctl name" }
  }
  const seccomp = linux.seccomp && seccompProblem(linux.seccomp)
  if (seccomp) return seccomp
  const rdt = checkIntelRdtShape(linux.intelRdt)
  if (rdt) return rdt
  const resources = checkResourceShape(linux.resources)
  if (resources) return resources
  for (const [i, d] of (linux.devices ?? []).entries()) {
    if (!path.isAbsolute(d.path)) return { path: `linux.devices[${i}].path`, reason: `"${d.path}" is not an absolute path` }
    if (d.type !== "p" && (d.major === undefined || d.minor === undefined))
      return { path: `linux.devices[${i}]`, reason: "major and minor are required for this device type" }
  }
  return undefined
}

/** The namespace a sysctl belongs to (runc's list), or undefined if it is a host-wide one. */
function sysctlNamespace(key: string): string | undefined {
  if (key.startsWith("net.")) return "network"
  if (key.startsWith("fs.mqueue.")) return "ipc"
  if (["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"].includes(key))
    return "ipc"
  if (key === "kernel.hostname" || key === "kernel.domainname") return "uts"
  return undefined
}

/** A bundle: its directory, its decoded config and the absolute rootfs. */
export interface Bundle {
  readonly dir: string
  readonly spec: Spec
  readonly rootfs: string
}

/**
 * Reads `<dir>/config.json` and validates it, including that the rootfs exists. The file is read
 * bounded (config/read-file.ts); as runc's os.Open, a config.json that is a symlink is followed, but
 * what it names must be a regular file.
 */
export const loadBundle = (dir: string): Effect.Effect<Bundle, ConfigError> =>
  Effect.gen(function* () {
    const abs = path.resolve(dir)
    const file = path.join(abs, "config.json")
    const json = yield* Effect.try({
      try: (): unknown => parseJsonText(readBoundedFile(file, { field: file, noFollow: false }), file, "the file"),
      catch: (e) => (e instanceof ConfigError ? e : new ConfigError({ path: file, reason: String(e) })),
    })
    return yield* fromSpec(json, abs)
  })

/**
 * Validates a config object whose relative paths are relative to `dir`. As runc (libcontainer/
 * configs/validate, rootfs): the rootfs path may hold no symlink. runc joins a relative root.path
 * to its working directory, the bundle as the kernel resolved it, so a symlinked bundle directory
 * is fine; any link in root.path itself, or in an absolute root.path, is refused.
 */
export const fromSpec = (input: unknown, dir: string): Effect.Effect<Bundle, ConfigError> =>
  Effect.gen(function* () {
    const spec = yield* parseSpec(input)
    const rootPath = spec.root?.path ?? ""
    const base = path.isAbsolute(rootPath) ? "/" : yield* Effect.try({
      try: () => fs.realpathSync(dir),
      catch: (e) => new ConfigError({ path: "root.path", reason: `invalid rootfs: ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }),
    })
    const rootfs = path.resolve(base, rootPath)
    const st = fs.statSync(rootfs, { throwIfNoEntry: false })
    if (!st?.isDirectory()) return yield* new ConfigError({ path: "root.path", reason: `${rootfs} is not a directory` })
    if (fs.realpathSync(rootfs) !== rootfs) return yield* new ConfigError({ path: "root.path", reason: "invalid rootfs: not an absolute path, or a symlink" })
    return { dir, spec, rootfs }
  })
