/**
 * Makes an OCI bundle from Debian's busybox-static: `<dir>/rootfs` with busybox
 * and its applet links, a minimal /etc, and `<dir>/config.json` from the
 * runc-spec defaults. Usage: tsx examples/make-bundle.ts DIR [program args…]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { defaultSpec } from "../config/default-spec.ts"

const BUSYBOX = "/bin/busybox"

/** Creates the rootfs (once) and writes config.json with `args`. */
export function makeBundle(dir: string, args: readonly string[] = ["sh"]): string {
  const rootfs = path.join(dir, "rootfs")
  if (!fs.existsSync(path.join(rootfs, "bin", "busybox"))) {
    if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static`)
    for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "usr/sbin", "sbin"])
      fs.mkdirSync(path.join(rootfs, d), { recursive: true })
    fs.copyFileSync(BUSYBOX, path.join(rootfs, "bin", "busybox"))
    fs.chmodSync(path.join(rootfs, "bin", "busybox"), 0o755)
    const applets = ["sh", "ls", "cat", "echo", "true", "false", "hostname", "id", "sleep", "ps", "mount", "grep", "head", "wc", "touch", "mkdir", "kill", "env", "pwd", "readlink", "stat", "test", "ip", "ifconfig", "uname", "dd", "mknod", "rm", "sed", "tr", "seq", "date", "awk", "stty", "tty"]
    for (const a of applets) fs.symlinkSync("busybox", path.join(rootfs, "bin", a))
    fs.writeFileSync(path.join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    fs.writeFileSync(path.join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n")
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(defaultSpec(args), null, 2))
  return dir
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const [dir, ...args] = process.argv.slice(2)
  if (!dir) {
    process.stderr.write("usage: make-bundle DIR [program args…]\n")
    process.exit(2)
  }
  fs.mkdirSync(dir, { recursive: true })
  makeBundle(dir, args.length ? args : ["sh"])
  process.stdout.write(`bundle in ${dir}\n`)
}
