/**
 * Byte-compatibility with runc where callers parse our output: the same bundle run under runc and
 * under bin/xcontainer, then `state` (created, running, paused, stopped), `list` (table, json, -q),
 * `ps --format json` and `events --stats` compared after the values that must differ (pids,
 * timestamps, counters, the runtime's own spec version) are normalised away: the same keys in the
 * same order, the same types, the same table layout, the same trailing bytes.
 */
import { execFile, spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tabwriter } from "../../cli/main.ts"
import { bundle, skipReason, stateRoot, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const runc = spawnSync("runc", ["--version"]).status === 0 ? "runc" : undefined
const why = skipReason ?? (runc ? undefined : "runc is not installed (apt-get install runc)")
if (why && !skipReason) console.warn(`SKIPPING runc comparison: ${why}`)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** A value's shape: types for leaves, key order kept (as an array of [key, shape]). */
const shape = (v: Json, omit: ReadonlySet<string> = new Set()): unknown =>
  v === null ? "null" : Array.isArray(v) ? ["array", ...(v.length ? [shape(v[0]!, omit)] : [])] : typeof v === "object" ? Object.entries(v).filter(([k]) => !omit.has(k)).map(([k, x]) => [k, shape(x, omit)]) : typeof v

/** runc's `omitempty` fields of types.Stats: present only when non-zero, so either side may lack them. */
const OMITEMPTY = new Set(["total", "percpu", "percpu_kernel", "percpu_user", "periods", "throttledPeriods", "throttledTime", "cpus", "mems", "cache", "usage", "max", "current", "limit", "ioServiceBytesRecursive", "ioServicedRecursive", "major", "minor", "op", "value"])

/** Every omitempty key that is present carries a non-zero, non-empty value (Go's rule). */
const omittedWhenEmpty = (v: Json, at = "data"): string[] =>
  v === null || typeof v !== "object"
    ? []
    : Array.isArray(v)
      ? v.flatMap((x, i) => omittedWhenEmpty(x, `${at}[${i}]`))
      : Object.entries(v).flatMap(([k, x]) => [
          ...(OMITEMPTY.has(k) && (x === 0 || x === "" || (Array.isArray(x) && x.length === 0)) ? [`${at}.${k}`] : []),
          ...(k === "raw" ? [] : omittedWhenEmpty(x, `${at}.${k}`)),
        ])

/** A runtime with its own state root: each command's exit status and stdout. */
const runtime = (bin: string) => {
  const root = stateRoot()
  // Asynchronously: a worker blocked in spawnSync for a minute loses vitest's RPC on a loaded machine.
  return (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const child = execFile(bin, ["--root", root, ...args], { encoding: "utf8", timeout: 20_000 }, (e, out, err) =>
        resolve({ code: e ? (typeof e.code === "number" ? e.code : -1) : 0, out, err }),
      )
      child.stdin?.end()
    })
}

/** A table's cells, split at the header's column starts (so a misaligned row shows). */
const cells = (table: string): string[][] => {
  const lines = table.replace(/\n$/, "").split("\n")
  const starts = [...lines[0]!.matchAll(/\S+/g)].map((m) => m.index)
  return lines.map((l) => starts.map((s, i) => l.slice(s, starts[i + 1]).trimEnd()))
}

