#!/usr/bin/env bash
# OCI runtime-tools validation suite (github.com/opencontainers/runtime-tools validation/*.t)
# against a runc-compatible runtime. Builds the suite once, offline, into a cache directory,
# runs every executable in series with a timeout, prints one line per executable and the totals
# "N passed, N failed, N skipped", and writes the TAP of every executable with a failure to
# $cache/failures.log (the output of each executable is kept under $cache/tap/).
#
# Usage: test/conformance/run.sh [options] [runtime] [test ...]
#   runtime            runtime binary (default: this checkout's bin/xcontainer), e.g. /usr/sbin/runc
#   test ...           only these executables (names like linux_cgroups_memory or validation/x/y.t)
#   --max-failed N     exit 1 if more than N checks fail ("not ok")
#   --min-passed N     exit 1 if fewer than N checks pass
#   --max-err N        exit 1 if more than N executables end ERR (no verdict in TAP, see below)
#                      (all three default, for bin/xcontainer over every executable, to the numbers in
#                      test/conformance/baseline.txt; otherwise there is no threshold)
#   --no-baseline      do not apply baseline.txt
#   --timeout S        per-executable timeout in seconds (default 120)
#   --cache DIR        cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/xcontainer-conformance)
#   --tarball FILE     runtime-tools tarball (default ../shared/deps/runtime-tools/ beside the clone)
#   --no-install       do not apt-get install Go; fail if it is missing
# Exit status: 0 within the thresholds, 1 on a regression, 2 on a setup error.
#
# Totals count TAP test points only ("ok", "not ok", "# SKIP"), as the reference numbers do
# (Debian's runc 1.1.5 here: 3275 passed, 35 failed, 427 skipped in about 90 s). Some executables
# give their verdict outside TAP (the hook tests print "1..0" and a YAML "error" on failure, the
# *_fail tests exit 1 when create wrongly succeeds) or die before their first test point: those
# that fail so are marked ERR, logged, and counted apart as executables.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd) cwd=$PWD
cache=${XDG_CACHE_HOME:-$HOME/.cache}/xcontainer-conformance
tarball=$here/../shared/deps/runtime-tools/runtime-tools-5e63903.tar.gz
timeout_s=120 max_failed= min_passed= max_err= use_baseline=1 install=1 runtime= tests=()
die() { echo "conformance: $*" >&2; exit 2; }
while (($#)); do
  case $1 in
    --max-failed) max_failed=${2:?}; shift ;;
    --max-failed=*) max_failed=${1#*=} ;;
    --min-passed) min_passed=${2:?}; shift ;;
    --max-err) max_err=${2:?}; shift ;;
    --max-err=*) max_err=${1#*=} ;;
    --min-passed=*) min_passed=${1#*=} ;;
    --no-baseline) use_baseline=0 ;;
    --timeout) timeout_s=${2:?}; shift ;;
    --timeout=*) timeout_s=${1#*=} ;;
    --cache) cache=${2:?}; shift ;;
    --cache=*) cache=${1#*=} ;;
    --tarball) tarball=${2:?}; shift ;;
    --tarball=*) tarball=${1#*=} ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) tests+=("$1") ;;
  esac
  shift
done

# (a) Go >= 1.21: Debian 12's golang-go is 1.19; golang-1.23-go comes from bookworm-backports.
gobin=/usr/lib/go-1.23/bin
if [[ ! -x $gobin/go ]]; then
  [[ $install == 1 ]] || die "no Go 1.23 at $gobin (apt-get install golang-1.23-go from bookworm-backports)"
  [[ $(id -u) == 0 ]] || die "installing golang-1.23-go needs root"
  bash "$(dirname "$0")/../../.ci/apt-backports.sh" >&2 || die "cannot add bookworm-backports to apt's sources"
  echo "conformance: installing golang-1.23-go from bookworm-backports" >&2
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-1.23-go; } >&2 \
    || die "apt-get install golang-1.23-go failed"
fi

# (b) Extract and build the suite offline, once per tarball.
rt=$cache/runtime-tools
stamp=$cache/.built-$(basename "$tarball" .tar.gz)
if [[ ! -f $stamp ]]; then
  [[ -f $tarball ]] || die "no runtime-tools tarball at $tarball"
  mkdir -p "$cache" && rm -rf "$rt" "$cache"/.built-* && tar -xzf "$tarball" -C "$cache" \
    || die "extracting $tarball failed"
  echo "conformance: building runtime-tools in $rt" >&2
  (cd "$rt" && PATH=$gobin:$PATH GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local \
     make runtimetest validation-executables >&2) || die "building runtime-tools failed"
  touch "$stamp"
fi

