// Builds the command line's V8 start-up snapshot (dist/cli.blob) from dist/cli-snapshot.js, for the
// Node and the CPU it runs on. A blob only loads under the V8 version, V8 flags and CPU features that
// built it (Node exits with status 14: "Failed to load the startup snapshot because it was built with a
// different version of V8 or with different V8 configurations"), so it is built where it runs: by
// `npm run build`, by the package's install script, and by bin/xcontainer in the background when the
// blob is missing or was built on another CPU or by another node (it runs dist/cli.js meanwhile).
//
// Written atomically (temporary file + rename), the blob first and then dist/cli.blob.cpu, the CPU key
// bin/xcontainer compares (/sys/devices/system/cpu/modalias: vendor, family, model and feature list):
// a reader sees an old blob with its old key, a new blob with the old key (and falls back once more),
// or both new; never a blob that does not match its key. Concurrent builds each use their own
// temporary files, and the last rename wins.
//
// Usage: node tools/build-blob.mjs [DIST] [--node=PATH] [--if-possible]
// --if-possible: exit 0 without building when DIST/cli-snapshot.js is absent (an install from a
// checkout that has not been built yet) or DIST is not writable.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const args = process.argv.slice(2)
const ifPossible = args.includes("--if-possible")
const dist = path.resolve(args.find((a) => !a.startsWith("--")) ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist"))
const entry = path.join(dist, "cli-snapshot.js")
const nodeArg = args.find((a) => a.startsWith("--node="))
/** The first `node` in PATH, found the way bin/xcontainer finds it (the key must compare equal). */
const nodeInPath = () => {
  for (const d of (process.env.PATH ?? "").split(":")) {
    const candidate = `${d === "" ? "." : d}/node`
    try {
      if (fs.statSync(candidate).isFile()) {
        fs.accessSync(candidate, fs.constants.X_OK)
        return candidate
      }
    } catch {
      // not there: the next PATH entry
    }
  }
  return process.execPath
}
const node = nodeArg === undefined ? nodeInPath() : nodeArg.slice("--node=".length)

const writable = (dir) => {
  try {
    fs.accessSync(dir, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}
if (ifPossible && (!fs.existsSync(entry) || !writable(dist))) process.exit(0)

/** What bin/xcontainer reads with one `read` builtin; empty where the kernel does not publish it. */
const cpuKey = () => {
  try {
    return fs.readFileSync("/sys/devices/system/cpu/modalias", "utf8").split("\n")[0] ?? ""
  } catch {
    return ""
  }
}

const suffix = `.tmp-${process.pid}`
const blob = path.join(dist, "cli.blob")
const key = path.join(dist, "cli.blob.cpu")
try {
  // NODE_NO_WARNINGS: Node warns that worker_threads and module are "not yet fully verified" in snapshots;
  // pino only loads worker_threads for transports, which we do not use, and `module` only for createRequire.
  // NODE_OPTIONS is dropped: V8 flags in it would be hashed into the blob and make it fail where they are
  // not set. XCONTAINER_ADDON/INIT too (bin/xcontainer exports them): with them the warm-up would load the
  // native addon, which a snapshot cannot hold (V8 aborts the build).
  const { NODE_OPTIONS: _o, XCONTAINER_ADDON: _a, XCONTAINER_INIT: _i, ...env } = process.env
  execFileSync(node, ["--snapshot-blob", blob + suffix, "--build-snapshot", entry], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...env, NODE_NO_WARNINGS: "1" },
  })
  fs.writeFileSync(key + suffix, `${cpuKey()}\n${node}\n`)
  fs.renameSync(blob + suffix, blob)
  fs.renameSync(key + suffix, key)
} finally {
  fs.rmSync(blob + suffix, { force: true })
  fs.rmSync(key + suffix, { force: true })
}