describe.skipIf(why)("output compared with runc's", () => {
  it("state for every status, list (table, json, -q), ps --format json, events --stats", async () => {
    const b = bundle(["sleep", "60"])
    const id = uniq("compat")
    const seen: Record<string, Record<string, string>> = {}
    for (const [name, bin] of [["runc", runc!], ["xcontainer", BIN]] as const) {
      const rt = runtime(bin)
      const out: Record<string, string> = (seen[name] = {})
      const must = async (key: string, ...args: string[]) => {
        const r = await rt(...args)
        expect(r, `${name} ${args.join(" ")}`).toMatchObject({ code: 0 })
        out[key] = r.out
      }
      await must("list-empty", "list")
      await must("list-empty-json", "list", "-f", "json")
      await must("create", "create", "-b", b.dir, id)
      await must("state-created", "state", id)
      await must("start", "start", id)
      await must("state-running", "state", id)
      await must("list", "list")
      await must("list-json", "list", "--format", "json")
      await must("list-q", "list", "-q")
      await must("ps-json", "ps", "--format", "json", id)
      await must("events", "events", "--stats", id)
      await must("pause", "pause", id)
      await must("state-paused", "state", id)
      await must("list-paused", "list")
      await must("resume", "resume", id)
      await must("kill", "kill", id, "KILL")
      for (let i = 0; i < 100 && !(await rt("state", id)).out.includes('"stopped"'); i++) await new Promise((r) => setTimeout(r, 50))
      await must("state-stopped", "state", id)
      await must("list-stopped-json", "list", "-f", "json")
      await must("delete", "delete", id)
    }
    const [r, x] = [seen["runc"]!, seen["xcontainer"]!]
    // Empty: the header alone; json null.
    expect(x["list-empty"]).toBe(r["list-empty"])
    expect(x["list-empty-json"]).toBe(r["list-empty-json"])
    for (const status of ["created", "running", "paused", "stopped"]) {
      const [rs, xs] = [r[`state-${status}`]!, x[`state-${status}`]!]
      expect(shape(JSON.parse(xs) as Json), status).toEqual(shape(JSON.parse(rs) as Json))
      expect(JSON.parse(xs)).toMatchObject({ id, status, bundle: b.dir, owner: "", rootfs: JSON.parse(rs).rootfs })
      // Two-space indent and no newline after the closing brace, as runc.
      const layout = (s: string) => s.replace(/"[^"]*"|-?\d+/g, "V")
      expect(layout(xs)).toBe(layout(rs))
    }
    expect(JSON.parse(x["state-stopped"]!)).toMatchObject({ pid: 0 })
    // list: runc's tabwriter layout (minwidth 12, padding 3), the same header and columns.
    for (const key of ["list", "list-paused"]) {
      const [rc, xcells] = [cells(r[key]!), cells(x[key]!)]
      expect(xcells[0]).toEqual(rc[0])
      expect(xcells).toHaveLength(rc.length)
      expect(x[key]).toBe(tabwriter(xcells))
      expect(r[key]).toBe(tabwriter(rc)) // the rule we copy is runc's own
      const norm = (row: string[]) => row.map((c, i) => ([1, 4].includes(i) ? (c ? "V" : "") : c))
      expect(xcells.slice(1).map(norm)).toEqual(rc.slice(1).map(norm))
    }
    for (const key of ["list-json", "list-stopped-json"]) {
      expect(shape(JSON.parse(x[key]!) as Json)).toEqual(shape(JSON.parse(r[key]!) as Json))
      expect((JSON.parse(x[key]!) as { owner: string }[])[0]!.owner).toBe((JSON.parse(r[key]!) as { owner: string }[])[0]!.owner)
      expect(x[key]!.endsWith("}]\n")).toBe(true)
    }
    expect(x["list-q"]).toBe(`${id}\n`)
    expect(x["list-q"]).toBe(r["list-q"])
    expect(x["ps-json"]).toMatch(/^\[\d+\]\n$/)
    expect(r["ps-json"]).toMatch(/^\[\d+\]\n$/)
    // events --stats: one line, the same keys in the same order (omitempty counters aside), raw's keys equal.
    for (const out of [r["events"]!, x["events"]!]) expect(out.split("\n")).toHaveLength(2)
    const [re, xe] = [JSON.parse(r["events"]!) as { data: { memory: { raw: Record<string, number> } } }, JSON.parse(x["events"]!) as { data: { memory: { raw: Record<string, number> } } }]
    expect(shape(xe as unknown as Json, OMITEMPTY)).toEqual(shape(re as unknown as Json, OMITEMPTY))
    expect(Object.keys(xe.data.memory.raw)).toEqual(Object.keys(re.data.memory.raw))
    expect(omittedWhenEmpty(xe as unknown as Json)).toEqual([])
    // uint64s printed exactly (v1's "no limit" is 2^63 - 4096, which JSON.stringify would round).
    expect(x["events"]).toMatch(/"limit":9223372036854771712/)
  }, 240_000)
})
