//! Trace replay (issue 9): the rules of exact and policy replay on small hand-written
//! traces, a replay swarm against a naive model of which pfns are allocated, and seeded
//! fuzzing of the trace parser. Longer fuzz runs: `KCOMPACT_FUZZ_ITERS=1000000 cargo test
//! --release -p kcompact --test replay_rules` (the default is a bounded run for CI).

mod common;

use common::*;
use kcompact::replay::parse::parse_trace;
use kcompact::replay::{replay, Mode};
use kcompact::rng::SimRng;
use kcompact::units::Pfn;
use kcompact::{Machine, VmConfig};
use std::collections::BTreeMap;

fn alloc_line(ts: u64, pfn: u64, order: u8, mt: u8) -> String {
    let gfp = if mt == 1 {
        "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
    } else {
        "GFP_KERNEL|__GFP_NOLOCKDEP"
    };
    format!(
        "  t-1 [000] ..... {}.{:06}: mm_page_alloc: page=0000 pfn={pfn:#x} order={order} migratetype={mt} gfp_flags={gfp}\n",
        ts / 1_000_000,
        ts % 1_000_000
    )
}

fn free_line(ts: u64, pfn: u64, order: u8) -> String {
    format!(
        "  t-1 [001] ..... {}.{:06}: mm_page_free: page=0000 pfn={pfn:#x} order={order}\n",
        ts / 1_000_000,
        ts % 1_000_000
    )
}

fn machine() -> Machine {
    small_machine(0, 8, VmConfig::default())
}

fn first_free_pfn(m: &Machine) -> u64 {
    let z = m.zone_of(
        kcompact::units::NodeId(0),
        kcompact::layout::ZoneType::Normal,
    );
    m.zone(z).zone_start_pfn.0 + 1024
}

#[test]
fn exact_replay_places_and_frees_at_the_recorded_pfns() {
    let mut m = machine();
    let base = first_free_pfn(&m);
    let free0 = free_all(&m);
    let mut t = String::from("# tracer: nop\n");
    t += &alloc_line(1, base, 0, 1);
    t += &alloc_line(2, base + 4, 2, 0);
    t += &free_line(3, base, 0);
    t += &free_line(4, base + 4, 2);
    t += &alloc_line(5, base + 8, 3, 0);
    let tr = parse_trace(&t);
    assert_eq!(tr.records.len(), 5);
    let r = replay(&mut m, &tr, Mode::Exact, None, &mut |_, _| {});
    check(&m);
    assert_eq!(r.inconsistencies.total(), 0, "{:?}", r.inconsistencies);
    assert_eq!(r.applied, 5);
    assert_eq!(
        free_all(&m),
        free0 - 8,
        "only the order-3 block stays allocated"
    );
    let id = m.folio_of(Pfn(base + 8)).expect("the block is held");
    assert_eq!(m.owners.folio(id).pfn, Pfn(base + 8));
    assert_eq!(r.unknown_gfp, vec![("__GFP_NOLOCKDEP".to_string(), 2)]);
    assert_eq!(r.timeline.last().unwrap().free_pages, m.nr_free_pages());
}

#[test]
fn exact_replay_counts_each_contradiction() {
    let mut m = machine();
    let base = first_free_pfn(&m);
    let mut t = String::new();
    t += &alloc_line(1, base, 1, 0);
    t += &alloc_line(2, base + 1, 0, 0); // inside a held block: not free
    t += &free_line(3, base + 64, 0); // never allocated: free already
    t += &free_line(4, base, 0); // held at order 1, freed at order 0
    t += &alloc_line(5, 1 << 40, 0, 0); // outside every zone
    let r = replay(&mut m, &parse_trace(&t), Mode::Exact, None, &mut |_, _| {});
    check(&m);
    let i = &r.inconsistencies;
    assert_eq!(i.alloc_not_free, 1);
    assert_eq!(i.free_not_allocated, 1);
    assert_eq!(i.free_order_mismatch, 1);
    assert_eq!(i.alloc_outside, 1);
    assert_eq!(i.total(), 4);
}

#[test]
fn policy_replay_lets_the_model_choose_and_follows_each_kernel_pfn() {
    let mut m = machine();
    let free0 = free_all(&m);
    let mut t = String::new();
    // Kernel pfns far outside the model: policy mode does not care where they were.
    for i in 0..64u64 {
        t += &alloc_line(i, (1 << 30) + i * 8, (i % 4) as u8, (i % 2) as u8);
    }
    for i in (0..64u64).step_by(2) {
        t += &free_line(100 + i, (1 << 30) + i * 8, (i % 4) as u8);
    }
    t += &free_line(500, 1 << 31, 0); // allocated before the trace
    let r = replay(&mut m, &parse_trace(&t), Mode::Policy, None, &mut |_, _| {});
    check(&m);
    assert_eq!(r.inconsistencies.policy_alloc_failed, 0);
    assert_eq!(r.inconsistencies.policy_free_unknown, 1);
    let held: u64 = (1..64u64).step_by(2).map(|i| 1u64 << (i % 4)).sum();
    assert_eq!(free_all(&m), free0 - held);
}

