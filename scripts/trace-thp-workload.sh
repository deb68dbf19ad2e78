#!/bin/bash
# Fragments memory with interleaved page cache, then faults THP-backed anonymous memory
# (MADV_HUGEPAGE) while proactive compaction runs; cleans up. Used for kcompact capture --trace.
set -e
D=${1:-/var/tmp/kcompact-trace-files}; mkdir -p $D
old=$(cat /proc/sys/vm/compaction_proactiveness)
echo 90 > /proc/sys/vm/compaction_proactiveness
for i in $(seq 0 15); do dd if=/dev/zero of=$D/f$i bs=1M count=64 status=none & done; wait
for i in $(seq 0 2 15); do rm -f $D/f$i; done
python3 - <<'PY'
import mmap, time
n = 768 << 20
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_HUGEPAGE)
for off in range(0, n, 4096):
    m[off] = 1
time.sleep(1)
m.close()
PY
sleep 2
echo $old > /proc/sys/vm/compaction_proactiveness
rm -rf $D
