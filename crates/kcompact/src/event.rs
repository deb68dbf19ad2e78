//! Events and counters: what the allocator did, named as Linux names it.
//!
//! [`VmStat`] holds the `/proc/vmstat` event counters the model keeps; [`Tracepoint`] is
//! every tracepoint the model emits or a trace replay reads, with typed fields, printed
//! (`Display`) and parsed ([`Tracepoint::parse`]) in the kernel's own `TP_printk` formats;
//! [`ExtfragEvent`] is what the allocator records of a fallback. Reports fold these; they
//! never re-scan state to learn what happened.

use crate::compaction::control::CompactResult;
use crate::layout::ZoneType;
use crate::memmap::MigrateType;
use crate::units::{Order, Pfn};
use std::fmt;

/// Mirrors the `kmem:mm_page_alloc_extfrag` tracepoint: an allocation fell back to
/// another migratetype's free block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtfragEvent {
    /// First pfn of the allocated block.
    pub pfn: Pfn,
    /// The order asked for.
    pub alloc_order: Order,
    /// The order of the free block it came from.
    pub fallback_order: Order,
    /// The requested type.
    pub alloc_migratetype: MigrateType,
    /// The type of the list it came from.
    pub fallback_migratetype: MigrateType,
    /// The pageblock now has the requested type.
    pub change_ownership: bool,
    /// The fallback split a block smaller than a pageblock (mixing types in it).
    pub fragmenting: bool,
}

impl ExtfragEvent {
    /// The tracepoint (`mm_page_alloc_extfrag`) for pageblocks of `pageblock_order`.
    pub fn tracepoint(&self, pageblock_order: Order) -> Tracepoint {
        Tracepoint::PageAllocExtfrag {
            pfn: self.pfn,
            alloc_order: self.alloc_order,
            fallback_order: self.fallback_order,
            pageblock_order,
            alloc_migratetype: self.alloc_migratetype as i32,
            fallback_migratetype: self.fallback_migratetype as i32,
            fragmenting: self.fragmenting,
            change_ownership: self.change_ownership,
        }
    }
}

/// The fields of the `mm_compaction_isolate_template` events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsolateRange {
    /// `start_pfn`.
    pub start_pfn: Pfn,
    /// `end_pfn`.
    pub end_pfn: Pfn,
    /// `nr_scanned`.
    pub nr_scanned: u64,
    /// `nr_taken`.
    pub nr_taken: u64,
}

/// The fields of `mm_compaction_begin` and `mm_compaction_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionRun {
    /// `zone_start`.
    pub zone_start: Pfn,
    /// `migrate_pfn`.
    pub migrate_pfn: Pfn,
    /// `free_pfn`.
    pub free_pfn: Pfn,
    /// `zone_end`.
    pub zone_end: Pfn,
    /// `sync`: the mode is not MIGRATE_ASYNC (printed `sync` or `async`).
    pub sync: bool,
}

/// The fields of `mm_compaction_suitable_template` (`suitable`, `finished`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneResult {
    /// `nid`.
    pub node: u8,
    /// `idx`: the zone's type.
    pub zone: ZoneType,
    /// `order` (−1: the whole zone).
    pub order: i32,
    /// `ret`.
    pub ret: CompactResult,
}

/// The fields of `mm_compaction_defer_template` (`deferred`, `defer_compaction`,
/// `defer_reset`), in Linux 6.18's form (one set of defer counters per zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defer {
    /// `nid`.
    pub node: u8,
    /// `idx`.
    pub zone: ZoneType,
    /// `order`.
    pub order: i32,
    /// `order_failed` (`compact_order_failed`).
    pub order_failed: i32,
    /// `considered` (`compact_considered`).
    pub considered: u32,
    /// `1 << defer_shift`.
    pub limit: u64,
}

/// The fields of `kcompactd_wake_template` (`wakeup_kcompactd`, `kcompactd_wake`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KcompactdWake {
    /// `nid`.
    pub nid: u8,
    /// `order`.
    pub order: i32,
    /// `highest_zoneidx` (printed `classzone_idx`, its name before 5.8).
    pub highest_zoneidx: ZoneType,
}

