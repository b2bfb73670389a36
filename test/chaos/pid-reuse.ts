/**
 * Part 4, PID reuse. In a new pid namespace whose pid_max is 400 (per namespace since Linux 6.14),
 * pid-reuse.sh (its pid 1) creates and starts a container with the CLI, kills its init, and forks
 * until a bystander `sleep` gets the init's old pid; then kill, kill --all, exec, pause, resume and
 * delete of the stopped container must leave the bystander alive, unstopped, in its own cgroups.
 * An escape is a bystander touched; a crash is a command that did not answer as for a stopped
 * container (kill/exec/pause/resume refused, kill --all and delete succeeding).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { chaosBundle, CLI, dropScope, figures, note, REPO, scope, type Figures } from "./common.ts"
import { leaks } from "./leaks.ts"

export const unshareMissing = spawnSync("unshare", ["--version"]).status !== 0 ? "unshare (util-linux) is not installed" : undefined

const inPidNs = (args: string[], timeoutMs: number) =>
  new Promise<{ out: string; hung: boolean }>((resolve) => {
    const child = spawn("unshare", ["-p", "-f", "--mount-proc", path.join(REPO, "test/chaos/pid-reuse.sh"), ...args], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    let hung = false
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    const t = setTimeout(() => {
      hung = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.on("close", () => {
      clearTimeout(t)
      resolve({ out, hung })
    })
  })

export async function pidReusePart(o: { budgetMs: number }): Promise<Figures> {
  const f = figures("4 pid reuse")
  if (unshareMissing) {
    f.notes.push(`skipped: ${unshareMissing}`)
    return f
  }
  const s = scope("pids")
  const end = Date.now() + o.budgetMs
  let reused = 0
  for (let n = 0; Date.now() < end; n++) {
    const id = s.id(n)
    const bundleDir = chaosBundle(s, id, ["/bin/sleep", "1000"])
    const r = await inPidNs([CLI, s.root, bundleDir, id], 60_000)
    f.runs++
    const kv = Object.fromEntries(r.out.split("\n").filter((l) => l.includes("=")).flatMap((l) => l.split(" ").map((p) => p.split("=") as [string, string])))
    if (r.hung) {
      f.hangs++
      note(f, `run ${n} hung`)
    } else if (kv.setup) note(f, `run ${n}: no reuse (${kv.setup})`)
    else {
      reused++
      if (kv.bystander !== "S" || kv.cgroup !== "same") {
        f.escapes++
        note(f, `run ${n}: bystander at pid ${kv.pid} is ${kv.bystander}, cgroup ${kv.cgroup}`)
      }
      const expected = { status: "stopped", kill: "1", killall: "0", exec: "255", pause: "1", resume: "1", delete: "0" }
      const wrong = Object.entries(expected).filter(([k, v]) => (k === "exec" ? kv[k] === "0" : kv[k] !== v))
      if (wrong.length) {
        f.crashes++
        note(f, `run ${n}: ${wrong.map(([k]) => `${k}=${kv[k]}`).join(" ")}`)
      }
    }
    if (kv.pidmax === "no") note(f, "this kernel has no per-namespace pid_max: pids cycle through the default range (slow)")
    const found = leaks({ tag: s.tag, roots: [s.root], dirs: [s.root, bundleDir] })
    if (found.length) {
      f.leaks++
      note(f, `run ${n}: ${found.slice(0, 3).join("; ")}`)
    }
    fs.rmSync(bundleDir, { recursive: true, force: true })
  }
  f.notes.unshift(`${reused}/${f.runs} runs reused the init's pid for a bystander`)
  const errs = path.join(s.dir, "errors")
  if (fs.existsSync(errs)) f.notes.push(`CLI messages seen: ${[...new Set(fs.readFileSync(errs, "utf8").split("\n").map((l) => l.replace(/^.*msg="/, "").replace(/xc\w+-\d+/, "ID").replace(/"\s*$/, "")))].filter(Boolean).join(" | ")}`)
  dropScope(s)
  return f
}
