//! `kcompact predict` and `kcompact analyze`: a real machine's snapshot (the layout of
//! ../shared/data/README.md) loaded into the model.

use crate::cli::{AnalyzeArgs, PredictArgs};
use crate::ui::usage;
use anyhow::Context;
use kcompact::compaction::CompactEnd;
use kcompact::scenario::free_order9_blocks;
use kcompact::snapshot::kpageflags::{class_counts, PageClass};
use kcompact::snapshot::load::{
    load_with_counts, reconcile_pageblock_types, LoadReport, ZoneReconcile,
};
use kcompact::snapshot::text::{
    pages_in_orders, parse_buddyinfo, parse_pagetypeinfo, parse_zoneinfo,
};
use kcompact::snapshot::u64_array;
use kcompact::units::Pfn;
use kcompact::views::procfs::buddyinfo;
use kcompact::{Machine, VmConfig};
use serde_json::json;
use std::path::Path;

/// A loaded snapshot.
pub(crate) struct Loaded {
    pub(crate) machine: Machine,
    report: LoadReport,
    /// Pageblock types reconciled with the snapshot's pagetypeinfo (when it has one).
    reconcile: Vec<ZoneReconcile>,
    flags: Vec<u64>,
    pfn_start: u64,
    /// Pages of the capturing process freed (`capture_pfns.txt`), when listed.
    capture_pages_released: Option<u64>,
}

fn read_text(dir: &Path, name: &str) -> anyhow::Result<String> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(t),
        Err(e) => usage(format!("{}: {e}", p.display())),
    }
}

/// `name.zst` (zstd) or `name` (plain).
fn read_binary(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let zst = dir.join(format!("{name}.zst"));
    if zst.is_file() {
        let f = std::fs::File::open(&zst).with_context(|| zst.display().to_string())?;
        return match zstd::decode_all(f) {
            Ok(b) => Ok(b),
            Err(e) => usage(format!("{}: not zstd data: {e}", zst.display())),
        };
    }
    let plain = dir.join(name);
    match std::fs::read(&plain) {
        Ok(b) => Ok(b),
        Err(e) => usage(format!("{} (or {}.zst): {e}", plain.display(), name)),
    }
}

fn meta_value(meta: &str, key: &str) -> Option<u64> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
}

