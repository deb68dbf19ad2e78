//! `kcompact advise`: the operator's options tried on a snapshot (or this machine), ranked
//! by what the target gets against what each costs.
//!
//! Every option runs on its own copy of the loaded machine: the action an operator would
//! take (`compact_memory`, `drop_caches`, a tunable written and a simulated minute for the
//! daemons to act on it), then, for `--target hugepages=N`, the pool grown to N as
//! `echo N > nr_hugepages` grows it. What the target gets is the pool reached, or for
//! `--order K` the free blocks of order K and above (in order-K units) over every zone.
//! What it costs: the pages reclaimed (page cache read back later, if used again), the
//! page cache lost, the slab pages freed, and the simulated CPU time of it all (the
//! calibrated cost model). Each row carries how well the model's answer for that action
//! is validated against the kernel (docs/results.md).

use crate::cli::AdviseArgs;
use crate::settings::SettingChange;
use crate::snapshot_cmd::{load_for_analysis, print_changes};
use crate::ui::{outln, usage};
use kcompact::clock::Work;
use kcompact::mmzone::LruList;
use kcompact::units::NR_PAGE_ORDERS;
use kcompact::Machine;
use rayon::prelude::*;
use serde_json::json;

/// What the operator wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A hugetlb pool of this many huge pages (`echo N > nr_hugepages`).
    Hugepages(u64),
    /// Free blocks of this order (order 9: huge pages a THP fault or a pool can take).
    Order(u8),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::Hugepages(n) => format!("a hugetlb pool of {n} huge pages (`echo {n} > /proc/sys/vm/nr_hugepages` after the option)"),
            Target::Order(k) => format!("free blocks of order {k} and above, in order-{k} units, over every zone"),
        }
    }
}

/// One option an operator has.
#[derive(Clone, Copy, Debug)]
struct Choice {
    /// The row's name.
    name: &'static str,
    /// What the operator types.
    command: &'static str,
    /// What the model does for it.
    act: Act,
    /// How well the model's answer for this action is validated (docs/results.md).
    validated: &'static str,
}

