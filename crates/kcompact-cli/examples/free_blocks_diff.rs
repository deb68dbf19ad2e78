//! Which Normal pageblocks end wholly free after `compact_memory` in the kernel (a shared
//! case's `after/`) and in the model (its `before/` compacted), and what each side holds in
//! the blocks only the other freed, by page class (`NoFlags` in the model: pages on the
//! per-CPU lists).
//!
//! `cargo run --release -p kcompact-cli --example free_blocks_diff -- A_g4folio_r1 [SECONDS]`
//! (SECONDS: let the model's clock run on that long after the compaction, so its per-CPU
//! lists decay as the kernel's do while the machine settles).

use kcompact::snapshot::kpageflags::{classify, PageClass};
use kcompact_cli::snapshot_dir::load_dir;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

fn classes(words: &[u64]) -> Vec<PageClass> {
    let mut head = 0;
    words
        .iter()
        .map(|&w| {
            // Not a compound tail (KPF_COMPOUND_TAIL, bit 16): a head or a page of its own.
            if w & (1 << 16) == 0 {
                head = w;
            }
            classify(w, head)
        })
        .collect()
}

fn main() {
    let Some(case) = std::env::args().nth(1) else {
        eprintln!(
            "usage: free_blocks_diff CASE [SECONDS] (a directory of ../shared/data/realkernel)"
        );
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel")
        .join(&case);
    let load = |sub: &str| {
        load_dir(&root.join(sub)).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        })
    };
    let (before, after) = (load("before"), load("after"));
    // Lines written to a closed stdout are dropped, not a panic.
    let mut out = std::io::stdout().lock();
    let start = before.pfn_start;
    let mut m = before.machine;
    let bflags = before.flags.clone();
    m.compact_memory();
    m.settle();
    if let Some(secs) = std::env::args().nth(2).and_then(|s| s.parse::<u64>().ok()) {
        let t = m.clock.now_ns + secs * 1_000_000_000;
        m.advance_to(t);
        eprintln!("advanced {secs} s; pcp pages {}", m.nr_pcp_pages());
    }
    let end = start + after.flags.len() as u64;
    let model = kcompact::snapshot::image::kpageflags(&m, start, end, true);
    let (km, mm, bm) = (classes(&after.flags), classes(&model), classes(&bflags));
    let zi = m.zone_of(
        kcompact::units::NodeId(0),
        kcompact::layout::ZoneType::Normal,
    );
    let z = m.zone(zi);
    let (zs, ze) = (z.zone_start_pfn.0, z.end_pfn().0);
    let mut only_kernel = BTreeMap::<String, u64>::new();
    let mut only_model = BTreeMap::<String, u64>::new();
    let (mut nk, mut nm, mut both) = (0, 0, 0);
    let mut kfree_mfree_partial = 0u64;
    for b in (zs / 512)..(ze / 512) {
        let r = ((b * 512 - start) as usize)..((b * 512 + 512 - start) as usize);
        let kf = km[r.clone()].iter().all(|c| *c == PageClass::Free);
        let mf = mm[r.clone()].iter().all(|c| *c == PageClass::Free);
        nk += kf as u64;
        nm += mf as u64;
        both += (kf && mf) as u64;
        if kf && !mf {
            let mut cnt = BTreeMap::<String, u64>::new();
            for c in &mm[r.clone()] {
                *cnt.entry(format!("{c:?}")).or_default() += 1;
            }
            let mut bcnt = BTreeMap::<String, u64>::new();
            for c in &bm[r.clone()] {
                *bcnt.entry(format!("{c:?}")).or_default() += 1;
            }
            let key = format!("model {cnt:?} | before {bcnt:?}");
            let _ = writeln!(out, "kernel-free block {:#x}: {key}", b * 512);
            for (k, v) in cnt {
                *only_kernel.entry(k).or_default() += v;
            }
            kfree_mfree_partial += mm[r.clone()]
                .iter()
                .filter(|c| **c == PageClass::Free)
                .count() as u64;
        }
        if mf && !kf {
            let mut cnt = BTreeMap::<String, u64>::new();
            for c in &km[r.clone()] {
                *cnt.entry(format!("{c:?}")).or_default() += 1;
            }
            for (k, v) in cnt {
                *only_model.entry(k).or_default() += v;
            }
        }
    }
    let _ = writeln!(
        out,
        "Normal wholly free blocks: kernel {nk}, model {nm}, both {both}"
    );
    let _ = writeln!(out, "in kernel-only free blocks, the model has: {only_kernel:?} (free pages among them {kfree_mfree_partial})");
    let _ = writeln!(
        out,
        "in model-only free blocks, the kernel has: {only_model:?}"
    );
}
