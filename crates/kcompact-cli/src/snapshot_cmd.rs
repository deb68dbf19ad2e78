//! `kcompact predict` and `kcompact analyze`: a real machine's snapshot (the layout of
//! ../shared/data/README.md) loaded into the model.

use crate::cli::{AnalyzeArgs, PredictArgs, SourceArgs};
use crate::live::{has_machine_settings, load_source};
use crate::out::{compact_ends_json, compact_ends_text, zones_json};
use crate::settings::SettingChange;
use crate::snapshot_dir::{
    buddyinfo_check, check_json, check_lines, load_dir, Loaded, CAPTURE_PFNS,
};
use crate::ui::{out, outln, usage};
use kcompact::compaction::CompactEnd;
use kcompact::event::VmStat;
use kcompact::scenario::free_order9_blocks;
use kcompact::snapshot::kpageflags::{class_counts, PageClass};
use kcompact::units::Pfn;
use kcompact::views::procfs::buddyinfo;
use kcompact::Machine;
use serde_json::json;
use std::path::Path;

const DELTA_KEYS: [&str; 26] = [
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
    "pageoutrun",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "drop_pagecache",
    "drop_slab",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "pgfree",
    "oom_kill",
];

fn vmstat_delta(before: &VmStat, after: &VmStat) -> Vec<(&'static str, i64)> {
    let b = before.pairs();
    let a = after.pairs();
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

/// What an action did to the loaded machine: the action in the kernel's words, its
/// figures, and each zone's compaction end (for `compact`).
struct Predicted {
    what: String,
    figures: Vec<(&'static str, u64)>,
    ends: Vec<CompactEnd>,
}

/// What `predict` keeps of the machine as loaded, rather than a copy of the whole machine:
/// its counters and what the report prints of it.
struct Before {
    vmstat: VmStat,
    cache_slab_pages: u64,
    zones: serde_json::Value,
    buddyinfo: String,
    hugepages: u64,
}

impl Before {
    fn of(m: &Machine) -> Before {
        Before {
            vmstat: m.vmstat.clone(),
            cache_slab_pages: m.cache_slab_pages(),
            zones: zones_json(m),
            buddyinfo: buddyinfo(m),
            hugepages: free_order9_blocks(m),
        }
    }
}

/// Performs `action` on `m` (loaded as `before`) and lets the daemons finish.
fn perform(m: &mut Machine, before: &Before, action: Action) -> Predicted {
    let mut ends = Vec::new();
    let t0 = m.clock.now_ns;
    let (what, mut figures) = match action {
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
    let work = kcompact::clock::Work::of;
    let ms = |ns: u64| ns / 1_000_000;
    // How long the write took (the kernel's `action_ms`): growing the pool runs on the
    // clock, with kswapd and kcompactd beside it on their CPU; compact_memory and
    // drop_caches are the writer's own work, nothing else running meanwhile.
    let dropped = figures
        .iter()
        .find(|(k, _)| *k == "pages_dropped")
        .map_or(0, |(_, v)| *v);
    let invalidate_ns = m.config.costs.invalidate_ns(dropped);
    let action_ns = match action {
        Action::Hugepages(_) => m.clock.now_ns - t0,
        Action::Compact | Action::DropCaches => {
            m.config.costs.cost(&work(&before.vmstat), &work(&m.vmstat)) + invalidate_ns
        }
    };
    figures.push(("action_ms", ms(action_ns)));
    // Slab pages freed with the page cache's buffer heads and XArray nodes (when the
    // snapshot has slabinfo).
    figures.push((
        "slab_pages_freed",
        before.cache_slab_pages - m.cache_slab_pages(),
    ));
    // kswapd and kcompactd finish what the action woke them for.
    m.settle();
    // Simulated CPU time of the work (the calibrated cost model), in ms: all of it, and
    // the daemons' share.
    figures.push((
        "simulated_cpu_ms",
        ms(m.config.costs.cost(&work(&before.vmstat), &work(&m.vmstat)) + invalidate_ns),
    ));
    figures.push(("kswapd_cpu_ms", ms(m.clock.cpu.kswapd_ns.iter().sum())));
    figures.push((
        "kcompactd_cpu_ms",
        ms(m.clock.cpu.kcompactd_ns.iter().sum()),
    ));
    Predicted {
        what,
        figures,
        ends,
    }
}

/// The snapshot of `predict` as loaded (`before`, `--set` applied), after the action
/// (`after`), what the action did, the counters it moved, and the load's checks (text and
/// JSON).
struct Prediction {
    /// The snapshot's name in the output (its directory, or `--live`).
    label: String,
    /// The tunables `--set` changed from the machine's values.
    changes: Vec<SettingChange>,
    before: Before,
    after: Machine,
    p: Predicted,
    delta: Vec<(&'static str, i64)>,
    checks: String,
    checks_json: serde_json::Value,
}

/// Loads the snapshot, applies `--set`'s run-time tunables and performs the action.
fn prediction(args: &PredictArgs) -> anyhow::Result<Prediction> {
    let action = parse_action(&args.action)?;
    let settings = runtime_settings(&args.set)?;
    let (loaded, label) = load_source(&args.source)?;
    let (checks, checks_json) = (check_lines(&loaded), check_json(&loaded));
    let machine_files = has_machine_settings(&loaded);
    let mut m = loaded.machine;
    let changes = settings.apply_runtime(&mut m, machine_files)?;
    let before = Before::of(&m);
    if args.cpu >= m.nr_cpus() {
        return usage(format!(
            "--cpu {}: the snapshot's machine has CPUs 0..={}",
            args.cpu,
            m.nr_cpus() - 1
        ));
    }
    m.cpu = args.cpu;
    let p = perform(&mut m, &before, action);
    let delta = vmstat_delta(&before.vmstat, &m.vmstat);
    Ok(Prediction {
        label,
        changes,
        before,
        after: m,
        p,
        delta,
        checks,
        checks_json,
    })
}

/// Run-time tunables that cannot change what a snapshot command predicts, and why: refused
/// rather than silently ignored.
pub(crate) const NOT_ON_SNAPSHOTS: [(&str, &str); 2] = [
    (
        "skip_pinned",
        "a snapshot does not show which pages are pinned (kpageflags has no pin bit), so every page loads unpinned",
    ),
    (
        "thp_defrag",
        "it governs THP page faults, and no action of predict, analyze or advise faults a THP",
    ),
];

/// `--set KEY=VALUE` pairs for a loaded snapshot (run-time tunables only; those of
/// [`NOT_ON_SNAPSHOTS`] refused with the reason).
pub(crate) fn runtime_settings(set: &[String]) -> anyhow::Result<crate::settings::Settings> {
    let s = crate::settings::Settings::parse(&crate::cli::MachineArgs {
        mem: None,
        set: set.to_vec(),
    })?;
    for (k, _) in &s.explicit {
        if let Some((_, why)) = NOT_ON_SNAPSHOTS.iter().find(|(n, _)| n == k) {
            return usage(format!("--set {k}: not on a snapshot: {why}"));
        }
    }
    Ok(s)
}

/// `predict --json`'s content.
fn prediction_json(action: &str, x: &Prediction) -> serde_json::Value {
    let (before, m, p) = (&x.before, &x.after, &x.p);
    let d: serde_json::Map<String, serde_json::Value> = x
        .delta
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut out = json!({
        "action": action,
        "before": {"zones": before.zones, "hugepages": before.hugepages},
        "after": {"zones": zones_json(m), "hugepages": free_order9_blocks(m)},
        "vmstat_delta": d,
        "snapshot_check": x.checks_json,
        "settings_changed": x.changes.iter().map(SettingChange::json).collect::<Vec<_>>(),
    });
    if !p.ends.is_empty() {
        out["compaction"] = compact_ends_json(m, &p.ends);
    }
    for (k, v) in &p.figures {
        out[*k] = json!(v);
    }
    out
}

/// `predict --json`'s content without printing it: what the Python package's
/// `kcompact.predict` returns.
pub fn predict_result(args: &PredictArgs) -> anyhow::Result<serde_json::Value> {
    Ok(prediction_json(&args.action, &prediction(args)?))
}

/// `kcompact predict SNAPSHOT --action compact|drop-caches|hugepages=N`.
pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let x = prediction(&args)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&prediction_json(&args.action, &x))?
        );
        return Ok(());
    }
    let Prediction {
        label,
        changes,
        before,
        after: m,
        p,
        delta,
        checks,
        ..
    } = x;
    outln!("# {label} — predicted effect of {}", p.what);
    print_changes(&changes)?;
    outln!("\n## buddyinfo before (as loaded)\n{}", before.buddyinfo);
    outln!("## buddyinfo after\n{}", buddyinfo(&m));
    outln!(
        "free order>=9 blocks (huge pages obtainable): {} -> {}",
        before.hugepages,
        free_order9_blocks(&m)
    );
    for (k, v) in p.figures {
        outln!("{k} {v}");
    }
    if !p.ends.is_empty() {
        outln!("\n## how each zone's compaction ended (mm_compaction_end)");
        out!("{}", compact_ends_text(&m, &p.ends));
    }
    outln!("\n## vmstat delta");
    for (k, v) in delta {
        outln!("{k} {v}");
    }
    out!("\n## {checks}");
    Ok(())
}

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
pub(crate) fn analysis(loaded: &Loaded) -> anyhow::Result<Analysis> {
    let check = buddyinfo_check(loaded);
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

/// A snapshot loaded for `analyze` (or `advise`), `--set`'s run-time tunables applied:
/// the machine, its name in the output and the tunables changed from the machine's.
pub(crate) struct ForAnalysis {
    pub(crate) loaded: Loaded,
    pub(crate) label: String,
    pub(crate) changes: Vec<SettingChange>,
}

/// Loads the snapshot (or this machine, `--live`) and applies `--set`.
pub(crate) fn load_for_analysis(src: &SourceArgs, set: &[String]) -> anyhow::Result<ForAnalysis> {
    let settings = runtime_settings(set)?;
    let (mut loaded, label) = load_source(src)?;
    let machine_files = has_machine_settings(&loaded);
    let changes = settings.apply_runtime(&mut loaded.machine, machine_files)?;
    Ok(ForAnalysis {
        loaded,
        label,
        changes,
    })
}

/// The tunables `--set` changed, under their own heading (nothing when none did).
pub(crate) fn print_changes(changes: &[SettingChange]) -> anyhow::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    outln!("\n## settings that differ from the machine's (--set)");
    for c in changes {
        outln!("{}", c.line());
    }
    Ok(())
}