/// Mirrors the `TRACE_EVENT`s of include/trace/events/{compaction,kmem,vmscan}.h that the
/// model emits or reads: each variant holds the event's fields, `Display` prints
/// `name: fields` in the event's `TP_printk` format, and [`Tracepoint::parse`] reads the
/// fields back from trace text (ftrace, trace-cmd or `perf script`). Pointers (`page=`)
/// print as zero: the model has no `struct page` addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracepoint {
    /// `compaction:mm_compaction_isolate_migratepages`.
    IsolateMigratepages(IsolateRange),
    /// `compaction:mm_compaction_isolate_freepages`.
    IsolateFreepages(IsolateRange),
    /// `compaction:mm_compaction_fast_isolate_freepages`.
    FastIsolateFreepages(IsolateRange),
    /// `compaction:mm_compaction_migratepages`.
    Migratepages {
        /// `nr_migrated`.
        nr_migrated: u64,
        /// `nr_failed`.
        nr_failed: u64,
    },
    /// `compaction:mm_compaction_begin`.
    CompactionBegin(CompactionRun),
    /// `compaction:mm_compaction_end`.
    CompactionEnd(CompactionRun, CompactResult),
    /// `compaction:mm_compaction_try_to_compact_pages`.
    TryToCompactPages {
        /// `order`.
        order: i32,
        /// `gfp_mask` as `show_gfp_flags()` prints it.
        gfp_mask: String,
        /// `prio`.
        priority: i32,
    },
    /// `compaction:mm_compaction_suitable`.
    Suitable(ZoneResult),
    /// `compaction:mm_compaction_finished`.
    Finished(ZoneResult),
    /// `compaction:mm_compaction_deferred`.
    Deferred(Defer),
    /// `compaction:mm_compaction_defer_compaction`.
    DeferCompaction(Defer),
    /// `compaction:mm_compaction_defer_reset`.
    DeferReset(Defer),
    /// `compaction:mm_compaction_kcompactd_sleep`.
    KcompactdSleep {
        /// `nid`.
        nid: u8,
    },
    /// `compaction:mm_compaction_wakeup_kcompactd`.
    WakeupKcompactd(KcompactdWake),
    /// `compaction:mm_compaction_kcompactd_wake`.
    KcompactdWake(KcompactdWake),
    /// `kmem:mm_page_alloc`: the allocator handed out `2^order` pages at `pfn`.
    PageAlloc {
        /// First pfn (absent when the kernel printed none).
        pfn: Option<Pfn>,
        /// Order.
        order: Order,
        /// `migratetype` (−1 when the kernel printed it so).
        migratetype: i32,
        /// `gfp_flags`, symbolic.
        gfp_flags: String,
    },
    /// `kmem:mm_page_free`: `free_pages_prepare()` of a block (every free path).
    PageFree {
        /// First pfn.
        pfn: Pfn,
        /// Order.
        order: Order,
    },
    /// `kmem:mm_page_free_batched`: the same page again from `free_unref_folios()`.
    PageFreeBatched {
        /// The pfn.
        pfn: Pfn,
    },
    /// `kmem:mm_page_alloc_extfrag`: a fallback to another migratetype's free list.
    PageAllocExtfrag {
        /// The pfn taken.
        pfn: Pfn,
        /// The request's order.
        alloc_order: Order,
        /// The order of the block it fell back to.
        fallback_order: Order,
        /// `pageblock_order`.
        pageblock_order: Order,
        /// The request's migratetype.
        alloc_migratetype: i32,
        /// The list it took from.
        fallback_migratetype: i32,
        /// The fallback split a block smaller than a pageblock.
        fragmenting: bool,
        /// The pageblock changed owner.
        change_ownership: bool,
    },
    /// `kmem:mm_page_alloc_zone_locked`: a block taken from the buddy lists (for a per-CPU
    /// list when `percpu_refill`).
    PageAllocZoneLocked {
        /// First pfn.
        pfn: Pfn,
        /// Order.
        order: Order,
        /// Migratetype.
        migratetype: i32,
        /// Refilling a per-CPU list.
        percpu_refill: bool,
    },
    /// `kmem:mm_page_pcpu_drain`: a per-CPU page back to the buddy lists.
    PagePcpuDrain {
        /// First pfn.
        pfn: Pfn,
        /// Order.
        order: Order,
        /// Migratetype.
        migratetype: i32,
    },
    /// `vmscan:mm_vmscan_direct_reclaim_begin`.
    DirectReclaimBegin {
        /// `order`.
        order: i32,
        /// `gfp_flags`, symbolic.
        gfp_flags: String,
    },
    /// `vmscan:mm_vmscan_direct_reclaim_end`.
    DirectReclaimEnd {
        /// `nr_reclaimed`.
        nr_reclaimed: u64,
    },
    /// Another `compaction:*` or `migrate:*` event, known by name only.
    Other(String),
}

