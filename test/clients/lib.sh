# What client scripts share: check NAME EXPECTED CMD… runs CMD (60 s at most) and counts it passed
# when it exits 0 with EXPECTED in its output; summary prints runc-style totals and sets the status.
pass=0 fail=0
check() {
  local name=$1 want=$2; shift 2
  # log-calls.sh: the runtime calls that follow belong to this check.
  [[ -n ${XC_CALL_LOG:-} ]] && echo "## $name" >> "$XC_CALL_LOG"
  local out; out=$(timeout 60 "$@" 2>&1); local rc=$?
  if [[ $rc -eq 0 && $out == *"$want"* ]]; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name (rc $rc): ${out//$'\n'/ | }"; fi
}
summary() {
  echo
  echo "$pass passed, $fail failed"
  [[ $fail -eq 0 ]]
}
