#!/usr/bin/env bash
# Proves that a change did not move the model's behaviour by a byte: builds BASE (a git
# revision, default HEAD) in a temporary worktree and the working tree as it is, runs the
# same set of commands with both binaries (every scenario at two seeds and with the seed
# switches, every `show` view, an A/B, predict and analyze on real snapshots, exact and
# policy replay of the kmem trace) and compares every output byte for byte.
#
#   scripts/same-behaviour.sh [BASE] [--quick]
#
# --quick leaves out the slower commands (zram-gpu, the 4 GiB views, the 8 GiB snapshot).
# Exit 0: identical. Exit 1: a difference, printed. The golden traces and every rule test are
# proved by `cargo test --workspace`, which this script does not run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base=HEAD
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    -*) echo "same-behaviour: unknown option $a" >&2; exit 2 ;;
    *) base=$a ;;
  esac
done
data=../shared/data
work=$(mktemp -d "${TMPDIR:-/tmp}/same-behaviour.XXXXXX")
trap 'git -C "$root" worktree remove --force "$work/base-src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "same-behaviour: building $base"
git worktree add --detach "$work/base-src" "$base" >/dev/null
CARGO_TARGET_DIR="$root/target/same-behaviour-base" \
  cargo build --quiet --release -p kcompact-cli --manifest-path "$work/base-src/Cargo.toml"
echo "same-behaviour: building the working tree"
cargo build --quiet --release -p kcompact-cli

# Runs every command with binary $1, writing into directory $2.
run_all() {
  local k=$1 out=$2 i=0
  mkdir -p "$out"
  cmd() {
    i=$((i + 1))
    local name
    name=$(printf '%03d' "$i")
    echo "$*" > "$out/$name.cmd"
    # Paths under $out are printed by some commands: make them relative.
    (cd "$out" && "$k" "$@" > "$name.stdout" 2> "$name.stderr"; echo $? > "$name.rc") || true
  }
  local scenarios="churn highalloc file-holes compaction-test thpscale vfio-pin mthp"
  [ "$quick" = 1 ] || scenarios="$scenarios zram-gpu"
  for s in $scenarios; do
    for seed in 1 2; do
      cmd run "$s" --mem 1G --seed "$seed" --out "run-$s-$seed"
    done
  done
  cmd run highalloc --mem 1G --seed 3 --set compaction=off --out run-highalloc-nocompaction
  cmd run file-holes --mem 1G --seed 3 --set compaction=off
  cmd run vfio-pin --mem 2G --seed 1 --set skip_pinned=extra-refs
  cmd run mthp --mem 1G --seed 1 --set folio_compaction=split
  cmd run highalloc --mem 2G --seed 1 --set nodes=2 --set defrag_mode=1
  cmd run churn --mem 512M --seed 4 --set integrity=stamps --set steps=200000
  cmd run highalloc --mem 1G --seed 1 --set swap=25% --set swappiness=100
  cmd run --set help=1
  cmd run nosuch
  cmd scenarios
  cmd ab mthp --toggle folio_compaction=split,per-order --seeds 2 --json
  local mems="64M 1G"
  [ "$quick" = 1 ] || mems="$mems 4G"
  for mem in $mems; do
    for v in buddyinfo pagetypeinfo zoneinfo extfrag map; do
      cmd show "$v" --mem "$mem"
    done
  done
  local cases="A2_g4_r1 A_g4_r1 A_g4folio_r1"
  [ "$quick" = 1 ] || cases="$cases A_g8_r1 D_g4_s1 H_g4_s1"
  for c in $cases; do
    local snap="$data/realkernel/$c/before"
    [ -d "$snap" ] || continue
    snap=$(cd "$snap" && pwd)
    cmd predict "$snap" --action compact --json
    cmd predict "$snap" --action drop-caches
    cmd analyze "$snap" --json
  done
  local h="$data/realkernel/H_g4_s1/before"
  if [ -d "$h" ]; then
    cmd predict "$(cd "$h" && pwd)" --action hugepages=100000 --json
    cmd analyze "$(cd "$h" && pwd)" --map
  fi
  local t="$data/trace/case0"
  if [ -d "$t" ]; then
    t=$(cd "$t" && pwd)
    cmd replay "$t/trace.txt.zst" --snapshot "$t/start" --json
    cmd replay "$t/trace.txt.zst" --snapshot "$t/start" --mode policy --out replay-policy
  fi
  cmd replay "$root/crates/kcompact-cli/tests/data/trace_thp/trace.txt.zst" --snapshot "$root/crates/kcompact-cli/tests/data/trace_thp/start" --json
}

run_all "$root/target/same-behaviour-base/release/kcompact" "$work/base"
run_all "$root/target/release/kcompact" "$work/new"
n=$(ls "$work/base"/*.cmd | wc -l)
if diff -r "$work/base" "$work/new" > "$work/diff.txt"; then
  echo "same-behaviour: identical ($n commands, every output file compared)"
else
  head -100 "$work/diff.txt"
  echo "same-behaviour: DIFFERENT from $base (first 100 lines of the diff above)"
  exit 1
fi