impl Tracepoint {
    /// The event's name (`mm_compaction_begin`, ...).
    pub fn name(&self) -> &str {
        match self {
            Tracepoint::Other(name) => name,
            _ => self.kind(),
        }
    }

    /// The name under which the event is counted: its own, or `compaction (other)` for
    /// the events known by name only.
    pub fn kind(&self) -> &'static str {
        match self {
            Tracepoint::IsolateMigratepages(_) => "mm_compaction_isolate_migratepages",
            Tracepoint::IsolateFreepages(_) => "mm_compaction_isolate_freepages",
            Tracepoint::FastIsolateFreepages(_) => "mm_compaction_fast_isolate_freepages",
            Tracepoint::Migratepages { .. } => "mm_compaction_migratepages",
            Tracepoint::CompactionBegin(_) => "mm_compaction_begin",
            Tracepoint::CompactionEnd(..) => "mm_compaction_end",
            Tracepoint::TryToCompactPages { .. } => "mm_compaction_try_to_compact_pages",
            Tracepoint::Suitable(_) => "mm_compaction_suitable",
            Tracepoint::Finished(_) => "mm_compaction_finished",
            Tracepoint::Deferred(_) => "mm_compaction_deferred",
            Tracepoint::DeferCompaction(_) => "mm_compaction_defer_compaction",
            Tracepoint::DeferReset(_) => "mm_compaction_defer_reset",
            Tracepoint::KcompactdSleep { .. } => "mm_compaction_kcompactd_sleep",
            Tracepoint::WakeupKcompactd(_) => "mm_compaction_wakeup_kcompactd",
            Tracepoint::KcompactdWake(_) => "mm_compaction_kcompactd_wake",
            Tracepoint::PageAlloc { .. } => "mm_page_alloc",
            Tracepoint::PageFree { .. } => "mm_page_free",
            Tracepoint::PageFreeBatched { .. } => "mm_page_free_batched",
            Tracepoint::PageAllocExtfrag { .. } => "mm_page_alloc_extfrag",
            Tracepoint::PageAllocZoneLocked { .. } => "mm_page_alloc_zone_locked",
            Tracepoint::PagePcpuDrain { .. } => "mm_page_pcpu_drain",
            Tracepoint::DirectReclaimBegin { .. } => "mm_vmscan_direct_reclaim_begin",
            Tracepoint::DirectReclaimEnd { .. } => "mm_vmscan_direct_reclaim_end",
            Tracepoint::Other(_) => "compaction (other)",
        }
    }

    /// Reads event `name` from the text after `name: `. `Ok(None)` for an event this
    /// vocabulary does not know; `Err` names the field that is missing or unreadable.
    pub fn parse(name: &str, text: &str) -> Result<Option<Tracepoint>, String> {
        let f = Fields::new(text);
        let zr = || -> Result<ZoneResult, String> {
            Ok(ZoneResult {
                node: f.small("node")?,
                zone: f.zone("zone")?,
                order: f.int("order")?,
                ret: f.status("ret")?,
            })
        };
        let defer = || -> Result<Defer, String> {
            Ok(Defer {
                node: f.small("node")?,
                zone: f.zone("zone")?,
                order: f.int("order")?,
                order_failed: f.int("order_failed")?,
                considered: f.num("consider")? as u32,
                limit: f.num("limit")?,
            })
        };
        let wake = || -> Result<KcompactdWake, String> {
            Ok(KcompactdWake {
                nid: f.small("nid")?,
                order: f.int("order")?,
                highest_zoneidx: f.zone("classzone_idx")?,
            })
        };
        let run = || -> Result<CompactionRun, String> {
            Ok(CompactionRun {
                zone_start: f.pfn("zone_start")?,
                migrate_pfn: f.pfn("migrate_pfn")?,
                free_pfn: f.pfn("free_pfn")?,
                zone_end: f.pfn("zone_end")?,
                sync: match f.raw("mode")? {
                    "async" => false,
                    "sync" => true,
                    m => return Err(format!("mode={m}: expected sync or async")),
                },
            })
        };
        let range = || -> Result<IsolateRange, String> {
            let (a, b) = parse_range(text)?;
            Ok(IsolateRange {
                start_pfn: Pfn(a),
                end_pfn: Pfn(b),
                nr_scanned: f.num("nr_scanned")?,
                nr_taken: f.num("nr_taken")?,
            })
        };
        Ok(Some(match name {
            "mm_compaction_isolate_migratepages" => Tracepoint::IsolateMigratepages(range()?),
            "mm_compaction_isolate_freepages" => Tracepoint::IsolateFreepages(range()?),
            "mm_compaction_fast_isolate_freepages" => Tracepoint::FastIsolateFreepages(range()?),
            "mm_compaction_migratepages" => Tracepoint::Migratepages {
                nr_migrated: f.num("nr_migrated")?,
                nr_failed: f.num("nr_failed")?,
            },
            "mm_compaction_begin" => Tracepoint::CompactionBegin(run()?),
            "mm_compaction_end" => Tracepoint::CompactionEnd(run()?, f.status("status")?),
            "mm_compaction_try_to_compact_pages" => Tracepoint::TryToCompactPages {
                order: f.int("order")?,
                gfp_mask: f.raw("gfp_mask")?.to_string(),
                priority: f.int("priority")?,
            },
            "mm_compaction_suitable" => Tracepoint::Suitable(zr()?),
            "mm_compaction_finished" => Tracepoint::Finished(zr()?),
            "mm_compaction_deferred" => Tracepoint::Deferred(defer()?),
            "mm_compaction_defer_compaction" => Tracepoint::DeferCompaction(defer()?),
            "mm_compaction_defer_reset" => Tracepoint::DeferReset(defer()?),
            "mm_compaction_kcompactd_sleep" => Tracepoint::KcompactdSleep {
                nid: f.small("nid")?,
            },
            "mm_compaction_wakeup_kcompactd" => Tracepoint::WakeupKcompactd(wake()?),
            "mm_compaction_kcompactd_wake" => Tracepoint::KcompactdWake(wake()?),
            "mm_page_alloc" => Tracepoint::PageAlloc {
                pfn: f.raw("pfn").ok().and_then(parse_num).map(Pfn),
                order: f.order("order")?,
                migratetype: f.int("migratetype")?,
                gfp_flags: f.raw("gfp_flags")?.to_string(),
            },
            "mm_page_free" => Tracepoint::PageFree {
                pfn: f.pfn("pfn")?,
                order: f.order("order")?,
            },
            "mm_page_free_batched" => Tracepoint::PageFreeBatched { pfn: f.pfn("pfn")? },
            "mm_page_alloc_extfrag" => Tracepoint::PageAllocExtfrag {
                pfn: f.pfn("pfn")?,
                alloc_order: f.order("alloc_order")?,
                fallback_order: f.order("fallback_order")?,
                pageblock_order: f.order("pageblock_order").unwrap_or(Order(9)),
                alloc_migratetype: f.int("alloc_migratetype")?,
                fallback_migratetype: f.int("fallback_migratetype")?,
                fragmenting: f.num("fragmenting").unwrap_or(0) != 0,
                change_ownership: f.num("change_ownership")? != 0,
            },
            "mm_page_alloc_zone_locked" => Tracepoint::PageAllocZoneLocked {
                pfn: f.pfn("pfn")?,
                order: f.order("order")?,
                migratetype: f.int("migratetype")?,
                percpu_refill: f.num("percpu_refill").unwrap_or(0) != 0,
            },
            "mm_page_pcpu_drain" => Tracepoint::PagePcpuDrain {
                pfn: f.pfn("pfn")?,
                order: f.order("order")?,
                migratetype: f.int("migratetype").unwrap_or(-1),
            },
            "mm_vmscan_direct_reclaim_begin" => Tracepoint::DirectReclaimBegin {
                order: f.int("order")?,
                gfp_flags: f.raw("gfp_flags")?.to_string(),
            },
            "mm_vmscan_direct_reclaim_end" => Tracepoint::DirectReclaimEnd {
                nr_reclaimed: f.num("nr_reclaimed")?,
            },
            _ => return Ok(None),
        }))
    }
}

