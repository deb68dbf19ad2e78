//! Parsers for kmem and compaction tracepoint text: ftrace / trace-cmd (`TASK-PID [CPU]
//! FLAGS TIMESTAMP: EVENT: FIELDS`) and `perf script` (`COMM PID [CPU] TIMESTAMP:
//! kmem:EVENT: FIELDS`). The event's fields are `key=value` words as the tracepoints'
//! `TP_printk` formats print them (linux-compaction.md §6).
//!
//! Unknown events are counted and skipped; a line that is not a trace line, or a known
//! event without a field it needs, is reported with its line number.

use std::collections::BTreeMap;
use thiserror::Error;

/// One event the replay understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `kmem:mm_page_alloc`: the allocator handed out `2^order` pages at `pfn`.
    PageAlloc {
        /// First pfn (absent when the kernel printed none).
        pfn: Option<u64>,
        /// Order.
        order: u8,
        /// `migratetype` (−1 when the kernel printed it so).
        migratetype: i32,
        /// `gfp_flags`, symbolic.
        gfp: String,
    },
    /// `kmem:mm_page_free`: `free_pages_prepare()` of a block (every free path).
    PageFree {
        /// First pfn.
        pfn: u64,
        /// Order.
        order: u8,
    },
    /// `kmem:mm_page_free_batched`: the same page again from `free_unref_folios()`.
    PageFreeBatched {
        /// The pfn.
        pfn: u64,
    },
    /// `kmem:mm_page_alloc_extfrag`: a fallback to another migratetype's free list.
    AllocExtfrag {
        /// The pfn taken.
        pfn: u64,
        /// The request's order.
        alloc_order: u8,
        /// The order of the block it fell back to.
        fallback_order: u8,
        /// The request's migratetype.
        alloc_migratetype: i32,
        /// The list it took from.
        fallback_migratetype: i32,
        /// Whether the pageblock changed owner.
        change_ownership: bool,
    },
    /// `kmem:mm_page_alloc_zone_locked`: a block taken from the buddy lists (for a per-CPU
    /// list when `percpu_refill`).
    AllocZoneLocked {
        /// First pfn.
        pfn: u64,
        /// Order.
        order: u8,
        /// Migratetype.
        migratetype: i32,
        /// Refilling a per-CPU list.
        percpu_refill: bool,
    },
    /// `kmem:mm_page_pcpu_drain`: a per-CPU page back to the buddy lists.
    PcpuDrain {
        /// First pfn.
        pfn: u64,
        /// Order.
        order: u8,
    },
    /// `compaction:mm_compaction_begin` / `_end` (`status` set on the end).
    CompactionRun {
        /// True for `mm_compaction_end`.
        end: bool,
        /// `zone_start`.
        zone_start: u64,
        /// `migrate_pfn`.
        migrate_pfn: u64,
        /// `free_pfn`.
        free_pfn: u64,
        /// `zone_end`.
        zone_end: u64,
        /// `mode` (async, sync_light, sync).
        mode: String,
        /// `status` of an end (complete, success, …).
        status: Option<String>,
    },
    /// `compaction:mm_compaction_isolate_migratepages` / `_freepages`.
    CompactionIsolate {
        /// True for the free scanner.
        free: bool,
        /// The range scanned.
        start_pfn: u64,
        /// Its end.
        end_pfn: u64,
        /// `nr_scanned`.
        nr_scanned: u64,
        /// `nr_taken`.
        nr_taken: u64,
    },
    /// `compaction:mm_compaction_migratepages`.
    CompactionMigrate {
        /// `nr_migrated`.
        nr_migrated: u64,
        /// `nr_failed`.
        nr_failed: u64,
    },
    /// Any other `compaction:*` or `migrate:*` event, by name.
    CompactionOther(String),
}

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
    pub event: Event,
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
                Event::CompactionRun {
                    end: true,
                    zone_start,
                    zone_end,
                    migrate_pfn,
                    free_pfn,
                    status,
                    ..
                } => Some(TracedEnd {
                    zone_start: *zone_start,
                    zone_end: *zone_end,
                    migrate_pfn: *migrate_pfn,
                    free_pfn: *free_pfn,
                    status: status.clone().unwrap_or_default(),
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

/// The `key=value` fields of an event.
struct Fields<'a> {
    map: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Fields<'a> {
        let map = text
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k, v.trim_end_matches(',')))
            .collect();
        Fields { map }
    }

    fn raw(&self, key: &str) -> Result<&'a str, String> {
        self.map
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no {key}= field"))
    }

    fn num(&self, key: &str) -> Result<u64, String> {
        let v = self.raw(key)?;
        parse_num(v).ok_or_else(|| format!("{key}={v}: not a number"))
    }

    fn int(&self, key: &str) -> Result<i32, String> {
        let v = self.raw(key)?;
        v.parse::<i32>()
            .map_err(|_| format!("{key}={v}: not a number"))
    }

    fn order(&self, key: &str) -> Result<u8, String> {
        let n = self.num(key)?;
        u8::try_from(n)
            .ok()
            .filter(|o| *o <= 10)
            .ok_or_else(|| format!("{key}={n}: order out of range 0..=10"))
    }
}