pub(crate) fn load_dir(dir: &Path) -> anyhow::Result<Loaded> {
    if !dir.is_dir() {
        return usage(format!("{}: no such snapshot directory", dir.display()));
    }
    let meta = read_text(dir, "meta.txt")?;
    let Some(pfn_start) = meta_value(&meta, "pfn_start") else {
        return usage(format!(
            "{}: no pfn_start=N line",
            dir.join("meta.txt").display()
        ));
    };
    let zones = match parse_zoneinfo("zoneinfo", &read_text(dir, "zoneinfo")?) {
        Ok(z) => z,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    let flags = match u64_array("kpageflags", &read_binary(dir, "kpageflags")?) {
        Ok(f) => f,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    if let Some(end) = meta_value(&meta, "pfn_end") {
        if pfn_start.checked_add(flags.len() as u64) != Some(end) {
            return usage(format!(
                "{}: kpageflags holds {} pfns but meta.txt says {pfn_start}..{end}",
                dir.display(),
                flags.len()
            ));
        }
    }
    // kpagecount (the map count) is optional: without it page cache loads unmapped.
    let has_counts = dir.join("kpagecount.zst").is_file() || dir.join("kpagecount").is_file();
    let counts = if has_counts {
        match u64_array("kpagecount", &read_binary(dir, "kpagecount")?) {
            Ok(c) => Some(c),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    } else {
        None
    };
    let loaded = load_with_counts(
        &zones,
        &flags,
        counts.as_deref(),
        pfn_start,
        VmConfig::default(),
    );
    let (mut machine, report) = match loaded {
        Ok(x) => x,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    let reconcile = if dir.join("pagetypeinfo").is_file() {
        match parse_pagetypeinfo("pagetypeinfo", &read_text(dir, "pagetypeinfo")?) {
            Ok(p) => reconcile_pageblock_types(&mut machine, &p),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    } else {
        Vec::new()
    };
    // The capture's own memory, freed once it was done (kcompact capture lists it).
    let capture_pages_released = if dir.join(crate::capture::CAPTURE_PFNS).is_file() {
        let name = crate::capture::CAPTURE_PFNS;
        let text = read_text(dir, name)?;
        let mut pfns = Vec::new();
        for (i, l) in text.lines().enumerate() {
            match u64::from_str_radix(l.trim(), 16) {
                Ok(p) => pfns.push(p),
                Err(_) => {
                    return usage(format!(
                        "{}: line {}: {l:?} is not a hex pfn",
                        dir.join(name).display(),
                        i + 1
                    ))
                }
            }
        }
        Some(kcompact::snapshot::load::release_capture_pages(
            &mut machine,
            &pfns,
        ))
    } else {
        None
    };
    Ok(Loaded {
        machine,
        report,
        reconcile,
        flags,
        pfn_start,
        capture_pages_released,
    })
}

const DELTA_KEYS: [&str; 23] = [
    "pgmigrate_success",
    "pgmigrate_fail",
    "thp_migration_success",
    "thp_migration_fail",
    "thp_migration_split",
    "compact_migrate_scanned",
    "compact_free_scanned",
    "compact_isolated",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_daemon_wake",
    "allocstall",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "drop_pagecache",
    "drop_slab",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "pgfree",
    "oom_kill",
];

fn vmstat_delta(before: &Machine, after: &Machine) -> Vec<(&'static str, i64)> {
    let b = before.vmstat.pairs();
    let a = after.vmstat.pairs();
    DELTA_KEYS
        .iter()
        .map(|k| {
            let get = |v: &[(&'static str, u64)]| {
                v.iter().find(|(n, _)| n == k).map(|(_, x)| *x).unwrap_or(0) as i64
            };
            (*k, get(&a) - get(&b))
        })
        .collect()
}

/// What `predict` does to the loaded machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// `echo 1 > /proc/sys/vm/compact_memory`.
    Compact,
    /// `echo 3 > /proc/sys/vm/drop_caches`.
    DropCaches,
    /// `echo N > /proc/sys/vm/nr_hugepages`.
    Hugepages(u64),
}

fn parse_action(s: &str) -> anyhow::Result<Action> {
    match s {
        "compact" => Ok(Action::Compact),
        "drop-caches" => Ok(Action::DropCaches),
        _ => match s.strip_prefix("hugepages=").map(str::parse::<u64>) {
            Some(Ok(n)) => Ok(Action::Hugepages(n)),
            _ => usage(format!(
                "--action {s:?}: valid actions are compact, drop-caches, hugepages=N"
            )),
        },
    }
}

/// `kcompact predict SNAPSHOT --action compact|drop-caches|hugepages=N`.
pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let action = parse_action(&args.action)?;
    let loaded = load_dir(&args.snapshot)?;
    let before = loaded.machine.clone();
    let mut m = loaded.machine;
    let mut ends = Vec::new();
    let (what, mut extra) = match action {
        Action::Compact => {
            // Writing /proc/sys/vm/compact_memory: sync, full compaction of every zone.
            ends = m.compact_memory();
            ("`echo 1 > /proc/sys/vm/compact_memory`".to_string(), vec![])
        }
        Action::DropCaches => {
            // Clean, unmapped page cache of every file (and slab, which the model keeps).
            let freed = m.drop_caches(3);
            (
                "`echo 3 > /proc/sys/vm/drop_caches`".to_string(),
                vec![("pages_dropped", freed)],
            )
        }
        Action::Hugepages(n) => {
            // Writing nr_hugepages: the pool grows a page at a time, each allocation with
            // hugetlb's mask (reclaim and compaction included), until one fails.
            let got = m.set_nr_hugepages(n);
            (
                format!("`echo {n} > /proc/sys/vm/nr_hugepages`"),
                vec![("hugepages_requested", n), ("hugepages_allocated", got)],
            )
        }
    };
    // kswapd and kcompactd finish what the action woke them for.
    m.settle();
    // Simulated CPU time of the work (the calibrated cost model), in ms: all of it, and
    // the daemons' share.
    let work = |x: &Machine| kcompact::clock::Work::of(&x.vmstat);
    let ms = |ns: u64| ns / 1_000_000;
    extra.push((
        "simulated_cpu_ms",
        ms(m.config.costs.cost(&work(&before), &work(&m))),
    ));
    extra.push(("kswapd_cpu_ms", ms(m.clock.cpu.kswapd_ns.iter().sum())));
    extra.push((
        "kcompactd_cpu_ms",
        ms(m.clock.cpu.kcompactd_ns.iter().sum()),
    ));
    let delta = vmstat_delta(&before, &m);
    if args.json {
        let d: serde_json::Map<String, serde_json::Value> = delta
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut out = json!({
            "action": args.action,
            "before": {"zones": crate::run::zones_json(&before), "hugepages": free_order9_blocks(&before)},
            "after": {"zones": crate::run::zones_json(&m), "hugepages": free_order9_blocks(&m)},
            "vmstat_delta": d,
        });
        if !ends.is_empty() {
            out["compaction"] = compact_ends_json(&m, &ends);
        }
        for (k, v) in extra {
            out[k] = json!(v);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("# {} — predicted effect of {what}", args.snapshot.display());
    println!("\n## buddyinfo before (as loaded)\n{}", buddyinfo(&before));
    println!("## buddyinfo after\n{}", buddyinfo(&m));
    println!(
        "free order>=9 blocks (huge pages obtainable): {} -> {}",
        free_order9_blocks(&before),
        free_order9_blocks(&m)
    );
    for (k, v) in extra {
        println!("{k} {v}");
    }
    if !ends.is_empty() {
        println!("\n## how each zone's compaction ended (mm_compaction_end)");
        print!("{}", compact_ends_text(&m, &ends));
    }
    println!("\n## vmstat delta");
    for (k, v) in delta {
        println!("{k} {v}");
    }
    Ok(())
}

/// Each zone's compaction end as `mm_compaction_end` prints it, one line per zone.
pub fn compact_ends_text(m: &Machine, ends: &[CompactEnd]) -> String {
    let mut s = String::new();
    for e in ends {
        let z = m.zone(e.zone);
        s += &format!(
            "Node {}, zone {:>8} status={} migrate_pfn=0x{:x} free_pfn=0x{:x} migrate_scanned={} free_scanned={}\n",
            z.node.0,
            z.name(),
            e.status.name(),
            e.migrate_pfn.0,
            e.free_pfn.0,
            e.migrate_scanned,
            e.free_scanned
        );
    }
    s
}

/// The same as JSON objects.
pub fn compact_ends_json(m: &Machine, ends: &[CompactEnd]) -> serde_json::Value {
    ends.iter()
        .map(|e| {
            let z = m.zone(e.zone);
            json!({
                "node": z.node.0,
                "zone": z.name(),
                "status": e.status.name(),
                "migrate_pfn": e.migrate_pfn.0,
                "free_pfn": e.free_pfn.0,
                "migrate_scanned": e.migrate_scanned,
                "free_scanned": e.free_scanned,
            })
        })
        .collect()
}

/// The loaded free lists against the snapshot's buddyinfo, read before the page arrays,
/// and `buddyinfo.post`, read after them: per zone, free pages and free blocks apart
/// (summed over orders). A live machine moves while it is copied; the two readings bound
/// the drift.
fn buddyinfo_check(dir: &Path, m: &Machine) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut readings = Vec::new();
    for name in ["buddyinfo", "buddyinfo.post"] {
        if !dir.join(name).is_file() {
            readings.push(None);
            continue;
        }
        match parse_buddyinfo(name, &read_text(dir, name)?) {
            Ok(r) => readings.push(Some(r)),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    }
    let mut out = Vec::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let model = z.free_by_order();
        let mut row = json!({"node": z.node.0, "zone": z.name(), "model_free_pages": pages_in_orders(&model)});
        for (key, r) in ["buddyinfo", "buddyinfo_post"].iter().zip(&readings) {
            let Some(r) = r else { continue };
            if let Some(b) = r
                .iter()
                .find(|b| b.node == z.node.0 as u32 && b.name == z.name())
            {
                let apart: u64 = (0..11).map(|o| model[o].abs_diff(b.nr_free[o])).sum();
                row[format!("{key}_free_pages")] = json!(pages_in_orders(&b.nr_free));
                row[format!("{key}_blocks_apart")] = json!(apart);
            }
        }
        out.push(row);
    }
    Ok(out)
}

/// `kcompact analyze SNAPSHOT`.
/// What `analyze` finds in a loaded snapshot.
pub(crate) struct Analysis {
    pub(crate) now: u64,
    /// The machine after `compact_memory`.
    pub(crate) after: Machine,
    pub(crate) after_compaction: u64,
    pub(crate) after_drop_caches: u64,
    /// What blocks the pageblocks that stay no huge page, most first.
    pub(crate) ranked: Vec<(&'static str, u64)>,
    check: Vec<serde_json::Value>,
}

/// Huge pages now, after compaction, after dropping caches, and the blockers.
pub(crate) fn analysis(dir: &Path, loaded: &Loaded) -> anyhow::Result<Analysis> {
    let check = buddyinfo_check(dir, &loaded.machine)?;
    let now = free_order9_blocks(&loaded.machine);
    let mut after = loaded.machine.clone();
    after.compact_memory();
    let after_compaction = free_order9_blocks(&after);
    // Dropping clean caches and then compacting (`echo 3 > drop_caches; echo 1 >
    // compact_memory`): what an operator gets who gives up the page cache too.
    let mut dropped = loaded.machine.clone();
    dropped.drop_caches(3);
    dropped.compact_memory();
    let after_drop_caches = free_order9_blocks(&dropped);
    // What keeps each pageblock that compaction could not free from being a huge page.
    let mut blockers: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for z in after.zones.iter().filter(|z| z.is_populated()) {
        let start = z.zone_start_pfn.0.div_ceil(512) * 512;
        let end = z.end_pfn().0;
        let mut b = start;
        while b + 512 <= end {
            let free_block = (9..=10).any(|o| {
                let head = Pfn(b & !((1u64 << o) - 1));
                after.mem.is_buddy(head) && after.mem.buddy_order(head).0 >= 9
            });
            if !free_block {
                let c = class_counts(&loaded.flags, loaded.pfn_start, b, b + 512);
                let get =
                    |k: PageClass| c[PageClass::ALL.iter().position(|x| *x == k).expect("class")];
                let reason = if get(PageClass::NoPage) > 0 {
                    "hole"
                } else if get(PageClass::Reserved) > 0 {
                    "reserved"
                } else if get(PageClass::NoFlags) == 512 {
                    "not initialised (deferred_init)"
                } else if get(PageClass::Slab) > 0 {
                    "unmovable slab"
                } else if get(PageClass::PageTable) > 0 {
                    "page table"
                } else if get(PageClass::Kernel) > 0 || get(PageClass::NoFlags) > 0 {
                    "other kernel memory"
                } else if get(PageClass::Hugetlb) > 0 {
                    "hugetlb"
                } else {
                    "in use by movable pages (page cache, anonymous)"
                };
                *blockers.entry(reason).or_default() += 1;
            }
            b += 512;
        }
    }
    let mut ranked: Vec<(&'static str, u64)> = blockers.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Ok(Analysis {
        now,
        after,
        after_compaction,
        after_drop_caches,
        ranked,
        check,
    })
}

pub fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let loaded = load_dir(&args.snapshot)?;
    let a = analysis(&args.snapshot, &loaded)?;
    let (now, after_compaction, after_drop_caches) =
        (a.now, a.after_compaction, a.after_drop_caches);
    let (after, ranked, check) = (a.after, a.ranked, a.check);
    if args.json {
        let out = json!({
            "zones": crate::run::zones_json(&loaded.machine),
            "hugepages_now": now,
            "hugepages_after_compaction": after_compaction,
            "hugepages_after_drop_caches": after_drop_caches,
            "blockers": ranked.iter().map(|(r, n)| json!({"reason": r, "pageblocks": n})).collect::<Vec<_>>(),
            "buddyinfo_check": check,
            "pageblock_types": loaded.reconcile.iter().map(|r| json!({"node": r.zone.0, "zone": r.zone.1, "inferred": r.inferred, "reconciled": r.reconciled, "kernel": r.kernel, "free_list_distance": [r.free_list_distance.0, r.free_list_distance.1]})).collect::<Vec<_>>(),
            "load": {"placed_by_class": PageClass::ALL.iter().zip(loaded.report.placed).map(|(c, n)| (c.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(), "unplaced": loaded.report.unplaced, "file_mappings": loaded.report.file_mappings, "pgtables_from_free": loaded.report.pgtables_from_free, "capture_pages_released": loaded.capture_pages_released},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("# {}\n", args.snapshot.display());
    print!("{}", buddyinfo(&loaded.machine));
    println!();
    print!(
        "{}",
        kcompact::views::extfrag::unusable_index(&loaded.machine)
    );
    println!();
    println!("hugepages_now {now}");
    println!("hugepages_after_compaction {after_compaction}");
    println!("hugepages_after_drop_caches {after_drop_caches}  (drop_caches 3, then compaction)");
    if let Some(n) = loaded.capture_pages_released {
        println!("\nthe capture's own anonymous pages, free again once it was done: {n} pages given back to the model's allocator ({})", crate::capture::CAPTURE_PFNS);
    }
    println!("\nfree pages loaded vs buddyinfo before / after the page arrays were copied (free blocks apart over all orders):");
    for c in &check {
        let g = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_u64())
                .map_or("-".to_string(), |v| v.to_string())
        };
        println!(
            "Node {}, zone {:>8}  model {}  buddyinfo {} ({} apart)  buddyinfo.post {} ({} apart)",
            c["node"],
            c["zone"].as_str().unwrap_or(""),
            g("model_free_pages"),
            g("buddyinfo_free_pages"),
            g("buddyinfo_blocks_apart"),
            g("buddyinfo_post_free_pages"),
            g("buddyinfo_post_blocks_apart")
        );
    }
    if !loaded.reconcile.is_empty() {
        println!("\npageblock types UNMOVABLE / MOVABLE / RECLAIMABLE: inferred from the pages -> reconciled with pagetypeinfo (kernel)");
        for r in &loaded.reconcile {
            let f = |c: [u64; 3]| format!("{} / {} / {}", c[0], c[1], c[2]);
            println!(
                "Node {}, zone {:>8}  {} -> {} ({})",
                r.zone.0,
                r.zone.1,
                f(r.inferred),
                f(r.reconciled),
                f(r.kernel)
            );
        }
    }
    println!("\npageblocks that stay no huge page after compaction, by what blocks them:");
    for (r, n) in ranked {
        println!("{n:10}  {r}");
    }
    if args.map {
        use kcompact::views::mapdata::{memory_map, pageblock_map};
        use kcompact::views::TERMINAL_MAP_CELLS;
        println!("\nthe memory map as loaded:");
        print!(
            "{}",
            pageblock_map(&memory_map(&loaded.machine, TERMINAL_MAP_CELLS))
        );
        println!("\nthe memory map after compact_memory:");
        print!("{}", pageblock_map(&memory_map(&after, TERMINAL_MAP_CELLS)));
    }
    Ok(())
}

/// The report of a snapshot: `analyze`'s results, the map as loaded and after
/// `compact_memory`, buddyinfo before and after, the vmstat deltas of the compaction.
pub(crate) fn snapshot_report(dir: &Path) -> anyhow::Result<crate::report::Report> {
    use crate::report::{kernel_views, kv_table, map_section, Report, Section};
    let loaded = load_dir(dir)?;
    let a = analysis(dir, &loaded)?;
    let mut sections = vec![
        kv_table(
            "Huge pages (free order-9 blocks, order 10 counting twice)",
            vec![
                ("hugepages_now".into(), a.now.to_string()),
                (
                    "hugepages_after_compaction".into(),
                    a.after_compaction.to_string(),
                ),
                (
                    "hugepages_after_drop_caches (drop_caches 3, then compaction)".into(),
                    a.after_drop_caches.to_string(),
                ),
            ],
        ),
        Section::Table {
            title: "Pageblocks that stay no huge page after compaction, by what blocks them".into(),
            headers: vec!["reason".into(), "pageblocks".into()],
            rows: a
                .ranked
                .iter()
                .map(|(r, n)| vec![r.to_string(), n.to_string()])
                .collect(),
        },
        map_section("Physical memory as captured", &loaded.machine),
        map_section("Physical memory after compact_memory (predicted)", &a.after),
    ];
    for mut v in kernel_views(&loaded.machine) {
        if let Section::Pre { title, .. } = &mut v {
            *title = format!("{title} (as loaded)");
        }
        sections.push(v);
    }
    sections.push(Section::Pre {
        title: "/proc/buddyinfo after compact_memory (predicted)".into(),
        text: buddyinfo(&a.after),
    });
    sections.push(kv_table(
        "vmstat deltas of compact_memory (predicted)",
        vmstat_delta(&loaded.machine, &a.after)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ));
    Ok(Report {
        title: format!("kcompact report — snapshot {}", dir.display()),
        subtitle: format!(
            "{} pfns from {:#x}; analyze and predict --action compact",
            loaded.flags.len(),
            loaded.pfn_start
        ),
        sections,
    })
}
