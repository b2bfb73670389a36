/**
 * Entry of the V8 start-up snapshot of the command line: the whole bundled CLI
 * is loaded and initialised at build time, and each run only deserialises the
 * heap and calls main (DESIGN.md §8). Run as `node --snapshot-blob dist/cli.blob ARGS`.
 */
import * as v8 from "node:v8"
import { main } from "./main.ts"
import { warmUp } from "./warmup.ts"

// The snapshot is taken once the event loop is empty: the warm-up's promise has settled by then.
void warmUp()

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // argv is [node, ...ARGS]: there is no script path when running from a snapshot.
  main(process.argv.slice(1)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`xcontainer: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
      process.exit(1)
    },
  )
})
