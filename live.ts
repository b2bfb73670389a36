/**
 * The real services: the kernel through the addon, cgroups (the manager for this host's layout, and
 * the systemd driver for containers created with it) and state on the real filesystem.
 */
import { Layer } from "effect"
import { CgroupsLive } from "./effects/cgroups-layout.ts"
import { SystemdCgroupsLive } from "./effects/cgroups-systemd-live.ts"
import { KernelLive } from "./effects/kernel-live.ts"
import { StateStoreLive } from "./state/store.ts"

export const LiveLayer = Layer.mergeAll(KernelLive, CgroupsLive(), SystemdCgroupsLive(), StateStoreLive)
