/**
 * HOME from the container's /etc/passwd, read by the manager. The file belongs to
 * the container (its processes can rewrite it between execs), so it is read as
 * hostile input: resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), not through
 * a final symlink, without blocking on a FIFO, only if it is a regular file, and
 * streamed a chunk at a time up to a byte cap. A 1.5 GB file must not cost the host
 * its memory, nor a FIFO hang every exec.
 */
import * as fs from "node:fs"
import { StringDecoder } from "node:string_decoder"
import { Effect } from "effect"
import { addon } from "../native/addon.ts"
import { ConfigError } from "./errors.ts"

/** The most the manager reads of the container's /etc/passwd (real ones are a few KiB). */
export const ACCOUNT_FILE_CAP = 4 << 20
const CHUNK = 64 << 10

/** Why the lookup failed, as the error's reason: the file, and what to do instead. */
const refuse = (file: string, why: string) =>
  new ConfigError({ path: "process.user.uid", reason: `HOME lookup: the container's ${file} ${why}; set HOME in process.env to skip it` })

/**
 * Calls `line` for each line of the container's `file` (e.g. "/etc/passwd") until it returns a value.
 * No such file: undefined. Not a regular file, a symlink, unreadable, or past ACCOUNT_FILE_CAP bytes
 * before the answer: a ConfigError naming the file (and the cap).
 */
export function scanAccountFile<A>(rootfs: string, file: string, line: (l: string) => A | undefined): Effect.Effect<A | undefined, ConfigError> {
  return Effect.suspend(() => {
    const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW } = fs.constants
    let fd: number
    try {
      fd = addon.openInRoot(rootfs, file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      // No passwd at all: nothing to look up (HOME defaults to "/").
      if (code === "ENOENT" || code === "ENOTDIR") return Effect.succeed(undefined)
      return Effect.fail(refuse(file, code === "ELOOP" ? "is a symlink" : `cannot be opened (${code ?? String(e)})`))
    }
    try {
      if (!fs.fstatSync(fd).isFile()) return Effect.fail(refuse(file, "is not a regular file"))
      const buf = Buffer.alloc(CHUNK)
      // A character split between two chunks is decoded whole.
      const decoder = new StringDecoder("utf8")
      let total = 0
      let rest = ""
      for (;;) {
        let n: number
        try {
          n = fs.readSync(fd, buf, 0, CHUNK, null)
        } catch (e) {
          return Effect.fail(refuse(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`))
        }
        const done = n === 0
        total += n
        const text = rest + (done ? decoder.end() : decoder.write(buf.subarray(0, n)))
        const lines = text.split("\n")
        // The last piece is a line only at the end of the file.
        rest = done ? "" : (lines.pop() ?? "")
        for (const l of lines) {
          const found = line(l)
          if (found !== undefined) return Effect.succeed(found)
        }
        if (done) return Effect.succeed(undefined)
        if (total > ACCOUNT_FILE_CAP) return Effect.fail(refuse(file, `is larger than the ${ACCOUNT_FILE_CAP >> 20} MiB the runtime reads`))
      }
    } finally {
      fs.closeSync(fd)
    }
  })
}

/**
 * HOME for a process: undefined when its env already has one (nothing is read) or its uid has no
 * entry; else the sixth field of the first /etc/passwd line for its uid.
 */
export const homeOf = (rootfs: string, proc: { readonly env?: readonly string[]; readonly user: { readonly uid: number } }): Effect.Effect<string | undefined, ConfigError> =>
  proc.env?.some((e) => e.startsWith("HOME="))
    ? Effect.succeed(undefined)
    : scanAccountFile(rootfs, "/etc/passwd", (l) => {
        const f = l.split(":")
        return f.length >= 7 && f[2] !== "" && Number(f[2]) === proc.user.uid ? (f[5] ?? "") : undefined
      })
