/**
 * The command line as runc 1.1.5 behaves on the same input (issue 14): `spec`'s file, the
 * terminal/console-socket rules, exec's defaults and statuses, the log format, `--version`,
 * `-h` on every command, the foreground terminal's bytes, `kill --all` and `delete` on the
 * states runc accepts them in. Where runc is installed each case runs under both and compares.
 */
import { execFile, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { layoutFromStatfs } from "../../effects/cgroups-layout.ts"
import { skipReason } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const runc = spawnSync("runc", ["--version"]).status === 0 ? "runc" : undefined
const noRunc = runc ? undefined : "runc is not installed (apt-get install runc)"
if (noRunc) console.warn(`SKIPPING runc comparisons: ${noRunc}`)
if (skipReason) console.warn(`SKIPPING container cases: ${skipReason}`)

describe.skipIf(noRunc)("spec", () => {
  it("writes runc's config.json (terminal, no seccomp, cgroup namespace only on pure v2), and runc's rootless one", () => {
    for (const flags of [[], ["--rootless"]]) {
      const [r, x] = [fs.mkdtempSync(path.join(os.tmpdir(), "spec-r-")), fs.mkdtempSync(path.join(os.tmpdir(), "spec-x-"))]
      expect(spawnSync(runc!, ["spec", ...flags, "-b", r]).status).toBe(0)
      expect(spawnSync(BIN, ["spec", ...flags, "-b", x]).status).toBe(0)
      // What differs by design: the spec version each runtime implements and the default hostname.
      const norm = (s: string) => s.replace(/"ociVersion": "[^"]*"/, '"ociVersion": "V"').replace(/"hostname": "[^"]*"/, '"hostname": "H"')
      const [rs, xs] = [fs.readFileSync(path.join(r, "config.json"), "utf8"), fs.readFileSync(path.join(x, "config.json"), "utf8")]
      expect(norm(xs)).toBe(norm(rs))
      const spec = JSON.parse(xs) as { process: { terminal: boolean }; linux: { seccomp?: unknown; namespaces: { type: string }[] } }
      expect(spec.process.terminal).toBe(true)
      expect(spec.linux.seccomp).toBeUndefined()
      expect(spec.linux.namespaces.some((n) => n.type === "cgroup")).toBe(layoutFromStatfs() === "v2")
      fs.rmSync(r, { recursive: true })
      fs.rmSync(x, { recursive: true })
    }
  })
})