/// A random trace of allocations and frees over a small zone, replayed exactly, against a
/// naive map of allocated pfns: every event the naive map accepts the model applies, and
/// every event it rejects the model counts; the free page count agrees at the end.
#[test]
fn exact_replay_agrees_with_a_naive_model() {
    for seed in 0..24u64 {
        let mut m = machine();
        let base = first_free_pfn(&m);
        let span = 2048u64;
        let mut rng = SimRng::new(seed);
        let mut naive: BTreeMap<u64, u8> = BTreeMap::new();
        let mut t = String::new();
        let (mut ok, mut bad) = (0u64, 0u64);
        for ts in 0..3000u64 {
            let o = rng.range(0, 3) as u8;
            let pfn = base + (rng.below(span) & !((1u64 << o) - 1));
            let overlaps = |n: &BTreeMap<u64, u8>| {
                n.iter()
                    .any(|(p, po)| *p < pfn + (1 << o) && pfn < p + (1u64 << po))
            };
            if rng.below(2) == 0 {
                t += &alloc_line(ts, pfn, o, rng.below(2) as u8);
                if overlaps(&naive) {
                    bad += 1;
                } else {
                    naive.insert(pfn, o);
                    ok += 1;
                }
            } else if let Some((&p, &po)) = naive
                .iter()
                .nth(rng.below(naive.len().max(1) as u64) as usize)
            {
                if rng.below(8) == 0 {
                    // A free at a pfn nobody holds.
                    let q = base + span + rng.below(64);
                    t += &free_line(ts, q, 0);
                    bad += 1;
                } else {
                    t += &free_line(ts, p, po);
                    naive.remove(&p);
                    ok += 1;
                }
            }
        }
        let free0 = free_all(&m);
        let r = replay(&mut m, &parse_trace(&t), Mode::Exact, None, &mut |_, _| {});
        check(&m);
        assert_eq!(r.applied, ok, "seed {seed}");
        assert_eq!(
            r.inconsistencies.total(),
            bad,
            "seed {seed}: {:?}",
            r.inconsistencies
        );
        let held: u64 = naive.values().map(|o| 1u64 << o).sum();
        assert_eq!(free_all(&m), free0 - held, "seed {seed}");
    }
}

/// A copy of `text` with a few random edits.
fn mutate(rng: &mut SimRng, text: &str) -> String {
    mutate_text(
        rng,
        text,
        b"0123456789abcdefx =:.[]()~|_-\n\t\xffmm_page_alloc",
        7,
    )
}

#[test]
fn trace_parser_never_panics_on_mutated_input_and_replay_stays_consistent() {
    let mut sample = String::from("# tracer: nop\n");
    sample += &alloc_line(1, 0x1400, 0, 1);
    sample += &free_line(2, 0x1400, 0);
    sample += "  kcompactd0-36 [000] ..... 3.000001: mm_compaction_begin: zone_start=0x1000 migrate_pfn=0x1000 free_pfn=0x1e00 zone_end=0x2000, mode=sync\n";
    sample += "  a-1 [001] ..... 3.000002: mm_compaction_isolate_freepages: range=(0x1e00 ~ 0x2000) nr_scanned=512 nr_taken=3\n";
    sample += "  a-1 [001] ..... 3.000003: mm_compaction_migratepages: nr_migrated=2 nr_failed=1\n";
    sample += "  a-1 [001] ..... 3.000004: mm_compaction_end: zone_start=0x1000 migrate_pfn=0x1e00 free_pfn=0x1e00 zone_end=0x2000, mode=sync status=complete\n";
    sample += "  perf 12 [001] 4.5: kmem:mm_page_alloc_extfrag: page=0 pfn=0x1600 alloc_order=0 fallback_order=9 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1\n";
    let mut rng = SimRng::new(0x7ace);
    let (mut records, mut malformed) = (0u64, 0u64);
    for i in 0..iters(4_000) {
        let text = mutate(&mut rng, &sample);
        let tr = parse_trace(&text);
        records += tr.records.len() as u64;
        malformed += tr.nr_malformed;
        for e in &tr.malformed {
            assert!(e.line >= 1 && e.line <= text.lines().count(), "{e}");
        }
        if i % 50 == 0 {
            let mut m = machine();
            replay(&mut m, &tr, Mode::Exact, None, &mut |_, _| {});
            check(&m);
        }
    }
    assert!(
        records > 0 && malformed > 0,
        "the mutations hit both ways: {records} / {malformed}"
    );
}

