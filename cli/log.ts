/**
 * The CLI's log lines in runc's (logrus's) two formats, over pino:
 * - text (the default): `time="2026-12-04T20:21:40Z" level=error msg="container does not exist"`,
 *   then the fields sorted by key; a value is quoted (Go's %q) only when it holds a character
 *   outside [A-Za-z0-9-._/@^+] (logrus's needsQuoting);
 * - json (--log-format json): one object with its keys sorted (Go's map marshalling), an
 *   RFC 3339 time and a string level. containerd's go-runc reads the last "error" line's msg
 *   from --log when a call fails, so a numeric level or a missing msg breaks it.
 */
import pino from "pino"

export type LogFormat = "text" | "json"

/** logrus's level names (pino says "warn"). */
const LEVEL: Record<string, string> = { warn: "warning" }

/** Go's time.RFC3339 in local time: seconds, then Z or ±hh:mm. */
export function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset()
  const local = new Date(d.getTime() + off * 60_000).toISOString().replace(/\.\d+Z$/, "")
  if (off === 0) return `${local}Z`
  const a = Math.abs(off)
  return `${local}${off < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`
}

/** Go's strconv.Quote for the printable and control characters a log message holds. */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"' || ch === "\\") out += `\\${ch}`
    else if (ch === "\n") out += "\\n"
    else if (ch === "\t") out += "\\t"
    else if (ch === "\r") out += "\\r"
    else if (c === 7) out += "\\a"
    else if (c === 8) out += "\\b"
    else if (c === 12) out += "\\f"
    else if (c === 11) out += "\\v"
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`
    else out += ch
  }
  return `${out}"`
}

const plain = (s: string) => /^[A-Za-z0-9\-._/@^+]*$/.test(s)
const text = (v: unknown) => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" || v === null ? String(v) : JSON.stringify(v))
const logrusValue = (v: unknown) => {
  const s = text(v)
  return plain(s) ? s : goQuote(s)
}

/** Go's encoding/json with HTML escaping on, as logrus's JSON formatter writes strings. */
const goJson = (v: unknown) => JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** One pino JSON line (level as a label, no time) as logrus writes it. */
export function formatLine(line: string, format: LogFormat, now = new Date()): string {
  const { level, msg, ...fields } = JSON.parse(line) as { level: string; msg?: string } & Record<string, unknown>
  const lv = LEVEL[level] ?? level
  const keys = Object.keys(fields).sort()
  if (format === "json") {
    const all: Record<string, unknown> = { ...fields, level: lv, msg: msg ?? "", time: rfc3339(now) }
    return `{${Object.keys(all).sort().map((k) => `${goJson(k)}:${goJson(all[k])}`).join(",")}}\n`
  }
  const rest = keys.map((k) => ` ${k}=${logrusValue(fields[k])}`).join("")
  return `time=${logrusValue(rfc3339(now))} level=${lv} msg=${logrusValue(msg ?? "")}${rest}\n`
}

/** A logger writing logrus's lines to `file` (appended) or stderr; debug level with --debug, else info. */
export function makeLogger(file: string | undefined, format: LogFormat, debug: boolean): pino.Logger {
  const dest = file ? pino.destination({ dest: file, append: true, sync: true, mkdir: false }) : pino.destination({ dest: 2, sync: true })
  const stream = { write: (line: string) => void dest.write(formatLine(line, format)) }
  return pino({ level: debug ? "debug" : "info", base: null, timestamp: false, formatters: { level: (label) => ({ level: label }) } }, stream)
}
