#!/usr/bin/env bash
# Checkpoint and restore times, xcontainer's command line beside `runc --criu /usr/local/sbin/criu`,
# on the same bundle (busybox counter loop writing /dev/shm/c every 0.1 s) and the same CRIU 4.1.1.
# Each round: run -d, let it count 0.5 s, time `checkpoint`, time `restore -d`, check the count went
# on, delete. Rounds interleave the runtimes so drift hits both alike; prints medians in ms.
#   bash bench/criu.sh [rounds, default 10]       (root; CRIU from ../shared/deps/criu/install.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
CRIU=/usr/local/sbin/criu
# runc hands its environment to CRIU: give both runtimes CRIU's no-breakpoints mode, which xcontainer
# uses by default (effects/criu-swrk.ts, criuEnv: debug-register breakpoints never fire on some
# hypervisors, and CRIU then hangs), so that they run the same CRIU code path.
export CRIU_FAULT=${CRIU_FAULT-130}
XC="$PWD/bin/xcontainer"
[ -f dist/cli.js ] || npm run build >/dev/null
work=$(mktemp -d /tmp/xc-bench-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for x in sh sleep; do ln -s busybox "$work/bundle/rootfs/bin/$x"; done
(cd "$work/bundle" && runc spec && jq '.process.terminal=false | .process.args=["sh","-c","i=0; while true; do echo $i > /dev/shm/c; i=$((i+1)); sleep 0.1; done"]' config.json >c && mv c config.json)

# Stdio: the host's /dev/null, as conmon gives a detached container. runc reopens it inside the
# container at create; xcontainer declares it a CRIU external and hands it back at restore.

criu_ms() { tail -1 "$1" | sed -n 's/^(\([0-9]*\)\.\([0-9]\{3\}\).*/\1\2/p' | sed 's/^0*//;s/^$/0/'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

round() { # runtime-command-prefix name
  local rt=$1 id=$2 img="$work/img-$2"
  rm -rf "$img"
  $rt run -d -b "$work/bundle" "$id" </dev/null >/dev/null 2>&1
  sleep 0.5
  local t0; t0=$(date +%s%N)
  $rt checkpoint --image-path "$img" "$id"
  local cp; cp=$(ms "$t0")
  t0=$(date +%s%N)
  $rt restore -d --image-path "$img" -b "$work/bundle" "$id" </dev/null >/dev/null 2>&1
  local rs; rs=$(ms "$t0")
  t0=$(date +%s%N)
  local pid; pid=$($rt state "$id" | jq .pid)
  local st; st=$(ms "$t0")
  local v; v=$(cat "/proc/$pid/root/dev/shm/c")
  [ "$v" -ge 3 ] || { echo "$id: counter restarted ($v)" >&2; exit 1; }
  $rt delete -f "$id"
  # CRIU's own time: the last timestamp of its log (seconds since it started), in ms.
  local cd cr
  cd=$(criu_ms "$img/dump.log"); cr=$(criu_ms "$img/restore.log")
  echo "$cp $rs $cd $cr $st"
}

: >"$work/runc" ; : >"$work/xc"
for i in $(seq "$N"); do
  round "runc --root $work/runc-root --criu $CRIU" "r$i" >>"$work/runc"
  round "$XC --root $work/xc-root --criu $CRIU" "x$i" >>"$work/xc"
done
printf "%-12s %12s %12s %12s %12s %8s   (medians of %d, ms; whole command, CRIU's own time from its log, and \`state\` for the command's start-up)\n" runtime checkpoint "restore -d" "criu dump" "criu restore" state "$N"
for rt in runc xc; do
  printf "%-12s %12s %12s %12s %12s %8s\n" "$([ $rt = xc ] && echo xcontainer || echo runc)" \
    "$(cut -d' ' -f1 "$work/$rt" | median)" "$(cut -d' ' -f2 "$work/$rt" | median)" \
    "$(cut -d' ' -f3 "$work/$rt" | median)" "$(cut -d' ' -f4 "$work/$rt" | median)" "$(cut -d' ' -f5 "$work/$rt" | median)"
done
uptime