/// `analyze --json`'s content without printing it: what the Python package's
/// `kcompact.analyze` returns.
pub fn analyze_result(args: &AnalyzeArgs) -> anyhow::Result<serde_json::Value> {
    let f = load_for_analysis(&args.source, &args.set)?;
    let a = analysis(&f.loaded)?;
    Ok(analyze_json(&f, &a))
}

/// `kcompact analyze SNAPSHOT`.
pub fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let f = load_for_analysis(&args.source, &args.set)?;
    let a = analysis(&f.loaded)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&analyze_json(&f, &a))?);
        return Ok(());
    }
    let loaded = &f.loaded;
    outln!("# {}", f.label);
    print_changes(&f.changes)?;
    outln!();
    out!("{}", buddyinfo(&loaded.machine));
    outln!();
    out!(
        "{}",
        kcompact::views::extfrag::unusable_index(&loaded.machine)
    );
    outln!();
    outln!("hugepages_now {}", a.now);
    outln!("hugepages_after_compaction {}", a.after_compaction);
    outln!(
        "hugepages_after_drop_caches {}  (drop_caches 3, then compaction)",
        a.after_drop_caches
    );
    print_load_checks(loaded, &a.check)?;
    out!("\n{}", check_lines(loaded));
    outln!("\npageblocks that stay no huge page after compaction, by what blocks them:");
    for (r, n) in &a.ranked {
        outln!("{n:10}  {r}");
    }
    if args.map {
        use kcompact::views::mapdata::{memory_map, pageblock_map};
        use kcompact::views::TERMINAL_MAP_CELLS;
        outln!("\nthe memory map as loaded:");
        out!(
            "{}",
            pageblock_map(&memory_map(&loaded.machine, TERMINAL_MAP_CELLS))
        );
        outln!("\nthe memory map after compact_memory:");
        out!(
            "{}",
            pageblock_map(&memory_map(&a.after, TERMINAL_MAP_CELLS))
        );
    }
    Ok(())
}