# (c) Run every validation/*/*.t in series from the runtime-tools directory.
cd "$rt" || die "no $rt"
# The first argument is the runtime unless it names a test ("kill", "validation/kill/kill.t").
if ((${#tests[@]})); then
  first=${tests[0]%.t}; first=${first##*/}
  if [[ ! -x validation/$first/$first.t ]]; then runtime=${tests[0]}; tests=("${tests[@]:1}"); fi
fi
default_runtime=0
if [[ -z $runtime ]]; then runtime=$here/bin/xcontainer; default_runtime=1; fi
[[ $runtime == */* ]] || runtime=$(command -v "$runtime") || die "runtime not found"
[[ $runtime == /* ]] || runtime=$cwd/$runtime   # the tests run from $rt
[[ -x $runtime ]] || die "runtime $runtime is not executable"
if [[ $default_runtime == 1 && ! -f $here/dist/cli.blob ]]; then
  (cd "$here" && npm run build >/dev/null) || die "npm run build failed"
fi
if ((${#tests[@]})); then
  execs=()
  for t in "${tests[@]}"; do
    t=${t#./}; t=${t%.t}; t=${t##*/}
    [[ -x validation/$t/$t.t ]] || die "no test executable validation/$t/$t.t"
    execs+=("validation/$t/$t.t")
  done
else
  mapfile -t execs < <(ls validation/*/*.t | sort)
  ((${#execs[@]})) || die "no validation executables in $rt"
  baseline=$here/test/conformance/baseline.txt
  if [[ $default_runtime == 1 && $use_baseline == 1 && -f $baseline ]]; then
    from_baseline=0; [[ -z $max_failed ]] && from_baseline=1
    : "${max_failed:=$(sed -n 's/^failed=\([0-9]*\).*/\1/p' "$baseline")}"
    : "${min_passed:=$(sed -n 's/^passed=\([0-9]*\).*/\1/p' "$baseline")}"
    : "${max_err:=$(sed -n 's/^err=\([0-9]*\).*/\1/p' "$baseline")}"
    # linux_cgroups_relative_hugetlb makes one container per huge page size the host offers, and each
    # fails here the same way (no v1 hugetlb hierarchy: refused at create, as runc). The baseline counts
    # one size; a host with more (2 MiB and 1 GiB) fails one more check per extra size.
    sizes=$(find /sys/kernel/mm/hugepages -maxdepth 1 -name 'hugepages-*' 2>/dev/null | wc -l)
    if ((from_baseline && sizes > 1)); then max_failed=$((max_failed + sizes - 1)); fi
  fi
fi
tapdir=$cache/tap log=$cache/failures.log
rm -rf "$tapdir" && mkdir -p "$tapdir" && : > "$log"
total_p=0 total_f=0 total_s=0 n_ok=0 n_fail=0 n_err=0
start=$SECONDS
for t in "${execs[@]}"; do
  name=$(basename "$t" .t) out=$tapdir/$name.tap
  t0=$SECONDS
  RUNTIME=$runtime timeout -k 10 "$timeout_s" "./$t" > "$out" 2>&1 < /dev/null
  rc=$?
  # tap-go writes "ok N - desc", "ok N # SKIP why", "not ok N - desc".
  read -r p f s < <(awk '
    /^ok /     { if (tolower($0) ~ /# skip/) s++; else p++ }
    /^not ok / { if (tolower($0) ~ /# skip/) s++; else f++ }
    END { print p + 0, f + 0, s + 0 }' "$out")
  note=
  if ((rc == 124 || rc == 137)); then note=" (timed out after ${timeout_s}s)"
  elif ((rc != 0)); then note=" (exit $rc)"
  fi
  # Verdicts outside TAP: the hook tests print "1..0" and, on failure, a YAML "error"; the *_fail
  # tests expect create to fail and exit 1 if it succeeds. An executable that exits non-zero, prints
  # an error, or prints nothing at all (runtimetest never ran) is ERR.
  if ((p + f + s == 0)) && ((rc == 0)) && ! grep -q '"error":' "$out" &&
     { [[ $name == *_fail ]] || grep -q '^1\.\.0$' "$out"; }; then
    status=ok note=" (no test points: exit 0, no error)"
  elif ((p + f + s == 0 || (rc != 0 && f == 0))); then
    status=ERR
    why=$(grep -m1 -E '"error"|failed|error|panic|operation not permitted' "$out" | sed 's/^ *//' | cut -c1-150)
    [[ -n $why ]] && note="$note: $why"
    [[ -s $out ]] || note="$note: no output"
  elif ((f > 0)); then status=FAIL
  elif ((p == 0)); then status=skip
  else status=ok
  fi
  case $status in ERR) n_err=$((n_err + 1)) ;; FAIL) n_fail=$((n_fail + 1)) ;; *) n_ok=$((n_ok + 1)) ;; esac
  if [[ $status == ERR || $status == FAIL ]]; then
    { echo "=== $name: $status, exit $rc"; cat "$out"; echo; } >> "$log"
  fi
  printf '%-4s %-38s %4d passed %3d failed %3d skipped %3ds%s\n' \
    "$status" "$name" "$p" "$f" "$s" $((SECONDS - t0)) "$note"
  total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
done

# (d) Totals and the regression check.
echo
echo "runtime $runtime: ${#execs[@]} executables in $((SECONDS - start))s: $n_ok ok, $n_fail FAIL, $n_err ERR"
echo "TAP of failures: $log"
echo "$total_p passed, $total_f failed, $total_s skipped"
regression=0
if [[ -n $max_failed ]] && ((total_f > max_failed)); then
  echo "conformance: regression: $total_f failed > $max_failed allowed" >&2; regression=1
fi
if [[ -n $min_passed ]] && ((total_p < min_passed)); then
  echo "conformance: regression: $total_p passed < $min_passed required" >&2; regression=1
fi
if [[ -n $max_err ]] && ((n_err > max_err)); then
  echo "conformance: regression: $n_err executables ERR > $max_err allowed" >&2; regression=1
fi
exit $regression
