/**
 * linux.resources → the cgroup v2 file writes that apply them, in order. Pure:
 * the v2 manager (cgroups-v2.ts) carries them out in the container's one
 * directory. The OCI fields were designed for v1; the conversions are runc's
 * (opencontainers/cgroups utils.go and fs2/*.go), so that a config means the
 * same under runc, crun and us:
 *
 * - cpu.shares → cpu.weight: 2..262144 mapped onto 1..10000 by runc's quadratic
 *   in log2 (it keeps 2 → 1, 1024 → 100, 262144 → 10000).
 * - cpu.quota/period → cpu.max "QUOTA PERIOD" ("max" for -1; period 100000 when
 *   only a quota is given); burst → cpu.max.burst; idle → cpu.idle.
 * - memory.swap is memory+swap in OCI; v2's memory.swap.max is swap alone:
 *   swap − limit (swap == limit → "0", no swap; -1 → "max"; limit -1 with no
 *   swap → "max"). memory.limit → memory.max, reservation → memory.low.
 * - blockIO.weight → io.bfq.weight when BFQ is there (same 10..1000 range), else
 *   io.weight linearly from 10..1000 to 1..10000; per-device weights need BFQ;
 *   throttles → io.max "MAJ:MIN rbps=N" (wbps, riops, wiops).
 * - hugepageLimits → hugetlb.SIZE.max and, where the kernel has it,
 *   hugetlb.SIZE.rsvd.max (reservations count too, runc ≥ 1.1).
 * - pids.limit → pids.max ("max" for -1); rdma → rdma.max "DEV hca_handle=N hca_object=M".
 * - unified: each key is written as given, last, so that it wins over the
 *   typed fields (runc's order); a multi-line value is written line by line.
 * -1 means unlimited and 0 (or absent) leaves the kernel's value, as on v1.
 * Devices are not a file on v2: see device-filter.ts.
 */
import type { ResourcesSpec } from "../config/spec.ts"

/** One write: `value` into `file` of the container's v2 directory; `optional` ones are skipped when the file is absent. */
export interface V2Write {
  readonly file: string
  readonly value: string
  /** What to do when the file does not exist: skip it, or write `fallback` instead. */
  readonly ifMissing?: { readonly skip: true } | { readonly file: string; readonly value: string }
}

/** runc's ConvertCPUSharesToCgroupV2Value. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0
  if (shares <= 2) return 1
  if (shares >= 262144) return 10000
  const l = Math.log2(shares)
  return Math.ceil(10 ** ((l * l + 125 * l) / 612.0 - 7.0 / 34.0))
}

/** runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]. */
export const blkioToIoWeight = (w: number): number => (w === 0 ? 0 : 1 + Math.floor(((w - 10) * 9999) / 990))

/** runc's ConvertMemorySwapToCgroupV2Value; a string is the refusal. 0 = leave as is, -1 = "max". */
export function swapToV2(swap: number, limit: number): number | string {
  if (limit === -1 && swap === 0) return -1
  if (swap === -1 || swap === 0) return swap
  if (limit === -1) return swap
  if (limit === 0) return "a swap limit needs memory.limit (OCI swap is memory+swap)"
  if (limit < 0) return `invalid memory limit ${limit}`
  if (swap < limit) return `${swap} is below memory.limit ${limit} (OCI swap is memory+swap)`
  return swap - limit
}

const maxOr = (v: number) => (v === -1 ? "max" : `${v}`)

/** The fields the spec types loosely for now (config/spec.ts), read defensively. */
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined)
const list = (v: unknown): Array<Record<string, unknown>> => (Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null) : [])
const record = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

/** The throttle lists and the io.max key each feeds. */
export const THROTTLES = [
  ["throttleReadBpsDevice", "rbps"],
  ["throttleWriteBpsDevice", "wbps"],
  ["throttleReadIOPSDevice", "riops"],
  ["throttleWriteIOPSDevice", "wiops"],
] as const

/** The writes for `r` (validated by config/resources-v2.ts first). */
export function v2Writes(r: ResourcesSpec | undefined): V2Write[] {
  const out: V2Write[] = []
  const w = (file: string, value: string | number, ifMissing?: V2Write["ifMissing"]) => out.push({ file, value: `${value}`, ...(ifMissing ? { ifMissing } : {}) })
  if (!r) return out
  const c = r.cpu
  if (c?.cpus) w("cpuset.cpus", c.cpus)
  if (c?.mems) w("cpuset.mems", c.mems)
  const idle = num(c?.idle)
  if (idle !== undefined) w("cpu.idle", idle)
  if (c?.shares) w("cpu.weight", sharesToWeight(c.shares))
  if (c?.quota || c?.period) w("cpu.max", `${c.quota && c.quota > 0 ? c.quota : "max"} ${c.period || 100000}`)
  // After cpu.max: a burst above the old quota is refused until the new quota is in (runc retries it the same way).
  const burst = num(c?.burst)
  if (burst !== undefined) w("cpu.max.burst", burst)
  const m = r.memory
  if (m && (m.limit || m.swap || m.reservation)) {
    const swap = swapToV2(m.swap ?? 0, m.limit ?? 0)
    if (typeof swap === "number" && (swap !== 0 || (m.swap ?? 0) > 0)) {
      // Without swap accounting there is no memory.swap.max; "max" or "0" then mean what the kernel does anyway.
      w("memory.swap.max", maxOr(swap), swap === -1 || swap === 0 ? { skip: true } : undefined)
    }
    if (m.limit) w("memory.max", maxOr(m.limit))
    if (m.reservation) w("memory.low", maxOr(m.reservation))
  }
  if (r.pids?.limit) w("pids.max", maxOr(r.pids.limit))
  const b = r.blockIO
  if (b?.weight) w("io.bfq.weight", b.weight, { file: "io.weight", value: `${blkioToIoWeight(b.weight)}` })
  for (const d of list(b?.weightDevice)) {
    const weight = num(d.weight)
    if (weight !== undefined) w("io.bfq.weight", `${num(d.major)}:${num(d.minor)} ${weight}`)
  }
  for (const [field, key] of THROTTLES)
    for (const d of list(b?.[field])) w("io.max", `${num(d.major)}:${num(d.minor)} ${key}=${maxOr(num(d.rate) ?? -1)}`)
  for (const h of r.hugepageLimits ?? []) {
    w(`hugetlb.${h.pageSize}.max`, h.limit)
    w(`hugetlb.${h.pageSize}.rsvd.max`, h.limit, { skip: true })
  }
  for (const [dev, lim] of Object.entries(record(r.rdma))) {
    const handles = num(record(lim).hcaHandles)
    const objects = num(record(lim).hcaObjects)
    w("rdma.max", [dev, ...(handles !== undefined ? [`hca_handle=${handles}`] : []), ...(objects !== undefined ? [`hca_object=${objects}`] : [])].join(" "))
  }
  for (const [file, value] of Object.entries(record(r.unified)))
    for (const line of String(value).split("\n")) if (line !== "" || !String(value).includes("\n")) w(file, line)
  return out
}
