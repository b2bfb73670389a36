/**
 * Reads a small input file (config.json, `exec --process`, `update -r`) without trusting what the
 * path names: a link to /dev/zero would grow the runtime without end and a FIFO would block its
 * open forever. The file is opened O_NONBLOCK (a FIFO opens at once and is then refused), fstat'd
 * (regular files only) and read up to a byte cap. runc opens config.json with os.Open, which follows
 * a symlink; the caller says whether this file may be one.
 */
import * as fs from "node:fs"
import { ConfigError } from "../effects/errors.ts"

/** The most any of these files may hold: a config with a 1 MiB env and a large seccomp profile fits. */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024

export interface ReadOptions {
  /** What the error names: "--process", or the file itself for config.json. */
  readonly field: string
  /** Refuse a symlink as the last component (O_NOFOLLOW). */
  readonly noFollow: boolean
  readonly maxBytes?: number
}

const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e)

/** The file's bytes as UTF-8 text, or a ConfigError naming `field`, the file and why. */
export function readBoundedFile(file: string, o: ReadOptions): string {
  const max = o.maxBytes ?? MAX_INPUT_BYTES
  // config.json's errors are named by the file itself: say it once.
  const subject = o.field === file ? "the file" : file
  const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_CLOEXEC } = fs.constants as typeof fs.constants & { O_CLOEXEC?: number }
  let fd: number
  try {
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK | (O_CLOEXEC ?? 0) | (o.noFollow ? O_NOFOLLOW : 0))
  } catch (e) {
    const code = errnoOf(e)
    // O_NOFOLLOW on a symlink fails with ELOOP.
    throw new ConfigError({ path: o.field, reason: code === "ELOOP" && o.noFollow ? `${subject} is a symbolic link` : o.field === file ? code : `${file}: ${code}` })
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new ConfigError({ path: o.field, reason: `${subject} is not a regular file` })
    if (st.size > max) throw new ConfigError({ path: o.field, reason: `${subject} is larger than ${max} bytes` })
    return readCapped(fd, subject, o.field, max)
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads `fd` to its end, refusing more than `max` bytes (a file may grow after fstat, or be a pipe). */
export function readCapped(fd: number, file: string, field: string, max: number = MAX_INPUT_BYTES): string {
  const chunks: Buffer[] = []
  let total = 0
  const buf = Buffer.alloc(64 * 1024)
  for (;;) {
    let n: number
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null)
    } catch (e) {
      // A non-blocking pipe (stdin) with nothing yet: wait a little and read again.
      if (errnoOf(e) === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
        continue
      }
      throw new ConfigError({ path: field, reason: `${file}: ${errnoOf(e)}` })
    }
    if (n === 0) break
    total += n
    if (total > max) throw new ConfigError({ path: field, reason: `${file} is larger than ${max} bytes` })
    chunks.push(Buffer.from(buf.subarray(0, n)))
  }
  return Buffer.concat(chunks).toString("utf8")
}
