#!/bin/bash
# in-guest.sh SHARE [VITEST FILE...]: the guest half of run-suite.sh, run as root inside the guest.
# Unpacks the tree from /dev/vdb (run-suite.sh attaches the tarball as a disk: 9p under emulation
# took ~45 s for it) into a tmpfs (no journal to pay under emulation), prints what
# the host is (layout, controllers, kernel, systemd), runs vitest over the given files with the
# guest config, leaves the JSON results in SHARE/results.json and exits with vitest's status.
set -euo pipefail
share=$1; shift
t0=$SECONDS
mkdir -p /root/xc
mount -t tmpfs -o size=1200m,mode=0755 xc /root/xc
tar -xf /dev/vdb -C /root/xc
cd /root/xc
echo "[guest ${SECONDS}s] unpacked; kernel $(uname -r), $(systemctl --version | head -1)," \
  "cgroup fs $(stat -f -c %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)," \
  "our cgroup $(cut -d: -f3 /proc/self/cgroup)"
# The lifecycle property test: a bounded number of runs, and time for them under emulation.
export XC_PROPERTY_RUNS=${XC_PROPERTY_RUNS:-5} XC_PROPERTY_TIMEOUT_MS=${XC_PROPERTY_TIMEOUT_MS:-300000}
rc=0
node node_modules/vitest/vitest.mjs run --config test/guest/vitest.config.ts --reporter=verbose --reporter=json \
  --outputFile.json="$share/results.json" "$@" || rc=$?
echo "[guest $((SECONDS - t0))s] vitest exited with $rc"
# Nothing of ours may stay behind in the cgroup tree.
# (The tests' uniq() names: prefix, dash, 8 hex digits; systemd's dev-*.mount are not ours.)
left=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d -regextype egrep -regex '.*/(v2t|xcg|dev)-[0-9a-f]{8}' 2>/dev/null || true)
[ -z "$left" ] || { echo "left behind in /sys/fs/cgroup:"; echo "$left"; [ "$rc" != 0 ] || rc=1; }
exit "$rc"
