#!/usr/bin/env bash
# podman driving bin/xcontainer as its OCI runtime, with an image made offline from Debian's
# busybox-static (podman import of a rootfs tarball). Prints "N passed, N failed"; exits 1 on any failure.
# Usage: test/clients/podman.sh [runtime]   (default: this checkout's bin/xcontainer)
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
runtime=${1:-$here/bin/xcontainer}
image=localhost/xc-busybox:latest
# The host's hard RLIMIT_NOFILE is below podman's default 1048576 and root lacks CAP_SYS_RESOURCE
# here: runc fails the same way without these.
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
P=(podman --runtime "$runtime")
. "$here/test/clients/lib.sh"

bash "$here/test/clients/make-image.sh"
name=xc-podman-$$
check "run --rm"            "hello"      "${P[@]}" run --rm --network none "${limits[@]}" "$image" echo hello
check "exit status"         "rc=3"       sh -c "${P[*]} run --rm --network none ${limits[*]} $image sh -c 'exit 3'; echo rc=\$?"
check "run -d"              ""           "${P[@]}" run -d --name "$name" --network none "${limits[@]}" "$image" sleep 300
check "exec"                "in-exec"    "${P[@]}" exec "$name" sh -c 'echo in-exec'
check "exec -u"             "1000"       "${P[@]}" exec -u 1000 "$name" id -u
check "exec -t"             "/dev/pts/"  "${P[@]}" exec -t "$name" sh -c tty
check "ps shows it running" "Up"         "${P[@]}" ps --filter "name=$name"
check "pause"               "$name"      "${P[@]}" pause "$name"
check "paused"              "paused"     "${P[@]}" inspect -f '{{.State.Status}}' "$name"
check "unpause"             "$name"      "${P[@]}" unpause "$name"
check "running again"       "running"    "${P[@]}" inspect -f '{{.State.Status}}' "$name"
check "checkpoint (CRIU)"   "$name"      "${P[@]}" container checkpoint "$name"
check "restore (CRIU)"      "$name"      "${P[@]}" container restore "$name"
check "restored, running"   "running"    "${P[@]}" inspect -f '{{.State.Status}}' "$name"
check "exec after restore"  "in-exec"    "${P[@]}" exec "$name" sh -c 'echo in-exec'
check "stop"                "$name"      "${P[@]}" stop -t 2 "$name"
check "rm"                  "$name"      "${P[@]}" rm "$name"
check "run -t (terminal)"   "/dev/pts/0" "${P[@]}" run --rm -t --network none "${limits[@]}" "$image" sh -c tty
check "--memory"            "67108864"   "${P[@]}" run --rm --network none "${limits[@]}" --memory 64m "$image" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
check "--pids-limit"        "16"         "${P[@]}" run --rm --network none "${limits[@]}" --pids-limit 16 "$image" cat /sys/fs/cgroup/pids/pids.max
check "seccomp on"          "Seccomp:	2" "${P[@]}" run --rm --network none "${limits[@]}" "$image" grep Seccomp: /proc/self/status
"${P[@]}" rm -f "$name" >/dev/null 2>&1
summary
