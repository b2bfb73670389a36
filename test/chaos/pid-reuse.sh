#!/bin/bash
# Run as pid 1 of a new pid namespace (unshare -p -f --mount-proc) with a small pid_max there
# (per pid namespace since Linux 6.14): creates a container with the CLI, kills its init, cycles
# pids until a bystander `sleep` gets the init's old pid, then runs kill / kill --all / exec /
# pause / resume / delete on the stopped container. Prints key=value lines for pid-reuse.ts.
# Usage: pid-reuse.sh CLI ROOT BUNDLE ID
set -u
CLI=$1 ROOT=$2 BUNDLE=$3 ID=$4
x() { "$CLI" --root "$ROOT" "$@" </dev/null >/dev/null 2>>"$ROOT/../errors"; }
if ! echo 400 >/proc/sys/kernel/pid_max 2>/dev/null; then echo "pidmax=no"; fi
# After a wrap the kernel allocates from 300 (RESERVED_PIDS) up: move past it first, so the
# container's pids lie in the 300–399 band that recycles every hundred forks.
while :; do /bin/true & p=$!; wait "$p"; [ "$p" -ge 305 ] && break; done
x create --bundle "$BUNDLE" "$ID" || { echo "setup=create failed"; exit 0; }
x start "$ID" || { echo "setup=start failed"; exit 0; }
pid=$("$CLI" --root "$ROOT" state "$ID" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
[ -n "$pid" ] || { echo "setup=no pid"; exit 0; }
kill -9 "$pid"
for _ in $(seq 1 500); do [ -e "/proc/$pid" ] || break; sleep 0.01; done
b=""
for i in $(seq 1 5000); do
  sleep 1000 &
  if [ "$!" = "$pid" ]; then b=$!; break; fi
  kill "$!"; wait "$!" 2>/dev/null
done
[ -n "$b" ] || { echo "setup=pid $pid never came back"; x delete -f "$ID"; exit 0; }
echo "cycles=$i pid=$pid"
before=$(cat "/proc/$b/cgroup")
status=$("$CLI" --root "$ROOT" state "$ID" | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
echo "status=$status"
x kill "$ID" KILL; echo "kill=$?"
x kill --all "$ID" KILL; echo "killall=$?"
x exec "$ID" /bin/true; echo "exec=$?"
x pause "$ID"; echo "pause=$?"
x resume "$ID"; echo "resume=$?"
x delete "$ID"; echo "delete=$?"
sleep 0.05
state=$(awk '{print $3}' "/proc/$b/stat" 2>/dev/null)
frozen=$(grep -o 'freezer:[^ ]*' "/proc/$b/cgroup" 2>/dev/null)
[ "$before" = "$(cat "/proc/$b/cgroup" 2>/dev/null)" ] && echo "cgroup=same" || echo "cgroup=moved"
echo "bystander=${state:-gone}"
kill "$b" 2>/dev/null; wait "$b" 2>/dev/null
[ -d "$ROOT/$ID" ] && x delete -f "$ID"
exit 0