impl fmt::Display for Tracepoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        let range = |f: &mut fmt::Formatter<'_>, r: &IsolateRange| {
            write!(
                f,
                "range=(0x{:x} ~ 0x{:x}) nr_scanned={} nr_taken={}",
                r.start_pfn.0, r.end_pfn.0, r.nr_scanned, r.nr_taken
            )
        };
        let run = |f: &mut fmt::Formatter<'_>, r: &CompactionRun| {
            write!(
                f,
                "zone_start=0x{:x} migrate_pfn=0x{:x} free_pfn=0x{:x} zone_end=0x{:x}, mode={}",
                r.zone_start.0,
                r.migrate_pfn.0,
                r.free_pfn.0,
                r.zone_end.0,
                if r.sync { "sync" } else { "async" }
            )
        };
        let zr = |f: &mut fmt::Formatter<'_>, z: &ZoneResult| {
            write!(
                f,
                "node={} zone={:<8} order={} ret={}",
                z.node,
                z.zone.name(),
                z.order,
                z.ret.name()
            )
        };
        let defer = |f: &mut fmt::Formatter<'_>, d: &Defer| {
            write!(
                f,
                "node={} zone={:<8} order={} order_failed={} consider={} limit={}",
                d.node,
                d.zone.name(),
                d.order,
                d.order_failed,
                d.considered,
                d.limit
            )
        };
        let wake = |f: &mut fmt::Formatter<'_>, w: &KcompactdWake| {
            write!(
                f,
                "nid={} order={} classzone_idx={:<8}",
                w.nid,
                w.order,
                w.highest_zoneidx.name()
            )
        };
        match self {
            Tracepoint::IsolateMigratepages(r)
            | Tracepoint::IsolateFreepages(r)
            | Tracepoint::FastIsolateFreepages(r) => range(f, r),
            Tracepoint::Migratepages {
                nr_migrated,
                nr_failed,
            } => write!(f, "nr_migrated={nr_migrated} nr_failed={nr_failed}"),
            Tracepoint::CompactionBegin(r) => run(f, r),
            Tracepoint::CompactionEnd(r, status) => {
                run(f, r)?;
                write!(f, " status={}", status.name())
            }
            Tracepoint::TryToCompactPages {
                order,
                gfp_mask,
                priority,
            } => write!(f, "order={order} gfp_mask={gfp_mask} priority={priority}"),
            Tracepoint::Suitable(z) | Tracepoint::Finished(z) => zr(f, z),
            Tracepoint::Deferred(d) | Tracepoint::DeferCompaction(d) | Tracepoint::DeferReset(d) => {
                defer(f, d)
            }
            Tracepoint::KcompactdSleep { nid } => write!(f, "nid={nid}"),
            Tracepoint::WakeupKcompactd(w) | Tracepoint::KcompactdWake(w) => wake(f, w),
            Tracepoint::PageAlloc {
                pfn,
                order,
                migratetype,
                gfp_flags,
            } => write!(
                f,
                "page=0000000000000000 pfn=0x{:x} order={} migratetype={migratetype} gfp_flags={gfp_flags}",
                pfn.map_or(0, |p| p.0),
                order.0
            ),
            Tracepoint::PageFree { pfn, order } => write!(
                f,
                "page=0000000000000000 pfn=0x{:x} order={}",
                pfn.0, order.0
            ),
            Tracepoint::PageFreeBatched { pfn } => {
                write!(f, "page=0000000000000000 pfn=0x{:x} order=0", pfn.0)
            }
            Tracepoint::PageAllocExtfrag {
                pfn,
                alloc_order,
                fallback_order,
                pageblock_order,
                alloc_migratetype,
                fallback_migratetype,
                fragmenting,
                change_ownership,
            } => write!(
                f,
                "page=0000000000000000 pfn=0x{:x} alloc_order={} fallback_order={} pageblock_order={} alloc_migratetype={alloc_migratetype} fallback_migratetype={fallback_migratetype} fragmenting={} change_ownership={}",
                pfn.0,
                alloc_order.0,
                fallback_order.0,
                pageblock_order.0,
                *fragmenting as u8,
                *change_ownership as u8
            ),
            Tracepoint::PageAllocZoneLocked {
                pfn,
                order,
                migratetype,
                percpu_refill,
            } => write!(
                f,
                "page=0000000000000000 pfn=0x{:x} order={} migratetype={migratetype} percpu_refill={}",
                pfn.0, order.0, *percpu_refill as u8
            ),
            Tracepoint::PagePcpuDrain {
                pfn,
                order,
                migratetype,
            } => write!(
                f,
                "page=0000000000000000 pfn=0x{:x} order={} migratetype={migratetype}",
                pfn.0, order.0
            ),
            Tracepoint::DirectReclaimBegin { order, gfp_flags } => {
                write!(f, "order={order} gfp_flags={gfp_flags}")
            }
            Tracepoint::DirectReclaimEnd { nr_reclaimed } => {
                write!(f, "nr_reclaimed={nr_reclaimed}")
            }
            Tracepoint::Other(_) => Ok(()),
        }
    }
}

