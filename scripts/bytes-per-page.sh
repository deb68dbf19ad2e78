#!/usr/bin/env bash
# Memory per simulated page of a fully used machine, as issue 19 measures it: the peak RSS
# (`/usr/bin/time`'s "Maximum resident set size") of a scenario at 16 GiB minus at 1 GiB,
# divided by the extra pages (16 GiB - 1 GiB = 3,932,160 pages). All state is included:
# the memory map, the folio table, page caches, page tables, LRU lists, the checker's run
# at the end.
#
#   scripts/bytes-per-page.sh BIN [SCENARIO...]    (default: file-holes highalloc; SEED=1)
set -euo pipefail
bin=${1:?usage: scripts/bytes-per-page.sh BIN [SCENARIO...]}
shift
[ $# -gt 0 ] || set -- file-holes highalloc
seed=${SEED:-1}
peak() { /usr/bin/time -f %M "$bin" run "$1" --seed "$seed" --mem "$2" 2>&1 >/dev/null | tail -1; }
printf '%-12s %12s %12s %14s\n' scenario 'RSS 1G KiB' 'RSS 16G KiB' 'bytes/page'
for s in "$@"; do
  small=$(peak "$s" 1G)
  big=$(peak "$s" 16G)
  printf '%-12s %12s %12s %14s\n' "$s" "$small" "$big" \
    "$(awk -v a="$small" -v b="$big" 'BEGIN { printf "%.1f", (b - a) * 1024 / 3932160 }')"
done
