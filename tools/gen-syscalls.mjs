// Regenerates config/syscalls-x86.ts from this machine's kernel headers:
//   node tools/gen-syscalls.mjs > config/syscalls-x86.ts
// The seccomp compiler needs syscall numbers for every ABI an x86_64 kernel runs
// (x86_64, i386 through int 0x80, x32 with __X32_SYSCALL_BIT set); libseccomp
// keeps the same tables in src/syscalls.csv, generated the same way.
import * as fs from "node:fs"

const dir = "/usr/include/x86_64-linux-gnu/asm"
const X32_BIT = 0x40000000

function table(file) {
  const out = []
  for (const line of fs.readFileSync(`${dir}/${file}`, "utf8").split("\n")) {
    const m = /^#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$/.exec(line)
    if (m) out.push([m[1], m[2] !== undefined ? X32_BIT + Number(m[2]) : Number(m[3])])
  }
  return out
}

const emit = (name, entries) => {
  const lines = []
  for (let i = 0; i < entries.length; i += 6)
    lines.push("  " + entries.slice(i, i + 6).map(([n, v]) => `${n}: ${v},`).join(" "))
  return `export const ${name}: Readonly<Record<string, number>> = {\n${lines.join("\n")}\n}\n`
}

process.stdout.write(`/**
 * Syscall numbers of the three ABIs an x86_64 kernel runs, generated from
 * ${dir}/unistd_{64,32,x32}.h
 * by \`node tools/gen-syscalls.mjs > config/syscalls-x86.ts\`. Do not edit.
 * x32 numbers include __X32_SYSCALL_BIT (0x40000000), as seccomp_data.nr sees them.
 */
${emit("SYSCALLS_X86_64", table("unistd_64.h"))}
${emit("SYSCALLS_I386", table("unistd_32.h"))}
${emit("SYSCALLS_X32", table("unistd_x32.h"))}`)
