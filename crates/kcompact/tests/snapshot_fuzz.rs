//! Seeded fuzzing of the snapshot parsers and the loader: mutated zoneinfo and buddyinfo
//! text, random page arrays, and random kpageflags images loaded into a machine. Every
//! input must give a value or an error, never a panic, and every loaded machine must pass
//! the full-state checker. Longer runs: `KCOMPACT_FUZZ_ITERS=1000000 cargo test --release
//! -p kcompact --test snapshot_fuzz` (the default is a bounded run for CI).

mod common;

use common::{iters, mutate_text};
use kcompact::rng::SimRng;
use kcompact::snapshot::kpageflags::{kpf, rebuild_free_blocks};
use kcompact::snapshot::load::{load, SnapshotFiles};
use kcompact::snapshot::text::{parse_buddyinfo, parse_pagetypeinfo, parse_zoneinfo};
use kcompact::snapshot::u64_array;
use kcompact::VmConfig;

const ZONEINFO: &str = "Node 0, zone      DMA
  pages free     3840
        min      9
        low      12
        high     15
        spanned  4095
        present  3998
        managed  3840
        protection: (0, 2997, 23054, 23054, 23054)
  start_pfn:           1
Node 0, zone   Normal
  pages free     1000
        spanned  8192
        present  8192
        managed  8000
        protection: (0, 0, 0, 0, 0)
  start_pfn:           4096
";

const BUDDYINFO: &str = "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 
Node 0, zone   Normal 516423   1038   1113    716    940    374    296     92     20      2   1776 
";

const PAGETYPEINFO: &str = "Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 
Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0 
Node    0, zone   Normal, type      Movable >100000   1763     33      2      4      4      4      2      3      1    754 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate 
Node 0, zone      DMA            1            7            0            0            0 
Node 0, zone   Normal          128         5623          137            0            0 
";

/// A copy of `text` with a few random byte edits.
fn mutate(rng: &mut SimRng, text: &str) -> String {
    mutate_text(rng, text, b"0123456789 ,()-:\nNodezoneabcxyz\t\xff", 5)
}

#[test]
fn text_parsers_never_panic_on_mutated_input() {
    let mut rng = SimRng::new(0xf022);
    let (mut ok, mut err) = (0u64, 0u64);
    for _ in 0..iters(20_000) {
        let z = mutate(&mut rng, ZONEINFO);
        match parse_zoneinfo("zoneinfo", &z) {
            Ok(zones) => {
                ok += 1;
                assert!(!zones.is_empty());
            }
            Err(e) => {
                err += 1;
                assert!(e.to_string().starts_with("zoneinfo: "), "{e}");
            }
        }
        let b = mutate(&mut rng, BUDDYINFO);
        if let Err(e) = parse_buddyinfo("buddyinfo", &b) {
            assert!(e.to_string().starts_with("buddyinfo: line "), "{e}");
        }
        let p = mutate(&mut rng, PAGETYPEINFO);
        if let Err(e) = parse_pagetypeinfo("pagetypeinfo", &p) {
            assert!(e.to_string().starts_with("pagetypeinfo: line "), "{e}");
        }
    }
    // Both outcomes happen, so the mutations reach the parsers' checks.
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn page_arrays_of_any_length_decode_or_name_the_offset() {
    let mut rng = SimRng::new(7);
    for _ in 0..iters(2_000) {
        let n = rng.below(100) as usize;
        let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
        match u64_array("kpageflags", &bytes) {
            Ok(v) => assert_eq!(v.len() * 8, n),
            Err(e) => assert!(e.to_string().contains("kpageflags: byte "), "{e}"),
        }
    }
}

/// Random kpageflags images: runs of free blocks, LRU pages, slab, page tables, reserved,
/// holes, and compound runs of random (also broken) shapes.
fn random_flags(rng: &mut SimRng, n: usize) -> Vec<u64> {
    let mut f = Vec::with_capacity(n);
    while f.len() < n {
        let run = rng.range(1, 700) as usize;
        let word = match rng.below(10) {
            0 => 1 << kpf::BUDDY,
            1 => (1 << kpf::LRU) | (1 << kpf::ANON) | (1 << kpf::SWAPBACKED),
            2 => (1 << kpf::LRU) | if rng.chance(1, 2) { 1 << kpf::DIRTY } else { 0 },
            3 => (1 << kpf::LRU) | (1 << kpf::SWAPBACKED),
            4 => 1 << kpf::SLAB,
            5 => 1 << kpf::PGTABLE,
            6 => 1u64 << kpf::RESERVED,
            7 => 1 << kpf::NOPAGE,
            8 => 0,
            _ => {
                // A compound run: a head and tails, of a random length.
                let head = (1 << kpf::COMPOUND_HEAD)
                    | (1 << kpf::LRU)
                    | if rng.chance(1, 2) { 1 << kpf::ANON } else { 0 };
                f.push(head);
                for _ in 1..run.min(n - f.len() + 1) {
                    f.push((1 << kpf::COMPOUND_TAIL) | (1 << kpf::LRU));
                }
                continue;
            }
        };
        let word = word | rng.below(2) << kpf::WRITEBACK;
        for _ in 0..run.min(n - f.len()) {
            f.push(word);
        }
    }
    f.truncate(n);
    f
}

#[test]
fn random_images_load_into_a_consistent_machine_or_an_error() {
    let mut rng = SimRng::new(0x5eed);
    let zones = parse_zoneinfo("zoneinfo", ZONEINFO).unwrap();
    let (mut loaded, mut refused) = (0u64, 0u64);
    for it in 0..iters(300) {
        // Pfns 1 .. 4096 + 8192, sometimes cut short.
        let n = if rng.chance(1, 8) {
            rng.range(1, 12_287) as usize
        } else {
            12_287
        };
        let flags = random_flags(&mut rng, n);
        match load(
            &SnapshotFiles {
                pfn_start: 1,
                zoneinfo: &zones,
                kpageflags: &flags,
                ..Default::default()
            },
            VmConfig::default(),
        ) {
            Ok((mut m, report)) => {
                loaded += 1;
                kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("loaded: {e}"));
                // Every page the image shows free is free in the model, in blocks no
                // larger than the image's.
                let img = rebuild_free_blocks(&flags, 1, 4096, 4096 + 8192);
                let img_pages: u64 = img.iter().enumerate().map(|(o, c)| c << o).sum();
                let normal = m.zones.iter().find(|z| z.name() == "Normal").unwrap();
                // (Page tables the image had no page for take free pages.)
                assert!(
                    normal.nr_free_pages + report.pgtables_from_free >= img_pages,
                    "model free {} < image free {img_pages}; {report:?}",
                    normal.nr_free_pages
                );
                if std::env::var("KCOMPACT_FUZZ_TRACE").is_ok() {
                    eprintln!("iteration {it}");
                }
                m.compact_memory();
                kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("compacted: {e}"));
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(loaded > 0, "some images load (refused {refused})");
}