/// A snapshot read of `base..base + 16` over 1 s..3 s: `base` read at 1 s, `base + 8` at
/// 2 s.
fn read_window(base: u64) -> kcompact::replay::SnapshotRead {
    kcompact::replay::SnapshotRead {
        pfn_start: base,
        pfn_end: base + 16,
        start_ns: 1_000_000_000,
        end_ns: 3_000_000_000,
    }
}

#[test]
fn exact_replay_skips_events_on_a_pfn_before_the_snapshot_read_it() {
    let mut m = machine();
    let base = first_free_pfn(&m);
    let free0 = free_all(&m);
    let read = read_window(base);
    assert_eq!(read.read_at(base + 8), 2_000_000_000);
    // The snapshot shows base+8 allocated.
    let held = m.with_placement(Some(Pfn(base + 8)), |m| {
        m.alloc_pages(
            kcompact::gfp::Gfp::GFP_KERNEL,
            kcompact::units::Order(0),
            kcompact::units::NodeId(0),
        )
    });
    assert_eq!(held, Some(Pfn(base + 8)));
    let mut t = String::from("# tracer: nop\n");
    // base+8 is allocated at 1.5 s, before its flags were read: the snapshot shows it.
    t += &alloc_line(1_500_000, base + 8, 0, 1);
    // base is allocated at 1.5 s, after its read: applied.
    t += &alloc_line(1_500_000, base, 0, 1);
    let r = replay(
        &mut m,
        &parse_trace(&t),
        Mode::Exact,
        Some(read),
        &mut |_, _| {},
    );
    check(&m);
    assert_eq!(r.before_snapshot, 1);
    assert_eq!(r.applied, 1);
    assert_eq!(r.inconsistencies.total(), 0, "{:?}", r.inconsistencies);
    assert_eq!(free_all(&m), free0 - 2);
}

fn zone_locked_line(ts: u64, pfn: u64, order: u8, mt: u8) -> String {
    format!(
        "  t-1 [000] ..... {}.{:06}: mm_page_alloc_zone_locked: page=0000 pfn={pfn:#x} order={order} migratetype={mt} percpu_refill=1\n",
        ts / 1_000_000,
        ts % 1_000_000
    )
}

#[test]
fn exact_replay_sets_a_block_to_the_type_of_the_list_the_kernel_took_it_from() {
    use kcompact::memmap::MigrateType;
    let mut m = machine();
    let base = first_free_pfn(&m);
    assert_eq!(m.migratetype(Pfn(base)), MigrateType::Movable);
    let free0 = free_all(&m);
    // A refill of the reclaimable list took this block: it was a reclaimable block.
    let mut t = String::from("# tracer: nop\n");
    t += &zone_locked_line(1, base, 0, 2);
    let r = replay(&mut m, &parse_trace(&t), Mode::Exact, None, &mut |_, _| {});
    check(&m);
    // The page lay in a free order-10 block: one block on one list, both its pageblocks
    // of that list's type.
    assert_eq!(r.blocks_retyped, 2);
    assert_eq!(m.migratetype(Pfn(base)), MigrateType::Reclaimable);
    assert_eq!(m.migratetype(Pfn(base ^ 512)), MigrateType::Reclaimable);
    assert_eq!(
        free_all(&m),
        free0,
        "the page moved to a per-CPU list, still free"
    );
    // A fallback that claimed an order-10 block retypes both its pageblocks.
    let big = base + 2048;
    let mut t = String::new();
    t += &format!(
        "  t-1 [000] d..3. 0.000002: mm_page_alloc_extfrag: page=0000 pfn={big:#x} alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1\n"
    );
    let r = replay(&mut m, &parse_trace(&t), Mode::Exact, None, &mut |_, _| {});
    check(&m);
    assert_eq!(r.blocks_retyped, 2);
    assert_eq!(m.migratetype(Pfn(big)), MigrateType::Unmovable);
    assert_eq!(m.migratetype(Pfn(big + 512)), MigrateType::Unmovable);
}

#[test]
fn an_event_before_the_read_that_the_snapshot_does_not_show_is_applied() {
    let mut m = machine();
    let base = first_free_pfn(&m);
    let free0 = free_all(&m);
    // The read estimate puts base+8's read at 2 s, but the snapshot shows it free: an
    // allocation at 1.5 s must have come after the read.
    let read = read_window(base);
    let mut t = String::from("# tracer: nop\n");
    t += &alloc_line(1_500_000, base + 8, 0, 1);
    t += &free_line(1_600_000, base + 8, 0);
    t += &alloc_line(1_700_000, base + 8, 0, 1);
    let r = replay(
        &mut m,
        &parse_trace(&t),
        Mode::Exact,
        Some(read),
        &mut |_, _| {},
    );
    check(&m);
    assert_eq!(r.before_snapshot, 0);
    assert_eq!(r.applied, 3);
    assert_eq!(r.inconsistencies.total(), 0, "{:?}", r.inconsistencies);
    assert_eq!(free_all(&m), free0 - 1);
}
