// Emits the declarations that ship (dist/**/*.d.ts) from the library's sources. tsc keeps the
// sources' `.ts` import paths in declarations (rewriteRelativeImportExtensions rewrites emitted
// JavaScript only), and a consumer on `module: NodeNext` rejects those (TS5097): relative
// specifiers are rewritten to `.js` here, which NodeNext resolves to the `.d.ts` beside them.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const out = "dist"
const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? walk(p) : e.name.endsWith(".d.ts") ? [p] : []
  })
// A module removed since the last emit must not leave its declarations in the package.
if (fs.existsSync(out)) for (const file of walk(out)) fs.rmSync(file)
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })

const relTs = /((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']*?)\.ts(["'])/g
for (const file of walk(out)) {
  const text = fs.readFileSync(file, "utf8")
  const rewritten = text.replace(relTs, "$1$2.js$3")
  if (rewritten !== text) fs.writeFileSync(file, rewritten)
}
