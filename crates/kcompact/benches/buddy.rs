//! Benchmarks of the allocator, migration and compaction (run with
//! `cargo bench -p kcompact`; `cargo bench -p kcompact -- NAME` runs those whose name
//! contains NAME).
//!
//! Prints one line per figure: order-0 alloc+free pairs per second on a fragmented 4 GiB
//! machine, mixed-order churn operations per second, migrations per second, metadata bytes
//! per page, `compact_memory` on a fragmented 16 GiB model and on the workload of the
//! real-kernel cases (set against the kernel's times), and the boot time and memory of a
//! 1 TiB model (set KCOMPACT_BENCH_1T=0 to skip that one). Figures are wall-clock on one
//! core, best of three runs where a run is short.

use kcompact::event::VmEvent;
use kcompact::gfp::Gfp;
use kcompact::layout::Layout;
use kcompact::memmap::BYTES_PER_PAGE;
use kcompact::rng::SimRng;
use kcompact::scenario::churn::{run_churn, ChurnConfig};
use kcompact::units::{NodeId, Order, Pfn};
use kcompact::{Machine, VmConfig};
use std::hint::black_box;
use std::time::Instant;

fn machine(bytes: u64) -> Machine {
    Machine::boot(
        &Layout::x86_64(bytes, 1, 0).expect("layout"),
        VmConfig::default(),
    )
    .expect("boot")
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

/// Half the memory in scattered order-0 pages, then alloc+free pairs of order 0.
fn order0_pairs() {
    let mut m = machine(4 << 30);
    let mut rng = SimRng::new(1);
    let mut held: Vec<Pfn> = Vec::new();
    let target = m.managed_pages() / 2;
    while (held.len() as u64) < target {
        let p = m
            .alloc_pages(Gfp::GFP_HIGHUSER_MOVABLE, Order(0), NodeId(0))
            .expect("page");
        held.push(p);
    }
    // Free a random half of them so free pages are scattered.
    for _ in 0..target / 2 {
        let i = rng.below(held.len() as u64) as usize;
        let p = held.swap_remove(i);
        m.free_pages(p, Order(0));
    }
    const PAIRS: u64 = 20_000_000;
    let (secs, _) = best_of(3, || {
        for _ in 0..PAIRS {
            let p = m
                .alloc_pages(black_box(Gfp::GFP_HIGHUSER_MOVABLE), Order(0), NodeId(0))
                .expect("page");
            m.free_pages(black_box(p), Order(0));
        }
    });
    println!("order0_alloc_free_pairs_per_sec {:.0} ({PAIRS} pairs in {secs:.3} s, 4 GiB, half full, scattered)", PAIRS as f64 / secs);
}

/// The churn of `kcompact run`: orders 0..=10, four migratetypes, 90% full.
fn mixed_churn() {
    let cfg = ChurnConfig {
        steps: 2_000_000,
        ..ChurnConfig::default()
    };
    let (secs, _) = best_of(3, || {
        let mut m = machine(4 << 30);
        let mut rng = SimRng::new(7);
        run_churn(&mut m, &cfg, &mut rng, |_| {})
    });
    println!(
        "mixed_churn_ops_per_sec {:.0} ({} steps in {secs:.3} s incl. boot, 4 GiB)",
        cfg.steps as f64 / secs,
        cfg.steps
    );
}

/// Migrations per second in metadata mode: 200,000 anonymous order-0 folios of one
/// process, migrated in batches of 512 (ASYNC, destinations from the page allocator).
fn migrations() {
    use kcompact::migrate::{AllocTarget, MigrateMode, MigrateReason};
    let mut m = machine(4 << 30);
    let pid = m.new_process();
    let ids: Vec<_> = (0..200_000u64)
        .map(|v| m.fault_anon(pid, v, Order(0)).expect("fault"))
        .collect();
    let (secs, migrated) = best_of(3, || {
        let mut migrated = 0;
        for chunk in ids.chunks(512) {
            for id in chunk {
                assert!(m.folio_isolate_lru(*id));
            }
            let r = m.migrate_pages(
                chunk.to_vec(),
                &mut AllocTarget,
                MigrateMode::Async,
                MigrateReason::Compaction,
            );
            migrated += r.stats.nr_succeeded;
            m.putback_movable_pages(r.ret);
        }
        migrated
    });
    assert_eq!(migrated, 200_000);
    println!("migrations_per_sec {:.0} ({migrated} order-0 anonymous folios in {secs:.3} s, metadata mode)", migrated as f64 / secs);
}

/// `compact_memory` on a fragmented 16 GiB model: memory filled with order-0 anonymous
/// pages, every second one unmapped. Reports pages scanned per second (the kernel's
/// compact_migrate_scanned rate on this machine was 3-16 M/s, ../shared/data).
fn compact_memory_16g() {
    let (_, (secs, (migrate_scanned, free_scanned, migrated, gained))) = best_of(1, || {
        let mut m = machine(16 << 30);
        let pid = m.new_process();
        let mut vpn = 0;
        // __GFP_RETRY_MAYFAIL: fill until the allocator fails, without the OOM killer.
        while m
            .fault_anon_gfp(
                pid,
                vpn,
                Order(0),
                Gfp::GFP_HIGHUSER_MOVABLE | Gfp::RETRY_MAYFAIL,
            )
            .is_ok()
        {
            vpn += 1;
        }
        let mut v = 0;
        while v < vpn {
            m.munmap(pid, v, 1);
            v += 2;
        }
        let before: u64 = m
            .zones
            .iter()
            .map(|z| z.free_area[9].nr_free + 2 * z.free_area[10].nr_free)
            .sum();
        let t = Instant::now();
        m.compact_memory();
        let secs = t.elapsed().as_secs_f64();
        let after: u64 = m
            .zones
            .iter()
            .map(|z| z.free_area[9].nr_free + 2 * z.free_area[10].nr_free)
            .sum();
        (
            secs,
            (
                m.vmstat[VmEvent::CompactMigrateScanned],
                m.vmstat[VmEvent::CompactFreeScanned],
                m.vmstat[VmEvent::PgmigrateSuccess],
                after - before,
            ),
        )
    });
    println!(
        "compact_memory_16g {secs:.3} s: compact_migrate_scanned {migrate_scanned} ({:.1} M/s), compact_free_scanned {free_scanned} ({:.1} M/s), pgmigrate_success {migrated}, free order-9 blocks +{gained}",
        migrate_scanned as f64 / secs / 1e6,
        free_scanned as f64 / secs / 1e6
    );
}

/// `compact_memory` after the workload of the kernel cases in ../shared/data/realkernel
/// (`fragment.sh -g GIB`): the machine as initialised then; 2 writers with 8 files open
/// each write 512 KiB files page by page, interleaved, until GIB GiB are cached; every
/// second file is deleted, leaving order-0 holes; then `compact_memory`. The kernel's wall
/// time and scanning for the same workload on this machine are printed beside ours
/// (compact_memory_ms and vmstat_delta of the cases).
fn compact_memory_like_kernel_cases() {
    // (GiB, case, kernel compact_memory ms, kernel compact_migrate_scanned +
    // compact_free_scanned, pgmigrate_success), from the cases' expA.log and vmstat_delta.
    // (A_g4_r1 ended early, contended, and A_g4mix_r1 / A_g4folio_r1 add pipe pages, slab
    // and large folios that this workload does not write, so they are left out.)
    let cases: [(u64, &str, f64, u64, u64); 3] = [
        (4, "A2_g4_r1", 376.0, 1_702_399 + 717_147, 221_433),
        (8, "A2_g8_r1", 794.0, 2_830_847 + 1_133_264, 490_817),
        (8, "A_g8_r1", 1021.0, 3_184_127 + 1_113_834, 509_977),
    ];
    let mut done = std::collections::BTreeMap::new();
    for (gib, case, kernel_ms, k_scanned, k_migrated) in cases {
        let (secs, scanned, migrated) = *done.entry(gib).or_insert_with(|| {
            // The kernel's machine had 24 GiB, but with lazy memory initialisation only
            // 3,014,656 pages of zone Normal were managed (zoneinfo_pre of the cases):
            // 3 GiB below the PCI hole + 11.5 GiB above 4 GiB.
            let mut m = machine((3 << 30) + 3_014_656 * 4096);
            const PAGES_PER_FILE: u64 = 128;
            let total_files = gib * 1024 * 1024 / 512;
            // Two writers (fragwrite -p 2 -b 8): each writes one page to each of its 8 open
            // files in turn. They run on two CPUs, so their pages come in runs (the
            // kernel's per-cpu lists hand out batches); the model has no per-cpu lists, so
            // the writers take turns in runs of 1..=63 pages drawn from the seeded
            // generator. Without this the holes would all share one parity, which the free
            // scanner's stride of 32 can miss entirely.
            let mut rng = SimRng::new(1);
            struct Writer {
                open: Vec<u32>,
                numbers: Vec<u64>,
                next_number: u64,
                slot: usize,
                index: u64,
            }
            let mut writers: Vec<Writer> = (0..2)
                .map(|_| Writer {
                    open: vec![],
                    numbers: vec![],
                    next_number: 0,
                    slot: 0,
                    index: 0,
                })
                .collect();
            let mut opened = 0;
            let mut doomed = Vec::new();
            let mut live = 2;
            while live > 0 {
                let w = rng.below(2) as usize;
                let run = rng.range(1, 64);
                for _ in 0..run {
                    let wr = &mut writers[w];
                    if wr.open.is_empty() {
                        if opened >= total_files {
                            break;
                        }
                        for _ in 0..8 {
                            wr.open.push(m.new_file(false, true, true));
                            wr.numbers.push(wr.next_number);
                            wr.next_number += 1;
                        }
                        opened += 8;
                        wr.slot = 0;
                        wr.index = 0;
                    }
                    let f = wr.open[wr.slot];
                    m.file_add(f, wr.index, Order(0), false)
                        .expect("memory for the files");
                    wr.slot += 1;
                    if wr.slot == wr.open.len() {
                        wr.slot = 0;
                        wr.index += 1;
                        if wr.index == PAGES_PER_FILE {
                            for (f, n) in wr.open.drain(..).zip(wr.numbers.drain(..)) {
                                if n % 2 == 0 {
                                    doomed.push(f);
                                }
                            }
                        }
                    }
                }
                live = writers.iter().filter(|w| !w.open.is_empty()).count()
                    + usize::from(opened < total_files);
            }
            // The even-numbered files of each writer go.
            for f in doomed {
                m.delete_file(f);
            }
            let t = Instant::now();
            m.compact_memory();
            (
                t.elapsed().as_secs_f64(),
                m.vmstat[VmEvent::CompactMigrateScanned] + m.vmstat[VmEvent::CompactFreeScanned],
                m.vmstat[VmEvent::PgmigrateSuccess],
            )
        });
        let rate = scanned as f64 / secs;
        let k_rate = k_scanned as f64 / (kernel_ms / 1e3);
        println!(
            "compact_memory_like_{case}: model {:.1} ms, {scanned} pages scanned ({:.1} M/s), {migrated} migrated; kernel {kernel_ms} ms, {k_scanned} scanned ({:.1} M/s), {k_migrated} migrated: {:.1}x the kernel's scan rate, {:.1}x faster",
            secs * 1e3,
            rate / 1e6,
            k_rate / 1e6,
            rate / k_rate,
            kernel_ms / 1e3 / secs
        );
    }
}

/// `compact_memory` on the very memory images of the real-kernel cases: each case's
/// `before/` snapshot loaded into the model, then timed against the kernel's own
/// `compact_memory_ms` and vmstat_delta for that image. Skipped without ../shared/data.
fn compact_memory_on_kernel_images() {
    use kcompact::snapshot::load::{load, SnapshotFiles};
    use kcompact::snapshot::{text::parse_zoneinfo, u64_array};
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/realkernel");
    if !root.is_dir() {
        println!(
            "compact_memory_on_kernel_images skipped: {} is not here",
            root.display()
        );
        return;
    }
    for case in [
        "A2_g4_r1",
        "A2_g8_r1",
        "A_g4_r1",
        "A_g4folio_r1",
        "A_g4mix_r1",
        "A_g8_r1",
    ] {
        let dir = root.join(case);
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_default();
        let field = |text: &str, key: &str| -> f64 {
            text.split(|c: char| c.is_whitespace())
                .skip_while(|w| *w != key && !w.starts_with(&format!("{key}=")))
                .find_map(|w| {
                    w.strip_prefix(&format!("{key}="))
                        .map(str::to_string)
                        .or_else(|| (w != key).then(|| w.to_string()))
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let kernel_ms = field(&read("expA.log"), "compact_memory_ms");
        let delta = read("vmstat_delta");
        let k_scanned =
            field(&delta, "compact_migrate_scanned") + field(&delta, "compact_free_scanned");
        let zones = parse_zoneinfo("zoneinfo", &read("before/zoneinfo")).expect("zoneinfo");
        let raw = zstd::decode_all(
            std::fs::File::open(dir.join("before/kpageflags.zst")).expect("kpageflags"),
        )
        .expect("zstd");
        let flags = u64_array("kpageflags", &raw).expect("kpageflags");
        let t = Instant::now();
        let (loaded, _) = load(
            &SnapshotFiles {
                pfn_start: 1,
                zoneinfo: &zones,
                kpageflags: &flags,
                ..Default::default()
            },
            VmConfig::default(),
        )
        .expect("load");
        let load_s = t.elapsed().as_secs_f64();
        // Best of three, each on a fresh copy of the loaded image.
        let mut secs = f64::MAX;
        let mut m = loaded.clone();
        for _ in 0..3 {
            m = loaded.clone();
            let t = Instant::now();
            m.compact_memory();
            secs = secs.min(t.elapsed().as_secs_f64());
        }
        let scanned = (m.vmstat[VmEvent::CompactMigrateScanned]
            + m.vmstat[VmEvent::CompactFreeScanned]) as f64;
        println!(
            "compact_memory_on_{case}: load {:.0} ms ({:.1} M pfns/s); model {:.1} ms, {scanned} scanned ({:.1} M/s); kernel {kernel_ms} ms, {k_scanned} scanned ({:.1} M/s): {:.1}x the kernel's scan rate, {:.1}x faster",
            load_s * 1e3,
            flags.len() as f64 / load_s / 1e6,
            secs * 1e3,
            scanned / secs / 1e6,
            k_scanned / kernel_ms * 1e3 / 1e6,
            (scanned / secs) / (k_scanned / kernel_ms * 1e3),
            kernel_ms / 1e3 / secs
        );
    }
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn one_tib() {
    if std::env::var("KCOMPACT_BENCH_1T").as_deref() == Ok("0") {
        println!("one_tib_model skipped (KCOMPACT_BENCH_1T=0)");
        return;
    }
    let before = rss_kib().unwrap_or(0);
    let t = Instant::now();
    let m = machine(1 << 40);
    let secs = t.elapsed().as_secs_f64();
    let after = rss_kib().unwrap_or(0);
    let pages = m.mem.end_pfn().0;
    println!(
        "one_tib_model boot {secs:.2} s, memmap {:.2} GiB for {pages} pfns, process RSS grew {:.2} GiB",
        m.mem.heap_bytes() as f64 / (1u64 << 30) as f64,
        (after.saturating_sub(before)) as f64 / (1u64 << 20) as f64
    );
    black_box(m);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep the
    // heavy parts to real bench runs.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p kcompact` for figures");
        return;
    }
    println!(
        "metadata_bytes_per_page {BYTES_PER_PAGE} (+1 byte per pageblock; Linux struct page: 64)"
    );
    // `cargo bench -p kcompact -- NAME` runs the benchmarks whose name contains NAME.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let benches: [(&str, fn()); 7] = [
        ("order0_pairs", order0_pairs),
        ("mixed_churn", mixed_churn),
        ("migrations", migrations),
        ("compact_memory_16g", compact_memory_16g),
        (
            "compact_memory_like_kernel_cases",
            compact_memory_like_kernel_cases,
        ),
        (
            "compact_memory_on_kernel_images",
            compact_memory_on_kernel_images,
        ),
        ("one_tib", one_tib),
    ];
    for (name, bench) in benches {
        if name.contains(filter.as_str()) {
            bench();
        }
    }
}