#[derive(Clone, Copy, Debug)]
enum Act {
    /// Nothing: the target as the machine is.
    Nothing,
    /// `echo 1 > compact_memory`.
    Compact,
    /// `echo N > drop_caches`, then `compact_memory` if set.
    Drop(u32, bool),
    /// A tunable written, then a simulated minute of the daemons (no allocation).
    Tune(&'static str, Value),
}

/// A tunable's value, fixed or relative to the machine's.
#[derive(Clone, Copy, Debug)]
enum Value {
    Fixed(&'static str),
    /// The machine's min_free_kbytes times this.
    MinFreeTimes(u64),
}

/// The simulated time a tunable has to act before the target is measured.
const TUNE_MINUTE_NS: u64 = 60_000_000_000;

const COMPACT_VALIDATED: &str =
    "validated: 6 shared cases, order>=9 gain -7.9..+5.8 % of the kernel's";
const DROP_VALIDATED: &str = "partly: free pages -1.2 % (D_g4_s1); order>=9 gain off by up to 2x";
const HUGEPAGES_VALIDATED: &str =
    "validated on H_g8_s1 (-7.3 %) and H_g4_s1 (-0.2 %); lazily initialised memory not modelled";
const UNVALIDATED: &str = "not yet compared with the kernel";

const CHOICES: &[Choice] = &[
    Choice {
        name: "nothing",
        command: "",
        act: Act::Nothing,
        validated: "",
    },
    Choice {
        name: "compact_memory",
        command: "echo 1 > /proc/sys/vm/compact_memory",
        act: Act::Compact,
        validated: COMPACT_VALIDATED,
    },
    Choice {
        name: "drop_caches=1",
        command: "echo 1 > /proc/sys/vm/drop_caches",
        act: Act::Drop(1, false),
        validated: DROP_VALIDATED,
    },
    Choice {
        name: "drop_caches=2",
        command: "echo 2 > /proc/sys/vm/drop_caches",
        act: Act::Drop(2, false),
        validated: UNVALIDATED,
    },
    Choice {
        name: "drop_caches=3",
        command: "echo 3 > /proc/sys/vm/drop_caches",
        act: Act::Drop(3, false),
        validated: DROP_VALIDATED,
    },
    Choice {
        name: "drop_caches=3+compact",
        command: "echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory",
        act: Act::Drop(3, true),
        validated: DROP_VALIDATED,
    },
    Choice {
        name: "proactiveness=20 (1 min)",
        command: "sysctl vm.compaction_proactiveness=20; wait a minute",
        act: Act::Tune("compaction_proactiveness", Value::Fixed("20")),
        validated: UNVALIDATED,
    },
    Choice {
        name: "proactiveness=50 (1 min)",
        command: "sysctl vm.compaction_proactiveness=50; wait a minute",
        act: Act::Tune("compaction_proactiveness", Value::Fixed("50")),
        validated: UNVALIDATED,
    },
    Choice {
        name: "proactiveness=90 (1 min)",
        command: "sysctl vm.compaction_proactiveness=90; wait a minute",
        act: Act::Tune("compaction_proactiveness", Value::Fixed("90")),
        validated: UNVALIDATED,
    },
    Choice {
        name: "defrag_mode=1 (1 min)",
        command: "sysctl vm.defrag_mode=1; wait a minute",
        act: Act::Tune("defrag_mode", Value::Fixed("1")),
        validated: UNVALIDATED,
    },
    Choice {
        name: "min_free_kbytes x2 (1 min)",
        command: "sysctl vm.min_free_kbytes={value}; wait a minute",
        act: Act::Tune("min_free_kbytes", Value::MinFreeTimes(2)),
        validated: UNVALIDATED,
    },
    Choice {
        name: "min_free_kbytes x4 (1 min)",
        command: "sysctl vm.min_free_kbytes={value}; wait a minute",
        act: Act::Tune("min_free_kbytes", Value::MinFreeTimes(4)),
        validated: UNVALIDATED,
    },
];

/// One option's predicted outcome.
#[derive(Clone, Debug)]
pub struct Row {
    name: &'static str,
    command: String,
    /// What the target got.
    got: u64,
    /// Pages reclaimed by kswapd and direct reclaim, and dropped by drop_caches.
    pages_reclaimed: u64,
    /// Page cache pages fewer at the end than loaded.
    page_cache_lost: u64,
    /// Slab pages the shrinkers freed (buffer heads, XArray nodes, dentries, inodes).
    slab_pages_freed: u64,
    /// Simulated CPU time of all the work (writer and daemons).
    cpu_ms: u64,
    /// Simulated time from the option to the end.
    elapsed_ms: u64,
    validated: &'static str,
}

/// Pages on the file LRU lists (the page cache) over every zone.
fn page_cache_pages(m: &Machine) -> u64 {
    m.zones
        .iter()
        .map(|z| z.nr_lru[LruList::InactiveFile.idx()] + z.nr_lru[LruList::ActiveFile.idx()])
        .sum()
}

/// Free blocks of order `k` and above over every zone, counted in order-`k` blocks.
fn free_blocks_at(m: &Machine, k: u8) -> u64 {
    let f = m.free_by_order();
    (k as usize..NR_PAGE_ORDERS)
        .map(|o| f[o] << (o - k as usize))
        .sum()
}

/// Runs `c` on a copy of `loaded` and measures the target.
fn try_choice(loaded: &Machine, c: &Choice, target: Target) -> anyhow::Result<Row> {
    let mut m = loaded.clone();
    let (t0, cache0, slab0) = (m.clock.now_ns, page_cache_pages(&m), m.cache_slab_pages());
    let mut dropped = 0;
    let mut command = c.command.to_string();
    match c.act {
        Act::Nothing => {}
        Act::Compact => {
            m.compact_memory();
        }
        Act::Drop(what, compact) => {
            dropped = m.drop_caches(what);
            if compact {
                m.compact_memory();
            }
        }
        Act::Tune(key, v) => {
            let value = match v {
                Value::Fixed(s) => s.to_string(),
                Value::MinFreeTimes(x) => (m.min_free_kbytes * x).to_string(),
            };
            command = command.replace("{value}", &value);
            m.sysctl_write(key, &value)
                .or_else(|e| usage(format!("advise: {e}")))?;
            let t = m.clock.now_ns + TUNE_MINUTE_NS;
            m.advance_to(t);
        }
    }
    let got = match target {
        Target::Hugepages(n) => {
            if !command.is_empty() {
                command.push_str("; ");
            }
            command.push_str(&format!("echo {n} > /proc/sys/vm/nr_hugepages"));
            m.set_nr_hugepages(n)
        }
        Target::Order(k) => {
            m.settle();
            free_blocks_at(&m, k)
        }
    };
    if matches!(target, Target::Hugepages(_)) {
        m.settle();
    }
    let work = |x: &Machine| Work::of(&x.vmstat);
    let cpu_ns =
        m.config.costs.cost(&work(loaded), &work(&m)) + m.config.costs.invalidate_ns(dropped);
    Ok(Row {
        name: c.name,
        command,
        got,
        pages_reclaimed: kcompact::scenario::pages_reclaimed(&m)
            - kcompact::scenario::pages_reclaimed(loaded)
            + dropped,
        page_cache_lost: cache0.saturating_sub(page_cache_pages(&m)),
        slab_pages_freed: slab0.saturating_sub(m.cache_slab_pages()),
        cpu_ms: cpu_ns / 1_000_000,
        elapsed_ms: (m.clock.now_ns - t0) / 1_000_000,
        validated: if c.validated.is_empty() && matches!(target, Target::Hugepages(_)) {
            HUGEPAGES_VALIDATED
        } else {
            c.validated
        },
    })
}

/// Every option tried on `m`, ranked: most got first (up to `want`: every option that
/// reaches it ranks as equal); among equals, fewest pages reclaimed, then least page
/// cache lost, then least CPU time, then the table's order.
pub fn advise_rows(m: &Machine, target: Target, want: u64) -> anyhow::Result<Vec<Row>> {
    // Each option on its own copy, two at a time (the copies are the memory bound); the
    // result does not depend on the order they finish in.
    let mut rows: Vec<(usize, Row)> = CHOICES
        .par_iter()
        .enumerate()
        .with_max_len(1)
        .map(|(i, c)| try_choice(m, c, target).map(|r| (i, r)))
        .collect::<anyhow::Result<_>>()?;
    rows.sort_by(|(ia, a), (ib, b)| {
        b.got
            .min(want)
            .cmp(&a.got.min(want))
            .then(a.pages_reclaimed.cmp(&b.pages_reclaimed))
            .then(a.page_cache_lost.cmp(&b.page_cache_lost))
            .then(a.cpu_ms.cmp(&b.cpu_ms))
            .then(ia.cmp(ib))
    });
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

fn parse_target(args: &AdviseArgs) -> anyhow::Result<Target> {
    match (&args.target, args.order) {
        (Some(t), None) => match t.strip_prefix("hugepages=").map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => Ok(Target::Hugepages(n)),
            _ => usage(format!("--target {t:?}: expected hugepages=N with N > 0")),
        },
        (None, Some(k)) if (k as usize) < NR_PAGE_ORDERS => Ok(Target::Order(k)),
        (None, Some(k)) => usage(format!(
            "--order {k}: orders are 0..={}",
            NR_PAGE_ORDERS - 1
        )),
        (None, None) => Ok(Target::Order(9)),
        (Some(_), Some(_)) => usage("give --target or --order, not both"),
    }
    .and_then(|t| match (t, args.count) {
        (Target::Hugepages(_), Some(_)) => usage(
            "--count goes with --order (the pool's size is the count of --target hugepages=N)",
        ),
        _ => Ok(t),
    })
}

/// The amount of the target that is enough: the pool's size, or `--count`.
fn want(args: &AdviseArgs, target: Target) -> u64 {
    match target {
        Target::Hugepages(n) => n,
        Target::Order(_) => args.count.unwrap_or(u64::MAX),
    }
}

fn row_json(r: &Row, baseline: u64) -> serde_json::Value {
    json!({
        "option": r.name,
        "command": r.command,
        "got": r.got,
        "gain": r.got as i64 - baseline as i64,
        "pages_reclaimed": r.pages_reclaimed,
        "page_cache_lost": r.page_cache_lost,
        "slab_pages_freed": r.slab_pages_freed,
        "simulated_cpu_ms": r.cpu_ms,
        "elapsed_ms": r.elapsed_ms,
        "validated": r.validated,
    })
}

/// The JSON of an advice: the target, the machine's own value of it, every option
/// ranked.
fn advice_json(
    m: &Machine,
    label: &str,
    target: Target,
    changes: &[SettingChange],
    rows: &[Row],
) -> serde_json::Value {
    let baseline = baseline(rows);
    json!({
        "snapshot": label,
        "target": match target {
            Target::Hugepages(n) => json!({"hugepages": n}),
            Target::Order(k) => json!({"order": k}),
        },
        "baseline": baseline,
        "fragmentation_score": scores(m),
        "settings_changed": changes.iter().map(SettingChange::json).collect::<Vec<_>>(),
        "options": rows.iter().map(|r| row_json(r, baseline)).collect::<Vec<_>>(),
    })
}

/// Each node's fragmentation score (`fragmentation_score_node()`), against which
/// proactive compaction decides.
fn scores(m: &Machine) -> Vec<u64> {
    (0..m.nr_nodes())
        .map(|n| m.fragmentation_score_node(kcompact::units::NodeId(n as u8)))
        .collect()
}

/// The proactiveness values advise tries, with the score above which kcompactd starts
/// (`fragmentation_score_wmark(false)`: 10 above max(100 − proactiveness, 5)).
const PROACTIVENESS: [u64; 3] = [20, 50, 90];

fn score_line(m: &Machine) -> String {
    let marks: Vec<String> = PROACTIVENESS
        .iter()
        .map(|p| {
            format!(
                "{p} -> above {}",
                (100u64.saturating_sub(*p).max(5) + 10).min(100)
            )
        })
        .collect();
    format!(
        "fragmentation score per node (fragmentation_score_node) {:?}; proactive compaction runs at proactiveness {}",
        scores(m),
        marks.join(", ")
    )
}

fn baseline(rows: &[Row]) -> u64 {
    rows.iter()
        .find(|r| r.name == "nothing")
        .map_or(0, |r| r.got)
}

/// `advise --json`'s content without printing it.
pub fn advise_result(args: &AdviseArgs) -> anyhow::Result<serde_json::Value> {
    let target = parse_target(args)?;
    let f = load_for_analysis(&args.source, &args.set)?;
    let rows = advise_rows(&f.loaded.machine, target, want(args, target))?;
    Ok(advice_json(
        &f.loaded.machine,
        &f.label,
        target,
        &f.changes,
        &rows,
    ))
}

/// `kcompact advise SNAPSHOT|--live [--target hugepages=N | --order K]`.
pub fn advise(args: AdviseArgs) -> anyhow::Result<()> {
    let target = parse_target(&args)?;
    let f = load_for_analysis(&args.source, &args.set)?;
    let rows = advise_rows(&f.loaded.machine, target, want(&args, target))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&advice_json(
                &f.loaded.machine,
                &f.label,
                target,
                &f.changes,
                &rows
            ))?
        );
        return Ok(());
    }
    outln!("# {} — the options for {}", f.label, target.describe());
    print_changes(&f.changes)?;
    outln!("\n{}", score_line(&f.loaded.machine));
    let base = baseline(&rows);
    outln!("\nbest first; \"got\" is the target after the option, \"gain\" against doing nothing ({base});");
    outln!("costs: pages reclaimed or dropped (read back if used again), page cache lost, slab pages freed, simulated CPU ms\n");
    outln!(
        "{:<4} {:<28} {:>9} {:>9} {:>11} {:>11} {:>8} {:>8}  {}",
        "rank",
        "option",
        "got",
        "gain",
        "reclaimed",
        "cache lost",
        "slab",
        "cpu ms",
        "validated"
    );
    for (i, r) in rows.iter().enumerate() {
        outln!(
            "{:<4} {:<28} {:>9} {:>+9} {:>11} {:>11} {:>8} {:>8}  {}",
            i + 1,
            r.name,
            r.got,
            r.got as i64 - base as i64,
            r.pages_reclaimed,
            r.page_cache_lost,
            r.slab_pages_freed,
            r.cpu_ms,
            if r.validated.is_empty() {
                "-"
            } else {
                r.validated
            }
        );
    }
    // The best option (the cheapest of those that reach the target).
    if let Some(best) = rows.first() {
        outln!("\nthe commands, best first:");
        for r in rows.iter().filter(|r| !r.command.is_empty()) {
            outln!("  {:<28} {}", r.name, r.command);
        }
        if best.got > base {
            outln!(
                "\nadvice: {} ({} {} against {base} doing nothing; {} pages reclaimed, {} ms of CPU)",
                best.name,
                best.got,
                match target {
                    Target::Hugepages(_) => "huge pages in the pool",
                    Target::Order(_) => "free blocks",
                },
                best.pages_reclaimed,
                best.cpu_ms
            );
            // The best that keeps the page cache, when the best drops it.
            if best.page_cache_lost > 0 {
                if let Some(r) = rows.iter().find(|r| r.page_cache_lost == 0 && r.got > base) {
                    outln!(
                        "keeping the page cache: {} ({}, {} ms of CPU)",
                        r.name,
                        r.got,
                        r.cpu_ms
                    );
                }
            }
        } else {
            outln!("\nadvice: no option does better than doing nothing ({base})");
        }
    }
    Ok(())
}