/// The `key=value` words of an event's text.
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

    fn pfn(&self, key: &str) -> Result<Pfn, String> {
        self.num(key).map(Pfn)
    }

    fn small(&self, key: &str) -> Result<u8, String> {
        let n = self.num(key)?;
        u8::try_from(n).map_err(|_| format!("{key}={n}: out of range"))
    }

    fn int(&self, key: &str) -> Result<i32, String> {
        let v = self.raw(key)?;
        v.parse::<i32>()
            .map_err(|_| format!("{key}={v}: not a number"))
    }

    fn order(&self, key: &str) -> Result<Order, String> {
        let n = self.num(key)?;
        u8::try_from(n)
            .ok()
            .filter(|o| *o <= crate::units::MAX_PAGE_ORDER)
            .map(Order)
            .ok_or_else(|| format!("{key}={n}: order out of range 0..=10"))
    }

    fn zone(&self, key: &str) -> Result<ZoneType, String> {
        let v = self.raw(key)?;
        ZoneType::from_name(v).ok_or_else(|| format!("{key}={v}: not a zone type"))
    }

    fn status(&self, key: &str) -> Result<CompactResult, String> {
        let v = self.raw(key)?;
        CompactResult::from_name(v).ok_or_else(|| format!("{key}={v}: not a compaction status"))
    }
}

