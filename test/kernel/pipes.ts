/** Real pipes for a container's stdio, which CRIU can dump (and a restore can hand new ones for). */
import { spawn } from "node:child_process"
import * as fs from "node:fs"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * An anonymous pipe (Node makes none: its child pipes are socketpairs), taken from a shell pipeline
 * through /proc. Stdio must be pipes, as runc's tests use: CRIU cannot dump a host file the container's
 * mount namespace does not show (a capture file, the host's /dev/null).
 */
export async function pipe(): Promise<{ read: number; write: number }> {
  const sh = spawn("/bin/busybox", ["sh", "-c", "sleep 30 | sleep 30"], { stdio: "ignore", detached: true })
  try {
    for (let i = 0; i < 200; i++) {
      const kids = fs.readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean)
      if (kids.length === 2) {
        const ends = kids.map((k) => [fs.readlinkSync(`/proc/${k}/fd/0`), fs.readlinkSync(`/proc/${k}/fd/1`)])
        // The writer's stdout and the reader's stdin are the same pipe.
        const w = kids.find((_, j) => ends[j]![1]!.startsWith("pipe:") && ends.some((e) => e[0] === ends[j]![1]))
        const r = kids.find((k) => k !== w)
        if (w && r) return { write: fs.openSync(`/proc/${w}/fd/1`, "w"), read: fs.openSync(`/proc/${r}/fd/0`, "r") }
      }
      await sleep(5)
    }
    throw new Error("no pipeline")
  } finally {
    process.kill(-sh.pid!, 9)
  }
}

/** Three pipes for a container's stdio; `stdio` are the container's ends. */
export async function pipes() {
  const [i, o, e] = [await pipe(), await pipe(), await pipe()]
  const all = [i.read, i.write, o.read, o.write, e.read, e.write]
  return { stdio: [i.read, o.write, e.write] as const, out: o.read, close: () => all.forEach((fd) => fs.closeSync(fd)) }
}
