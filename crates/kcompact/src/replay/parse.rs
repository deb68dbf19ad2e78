//! Parsers for kmem and compaction tracepoint text: ftrace / trace-cmd (`TASK-PID [CPU]
//! FLAGS TIMESTAMP: EVENT: FIELDS`) and `perf script` (`COMM PID [CPU] TIMESTAMP:
//! kmem:EVENT: FIELDS`). The event's fields are `key=value` words as the tracepoints'
//! `TP_printk` formats print them (linux-compaction.md §6).
//!
//! Unknown events are counted and skipped; a line that is not a trace line, or a known
//! event without a field it needs, is reported with its line number.

use crate::event::Tracepoint;
use std::collections::BTreeMap;
use thiserror::Error;

/// An event with where and when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number.
    pub line: usize,
    /// Timestamp in ns.
    pub ts_ns: u64,
    /// The CPU.
    pub cpu: u32,
    /// The task was a kcompactd thread (its compaction is proactive or for a wake-up).
    pub kcompactd: bool,
    /// The event.
    pub event: Tracepoint,
}

/// A line that could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("line {line}: {msg}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

/// A parsed trace.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The events the replay understands, in file order.
    pub records: Vec<Record>,
    /// Events skipped by name, with their count.
    pub unknown: BTreeMap<String, u64>,
    /// Lines that are not trace lines or lack a needed field (the first 100 kept).
    pub malformed: Vec<LineError>,
    /// How many lines were malformed.
    pub nr_malformed: u64,
    /// Known events by name, with their count.
    pub known: BTreeMap<&'static str, u64>,
}

/// One zone's `mm_compaction_end` as a trace recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedEnd {
    /// `zone_start`.
    pub zone_start: u64,
    /// `zone_end`.
    pub zone_end: u64,
    /// Where the migrate scanner stopped.
    pub migrate_pfn: u64,
    /// Where the free scanner stopped.
    pub free_pfn: u64,
    /// `status` (complete, contended, …; empty if the kernel printed none).
    pub status: String,
}

impl Trace {
    /// The `mm_compaction_end` events of compaction run by other tasks than kcompactd
    /// (a write to `compact_memory`, direct compaction), in file order.
    pub fn compaction_ends(&self) -> Vec<TracedEnd> {
        self.records
            .iter()
            .filter(|r| !r.kcompactd)
            .filter_map(|r| match &r.event {
                Tracepoint::CompactionEnd(run, status) => Some(TracedEnd {
                    zone_start: run.zone_start.0,
                    zone_end: run.zone_end.0,
                    migrate_pfn: run.migrate_pfn.0,
                    free_pfn: run.free_pfn.0,
                    status: status.name().to_string(),
                }),
                _ => None,
            })
            .collect()
    }
}

const KNOWN: &[&str] = &[
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_batched",
    "mm_page_alloc_extfrag",
    "mm_page_alloc_zone_locked",
    "mm_page_pcpu_drain",
];

