#!/bin/bash
# run-suite.sh [-t SECONDS] [VITEST FILE...]: the guest suite, from the host (CI: .ci/run's last step).
# Builds the guest image when it is missing (build-guest.sh: cached in $VM_CACHE, else
# /var/tmp/debian-guest), packs the tree (tracked and new files, the built addon and init helper,
# node_modules without the lint/typecheck tools) into one tarball, given to the guest as a disk, boots the
# guest once (run-in-guest.sh) and runs in-guest.sh there: the real-kernel tests that mean something
# on a pure cgroup v2 host with systemd. Fails when a test fails, the guest does not run the suite,
# or the whole boot exceeds the bound (-t, default 420 s). Needs root (the image build) and a
# built tree (npm run build:native). Prints the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
bound=420
while getopts t: o; do case $o in t) bound=$OPTARG ;; *) echo "usage: $0 [-t SECONDS] [FILE...]" >&2; exit 2 ;; esac; done
shift $((OPTIND - 1))
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(
  test/kernel/cgroups-v2.test.ts
  test/kernel/v2-host.test.ts
  test/kernel/device-ebpf.test.ts
  test/kernel/resources.test.ts
  test/kernel/freezer.test.ts
  test/kernel/update.test.ts
  test/kernel/stats.test.ts
  test/kernel/systemd-scope.test.ts
  test/kernel/systemd-driver.test.ts
  test/kernel/systemd-cli.test.ts
  test/kernel/memory-pressure.test.ts
  test/kernel/lifecycle-property.test.ts
)
for f in build/Release/xcontainer.node build/Release/xcontainer-init; do
  [ -f "$f" ] || { echo "run-suite.sh: $f missing: run npm run build:native first" >&2; exit 1; }; done

t0=$SECONDS
bash test/guest/build-guest.sh
t1=$SECONDS

share=$(mktemp -d "${TMPDIR:-/var/tmp}/xc-guest.XXXXXX")
trap 'rm -rf "$share"' EXIT
# The tree as git sees it (committed or not, minus ignored files), the native build, and node_modules
# (a symlink in a worktree: packed from where it really is).
git ls-files -z -co --exclude-standard | grep -zv '^node_modules$' |
  tar -cf "$share/tree.tar" --null -T - build/Release/xcontainer.node build/Release/xcontainer-init
modules=$(readlink -f node_modules)
# Left out: what only lints, type-checks or generates code, types, source maps and Effect's TS sources.
tar -rf "$share/tree.tar" -C "$(dirname "$modules")" --exclude='node_modules/typescript' --exclude='node_modules/eslint*' \
  --exclude='node_modules/@typescript-eslint' --exclude='node_modules/typescript-eslint' --exclude='node_modules/.cache' \
  --exclude='node_modules/@bufbuild/protoplugin' --exclude='node_modules/@bufbuild/protoc-gen-es' \
  --exclude='node_modules/effect/src' --exclude='node_modules/effect/dist/dts' --exclude='*.map' --exclude='*.d.ts' \
  --exclude='*.d.mts' --exclude='*.d.cts' "$(basename "$modules")"
# The CLI bundle when it is built (not its snapshot: that does not load on the guest's CPU, and
# without dist/cli-snapshot.js bin/xcontainer does not try to rebuild it there).
if [ -f dist/cli.js ]; then tar -rf "$share/tree.tar" --exclude='*.map' dist/cli.js $( [ -d dist/chunks ] && echo dist/chunks ); fi
# Packages the guest needs that are not (yet) in the tree's dependencies, merged into its node_modules:
# XC_GUEST_EXTRA_MODULES names a node_modules dir (e.g. one with @particle/dbus-next, the systemd driver's client).
if [ -n "${XC_GUEST_EXTRA_MODULES:-}" ]; then
  tar -rf "$share/tree.tar" -C "$(dirname "$(readlink -f "$XC_GUEST_EXTRA_MODULES")")" --exclude='*.map' --exclude='*.d.ts' "$(basename "$XC_GUEST_EXTRA_MODULES")"
fi
cp test/guest/in-guest.sh "$share/"
t2=$SECONDS
echo "[host] image ready in $((t1 - t0)) s; tree packed in $((t2 - t1)) s ($(du -h "$share/tree.tar" | cut -f1))"

rc=0
# The tarball goes in as a disk (/dev/vdb), not over 9p; the share carries the script and the results.
VM_TIMING=1 bash test/guest/run-in-guest.sh -s "$share" -t "$bound" -d "$share/tree.tar" bash "$share/in-guest.sh" "$share" "${files[@]}" || rc=$?
t3=$SECONDS
if [ -s "$share/results.json" ]; then
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`[host] guest suite: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`)' "$share/results.json"
fi
echo "[host] guest suite exited with $rc; total $((t3 - t0)) s (image $((t1 - t0)) s, pack $((t2 - t1)) s, guest $((t3 - t2)) s)"
exit "$rc"
