/**
 * What every part of the battery shares: a run tag (in every id and cgroup of the run), test
 * bundles whose cgroupsPath sits under a parent only this run uses, the figures each part reports,
 * and the CLI.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { build } from "esbuild"
import type { Spec } from "../../config/spec.ts"
import { bundle, WORK } from "../kernel/harness.ts"

/** What a part reports (the table). */
export interface Figures {
  readonly part: string
  runs: number
  leaks: number
  crashes: number
  hangs: number
  escapes: number
  /** Anything else measured, and the first few problems seen (for the report). */
  notes: string[]
}

export const figures = (part: string): Figures => ({ part, runs: 0, leaks: 0, crashes: 0, hangs: 0, escapes: 0, notes: [] })

/** Keeps at most a few examples of each kind of problem. */
export const note = (f: Figures, line: string) => {
  if (f.notes.length < 12) f.notes.push(line)
}

/** A fresh run scope: tag, state root, cgroup parent. */
export function scope(part: string) {
  const hex = randomBytes(3).toString("hex")
  const tag = `xc${hex}`
  const root = path.join(WORK, `chaos-${part}-${hex}`, "root")
  fs.mkdirSync(root, { recursive: true })
  // The parent's name does not contain the tag: the leak check looks for the containers' own dirs.
  const cgroupParent = `/xchaosp-${part}-${hex}`
  return { tag, root, dir: path.dirname(root), cgroupParent, id: (n: number | string) => `${tag}-${n}` }
}
export type Scope = ReturnType<typeof scope>

/** A bundle for `args` with its cgroupsPath under the scope's parent. */
export function chaosBundle(s: Scope, id: string, args: readonly string[], mutate?: (spec: Spec) => Spec): string {
  return bundle(args, (spec) => {
    const withCg = { ...spec, linux: { ...spec.linux, cgroupsPath: `${s.cgroupParent}/${id}` } }
    return mutate ? mutate(withCg) : withCg
  }).dir
}

/** Removes the scope's cgroup parent in every hierarchy and its work dir (after its containers are gone). */
export function dropScope(s: Scope) {
  for (const h of fs.readdirSync("/sys/fs/cgroup")) {
    const d = path.join("/sys/fs/cgroup", h, s.cgroupParent)
    try {
      fs.rmdirSync(d)
    } catch {
      /* absent, or not empty (the leak check reports what is in it) */
    }
  }
  fs.rmSync(s.dir, { recursive: true, force: true })
}

export const REPO = path.resolve(import.meta.dirname, "..", "..")
export const CLI = path.join(REPO, "bin", "xcontainer")

/** Runs the CLI to completion (or `timeoutMs`): status (null: killed), stdout, stderr. */
export function cli(args: readonly string[], opts: { timeoutMs?: number; killAfterMs?: number } = {}): Promise<{ status: number | null; signal: string | null; out: string; err: string; hung: boolean }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(CLI, args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    let hung = false
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()))
    const timer = setTimeout(() => {
      hung = true
      child.kill("SIGKILL")
    }, opts.timeoutMs ?? 30_000)
    const killer = opts.killAfterMs !== undefined ? setTimeout(() => child.kill("SIGKILL"), opts.killAfterMs) : undefined
    // "exit", not "close": a created init holds the CLI's stdout and stderr until it ends.
    child.on("exit", (status, signal) => {
      clearTimeout(timer)
      if (killer) clearTimeout(killer)
      // Ours closed now: the init may keep its ends for as long as it lives.
      setImmediate(() => {
        child.stdout!.destroy()
        child.stderr!.destroy()
      })
      resolve({ status, signal, out, err, hung })
    })
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
export const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!

const bundled = new Map<string, string>()
/** test/chaos/<name>.ts bundled once (a child costs a Node start, not a TypeScript loader's). */
export async function bundleScript(name: string): Promise<string> {
  const done = bundled.get(name)
  if (done) return done
  const out = path.join(WORK, "chaos-bin", `${name}.mjs`)
  await build({
    entryPoints: [path.join(REPO, "test/chaos", `${name}.ts`)],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Package imports resolve from the repository's node_modules (test/.work is inside it).
    packages: "external",
    external: ["*.node"],
    logLevel: "error",
  })
  bundled.set(name, out)
  return out
}

/** A bundled child's environment: where the addon and the init helper are. */
export const childEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  XCONTAINER_ADDON: path.join(REPO, "build/Release/xcontainer.node"),
  XCONTAINER_INIT: path.join(REPO, "build/Release/xcontainer-init"),
})
