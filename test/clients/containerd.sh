#!/usr/bin/env bash
# containerd's ctr driving bin/xcontainer as the runc binary of the io.containerd.runc.v2 shim
# (ctr run --runc-binary), against a private containerd (temp root, state and socket). The image is
# the offline busybox one of podman.sh, exported with `podman save`. Prints "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
runtime=${1:-$here/bin/xcontainer}
image=localhost/xc-busybox:latest
work=$(mktemp -d)
sock=$work/containerd.sock
containerd --root "$work/root" --state "$work/state" --address "$sock" >"$work/containerd.log" 2>&1 &
daemon=$!
cleanup() {
  kill "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  umount -R "$work/state" "$work/root" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
C=(ctr --address "$sock")
R=(--runc-binary "$runtime")
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
. "$here/test/clients/lib.sh"

# The image podman.sh uses, handed to containerd as an OCI archive.
bash "$here/test/clients/make-image.sh"
podman save --format oci-archive -o "$work/img.tar" "$image" >/dev/null 2>&1
check "image import"        "$image"      sh -c "${C[*]} images import --base-name localhost/xc-busybox $work/img.tar >/dev/null && ${C[*]} images ls -q"
check "run --rm"            "hello"       "${C[@]}" run --rm "${R[@]}" "$image" c1 echo hello
check "exit status"         "rc=7"        sh -c "${C[*]} run --rm ${R[*]} $image c2 sh -c 'exit 7'; echo rc=\$?"
check "run -d"              ""            "${C[@]}" run -d "${R[@]}" --memory-limit 67108864 "$image" c3 sleep 300
check "task running"        "RUNNING"     "${C[@]}" task ls
check "memory limit"        "67108864"    cat /sys/fs/cgroup/memory/default/c3/memory.limit_in_bytes
check "exec"                "in-exec"     "${C[@]}" task exec --exec-id e1 c3 sh -c 'echo in-exec'
check "pause"               "PAUSED"      sh -c "${C[*]} task pause c3 && ${C[*]} task ls"
check "resume"              "RUNNING"     sh -c "${C[*]} task resume c3 && ${C[*]} task ls"
check "kill"                "STOPPED"     sh -c "${C[*]} task kill -s SIGKILL c3; sleep 0.5; ${C[*]} task ls"
check "delete"              ""            sh -c "${C[*]} task delete c3 && ${C[*]} container delete c3"
summary