/// A number in hex (`0x…`) or decimal.
fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

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

/// The range `range=(0x1 ~ 0x200)` of the isolate events.
fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let i = text.find("range=(").ok_or("no range= field")?;
    let rest = &text[i + 7..];
    let j = rest.find(')').ok_or("range=( without )")?;
    let (a, b) = rest[..j].split_once('~').ok_or("range without ~")?;
    match (parse_num(a.trim()), parse_num(b.trim())) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("range=({}): not numbers", &rest[..j])),
    }
}

fn event(name: &str, text: &str) -> Result<Event, String> {
    let f = Fields::new(text);
    Ok(match name {
        "mm_page_alloc" => Event::PageAlloc {
            pfn: f.raw("pfn").ok().and_then(parse_num),
            order: f.order("order")?,
            migratetype: f.int("migratetype")?,
            gfp: f.raw("gfp_flags")?.to_string(),
        },
        "mm_page_free" => Event::PageFree {
            pfn: f.num("pfn")?,
            order: f.order("order")?,
        },
        "mm_page_free_batched" => Event::PageFreeBatched { pfn: f.num("pfn")? },
        "mm_page_alloc_extfrag" => Event::AllocExtfrag {
            pfn: f.num("pfn")?,
            alloc_order: f.order("alloc_order")?,
            fallback_order: f.order("fallback_order")?,
            alloc_migratetype: f.int("alloc_migratetype")?,
            fallback_migratetype: f.int("fallback_migratetype")?,
            change_ownership: f.num("change_ownership")? != 0,
        },
        "mm_page_alloc_zone_locked" => Event::AllocZoneLocked {
            pfn: f.num("pfn")?,
            order: f.order("order")?,
            migratetype: f.int("migratetype")?,
            percpu_refill: f.num("percpu_refill").unwrap_or(0) != 0,
        },
        "mm_page_pcpu_drain" => Event::PcpuDrain {
            pfn: f.num("pfn")?,
            order: f.order("order")?,
        },
        "mm_compaction_begin" | "mm_compaction_end" => Event::CompactionRun {
            end: name == "mm_compaction_end",
            zone_start: f.num("zone_start")?,
            migrate_pfn: f.num("migrate_pfn")?,
            free_pfn: f.num("free_pfn")?,
            zone_end: f.num("zone_end")?,
            mode: f.raw("mode")?.to_string(),
            status: f.raw("status").ok().map(str::to_string),
        },
        "mm_compaction_isolate_migratepages" | "mm_compaction_isolate_freepages" => {
            let (start_pfn, end_pfn) = parse_range(text)?;
            Event::CompactionIsolate {
                free: name == "mm_compaction_isolate_freepages",
                start_pfn,
                end_pfn,
                nr_scanned: f.num("nr_scanned")?,
                nr_taken: f.num("nr_taken")?,
            }
        }
        "mm_compaction_migratepages" => Event::CompactionMigrate {
            nr_migrated: f.num("nr_migrated")?,
            nr_failed: f.num("nr_failed")?,
        },
        other => Event::CompactionOther(other.to_string()),
    })
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
    let event = event(name, &t[start..]).map_err(|m| err(format!("{name}: {m}")))?;
    let kcompactd = words[0].starts_with("kcompactd");
    Ok(Some(Record {
        line: no,
        ts_ns,
        cpu,
        kcompactd,
        event,
    }))
}

