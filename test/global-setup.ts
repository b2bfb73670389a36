/** Once before every test file: bundle the command line from the current sources (tests run bin/xcontainer). */
import { execFileSync } from "node:child_process"
import * as path from "node:path"

export default function setup(): void {
  const repo = path.resolve(import.meta.dirname, "..")
  execFileSync(process.execPath, [path.join(repo, "cli", "bundle.mjs")], { cwd: repo, stdio: "inherit" })
}
