/**
 * Entry of dist/cli.js, the command line as a plain ES module: what bin/xcontainer runs where the
 * V8 start-up snapshot (cli/snapshot-entry.ts) cannot load (built on another CPU or by another Node),
 * while the blob is rebuilt. Same main, same exit statuses.
 */
import { main } from "./main.ts"

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`xcontainer: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  },
)
