// `npm test`: vitest over test/, then one plain closing line ("N passed, N failed, N skipped")
// that any CI can read; exits with vitest's status.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"

fs.mkdirSync("test/.work", { recursive: true })
const out = "test/.work/results.json"
fs.rmSync(out, { force: true })
const r = spawnSync("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`, ...process.argv.slice(2)], { stdio: "inherit" })
let summary = "0 passed, 0 failed"
if (fs.existsSync(out)) {
  const j = JSON.parse(fs.readFileSync(out, "utf8"))
  summary = `${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`
}
console.log(`\n${summary}`)
process.exit(r.status ?? 1)