/// `SECONDS.FRACTION:` → ns.
fn parse_ts(w: &str) -> Option<u64> {
    let w = w.strip_suffix(':')?;
    let (s, f) = w.split_once('.')?;
    if s.is_empty() || f.is_empty() || f.len() > 9 {
        return None;
    }
    let secs: u64 = s.parse().ok()?;
    let frac: u64 = f.parse().ok()?;
    let ns = frac * 10u64.pow(9 - f.len() as u32);
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Parses one line: `Ok(None)` for comments, blank lines and unknown events (whose name
/// is returned in `unknown`).
fn parse_line<'a>(
    line: &'a str,
    no: usize,
    unknown: &mut Option<&'a str>,
) -> Result<Option<Record>, LineError> {
    let err = |msg: String| LineError { line: no, msg };
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    let Some(ti) = words.iter().position(|w| parse_ts(w).is_some()) else {
        return Err(err("no timestamp (SECONDS.FRACTION:)".into()));
    };
    let ts_ns = parse_ts(words[ti]).expect("checked");
    let cpu = words[..ti]
        .iter()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .unwrap_or(0);
    let Some(ev) = words.get(ti + 1).and_then(|w| w.strip_suffix(':')) else {
        return Err(err("no event name after the timestamp".into()));
    };
    let (system, name) = match ev.split_once(':') {
        Some((s, n)) => (Some(s), n),
        None => (None, ev),
    };
    let compaction = name.starts_with("mm_compaction_")
        || system == Some("compaction")
        || system == Some("migrate")
        || name == "mm_migrate_pages";
    if !KNOWN.contains(&name) && !compaction {
        *unknown = Some(name);
        return Ok(None);
    }
    // The fields start after the event word.
    let start = t.find(words[ti + 1]).expect("a word of the line") + words[ti + 1].len();
    let event = match Tracepoint::parse(name, &t[start..]) {
        Ok(Some(e)) => e,
        Ok(None) => Tracepoint::Other(name.to_string()),
        Err(m) => return Err(err(format!("{name}: {m}"))),
    };
    let kcompactd = words[0].starts_with("kcompactd");
    Ok(Some(Record {
        line: no,
        ts_ns,
        cpu,
        kcompactd,
        event,
    }))
}

/// Parses a whole trace (ftrace, trace-cmd or perf script text).
pub fn parse_trace(text: &str) -> Trace {
    let mut t = Trace::default();
    for (i, line) in text.lines().enumerate() {
        let mut unknown = None;
        match parse_line(line, i + 1, &mut unknown) {
            Ok(Some(r)) => {
                *t.known.entry(r.event.kind()).or_default() += 1;
                t.records.push(r);
            }
            Ok(None) => {
                if let Some(u) = unknown {
                    *t.unknown.entry(u.to_string()).or_default() += 1;
                }
            }
            Err(e) => {
                t.nr_malformed += 1;
                if t.malformed.len() < 100 {
                    t.malformed.push(e);
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::control::CompactResult;
    use crate::event::{CompactionRun, IsolateRange, ZoneResult};
    use crate::layout::ZoneType;
    use crate::units::{Order, Pfn};

    #[test]
    fn ftrace_and_perf_lines() {
        let ft = "    kmemtrace.sh-11008   [000] .....  3801.433469: mm_page_alloc: page=00000000d1d7e04e pfn=0x413b4e order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP\n";
        let perf = "bash  1234 [001]  3801.433470: kmem:mm_page_free: page=0xffffea0004567890 pfn=4275022 order=2\n";
        let t = parse_trace(&format!(
            "# tracer: nop\n{ft}{perf}garbage line\n    x-1 [000] ..... 1.5: sched_switch: a=b\n"
        ));
        assert_eq!(t.records.len(), 2);
        assert_eq!(
            t.records[0].event,
            Tracepoint::PageAlloc {
                pfn: Some(Pfn(0x413b4e)),
                order: Order(0),
                migratetype: 0,
                gfp_flags: "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP".into()
            }
        );
        assert_eq!(t.records[0].ts_ns, 3_801_433_469_000);
        assert_eq!(
            t.records[1].event,
            Tracepoint::PageFree {
                pfn: Pfn(4275022),
                order: Order(2)
            }
        );
        assert_eq!(t.records[1].cpu, 1);
        assert_eq!(t.nr_malformed, 1);
        assert_eq!(t.malformed[0].line, 4);
        assert_eq!(t.unknown.get("sched_switch"), Some(&1));
    }

    #[test]
    fn compaction_events() {
        let text = "\
 a-1 [001] ..... 3805.845143: mm_compaction_begin: zone_start=0x1 migrate_pfn=0x1 free_pfn=0xe00 zone_end=0x1000, mode=sync
 a-1 [001] ..... 3805.845148: mm_compaction_isolate_migratepages: range=(0x1 ~ 0x200) nr_scanned=511 nr_taken=0
 a-1 [001] ..... 3805.850877: mm_compaction_migratepages: nr_migrated=2 nr_failed=0
 a-1 [001] ..... 3805.845162: mm_compaction_end: zone_start=0x1 migrate_pfn=0xe00 free_pfn=0xe00 zone_end=0x1000, mode=sync status=complete
 a-1 [001] ..... 3805.845144: mm_compaction_finished: node=0 zone=DMA      order=-1 ret=continue
 a-1 [001] ..... 3805.845145: mm_migrate_pages: nr_succeeded=2 nr_failed=0 mode=MIGRATE_SYNC reason=compaction
";
        let t = parse_trace(text);
        assert_eq!(t.nr_malformed, 0, "{:?}", t.malformed);
        assert_eq!(t.records.len(), 6);
        let run = CompactionRun {
            zone_start: Pfn(1),
            migrate_pfn: Pfn(1),
            free_pfn: Pfn(0xe00),
            zone_end: Pfn(0x1000),
            sync: true,
        };
        assert_eq!(t.records[0].event, Tracepoint::CompactionBegin(run));
        assert_eq!(
            t.records[1].event,
            Tracepoint::IsolateMigratepages(IsolateRange {
                start_pfn: Pfn(1),
                end_pfn: Pfn(0x200),
                nr_scanned: 511,
                nr_taken: 0
            })
        );
        assert_eq!(
            t.records[3].event,
            Tracepoint::CompactionEnd(
                CompactionRun {
                    migrate_pfn: Pfn(0xe00),
                    ..run
                },
                CompactResult::Complete
            )
        );
        assert_eq!(
            t.records[4].event,
            Tracepoint::Finished(ZoneResult {
                node: 0,
                zone: ZoneType::Dma,
                order: -1,
                ret: CompactResult::Continue
            })
        );
        assert_eq!(
            t.records[5].event,
            Tracepoint::Other("mm_migrate_pages".into())
        );
        assert_eq!(t.known.get("compaction (other)"), Some(&1));
    }

    #[test]
    fn every_event_reads_back_what_it_prints() {
        for (i, line) in [
            "mm_compaction_begin: zone_start=0x100000 migrate_pfn=0x100000 free_pfn=0x3dfe00 zone_end=0x3e0000, mode=async",
            "mm_compaction_end: zone_start=0x100000 migrate_pfn=0x322a00 free_pfn=0x38c4e9 zone_end=0x3e0000, mode=sync status=contended",
            "mm_compaction_isolate_freepages: range=(0x3dfe00 ~ 0x3e0000) nr_scanned=512 nr_taken=32",
            "mm_compaction_fast_isolate_freepages: range=(0x200000 ~ 0x3e0000) nr_scanned=9 nr_taken=1",
            "mm_compaction_migratepages: nr_migrated=31 nr_failed=1",
            "mm_compaction_try_to_compact_pages: order=9 gfp_mask=GFP_TRANSHUGE priority=1",
            "mm_compaction_suitable: node=0 zone=DMA32    order=9 ret=skipped",
            "mm_compaction_deferred: node=1 zone=Normal   order=4 order_failed=3 consider=2 limit=8",
            "mm_compaction_defer_compaction: node=0 zone=Normal   order=9 order_failed=9 consider=0 limit=2",
            "mm_compaction_defer_reset: node=0 zone=Movable  order=2 order_failed=3 consider=0 limit=1",
            "mm_compaction_kcompactd_sleep: nid=0",
            "mm_compaction_wakeup_kcompactd: nid=0 order=9 classzone_idx=Normal  ",
            "mm_compaction_kcompactd_wake: nid=1 order=3 classzone_idx=DMA32   ",
            "mm_page_alloc: page=0000000000000000 pfn=0x413b4e order=3 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
            "mm_page_free: page=0000000000000000 pfn=0x10 order=0",
            "mm_page_free_batched: page=0000000000000000 pfn=0x11 order=0",
            "mm_page_alloc_extfrag: page=0000000000000000 pfn=0x200 alloc_order=0 fallback_order=9 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
            "mm_page_alloc_zone_locked: page=0000000000000000 pfn=0x1000 order=0 migratetype=1 percpu_refill=1",
            "mm_page_pcpu_drain: page=0000000000000000 pfn=0x1001 order=0 migratetype=1",
            "mm_vmscan_direct_reclaim_begin: order=9 gfp_flags=GFP_TRANSHUGE",
            "mm_vmscan_direct_reclaim_end: nr_reclaimed=32",
        ]
        .into_iter()
        .enumerate()
        {
            let (name, fields) = line.split_once(": ").unwrap();
            let tp = Tracepoint::parse(name, fields)
                .unwrap_or_else(|e| panic!("line {i}: {e}"))
                .unwrap_or_else(|| panic!("line {i}: unknown"));
            assert_eq!(tp.to_string(), line, "line {i} does not print back");
        }
    }

    #[test]
    fn compaction_ends_leave_out_kcompactd() {
        let text = "\
 kcompactd0-60 [000] ..... 1.000001: mm_compaction_end: zone_start=0x100000 migrate_pfn=0x100200 free_pfn=0x3dfe00 zone_end=0x3e0000, mode=sync status=success
 a-1 [001] ..... 2.000001: mm_compaction_end: zone_start=0x100000 migrate_pfn=0x322a00 free_pfn=0x38c4e9 zone_end=0x3e0000, mode=sync status=contended
";
        let ends = parse_trace(text).compaction_ends();
        assert_eq!(
            ends,
            [TracedEnd {
                zone_start: 0x100000,
                zone_end: 0x3e0000,
                migrate_pfn: 0x322a00,
                free_pfn: 0x38c4e9,
                status: "contended".into(),
            }]
        );
    }

    #[test]
    fn missing_or_bad_fields_name_the_line() {
        let t = parse_trace(" a-1 [0] ..... 1.000001: mm_page_free: pfn=0x10\n a-1 [0] ..... 1.2: mm_page_alloc: pfn=1 order=11 migratetype=0 gfp_flags=X\n a-1 [0] ..... 1.3: mm_compaction_end: zone_start=0x1 migrate_pfn=0x1 free_pfn=0x2 zone_end=0x3, mode=sync status=bogus\n");
        assert_eq!(t.nr_malformed, 3);
        assert!(
            t.malformed[0].to_string().contains("line 1") && t.malformed[0].msg.contains("order")
        );
        assert!(t.malformed[1].msg.contains("order=11"));
        assert!(t.malformed[2].msg.contains("status=bogus"));
    }
}