/// A number in hex (`0x…`) or decimal.
pub fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
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

/// Mirrors `enum vm_event_item` (and the node and zone items the model counts as events):
/// every counter [`VmStat`] keeps, in `/proc/vmstat` order as the model prints it; the
/// names are [`VMSTAT_TEXT`] (the kernel's `vmstat_text[]`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum VmEvent {
    /// `pgalloc_*` summed: pages allocated.
    Pgalloc,
    /// `pgfree`: pages freed.
    Pgfree,
    /// Allocation requests that failed (no page returned); not a Linux counter.
    AllocFail,
    /// `mm_page_alloc_extfrag` events.
    AllocExtfrag,
    /// ... of which fragmenting (fallback order below pageblock order).
    AllocExtfragFragmenting,
    /// ... of which took the pageblock over (claim).
    AllocExtfragChangeOwnership,
    /// Pageblocks reserved as MIGRATE_HIGHATOMIC.
    HighatomicReserved,
    /// Reserved highatomic blocks released.
    HighatomicUnreserved,
    /// kswapd wake-ups requested by a boosted watermark (`wakeup_kswapd` from `rmqueue`).
    KswapdBoostWake,
    /// `pgmigrate_success`: base pages migrated.
    PgmigrateSuccess,
    /// `pgmigrate_fail`: base pages that failed to migrate.
    PgmigrateFail,
    /// `thp_migration_success`.
    ThpMigrationSuccess,
    /// `thp_migration_fail`.
    ThpMigrationFail,
    /// `thp_migration_split`.
    ThpMigrationSplit,
    /// `compact_migrate_scanned`.
    CompactMigrateScanned,
    /// `compact_free_scanned`.
    CompactFreeScanned,
    /// `compact_isolated`: pages isolated by either scanner.
    CompactIsolated,
    /// `compact_stall`: direct compaction attempts.
    CompactStall,
    /// `compact_fail`.
    CompactFail,
    /// `compact_success`.
    CompactSuccess,
    /// Direct compactions that captured their block (not a Linux counter).
    CompactCapture,
    /// `compact_daemon_wake`.
    CompactDaemonWake,
    /// `compact_daemon_migrate_scanned`.
    CompactDaemonMigrateScanned,
    /// `compact_daemon_free_scanned`.
    CompactDaemonFreeScanned,
    /// `thp_split_page`: PMD-order folios split.
    ThpSplitPage,
    /// `thp_split_page_failed`: PMD-order folios that could not be split.
    ThpSplitPageFailed,
    /// NR_ISOLATED_ANON: anonymous (swap-backed) pages isolated from the LRU.
    NrIsolatedAnon,
    /// NR_ISOLATED_FILE: file pages isolated from the LRU.
    NrIsolatedFile,
    /// `pgscan_kswapd`: pages kswapd scanned on the inactive lists.
    PgscanKswapd,
    /// `pgscan_direct`: pages direct reclaim scanned.
    PgscanDirect,
    /// `pgsteal_kswapd`: pages kswapd reclaimed.
    PgstealKswapd,
    /// `pgsteal_direct`: pages direct reclaim reclaimed.
    PgstealDirect,
    /// `pgscan_anon`.
    PgscanAnon,
    /// `pgscan_file`.
    PgscanFile,
    /// `pgsteal_anon`.
    PgstealAnon,
    /// `pgsteal_file`.
    PgstealFile,
    /// `pgrefill`: pages scanned on the active lists.
    Pgrefill,
    /// `pgactivate`.
    Pgactivate,
    /// `pgdeactivate`.
    Pgdeactivate,
    /// `pgrotated`: written-back folios moved to the inactive tail.
    Pgrotated,
    /// `pswpin`: pages read back from swap.
    Pswpin,
    /// `pswpout`: pages written to swap.
    Pswpout,
    /// `pgmajfault`: faults that read from swap.
    Pgmajfault,
    /// `allocstall_*` summed: direct reclaim entries.
    Allocstall,
    /// `pageoutrun`: kswapd `balance_pgdat()` runs.
    Pageoutrun,
    /// kswapd wake-ups that found it asleep (not a Linux counter).
    KswapdWake,
    /// `kswapd_low_wmark_hit_quickly`: kswapd woken during its short nap.
    KswapdLowWmarkHitQuickly,
    /// `kswapd_high_wmark_hit_quickly`: kswapd unbalanced after its run or its nap.
    KswapdHighWmarkHitQuickly,
    /// `nr_vmscan_write`: pages kswapd wrote back itself.
    NrVmscanWrite,
    /// `nr_vmscan_immediate_reclaim`.
    NrVmscanImmediateReclaim,
    /// `drop_pagecache`: writes of 1 or 3 to drop_caches.
    DropPagecache,
    /// `drop_slab`: writes of 2 or 3 to drop_caches.
    DropSlab,
    /// `oom_kill`: processes the OOM killer killed.
    OomKill,
    /// `thp_fault_alloc`.
    ThpFaultAlloc,
    /// `thp_fault_fallback`.
    ThpFaultFallback,
    /// `htlb_buddy_alloc_success`.
    HtlbBuddyAllocSuccess,
    /// `htlb_buddy_alloc_fail`.
    HtlbBuddyAllocFail,
    /// __GFP_NOFAIL requests the model gave up on after its loop bound (not a Linux counter).
    NofailGaveUp,
}

