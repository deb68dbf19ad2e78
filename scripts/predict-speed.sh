#!/usr/bin/env bash
# `predict --action compact` end to end on every shared real-kernel case, against the
# kernel's own compact_memory time (expA.log's compact_memory_ms; expC.log's first pass).
# Each binary given is timed REPS times per case (median wall seconds and peak RSS).
#
#   scripts/predict-speed.sh BIN [BIN...]      (REPS=5 by default)
set -euo pipefail
data=${DATA:-$(dirname "$0")/../../shared/data/realkernel}
[ -d "$data" ] || data=/work/shared/data/realkernel
reps=${REPS:-5}
printf '%-14s %10s' case kernel_ms
for b in "$@"; do printf ' %18s' "$(basename "$b") ms/RSS"; done
for b in "$@"; do printf ' %8s' ratio; done
echo
for dir in "$data"/*/; do
  c=$(basename "$dir")
  k=$(grep -ho 'compact_memory_ms=[0-9]*' "$dir"/expA.log 2>/dev/null | head -1 | cut -d= -f2 || true)
  if [ -z "$k" ] && [ -f "$dir/expC.log" ]; then
    k=$(awk '/^# pass ms/{getline; print $2; exit}' "$dir/expC.log")
  fi
  printf '%-14s %10s' "$c" "${k:--}"
  ratios=()
  for b in "$@"; do
    ts=()
    rss=0
    for _ in $(seq "$reps"); do
      out=$( { /usr/bin/time -f '%e %M' "$b" predict "$dir/before" --action compact >/dev/null; } 2>&1 | tail -1)
      ts+=("$(echo "$out" | cut -d' ' -f1)")
      r=$(echo "$out" | cut -d' ' -f2)
      [ "$r" -gt "$rss" ] && rss=$r
    done
    med=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
    ms=$(awk -v s="$med" 'BEGIN{printf "%d", s*1000}')
    printf ' %10s/%4dMiB' "$ms" $((rss / 1024))
    if [ -n "$k" ]; then ratios+=("$(awk -v k="$k" -v m="$ms" 'BEGIN{printf "%.2f", k/m}')"); else ratios+=("-"); fi
  done
  for r in "${ratios[@]}"; do printf ' %8s' "$r"; done
  echo
done