/// `analyze --json`.
fn analyze_json(f: &ForAnalysis, a: &Analysis) -> serde_json::Value {
    let loaded = &f.loaded;
    let r = &loaded.report;
    json!({
        "settings_changed": f.changes.iter().map(SettingChange::json).collect::<Vec<_>>(),
        "zones": zones_json(&loaded.machine),
        "hugepages_now": a.now,
        "hugepages_after_compaction": a.after_compaction,
        "hugepages_after_drop_caches": a.after_drop_caches,
        "blockers": a.ranked.iter().map(|(r, n)| json!({"reason": r, "pageblocks": n})).collect::<Vec<_>>(),
        "buddyinfo_check": a.check,
        "snapshot_check": check_json(loaded),
        "pageblock_types": r.reconcile.iter().map(|r| json!({"node": r.zone.0, "zone": r.zone.1, "inferred": r.inferred, "reconciled": r.reconciled, "kernel": r.kernel, "free_list_distance": [r.free_list_distance.0, r.free_list_distance.1]})).collect::<Vec<_>>(),
        "load": {"placed_by_class": PageClass::ALL.iter().zip(r.placed).map(|(c, n)| (c.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(), "unplaced": r.unplaced, "file_mappings": r.file_mappings, "pgtables_from_free": r.pgtables_from_free, "capture_pages_released": r.capture_pages_released},
    })
}

/// How the load went, for `analyze`'s text: the capture's own pages given back, the free
/// pages loaded against the snapshot's buddyinfo readings (`check`), and the pageblock
/// types reconciled with pagetypeinfo.
fn print_load_checks(loaded: &Loaded, check: &[serde_json::Value]) -> anyhow::Result<()> {
    if let Some(n) = loaded.report.capture_pages_released {
        outln!("\nthe capture's own anonymous pages, free again once it was done: {n} pages given back to the model's allocator ({})", CAPTURE_PFNS);
    }
    outln!("\nfree pages loaded vs buddyinfo before / after the page arrays were copied (free blocks apart over all orders):");
    for c in check {
        let g = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_u64())
                .map_or("-".to_string(), |v| v.to_string())
        };
        outln!(
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
    if !loaded.report.reconcile.is_empty() {
        outln!("\npageblock types UNMOVABLE / MOVABLE / RECLAIMABLE: inferred from the pages -> reconciled with pagetypeinfo (kernel)");
        for r in &loaded.report.reconcile {
            let f = |c: [u64; 3]| format!("{} / {} / {}", c[0], c[1], c[2]);
            outln!(
                "Node {}, zone {:>8}  {} -> {} ({})",
                r.zone.0,
                r.zone.1,
                f(r.inferred),
                f(r.reconciled),
                f(r.kernel)
            );
        }
    }
    Ok(())
}

/// The report of a snapshot: `analyze`'s results, the map as loaded and after
/// `compact_memory`, buddyinfo before and after, the vmstat deltas of the compaction.
pub(crate) fn snapshot_report(dir: &Path) -> anyhow::Result<crate::report::Report> {
    use crate::report::{kernel_views, kv_table, map_section, Report, Section};
    let loaded = load_dir(dir)?;
    let a = analysis(&loaded)?;
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
        vmstat_delta(&loaded.machine.vmstat, &a.after.vmstat)
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
