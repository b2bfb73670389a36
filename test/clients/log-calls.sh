#!/usr/bin/env bash
# Records what podman and containerd call: runs podman.sh and containerd.sh with the runtime wrapped
# by a shim that appends each call's argv and exit status to a log, under the name of the check
# (lib.sh writes "## name" there), then prints the log with ids and paths made generic.
# Usage: [RUNTIME=/usr/sbin/runc] test/clients/log-calls.sh [podman|containerd ...] > calls.txt
# (RUNTIME: the runtime wrapped, default this checkout's bin/xcontainer; diff the two logs to compare.)
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
runtime=${RUNTIME:-$here/bin/xcontainer}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XC_CALL_LOG=$work/calls.log
: > "$XC_CALL_LOG"
cat > "$work/xcontainer" <<SHIM
#!/bin/sh
"$runtime" "\$@"
rc=\$?
printf '%s\\t%s\\n' "\$rc" "\$*" >> "$XC_CALL_LOG"
exit \$rc
SHIM
chmod +x "$work/xcontainer"
clients=("$@")
((${#clients[@]})) || clients=(podman containerd)
for c in "${clients[@]}"; do
  echo "# $c" >> "$XC_CALL_LOG"
  bash "$here/test/clients/$c.sh" "$work/xcontainer" >&2
done
# 64-hex ids, exec ids, temp dirs and pids made generic; the log shows rc<TAB>argv.
sed -E -e 's/[0-9a-f]{64}/<id>/g' -e 's#/tmp/[^ ]*#<tmp>/…#g' -e 's#/run/[^ ]*#<run>/…#g' \
  -e 's#/var/[^ ]*#<var>/…#g' -e "s#$work/[^ ]*#<shim-dir>/…#g" "$XC_CALL_LOG"
