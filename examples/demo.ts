/**
 * `npm run demo`: a real container from a busybox rootfs, through the library.
 * Builds examples/.bundle from Debian's busybox-static, runs a shell in it
 * (all namespaces, runc's default mounts, capabilities, masked paths), prints
 * the lifecycle events, and deletes it.
 */
import * as path from "node:path"
import { create, dispose } from "../promise.ts"
import { makeBundle } from "./make-bundle.ts"

const dir = makeBundle(path.join(import.meta.dirname, ".bundle"), [
  "sh",
  "-c",
  'echo "hello from $(hostname), pid $$, uid $(id -u)"; grep CapEff /proc/self/status; ls /dev | tr "\\n" " "; echo',
])
const c = await create({ root: "/run/xcontainer-demo", id: `demo-${process.pid}`, bundle: dir })
console.log(`container ${c.id} is ${c.status()}, init pid ${c.pid} on the host`)
c.subscribe((e) => console.log(`[${e.at.toISOString()}] ${e.id}: ${e.from} → ${e.to}`))
await c.start()
const status = await c.wait()
console.log(`exited with`, status)
await c.destroy()
await dispose()
