#!/usr/bin/env bash
# make test: every stage in turn, then a table of what each took (the first failure stops the run,
# and the table says where). Usage: tests/stages.sh NAME=COMMAND ...
set -uo pipefail
table=() rc=0 started=$(date +%s)
for stage in "$@"; do
  name=${stage%%=*} cmd=${stage#*=}
  echo "=== stage $name: $cmd"
  t0=$(date +%s)
  bash -c "$cmd"
  rc=$?
  t=$(( $(date +%s) - t0 ))
  table+=("$(printf '%-22s %6d s  %s' "$name" "$t" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")")")
  [ "$rc" -eq 0 ] || break
done
total=$(( $(date +%s) - started ))
echo
echo "=== where make test's time went"
printf '%s\n' "${table[@]}"
printf '%-22s %6d s  (%d min %02d s)\n' total "$total" $((total / 60)) $((total % 60))
exit "$rc"
