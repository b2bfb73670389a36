/** The real services: the kernel through the addon, cgroups and state on the real filesystem. */
import { Layer } from "effect"
import { CgroupsFs } from "./effects/cgroups-fs.ts"
import { KernelLive } from "./effects/kernel-live.ts"
import { StateStoreLive } from "./state/store.ts"

export const LiveLayer = Layer.mergeAll(KernelLive, CgroupsFs(), StateStoreLive)
