/**
 * linux.intelRdt's shape (the host's resctrl is checked at create, effects/rdt.ts): a closID is one
 * resctrl directory name, and the schemata are lines of their resource (runc's validation).
 */
import type { Spec } from "./spec.ts"

export type IntelRdtSpec = NonNullable<NonNullable<Spec["linux"]>["intelRdt"]>

const P = "linux.intelRdt"

/** Shape rules (config only): a closID is one directory name. */
export function checkIntelRdtShape(rdt: IntelRdtSpec | undefined): { path: string; reason: string } | undefined {
  const id = rdt?.closID
  if (id !== undefined && (id === "" || id === "." || id === ".." || id.includes("/") || id.includes("\0")))
    return { path: `${P}.closID`, reason: `"${id}" is not a resctrl group name` }
  for (const [key, prefix] of [
    ["l3CacheSchema", /^L3(DATA|CODE)?:/],
    ["memBwSchema", /^MB:/],
  ] as const) {
    const v = rdt?.[key]
    if (v !== undefined && v !== "" && !v.split("\n").every((l) => l === "" || prefix.test(l)))
      return { path: `${P}.${key}`, reason: `"${v}" is not a ${key === "memBwSchema" ? "MB:" : "L3:"} schemata line` }
  }
  return undefined
}