/// How many counters there are.
pub const NR_VM_EVENTS: usize = 58;

/// Mirrors `vmstat_text[]`: each [`VmEvent`]'s name, by its index.
pub const VMSTAT_TEXT: [&str; NR_VM_EVENTS] = [
    "pgalloc",
    "pgfree",
    "alloc_fail",
    "alloc_extfrag",
    "alloc_extfrag_fragmenting",
    "alloc_extfrag_change_ownership",
    "highatomic_reserved",
    "highatomic_unreserved",
    "kswapd_boost_wake",
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
    "compact_capture",
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "thp_split_page",
    "thp_split_page_failed",
    "nr_isolated_anon",
    "nr_isolated_file",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "pgrefill",
    "pgactivate",
    "pgdeactivate",
    "pgrotated",
    "pswpin",
    "pswpout",
    "pgmajfault",
    "allocstall",
    "pageoutrun",
    "kswapd_wake",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "drop_pagecache",
    "drop_slab",
    "oom_kill",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "nofail_gave_up",
];

impl VmEvent {
    /// Every counter, in [`VMSTAT_TEXT`]'s order.
    pub const ALL: [VmEvent; NR_VM_EVENTS] = [
        VmEvent::Pgalloc,
        VmEvent::Pgfree,
        VmEvent::AllocFail,
        VmEvent::AllocExtfrag,
        VmEvent::AllocExtfragFragmenting,
        VmEvent::AllocExtfragChangeOwnership,
        VmEvent::HighatomicReserved,
        VmEvent::HighatomicUnreserved,
        VmEvent::KswapdBoostWake,
        VmEvent::PgmigrateSuccess,
        VmEvent::PgmigrateFail,
        VmEvent::ThpMigrationSuccess,
        VmEvent::ThpMigrationFail,
        VmEvent::ThpMigrationSplit,
        VmEvent::CompactMigrateScanned,
        VmEvent::CompactFreeScanned,
        VmEvent::CompactIsolated,
        VmEvent::CompactStall,
        VmEvent::CompactFail,
        VmEvent::CompactSuccess,
        VmEvent::CompactCapture,
        VmEvent::CompactDaemonWake,
        VmEvent::CompactDaemonMigrateScanned,
        VmEvent::CompactDaemonFreeScanned,
        VmEvent::ThpSplitPage,
        VmEvent::ThpSplitPageFailed,
        VmEvent::NrIsolatedAnon,
        VmEvent::NrIsolatedFile,
        VmEvent::PgscanKswapd,
        VmEvent::PgscanDirect,
        VmEvent::PgstealKswapd,
        VmEvent::PgstealDirect,
        VmEvent::PgscanAnon,
        VmEvent::PgscanFile,
        VmEvent::PgstealAnon,
        VmEvent::PgstealFile,
        VmEvent::Pgrefill,
        VmEvent::Pgactivate,
        VmEvent::Pgdeactivate,
        VmEvent::Pgrotated,
        VmEvent::Pswpin,
        VmEvent::Pswpout,
        VmEvent::Pgmajfault,
        VmEvent::Allocstall,
        VmEvent::Pageoutrun,
        VmEvent::KswapdWake,
        VmEvent::KswapdLowWmarkHitQuickly,
        VmEvent::KswapdHighWmarkHitQuickly,
        VmEvent::NrVmscanWrite,
        VmEvent::NrVmscanImmediateReclaim,
        VmEvent::DropPagecache,
        VmEvent::DropSlab,
        VmEvent::OomKill,
        VmEvent::ThpFaultAlloc,
        VmEvent::ThpFaultFallback,
        VmEvent::HtlbBuddyAllocSuccess,
        VmEvent::HtlbBuddyAllocFail,
        VmEvent::NofailGaveUp,
    ];

