/**
 * `stdio: "pipe"`: three pipes between this process and a container's process, our ends as Node
 * streams (stdin Writable, stdout and stderr Readable), the other ends for the child's 0, 1, 2. A pipe
 * is made as a FIFO opened from both sides and unlinked at once (Node has no pipe(2); the addon's
 * mkfifo does the one syscall): the child's ends are closed here once the child holds its copies.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { Readable, Writable } from "node:stream"
import { Effect } from "effect"
import { addon } from "../native/addon.ts"
import { SyscallError } from "./errors.ts"

/** Our ends of a process's stdio pipes. */
export interface PipedStdio {
  readonly stdin: Writable
  readonly stdout: Readable
  readonly stderr: Readable
}

export interface Pipes {
  /** The fds for the child's stdin, stdout, stderr. */
  readonly child: readonly [number, number, number]
  readonly ours: PipedStdio
  /** Closes the child's ends (after the spawn, whether it worked or not). */
  readonly closeChild: () => void
  /** Closes ours too (the spawn failed). */
  readonly destroy: () => void
}

/** One pipe: [read end, write end] (Node opens files close-on-exec). */
function pipe(): [number, number] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-pipe-"))
  const fifo = path.join(dir, "p")
  try {
    addon.mkfifo(fifo, 0o600)
    // O_NONBLOCK: opening the read side does not wait for a writer; the child's side is made blocking
    // again when it is dup'd to 0-2 (native/addon/spawn.cc), ours is what libuv wants.
    const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    try {
      return [r, fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)]
    } catch (e) {
      fs.closeSync(r)
      throw e
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const openPipes = (): Effect.Effect<Pipes, SyscallError> =>
  Effect.try({
    try: () => {
      const opened: number[] = []
      try {
        const [inR, inW] = pipe()
        opened.push(inR, inW)
        const [outR, outW] = pipe()
        opened.push(outR, outW)
        const [errR, errW] = pipe()
        opened.push(errR, errW)
        const ours: PipedStdio = {
          stdin: new net.Socket({ fd: inW, readable: false, writable: true }),
          stdout: new net.Socket({ fd: outR, readable: true, writable: false }),
          stderr: new net.Socket({ fd: errR, readable: true, writable: false }),
        }
        let childOpen = true
        const closeChild = () => {
          if (!childOpen) return
          childOpen = false
          for (const fd of [inR, outW, errW]) fs.closeSync(fd)
        }
        return {
          child: [inR, outW, errW] as const,
          ours,
          closeChild,
          destroy: () => {
            closeChild()
            for (const s of [ours.stdin, ours.stdout, ours.stderr]) s.destroy()
          },
        }
      } catch (e) {
        for (const fd of opened) fs.closeSync(fd)
        throw e
      }
    },
    catch: (e) => new SyscallError({ syscall: (e as NodeJS.ErrnoException).syscall ?? "mkfifo", errno: (e as NodeJS.ErrnoException).code ?? String(e), path: "stdio pipe" }),
  })
