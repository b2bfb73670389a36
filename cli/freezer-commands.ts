/** runc's `pause`, `resume` and `ps`: the freezer and the container's cgroup, from any process. */
import { execFileSync } from "node:child_process"
import { Effect } from "effect"
import { str, UsageError } from "./args.ts"
import { one, parse, type Cmd } from "./common.ts"
import { Container } from "../machines/container.ts"

const freezer =
  (op: "pause" | "resume"): Cmd =>
  (args, ctx) =>
    Effect.gen(function* () {
      const p = yield* parse(args, [])
      const id = yield* one(p.positional)
      const c = yield* Container.load({ root: ctx.root, id })
      yield* (op === "pause" ? c.pause() : c.resume()).pipe(Effect.ensuring(c.release()))
      ctx.log.debug({ id }, op === "pause" ? "paused" : "resumed")
      return 0
    })

export const pauseCmd: Cmd = freezer("pause")
export const resumeCmd: Cmd = freezer("resume")

/** `ps [-f table|json] <id> [ps options]`: json is the array of pids; table is ps(1)'s output (default -ef) cut to them. */
export const psCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    // As runc: the container id ends our flags, what follows goes to ps(1).
    const p = yield* parse(args, [{ name: "format", alias: "f", value: true }], true)
    const [id, ...psArgs] = p.rest
    if (!id) return yield* Effect.fail(new UsageError("usage: ps [--format table|json] <container-id> [ps options]"))
    const format = str(p, "format") ?? "table"
    if (format !== "table" && format !== "json") return yield* Effect.fail(new UsageError(`invalid format "${format}" (table or json)`))
    const c = yield* Container.load({ root: ctx.root, id })
    const pids = yield* c.processes().pipe(Effect.ensuring(c.release()))
    if (format === "json") {
      process.stdout.write(`${JSON.stringify(pids)}\n`)
      return 0
    }
    const out = yield* Effect.try({
      try: () => execFileSync("ps", psArgs.length > 0 ? psArgs : ["-ef"], { encoding: "utf8" }),
      catch: (e) => new UsageError(`ps: ${(e as Error).message}`),
    })
    const [header = "", ...lines] = out.split("\n")
    const col = header.trim().split(/\s+/).indexOf("PID")
    if (col < 0) return yield* Effect.fail(new UsageError("ps output has no PID column"))
    const wanted = new Set(pids)
    process.stdout.write([header, ...lines.filter((l) => wanted.has(Number(l.trim().split(/\s+/)[col])))].join("\n") + "\n")
    return 0
  })
