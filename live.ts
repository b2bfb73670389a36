/** The real services: the kernel through the addon, cgroups (the manager for this host's layout) and state on the real filesystem. */
import { Layer } from "effect"
import { CgroupsLive } from "./effects/cgroups-layout.ts"
import { KernelLive } from "./effects/kernel-live.ts"
import { StateStoreLive } from "./state/store.ts"

export const LiveLayer = Layer.mergeAll(KernelLive, CgroupsLive(), StateStoreLive)
