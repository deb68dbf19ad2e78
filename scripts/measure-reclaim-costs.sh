#!/bin/sh
# Measures, on this machine, what the cost model's reclaim and writeback defaults stand for:
# the time to drop clean page cache (per page) and to write dirty page cache back (per
# page). Needs root; creates and deletes one 2 GiB file in $DIR (default /var/tmp).
set -eu
DIR=${DIR:-/var/tmp}
F="$DIR/kcompact-measure.$$"
[ "$(id -u)" = 0 ] || { echo "skipped: needs root for drop_caches"; exit 0; }
trap 'rm -f "$F"' EXIT
pages=$((2 * 1024 * 1024 / 4))
sync; echo 1 > /proc/sys/vm/drop_caches
# Writeback: dirty 2 GiB of page cache, then time fsync alone.
dd if=/dev/zero of="$F" bs=1M count=2048 status=none
t0=$(date +%s%N); sync "$F"; t1=$(date +%s%N)
echo "writeback_ns_per_page $(( (t1 - t0) / pages ))  (sync of $pages dirty pages: $(( (t1 - t0) / 1000000 )) ms)"
# Drop: 2 GiB of clean, unmapped page cache.
cat "$F" > /dev/null
t0=$(date +%s%N); echo 1 > /proc/sys/vm/drop_caches; t1=$(date +%s%N)
echo "reclaim_free_ns_per_page $(( (t1 - t0) / pages ))  (drop_caches of ~$pages clean pages: $(( (t1 - t0) / 1000000 )) ms)"