    /// The `/proc/vmstat` name (or the model's own, for counters Linux lacks).
    pub fn name(self) -> &'static str {
        VMSTAT_TEXT[self as usize]
    }
}

/// Event counters, with `/proc/vmstat` names where Linux has one, indexed by [`VmEvent`]
/// (`vm.counts[VmEvent::Pgalloc]`, or `vm[VmEvent::Pgalloc]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmStat {
    /// The counters by [`VmEvent`].
    pub counts: [u64; NR_VM_EVENTS],
}

impl Default for VmStat {
    fn default() -> Self {
        VmStat {
            counts: [0; NR_VM_EVENTS],
        }
    }
}

impl std::ops::Index<VmEvent> for VmStat {
    type Output = u64;
    #[inline]
    fn index(&self, e: VmEvent) -> &u64 {
        &self.counts[e as usize]
    }
}

impl std::ops::IndexMut<VmEvent> for VmStat {
    #[inline]
    fn index_mut(&mut self, e: VmEvent) -> &mut u64 {
        &mut self.counts[e as usize]
    }
}

impl VmStat {
    /// Counts an extfrag event.
    pub fn note_extfrag(&mut self, ev: &ExtfragEvent) {
        self[VmEvent::AllocExtfrag] += 1;
        self[VmEvent::AllocExtfragFragmenting] += ev.fragmenting as u64;
        self[VmEvent::AllocExtfragChangeOwnership] += ev.change_ownership as u64;
    }

    /// The counters as (name, value) pairs, in [`VMSTAT_TEXT`]'s order.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        VmEvent::ALL.iter().map(|e| (e.name(), self[*e])).collect()
    }
}