/// The name under which `e` is counted.
pub fn event_name(e: &Event) -> &'static str {
    match e {
        Event::PageAlloc { .. } => "mm_page_alloc",
        Event::PageFree { .. } => "mm_page_free",
        Event::PageFreeBatched { .. } => "mm_page_free_batched",
        Event::AllocExtfrag { .. } => "mm_page_alloc_extfrag",
        Event::AllocZoneLocked { .. } => "mm_page_alloc_zone_locked",
        Event::PcpuDrain { .. } => "mm_page_pcpu_drain",
        Event::CompactionRun { end: false, .. } => "mm_compaction_begin",
        Event::CompactionRun { end: true, .. } => "mm_compaction_end",
        Event::CompactionIsolate { free: false, .. } => "mm_compaction_isolate_migratepages",
        Event::CompactionIsolate { free: true, .. } => "mm_compaction_isolate_freepages",
        Event::CompactionMigrate { .. } => "mm_compaction_migratepages",
        Event::CompactionOther(_) => "compaction (other)",
    }
}

/// Parses a whole trace (ftrace, trace-cmd or perf script text).
pub fn parse_trace(text: &str) -> Trace {
    let mut t = Trace::default();
    for (i, line) in text.lines().enumerate() {
        let mut unknown = None;
        match parse_line(line, i + 1, &mut unknown) {
            Ok(Some(r)) => {
                *t.known.entry(event_name(&r.event)).or_default() += 1;
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
            Event::PageAlloc {
                pfn: Some(0x413b4e),
                order: 0,
                migratetype: 0,
                gfp: "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP".into()
            }
        );
        assert_eq!(t.records[0].ts_ns, 3_801_433_469_000);
        assert_eq!(
            t.records[1].event,
            Event::PageFree {
                pfn: 4275022,
                order: 2
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
";
        let t = parse_trace(text);
        assert_eq!(t.nr_malformed, 0, "{:?}", t.malformed);
        assert_eq!(t.records.len(), 5);
        assert!(matches!(
            &t.records[0].event,
            Event::CompactionRun { end: false, zone_end: 0x1000, mode, .. } if mode == "sync"
        ));
        assert_eq!(
            t.records[1].event,
            Event::CompactionIsolate {
                free: false,
                start_pfn: 1,
                end_pfn: 0x200,
                nr_scanned: 511,
                nr_taken: 0
            }
        );
        assert!(matches!(
            &t.records[3].event,
            Event::CompactionRun { end: true, status: Some(s), .. } if s == "complete"
        ));
        assert_eq!(
            t.records[4].event,
            Event::CompactionOther("mm_compaction_finished".into())
        );
    }

    #[test]
    fn compaction_ends_leave_out_kcompactd() {
        let text = "\
 kcompactd0-60 [000] ..... 1.000001: mm_compaction_end: zone_start=0x100000 migrate_pfn=0x100200 free_pfn=0x3dfe00 zone_end=0x3e0000, mode=sync_light status=success
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
        let t = parse_trace(" a-1 [0] ..... 1.000001: mm_page_free: pfn=0x10\n a-1 [0] ..... 1.2: mm_page_alloc: pfn=1 order=11 migratetype=0 gfp_flags=X\n");
        assert_eq!(t.nr_malformed, 2);
        assert!(
            t.malformed[0].to_string().contains("line 1") && t.malformed[0].msg.contains("order")
        );
        assert!(t.malformed[1].msg.contains("order=11"));
    }
}
