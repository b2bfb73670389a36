#!/usr/bin/env bash
# A private containerd with its CRI plugin, for the CRI client of cri.test.ts (which does what
# kubelet does). `cri.sh up WORK [RUNTIME]` writes WORK/config.toml (a runtime handler named
# "xcontainer": the io.containerd.runc.v2 shim with BinaryName = RUNTIME, default bin/xcontainer),
# starts containerd on WORK/containerd.sock and imports, offline, the pod sandbox image
# localhost/xc-pause:latest (cri/pause.c built static, alone in the image) and the busybox image of
# make-image.sh into its k8s.io namespace. `cri.sh down WORK` stops what is left: containers through
# RUNTIME, the shims and containerd (by the pids this run started), mounts under WORK, WORK itself.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:?usage: cri.sh up|down WORK [RUNTIME]}
work=${2:?usage: cri.sh up|down WORK [RUNTIME]}
runtime=${3:-$here/bin/xcontainer}
sock=$work/containerd.sock
C=(ctr --address "$sock" --namespace k8s.io)

up() {
  mkdir -p "$work"/{cni/conf,cni/bin,xcontainer,pause}
  # The CRI plugin's config as a cluster operator writes it (README "Kubernetes"), with every path
  # under WORK so that nothing is shared with a containerd the host may run. Pods use the host's
  # network, so the (empty) CNI directories are never read.
  # containerd gives the sandbox oom_score_adj -998, which only CAP_SYS_RESOURCE may set; where this
  # process lacks it (a restricted CI container), runc and xcontainer both fail to start the pause, so
  # containerd is told to clamp scores to its own, its option for exactly that (rootless) case.
  restrict_oom=false
  (( (0x$(awk '/^CapEff:/ { print $2 }' /proc/self/status) >> 24) & 1 )) || restrict_oom=true
  cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/xc-pause:latest"
  restrict_oom_score_adj = $restrict_oom
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$work/cni/bin"
    conf_dir = "$work/cni/conf"
  # A runtimes table replaces the built-in one, so the default handler (runc) is listed too.
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.xcontainer]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.xcontainer.options]
      BinaryName = "$runtime"
      Root = "$work/xcontainer"
TOML
  containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  echo $! >"$work/containerd.pid"
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { cat "$work/containerd.log" >&2; echo "containerd did not start" >&2; exit 1; }

  # The sandbox image: one static file, its entrypoint, as an OCI archive made by podman.
  gcc -static -Os -s -o "$work/pause/pause" "$here/test/clients/cri/pause.c"
  tar -C "$work/pause" -cf "$work/pause.tar" pause
  podman import -q --change 'ENTRYPOINT ["/pause"]' "$work/pause.tar" localhost/xc-pause:latest >/dev/null
  podman save --format oci-archive -o "$work/pause-oci.tar" localhost/xc-pause:latest >/dev/null 2>&1
  podman rmi -f localhost/xc-pause:latest >/dev/null 2>&1 || true
  "${C[@]}" images import --base-name localhost/xc-pause "$work/pause-oci.tar" >/dev/null
  # The workload image: busybox-static (make-image.sh).
  bash "$here/test/clients/make-image.sh"
  podman save --format oci-archive -o "$work/busybox-oci.tar" localhost/xc-busybox:latest >/dev/null 2>&1
  "${C[@]}" images import --base-name localhost/xc-busybox "$work/busybox-oci.tar" >/dev/null
  rm -f "$work"/*.tar
}

down() {
  [ -d "$work" ] || return 0
  # Containers the test left behind (it removes its pods itself when it gets that far).
  if [ -d "$work/xcontainer" ]; then
    for id in $("$runtime" --root "$work/xcontainer" list -q 2>/dev/null); do
      "$runtime" --root "$work/xcontainer" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  # The shims containerd started for this socket (each was given -address $sock), then containerd.
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim.* -address $sock "; then
      kill "${p#/proc/}" 2>/dev/null || true
    fi
  done
  if [ -f "$work/containerd.pid" ]; then
    pid=$(cat "$work/containerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Mounts under WORK (rootfs overlays, the pods' /dev/shm), deepest first.
  awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: cri.sh up|down WORK [RUNTIME]" >&2; exit 2 ;;
esac
