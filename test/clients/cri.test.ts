/**
 * Kubernetes' path to xcontainer: kubelet → containerd's CRI plugin → the io.containerd.runc.v2 shim →
 * bin/xcontainer, chosen per pod by a RuntimeClass whose handler is "xcontainer" (README "Kubernetes").
 * cri.sh runs a private containerd 1.6 with that handler and the sandbox (pause) and busybox images
 * imported offline; this file is kubelet: it makes the CRI calls kubelet makes for a pod (host network,
 * so no CNI) with a resource-limited non-root container, and checks each step on the host as well.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cgroupLayout, skipReason } from "../kernel/harness.ts"
import { ContainerState, NamespaceMode, PodSandboxState, RuntimeService } from "./cri/api_pb.ts"
import { connect, type CriClient } from "./cri/client.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
const xcontainer = path.join(repo, "bin", "xcontainer")
// The handler's BinaryName: bin/xcontainer, or a wrapper of it that logs each call (CALLS.md's CRI table).
const handlerBinary = process.env.XC_CRI_BINARY ?? xcontainer
const have = (cmd: string) => spawnSync(cmd, ["--version"]).status === 0
const reason =
  skipReason ??
  (have("containerd") && have("ctr") && have("podman") && have("gcc")
    ? undefined
    : "containerd, ctr, podman and gcc are needed (apt-get install containerd podman gcc; .ci/setup does)")
if (reason) console.warn(`SKIPPING CRI tests: ${reason}`)

const MiB = 1024n * 1024n
// cri.sh down removes it (a skipped run makes none).
const work = reason ? "" : fs.mkdtempSync(path.join(os.tmpdir(), "xc-cri-"))
// The shim runs the runtime with --root <options.Root>/<containerd namespace>.
const runtimeRoot = path.join(work, "xcontainer", "k8s.io")
const logs = path.join(work, "logs")
// The pod's cgroup parent, as kubelet's cgroupfs driver names one (/kubepods/…/pod<uid>).
const podCgroup = `/xc-cri-${process.pid}`

/** What bin/xcontainer (the handler's runtime) knows of a container: runc's `state` JSON. */
const runtimeState = (id: string): { status: string; pid: number } => {
  const r = spawnSync(xcontainer, ["--root", runtimeRoot, "state", id], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`xcontainer state ${id}: ${r.stderr}`)
  return JSON.parse(r.stdout) as { status: string; pid: number }
}
const runtimeList = (): string[] =>
  spawnSync(xcontainer, ["--root", runtimeRoot, "list", "-q"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)

/** A container's limits as the host's cgroups hold them (the CRI plugin's cgroupfs path: parent/id). */
const limits = (id: string): { memory: string; cpuQuota: string } => {
  if (cgroupLayout === "v2") {
    const dir = path.join("/sys/fs/cgroup", podCgroup, id)
    return {
      memory: fs.readFileSync(path.join(dir, "memory.max"), "utf8").trim(),
      cpuQuota: fs.readFileSync(path.join(dir, "cpu.max"), "utf8").split(" ")[0]!,
    }
  }
  return {
    memory: fs.readFileSync(path.join("/sys/fs/cgroup/memory", podCgroup, id, "memory.limit_in_bytes"), "utf8").trim(),
    cpuQuota: fs.readFileSync(path.join("/sys/fs/cgroup/cpu", podCgroup, id, "cpu.cfs_quota_us"), "utf8").trim(),
  }
}

describe.skipIf(reason)("kubelet's CRI calls through containerd drive xcontainer", () => {
  let cri: CriClient
  let podId = ""
  let appId = ""
  let jobId = ""
  const pod = {
    metadata: { name: "xc-pod", namespace: "default", uid: `xc-pod-${process.pid}`, attempt: 0 },
    // No hostname: kubelet sets one only for pods with their own network (and UTS) namespace; a
    // hostname without a UTS namespace is refused by xcontainer as by runc.
    logDirectory: logs,
    linux: {
      cgroupParent: podCgroup,
      // hostNetwork: true; kubelet's defaults for the rest (a pod IPC namespace, a PID namespace per container).
      securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
  }
  const container = (name: string, command: string[], linux: object = {}) => ({
    podSandboxId: podId,
    sandboxConfig: pod,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: "localhost/xc-busybox:latest" },
      command,
      logPath: `${name}.log`,
      linux: {
        securityContext: { namespaceOptions: pod.linux.securityContext.namespaceOptions },
        ...linux,
      },
    },
  })

  beforeAll(() => {
    const r = spawnSync("bash", [path.join(repo, "test", "clients", "cri.sh"), "up", work, handlerBinary], { encoding: "utf8", timeout: 120_000 })
    if (r.status !== 0) throw new Error(`cri.sh up failed (${r.status}): ${r.stderr}`)
    fs.mkdirSync(logs)
    cri = connect(path.join(work, "containerd.sock"))
  }, 150_000)

  afterAll(async () => {
    // What kubelet would still have to tear down if a step failed: every pod, then the daemon.
    if (cri) {
      const left = await cri.call(RuntimeService.method.listPodSandbox, {}).catch(() => undefined)
      for (const p of left?.items ?? []) {
        await cri.call(RuntimeService.method.stopPodSandbox, { podSandboxId: p.id }).catch(() => {})
        await cri.call(RuntimeService.method.removePodSandbox, { podSandboxId: p.id }).catch(() => {})
      }
      cri.close()
    }
    spawnSync("bash", [path.join(repo, "test", "clients", "cri.sh"), "down", work, xcontainer], { timeout: 60_000 })
    // The pod cgroup is kubelet's to remove (the runtime removes only the containers' own cgroups).
    const roots = cgroupLayout === "v2" ? ["/sys/fs/cgroup"] : fs.readdirSync("/sys/fs/cgroup").map((c) => path.join("/sys/fs/cgroup", c))
    for (const dir of roots.map((r) => path.join(r, podCgroup))) if (fs.existsSync(dir)) fs.rmdirSync(dir)
  }, 90_000)

  it("Version: containerd's CRI, runtime.v1", async () => {
    const v = await cri.call(RuntimeService.method.version, {})
    expect(v.runtimeName).toBe("containerd")
    expect(v.runtimeApiVersion).toBe("v1")
  })

  it("RunPodSandbox with the xcontainer handler starts the pause image under xcontainer", async () => {
    podId = (await cri.call(RuntimeService.method.runPodSandbox, { config: pod, runtimeHandler: "xcontainer" }, 90_000)).podSandboxId
    const status = await cri.call(RuntimeService.method.podSandboxStatus, { podSandboxId: podId })
    expect(status.status?.state).toBe(PodSandboxState.SANDBOX_READY)
    expect(status.status?.runtimeHandler).toBe("xcontainer")
    // The handler's runtime created it: xcontainer's state, and the process is the image's /pause.
    const s = runtimeState(podId)
    expect(s.status).toBe("running")
    expect(fs.readlinkSync(`/proc/${s.pid}/exe`)).toBe("/pause")
  }, 120_000)

  it("CreateContainer + StartContainer: a non-root container with memory and CPU limits", async () => {
    appId = (
      await cri.call(
        RuntimeService.method.createContainer,
        container("app", ["sleep", "300"], {
          resources: { memoryLimitInBytes: 64n * MiB, cpuPeriod: 100_000n, cpuQuota: 50_000n, cpuShares: 512n },
          securityContext: { namespaceOptions: pod.linux.securityContext.namespaceOptions, runAsUser: { value: 1000n } },
        }),
      )
    ).containerId
    await cri.call(RuntimeService.method.startContainer, { containerId: appId })
    const status = await cri.call(RuntimeService.method.containerStatus, { containerId: appId })
    expect(status.status?.state).toBe(ContainerState.CONTAINER_RUNNING)
    const s = runtimeState(appId)
    expect(s.status).toBe("running")
    expect(fs.readFileSync(`/proc/${s.pid}/status`, "utf8")).toMatch(/^Uid:\t1000\t1000\t1000\t1000$/m)
    expect(limits(appId)).toEqual({ memory: String(64n * MiB), cpuQuota: "50000" })
  }, 90_000)

  it("ExecSync: output and exit code of a command in the container, as its user", async () => {
    const id = await cri.call(RuntimeService.method.execSync, { containerId: appId, cmd: ["id", "-u"], timeout: 30n })
    expect(new TextDecoder().decode(id.stdout)).toBe("1000\n")
    expect(id.exitCode).toBe(0)
    const fail = await cri.call(RuntimeService.method.execSync, { containerId: appId, cmd: ["sh", "-c", "echo oops >&2; exit 3"], timeout: 30n })
    expect(new TextDecoder().decode(fail.stderr)).toBe("oops\n")
    expect(fail.exitCode).toBe(3)
  }, 90_000)

  it("UpdateContainerResources changes the limits of the running container", async () => {
    await cri.call(RuntimeService.method.updateContainerResources, {
      containerId: appId,
      linux: { memoryLimitInBytes: 128n * MiB, cpuPeriod: 100_000n, cpuQuota: 25_000n, cpuShares: 512n },
    })
    expect(limits(appId)).toEqual({ memory: String(128n * MiB), cpuQuota: "25000" })
  }, 60_000)

  it("ContainerStatus reports a finished container's exit code, and its output is in the CRI log", async () => {
    jobId = (await cri.call(RuntimeService.method.createContainer, container("job", ["sh", "-c", "echo hello; exit 7"]))).containerId
    await cri.call(RuntimeService.method.startContainer, { containerId: jobId })
    let status = await cri.call(RuntimeService.method.containerStatus, { containerId: jobId })
    for (let i = 0; i < 100 && status.status?.state !== ContainerState.CONTAINER_EXITED; i++) {
      await new Promise((r) => setTimeout(r, 100))
      status = await cri.call(RuntimeService.method.containerStatus, { containerId: jobId })
    }
    expect(status.status?.state).toBe(ContainerState.CONTAINER_EXITED)
    expect(status.status?.exitCode).toBe(7)
    expect(fs.readFileSync(path.join(logs, "job.log"), "utf8")).toMatch(/ stdout F hello\n/)
  }, 60_000)

  it("StopContainer: TERM, then KILL after the grace period (sleep as pid 1 ignores TERM)", async () => {
    await cri.call(RuntimeService.method.stopContainer, { containerId: appId, timeout: 2n }, 60_000)
    const status = await cri.call(RuntimeService.method.containerStatus, { containerId: appId })
    expect(status.status?.state).toBe(ContainerState.CONTAINER_EXITED)
    expect(status.status?.exitCode).toBe(137)
  }, 60_000)

  it("RemoveContainer, StopPodSandbox, RemovePodSandbox leave nothing behind", async () => {
    for (const containerId of [appId, jobId]) await cri.call(RuntimeService.method.removeContainer, { containerId })
    await cri.call(RuntimeService.method.stopPodSandbox, { podSandboxId: podId }, 60_000)
    await cri.call(RuntimeService.method.removePodSandbox, { podSandboxId: podId }, 60_000)
    expect((await cri.call(RuntimeService.method.listPodSandbox, {})).items).toEqual([])
    expect((await cri.call(RuntimeService.method.listContainers, {})).containers).toEqual([])
    expect(runtimeList()).toEqual([])
    const memoryDir = cgroupLayout === "v2" ? path.join("/sys/fs/cgroup", podCgroup) : path.join("/sys/fs/cgroup/memory", podCgroup)
    expect(fs.existsSync(memoryDir) ? fs.readdirSync(memoryDir).filter((d) => d === appId || d === podId) : []).toEqual([])
  }, 90_000)
})
