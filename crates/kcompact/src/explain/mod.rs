//! Why a real `page allocation failure` failed: the report is read ([`parse`]), its kernel
//! placed ([`kernel`]), its gfp mask decoded ([`gfpflags`]), and each zone the request
//! could use judged by the watermark check of that kernel — the model's own
//! [`watermark_check_counts`] (`__zone_watermark_ok()`) on the report's numbers for 4.4 and
//! later, the older per-order check for earlier kernels. From the zones' outcomes come the
//! verdict in plain words, what would have made the request succeed, and the list of what
//! the report does not say.
//!
//! Nothing here is guessed: a figure the report does not print is either irrelevant to the
//! outcome (checked by evaluating both ends) or named in [`Explanation::unknown`].

pub mod gfpflags;
pub mod kernel;
pub mod parse;
pub mod render;

use crate::buddy::watermark::{
    watermark_check_counts, watermark_reserve_mark, watermark_unusable_free, WatermarkCounts,
    WatermarkFail,
};
use crate::gfp::{AllocFlags, Gfp};
use crate::memmap::MigrateType;
use crate::units::{Order, PAGE_ALLOC_COSTLY_ORDER};
use crate::views::extfrag::{fragmentation_index, ContigPageInfo};
use gfpflags::GfpMeaning;
use kernel::{KernelVersion, Rules, VersionRange};
pub use parse::{parse_report, ExplainError, NodeMask, Report, ZoneReport};
use std::fmt::Write as _;

/// The zones of any architecture, in the kernel's `enum zone_type` order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum ZoneKind {
    /// ZONE_DMA.
    Dma,
    /// ZONE_DMA32.
    Dma32,
    /// ZONE_NORMAL.
    Normal,
    /// ZONE_HIGHMEM (32-bit).
    HighMem,
    /// ZONE_MOVABLE.
    Movable,
    /// ZONE_DEVICE.
    Device,
}

impl ZoneKind {
    /// The kind a zone name stands for (`zone_names[]`).
    pub fn from_name(name: &str) -> Option<ZoneKind> {
        Some(match name {
            "DMA" => ZoneKind::Dma,
            "DMA32" => ZoneKind::Dma32,
            "Normal" => ZoneKind::Normal,
            "HighMem" => ZoneKind::HighMem,
            "Movable" => ZoneKind::Movable,
            "Device" => ZoneKind::Device,
            _ => return None,
        })
    }

    /// The name the kernel prints.
    pub fn name(self) -> &'static str {
        match self {
            ZoneKind::Dma => "DMA",
            ZoneKind::Dma32 => "DMA32",
            ZoneKind::Normal => "Normal",
            ZoneKind::HighMem => "HighMem",
            ZoneKind::Movable => "Movable",
            ZoneKind::Device => "Device",
        }
    }
}

/// How one zone fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request may not use the zone (above its highest zone, or a node it may not use).
    NotUsable(String),
    /// The free pages the request may count are at or below the (reserve-adjusted) mark.
    BelowMin,
    /// Above the mark, but not above the mark plus the zone's lowmem reserve.
    BelowReserve,
    /// Free blocks of the order exist, but only on lists the request may not use (the
    /// letters of those types).
    OnlyReservedTypes(String),
    /// No free block of the order or larger.
    NoFreeBlock,
    /// Before 4.4: too few free pages in blocks of `at_order` and above.
    OldOrderCheck {
        /// The order at which the per-order check failed (pages in blocks below it removed).
        at_order: u32,
    },
    /// The check passes with the report's numbers.
    Passes,
    /// Cannot tell: the report lacks what the check needs (named in `unknown`).
    Unknown(String),
}

impl Outcome {
    /// A stable keyword for JSON and tests.
    pub fn keyword(&self) -> &'static str {
        match self {
            Outcome::NotUsable(_) => "not_usable",
            Outcome::BelowMin => "below_min",
            Outcome::BelowReserve => "below_lowmem_reserve",
            Outcome::OnlyReservedTypes(_) => "only_reserved_types",
            Outcome::NoFreeBlock => "no_free_block",
            Outcome::OldOrderCheck { .. } => "too_few_high_order_pages",
            Outcome::Passes => "passes",
            Outcome::Unknown(_) => "unknown",
        }
    }
}

/// The numbers of one zone's watermark check, in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneCheck {
    /// `free:` in pages (NR_FREE_PAGES).
    pub free_pages: i64,
    /// `min:` in pages (the mark the slow path's last attempt used).
    pub mark_pages: u64,
    /// The mark after the request's reserve rights.
    pub effective_mark: i64,
    /// `lowmem_reserve[]` against the request's zone index, and that index.
    pub lowmem_reserve: u64,
    /// The `lowmem_reserve[]` slot used (None where the layouts the report fits put it in
    /// different slots holding the same value).
    pub lowmem_idx: Option<usize>,
    /// Pages taken away: `2^order - 1`.
    pub unusable_order: u64,
    /// Pages taken away: the high-atomic reserve.
    pub unusable_highatomic: u64,
    /// Pages taken away: free CMA pages.
    pub unusable_cma: u64,
    /// `free_pages` minus the pages taken away.
    pub usable_free: i64,
    /// Before 4.4: at the failing order, the pages left and the halved mark.
    pub old_step: Option<(u32, i64, i64)>,
    /// Free blocks of the request's order or larger, and their letters.
    pub blocks_at_or_above: u64,
    /// The migratetype letters of those blocks.
    pub types_at_or_above: String,
    /// The largest order with a free block.
    pub largest_free_order: Option<usize>,
    /// Whether compaction would run in this zone (the `compaction_suitable()` checks).
    pub compaction: Option<CompactionView>,
}

/// What `compaction_suitable()` says of a zone, on the report's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionView {
    /// The free pages compaction wants above (mark + `2 << order`).
    pub needs_above: i64,
    /// The free pages it may count.
    pub has: i64,
    /// `fragmentation_index()` for the order (thousandths; -1000 when a block exists).
    pub fragindex: i64,
    /// True if compaction would start: enough free pages, and (for the orders the index is
    /// checked at) an index above the default `extfrag_threshold` of 500.
    pub would_run: bool,
}

/// One zone of the report with the verdict on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneFinding {
    /// The report's zone (index into [`Report::zones`]).
    pub zone: usize,
    /// The zone's index in its node (`zone_idx()`), if the layout is known.
    pub zone_idx: Option<usize>,
    /// The check's numbers (for zones the request may use).
    pub check: Option<ZoneCheck>,
    /// The outcome.
    pub outcome: Outcome,
}

/// Whether a yes/no fact is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    /// Yes.
    Yes,
    /// No.
    No,
    /// The report does not say.
    Unknown,
}

impl Tri {
    /// `yes` / `no` / `unknown`.
    pub fn word(self) -> &'static str {
        match self {
            Tri::Yes => "yes",
            Tri::No => "no",
            Tri::Unknown => "unknown",
        }
    }
}

/// What the flags let the allocator do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `order`.
    pub order: u32,
    /// `2^order` pages in kB.
    pub size_kb: u64,
    /// The highest zone `gfp_zone()` allows.
    pub highest_zone: Option<ZoneKind>,
    /// May enter direct reclaim (`__GFP_DIRECT_RECLAIM`, `__GFP_WAIT` before 4.4).
    pub can_reclaim: Tri,
    /// Wakes kswapd.
    pub wakes_kswapd: Tri,
    /// May compact directly (order > 0, may reclaim, `__GFP_IO` [and `__GFP_FS` before 4.19]).
    pub can_compact: Tri,
    /// Order above `PAGE_ALLOC_COSTLY_ORDER` (3).
    pub costly: bool,
    /// The reserve rights, in words.
    pub reserves: String,
    /// How the slow path retries, in words.
    pub retry: String,
    /// Which nodes, in words.
    pub nodes: String,
}

/// A change that would have made the request succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remedy {
    /// The change (`order <= 6`, `__GFP_RETRY_MAYFAIL`, `compaction`, …).
    pub change: String,
    /// True when the report's numbers show it would pass the check; false when it depends
    /// on what reclaim or compaction would achieve, which the report cannot show.
    pub sure: bool,
    /// Why.
    pub why: String,
}

/// The kind of verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    /// Enough free memory, no free block of the order: fragmentation.
    Fragmented,
    /// Free blocks of the order exist only in reserved types (CMA, high-atomic, isolated).
    ReservedTypes,
    /// Too few free pages in every usable zone.
    LowMemory,
    /// The report's numbers pass the check: the cause is not in the report.
    WouldPass,
    /// No zone the request could use is in the report.
    NoUsableZone,
    /// The report does not tell (named in `unknown`).
    Unknown,
}

impl VerdictKind {
    /// A stable keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            VerdictKind::Fragmented => "fragmented",
            VerdictKind::ReservedTypes => "reserved_types",
            VerdictKind::LowMemory => "low_memory",
            VerdictKind::WouldPass => "would_pass",
            VerdictKind::NoUsableZone => "no_usable_zone",
            VerdictKind::Unknown => "unknown",
        }
    }
}

/// Everything `kcompact explain` says about a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The report as read.
    pub report: Report,
    /// The kernel version the report names, if any.
    pub version: Option<KernelVersion>,
    /// The versions the report can be from.
    pub range: VersionRange,
    /// The rules the verdict follows.
    pub rules: Rules,
    /// True when other rule sets were possible and gave the same verdict.
    pub rules_ambiguous: bool,
    /// The gfp mask's meaning (None if the version's bit table is unknown and no names
    /// were printed).
    pub gfp: Option<GfpMeaning>,
    /// What the flags allowed.
    pub request: Request,
    /// Per zone of the report.
    pub zones: Vec<ZoneFinding>,
    /// The verdict's kind.
    pub verdict_kind: VerdictKind,
    /// The verdict in plain words.
    pub verdict: String,
    /// What would have made it succeed.
    pub would_succeed_with: Vec<Remedy>,
    /// What the report does not say.
    pub unknown: Vec<String>,
}

/// Explains a parsed report.
pub fn explain(report: Report) -> Explanation {
    let mut unknown: Vec<String> = Vec::new();
    let mut marks = report.markers.clone();
    parse::zone_markers(&report.zones, &mut marks);
    let version = report.release.as_deref().and_then(KernelVersion::parse);
    let range = match version {
        Some(v) => VersionRange::exactly(v),
        None => {
            let mut r = VersionRange::ANY;
            for m in &marks {
                if let Some(lo) = m.lo {
                    r.at_least(lo);
                }
                if let Some(hi) = m.hi {
                    r.below(hi);
                }
            }
            if r.is_empty() {
                unknown.push(
                    "the kernel version: the report does not print it and its format \
                     markers contradict each other"
                        .into(),
                );
                VersionRange::ANY
            } else {
                let seen: Vec<&str> = marks.iter().map(|m| m.what).collect();
                unknown.push(format!(
                    "the kernel version: the report does not print it; its format says {r} \
                     ({})",
                    dedup(seen).join("; ")
                ));
                r
            }
        }
    };
    let mut candidates = Rules::candidates(&range);
    if candidates.is_empty() {
        candidates = vec![Rules::V63];
    }
    // Judge by each possible rule set; keep the first whose verdict the others share.
    let mut results: Vec<(Rules, Judgement)> = candidates
        .iter()
        .map(|&r| (r, judge(&report, r, &range)))
        .collect();
    let same = results
        .windows(2)
        .all(|w| w[0].1.kind == w[1].1.kind && w[0].1.outcomes() == w[1].1.outcomes());
    let rules_ambiguous = results.len() > 1;
    let (rules, mut j) = if same {
        results.swap_remove(results.len() - 1)
    } else {
        let names: Vec<String> = results
            .iter()
            .map(|(r, j)| format!("{}: {}", r.label(), j.kind.keyword()))
            .collect();
        unknown.push(format!(
            "which allocator rules judged the request: the verdict differs ({})",
            names.join(", ")
        ));
        let (r, mut j) = results.swap_remove(results.len() - 1);
        j.kind = VerdictKind::Unknown;
        j.verdict = format!(
            "Cannot tell: the kernel version is not in the report and the rules of the \
             possible versions disagree. Under {}: {}",
            r.label(),
            j.verdict
        );
        (r, j)
    };
    unknown.append(&mut j.unknown);
    unknown.push(if j.request.can_reclaim == Tri::No {
        "what other tasks and kswapd freed or took between the attempt and the report: it \
         shows memory once, after the failure"
            .into()
    } else {
        "how much reclaim and compaction freed or merged during the attempt: the report \
         shows memory once, after the failure"
            .into()
    });
    Explanation {
        version,
        range,
        rules,
        rules_ambiguous: rules_ambiguous && same,
        gfp: j.gfp,
        request: j.request,
        zones: j.zones,
        verdict_kind: j.kind,
        verdict: j.verdict,
        would_succeed_with: j.remedies,
        unknown: dedup_owned(unknown),
        report,
    }
}

fn dedup(v: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn dedup_owned(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The verdict under one rule set.
#[derive(Clone, Debug)]
struct Judgement {
    gfp: Option<GfpMeaning>,
    request: Request,
    zones: Vec<ZoneFinding>,
    kind: VerdictKind,
    verdict: String,
    remedies: Vec<Remedy>,
    unknown: Vec<String>,
}

impl Judgement {
    fn outcomes(&self) -> Vec<&'static str> {
        self.zones.iter().map(|z| z.outcome.keyword()).collect()
    }
}

/// The reserve rights and list access of the slow path's last attempt.
#[derive(Clone, Copy, Debug)]
struct Rights {
    /// The core's ALLOC flags for the list and reserve checks.
    flags: AllocFlags,
    /// ALLOC_HIGH / ALLOC_MIN_RESERVE.
    high: bool,
    /// ALLOC_HARDER (before 6.3) / ALLOC_NON_BLOCK (6.3+).
    harder: bool,
    /// Take the free high-atomic and CMA pages a report does not count at the most its
    /// letters allow (every block of an order showing H or C), not at zero.
    unknown_at_most: bool,
}

/// The slow path's flags for the last attempt, per rule set. Mirrors `gfp_to_alloc_flags()`
/// (3.x: ALLOC_HIGH from `__GFP_HIGH`, ALLOC_HARDER when the caller cannot wait; 4.4–6.2:
/// ALLOC_HARDER from `__GFP_ATOMIC`) and, from 6.3, the model's `alloc_flags_slowpath()`.
/// ALLOC_CMA for movable requests. A real-time caller's extra rights are left out here and
/// tried separately.
fn rights(rules: Rules, g: &GfpMeaning, order: u32, rt: bool) -> Rights {
    let sem = g.sem;
    let movable = sem.migratetype(true) == MigrateType::Movable;
    match rules {
        Rules::Pre44 | Rules::V44 => {
            let high = sem.contains(Gfp::HIGH);
            let harder_src = if rules == Rules::Pre44 {
                !sem.contains(Gfp::DIRECT_RECLAIM)
            } else {
                g.atomic
            };
            let harder = (harder_src && !sem.contains(Gfp::NOMEMALLOC)) || rt;
            // The core check gets the mark already lowered by these rules; NON_BLOCK and
            // HIGHATOMIC give ALLOC_HARDER's list and reserve rights without lowering it
            // again (see `check_zone`).
            let mut flags = AllocFlags::WMARK_MIN;
            if harder {
                flags = flags | AllocFlags::NON_BLOCK | AllocFlags::HIGHATOMIC;
            }
            if movable {
                flags = flags | AllocFlags::CMA;
            }
            Rights {
                flags,
                high,
                harder,
                unknown_at_most: false,
            }
        }
        Rules::V63 => {
            let mut flags =
                crate::alloc::alloc_flags_slowpath(sem, Order(order.min(63) as u8), movable, false);
            if rt && sem.contains(Gfp::DIRECT_RECLAIM) {
                flags = flags | AllocFlags::MIN_RESERVE;
            }
            Rights {
                flags,
                high: flags.has(AllocFlags::MIN_RESERVE),
                harder: flags.has(AllocFlags::NON_BLOCK),
                unknown_at_most: false,
            }
        }
    }
}

/// The mark after reserve rights: 6.3+ through the core; before, ALLOC_HIGH halves it and
/// ALLOC_HARDER takes a further quarter (`__zone_watermark_ok()` of 3.x–6.2).
fn effective_mark(rules: Rules, mark: u64, r: &Rights) -> i64 {
    match rules {
        Rules::V63 => watermark_reserve_mark(mark, r.flags),
        Rules::Pre44 | Rules::V44 => {
            let mut min = mark as i64;
            if r.high {
                min -= min / 2;
            }
            if r.harder {
                min -= min / 4;
            }
            min
        }
    }
}

/// The letter `show_migration_types()` prints for a type.
fn letter(mt: MigrateType) -> char {
    match mt {
        MigrateType::Unmovable => 'U',
        MigrateType::Movable => 'M',
        MigrateType::Reclaimable => 'E',
        MigrateType::HighAtomic => 'H',
        MigrateType::Cma => 'C',
        MigrateType::Isolate => 'I',
    }
}

/// The zone layouts (`enum zone_type` of the kernel's config) the report fits: the
/// printed zones, one `lowmem_reserve[]` entry per zone, Normal and Movable always there,
/// and each printed zone's own and lower entries zero.
fn layouts(report: &Report) -> Vec<Vec<ZoneKind>> {
    let Some(n) = report.zones.first().map(|z| z.lowmem_reserve.len()) else {
        return Vec::new();
    };
    let mut kinds = Vec::new();
    for z in &report.zones {
        match ZoneKind::from_name(&z.name) {
            Some(k) => kinds.push(k),
            None => return Vec::new(),
        }
    }
    let optional = [
        ZoneKind::Dma,
        ZoneKind::Dma32,
        ZoneKind::HighMem,
        ZoneKind::Device,
    ];
    let mut out = Vec::new();
    for mask in 0..16u32 {
        let mut cfg: Vec<ZoneKind> = vec![ZoneKind::Normal, ZoneKind::Movable];
        for (i, k) in optional.iter().enumerate() {
            if mask & (1 << i) != 0 {
                cfg.push(*k);
            }
        }
        cfg.sort();
        if cfg.len() != n || !kinds.iter().all(|k| cfg.contains(k)) {
            continue;
        }
        let fits = report.zones.iter().zip(&kinds).all(|(z, k)| {
            let idx = cfg.iter().position(|c| c == k).expect("contained");
            z.lowmem_reserve[..=idx].iter().all(|&v| v == 0)
        });
        if fits {
            out.push(cfg);
        }
    }
    out
}

/// Mirrors `gfp_zone()` for a layout: `__GFP_DMA` → OPT_ZONE_DMA, `__GFP_DMA32` →
/// OPT_ZONE_DMA32, `__GFP_HIGHMEM` → OPT_ZONE_HIGHMEM, with `__GFP_MOVABLE` → ZONE_MOVABLE;
/// None for the combinations GFP_ZONE_BAD marks.
fn gfp_zone(sem: Gfp, cfg: &[ZoneKind]) -> Option<ZoneKind> {
    let dma = sem.contains(Gfp::DMA);
    let dma32 = sem.contains(Gfp::DMA32);
    let high = sem.contains(Gfp::HIGHMEM);
    let movable = sem.contains(Gfp::MOVABLE);
    let or_normal = |k: ZoneKind| {
        if cfg.contains(&k) {
            k
        } else {
            ZoneKind::Normal
        }
    };
    match (dma, dma32, high) {
        (true, false, false) => Some(or_normal(ZoneKind::Dma)),
        (false, true, false) => Some(or_normal(ZoneKind::Dma32)),
        (false, false, true) if movable => Some(ZoneKind::Movable),
        (false, false, true) => Some(or_normal(ZoneKind::HighMem)),
        (false, false, false) => Some(ZoneKind::Normal),
        _ => None,
    }
}

/// The block size of an order, in words (`512 kB`, `2 MB`).
pub fn size_words(order: u32, page_kb: u64) -> String {
    let kb = page_kb.checked_shl(order).unwrap_or(u64::MAX);
    if kb >= 1024 && kb.is_multiple_of(1024) {
        format!("{} MB", kb / 1024)
    } else {
        format!("{kb} kB")
    }
}

/// Judges the report under one rule set.
fn judge(report: &Report, rules: Rules, range: &VersionRange) -> Judgement {
    let mut unknown = Vec::new();
    // Decode with the versions this rule set covers.
    let (lo, hi) = rules.range();
    let range = &VersionRange {
        lo: range.lo.max(lo),
        hi: range.hi.min(hi),
    };
    let gfp = decode_gfp(report, rules, range, &mut unknown);
    let page_kb = report.page_kb.max(1);
    let order = report.order;
    let mut layouts = layouts(report);
    if layouts.is_empty()
        && report
            .zones
            .iter()
            .all(|z| ZoneKind::from_name(&z.name).is_some())
    {
        // The lowmem_reserve[] entries do not follow the usual pattern: place the zones by
        // their kinds alone.
        layouts = layouts_by_kind(report);
    }
    if layouts.is_empty() {
        unknown.push(
            "where each printed zone sits in its node's zone order (zone names or \
             lowmem_reserve[] lengths this tool cannot place)"
                .into(),
        );
    }
    let highest_each: Vec<Option<ZoneKind>> = layouts
        .iter()
        .map(|cfg| gfp.as_ref().and_then(|g| gfp_zone(g.sem, cfg)))
        .collect();
    let highest = match highest_each.first() {
        Some(h) if highest_each.iter().all(|x| x == h) => *h,
        _ => None,
    };
    if gfp.is_some() && highest.is_none() && !layouts.is_empty() {
        unknown.push(
            "the request's highest zone: it depends on which zones this kernel has, and more \
             than one configuration fits the report"
                .into(),
        );
    }
    let zone_idx = |z: &ZoneReport| -> Option<usize> {
        let k = ZoneKind::from_name(&z.name)?;
        let idxs: Vec<Option<usize>> = layouts
            .iter()
            .map(|cfg| cfg.iter().position(|c| *c == k))
            .collect();
        match idxs.first() {
            Some(first) if idxs.iter().all(|i| i == first) => *first,
            _ => None,
        }
    };
    let request = describe_request(report, rules, range, gfp.as_ref(), highest, &mut unknown);
    let Some(g) = gfp.clone() else {
        let zones = report
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| ZoneFinding {
                zone: i,
                zone_idx: zone_idx(z),
                check: None,
                outcome: Outcome::Unknown("the gfp flags are unknown".into()),
            })
            .collect();
        return Judgement {
            gfp,
            request,
            zones,
            kind: VerdictKind::Unknown,
            verdict: format!(
                "Cannot tell which zones the request could use or with what rights: the \
                 report prints mode:{} without names and its kernel's bit table is unknown.",
                report.mode_text
            ),
            remedies: Vec::new(),
            unknown,
        };
    };

    // The lowmem_reserve slot: the request's highest zone index from 5.8 on
    // (`ac->highest_zoneidx`); before, the preferred zone's index (`classzone_idx`): the
    // highest populated zone at or below it.
    let new_semantics = range.within(KernelVersion(5, 8, 0), KernelVersion::MAX);
    let old_semantics = range.within(KernelVersion::MIN, KernelVersion(5, 8, 0));
    let classzone_of = |cfg: &[ZoneKind], h: ZoneKind| -> Option<usize> {
        let hi = cfg.iter().position(|k| *k == h)?;
        let populated = report
            .zones
            .iter()
            .filter_map(|z| ZoneKind::from_name(&z.name))
            .filter_map(|k| cfg.iter().position(|c| *c == k))
            .filter(|&i| i <= hi)
            .max()
            .unwrap_or(hi);
        if new_semantics || populated == hi {
            Some(hi)
        } else if old_semantics {
            Some(populated)
        } else {
            None
        }
    };
    if !new_semantics && !old_semantics {
        if let (Some(cfg), Some(h)) = (layouts.first(), highest) {
            if classzone_of(cfg, h).is_none() {
                unknown.push(
                    "whether lowmem_reserve[] is read at the request's highest zone or at the \
                     highest populated one below it (the rule changed in 5.8)"
                        .into(),
                );
            }
        }
    }

    let nodes_allowed = |node: u32| -> bool {
        match &report.nodemask {
            Some(NodeMask::Nodes(v)) => v.contains(&node),
            _ => true,
        }
    };
    if let (Some(ma), true) = (&report.mems_allowed, g.sem.contains(Gfp::DIRECT_RECLAIM)) {
        if report.zones.iter().any(|z| !ma.contains(&z.node)) {
            unknown.push(format!(
                "whether the cpuset (mems_allowed={}) kept the request off nodes it lists \
                 (a cpuset applies to some requests only)",
                ma.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            ));
        }
    }
    if g.sem.contains(Gfp::MEMALLOC) && !g.sem.contains(Gfp::NOMEMALLOC) {
        unknown.push(
            "how the request's last attempt fared without watermarks (__GFP_MEMALLOC lets it \
             ignore them): the checks shown are those of its attempts before"
                .into(),
        );
    }
    if g.sem.contains(Gfp::THISNODE) && report.zones.iter().any(|z| z.node != 0) {
        unknown.push(
            "which node the request was bound to (__GFP_THISNODE; the report does not name it)"
                .into(),
        );
    }

    // Each zone judged in every layout the report fits; where they disagree, unknown.
    let judge_zones = |order: u32, r: &Rights| -> Vec<ZoneFinding> {
        report
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let idx = zone_idx(z);
                let mut found: Option<ZoneFinding> = None;
                for (cfg, h) in layouts.iter().zip(&highest_each) {
                    let f = judge_one(
                        rules,
                        report,
                        i,
                        z,
                        order,
                        r,
                        cfg,
                        *h,
                        &classzone_of,
                        &nodes_allowed,
                        page_kb,
                    );
                    let same = |a: &ZoneFinding, b: &ZoneFinding| {
                        let strip = |c: &Option<ZoneCheck>| {
                            c.clone().map(|mut c| {
                                c.lowmem_idx = None;
                                c
                            })
                        };
                        a.outcome == b.outcome && strip(&a.check) == strip(&b.check)
                    };
                    match &mut found {
                        None => found = Some(f),
                        Some(prev) if same(prev, &f) => {
                            if let (Some(p), Some(c)) = (prev.check.as_mut(), f.check.as_ref()) {
                                if p.lowmem_idx != c.lowmem_idx {
                                    p.lowmem_idx = None;
                                }
                            }
                        }
                        Some(_) => {
                            found = Some(ZoneFinding {
                                zone: i,
                                zone_idx: None,
                                check: None,
                                outcome: Outcome::Unknown(
                                    "the outcome depends on which zones this kernel has, \
                                     which the report leaves open"
                                        .into(),
                                ),
                            });
                            break;
                        }
                    }
                }
                let mut f = found.unwrap_or(ZoneFinding {
                    zone: i,
                    zone_idx: None,
                    check: None,
                    outcome: Outcome::Unknown("its place in the zone order is unknown".into()),
                });
                f.zone_idx = idx;
                f
            })
            .collect()
    };
    let base = rights(rules, &g, order, false);
    let zones = judge_zones(order, &base);
    let (kind, verdict) = verdict_of(report, rules, &zones, &request, order, page_kb);

    // A real-time caller gets ALLOC_HARDER / ALLOC_MIN_RESERVE: say so if it would change
    // the outcome.
    if g.sem.contains(Gfp::DIRECT_RECLAIM) && !base.harder {
        let rt = rights(rules, &g, order, true);
        let rt_zones = judge_zones(order, &rt);
        let (rt_kind, _) = verdict_of(report, rules, &rt_zones, &request, order, page_kb);
        if rt_kind != kind {
            unknown.push(format!(
                "whether {} ran with a real-time policy: real-time callers may go further \
                 below the mark, and the verdict would be {}",
                report.comm.as_deref().unwrap_or("the task"),
                rt_kind.keyword()
            ));
        }
    }
    // Free CMA or high-atomic pages the report does not count: does the verdict hold at
    // the most the letters allow?
    let counts_missing = report.zones.iter().any(|z| {
        let letters: String = z.types_by_order.concat();
        (letters.contains('C') && z.free_cma_kb.is_none())
            || (letters.contains('H')
                && z.free_highatomic_kb.is_none()
                && z.reserved_highatomic_kb.is_none())
    });
    let at_most_note = if counts_missing {
        let most = Rights {
            unknown_at_most: true,
            ..base
        };
        let (most_kind, _) = verdict_of(
            report,
            rules,
            &judge_zones(order, &most),
            &request,
            order,
            page_kb,
        );
        if most_kind == kind {
            "; the verdict is the same at the largest it can be".to_string()
        } else {
            format!(
                "; at the largest it can be, the verdict would be {}",
                most_kind.keyword()
            )
        }
    } else {
        String::new()
    };
    for (f, z) in zones.iter().zip(&report.zones) {
        if !matches!(f.outcome, Outcome::NotUsable(_)) {
            if z.free_by_order.iter().any(|&c| c > 0) && !z.letters_printed && rules != Rules::Pre44
            {
                unknown.push(format!(
                    "the migratetypes of {}'s free blocks (no letters printed)",
                    z.name
                ));
            }
            let letters: String = z.types_by_order.concat();
            if letters.contains('H')
                && z.free_highatomic_kb.is_none()
                && z.reserved_highatomic_kb.is_none()
            {
                unknown.push(format!(
                    "the size of {}'s high-atomic reserve (H blocks are free, no count printed; \
                     taken as 0{at_most_note})",
                    z.name
                ));
            }
            if letters.contains('C') && z.free_cma_kb.is_none() {
                unknown.push(format!(
                    "{}'s free CMA pages (C blocks are free, no count printed; taken as \
                     0{at_most_note})",
                    z.name
                ));
            }
        }
    }

    let remedies = remedies(
        report,
        rules,
        range,
        &g,
        &base,
        &zones,
        kind,
        &request,
        &judge_zones,
        &mut unknown,
    );
    Judgement {
        gfp,
        request,
        zones,
        kind,
        verdict,
        remedies,
        unknown,
    }
}

/// One zone under one layout: usable or not, then its check.
#[allow(clippy::too_many_arguments)]
fn judge_one(
    rules: Rules,
    report: &Report,
    i: usize,
    z: &ZoneReport,
    order: u32,
    r: &Rights,
    cfg: &[ZoneKind],
    highest: Option<ZoneKind>,
    classzone_of: &dyn Fn(&[ZoneKind], ZoneKind) -> Option<usize>,
    nodes_allowed: &dyn Fn(u32) -> bool,
    page_kb: u64,
) -> ZoneFinding {
    let unknown = |why: &str| ZoneFinding {
        zone: i,
        zone_idx: None,
        check: None,
        outcome: Outcome::Unknown(why.into()),
    };
    let (Some(kind), Some(h)) = (ZoneKind::from_name(&z.name), highest) else {
        return unknown("the request's highest zone or this zone's kind is unknown");
    };
    if kind > h {
        return ZoneFinding {
            zone: i,
            zone_idx: None,
            check: None,
            outcome: Outcome::NotUsable(format!("above the request's highest zone ({})", h.name())),
        };
    }
    if !nodes_allowed(z.node) {
        return ZoneFinding {
            zone: i,
            zone_idx: None,
            check: None,
            outcome: Outcome::NotUsable("node not in the request's nodemask".into()),
        };
    }
    let Some(classzone) = classzone_of(cfg, h) else {
        return unknown("which lowmem_reserve[] entry applies (the rule changed in 5.8)");
    };
    let (check, outcome) = check_zone(rules, z, order, r, classzone, page_kb, report);
    ZoneFinding {
        zone: i,
        zone_idx: None,
        check: Some(check),
        outcome,
    }
}

/// Layouts that hold the printed zones, by kind alone (for reports whose lowmem_reserve[]
/// entries do not show which zone is which).
fn layouts_by_kind(report: &Report) -> Vec<Vec<ZoneKind>> {
    let Some(n) = report.zones.first().map(|z| z.lowmem_reserve.len()) else {
        return Vec::new();
    };
    let kinds: Vec<ZoneKind> = report
        .zones
        .iter()
        .filter_map(|z| ZoneKind::from_name(&z.name))
        .collect();
    let optional = [
        ZoneKind::Dma,
        ZoneKind::Dma32,
        ZoneKind::HighMem,
        ZoneKind::Device,
    ];
    (0..16u32)
        .map(|mask| {
            let mut cfg = vec![ZoneKind::Normal, ZoneKind::Movable];
            cfg.extend(
                optional
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| *k),
            );
            cfg.sort();
            cfg
        })
        .filter(|cfg| cfg.len() == n && kinds.iter().all(|k| cfg.contains(k)))
        .collect()
}

/// Decodes the gfp mask: the printed names if any (checked against the hex where the
/// version's table is known), else the hex with the version's table.
fn decode_gfp(
    report: &Report,
    rules: Rules,
    range: &VersionRange,
    unknown: &mut Vec<String>,
) -> Option<GfpMeaning> {
    let g = match &report.gfp_names {
        Some(names) => {
            let g = gfpflags::from_names(names, range, rules);
            let (_, unk) = gfpflags::decode_bits(report.gfp_mask, range);
            if unk == 0 {
                let hex = gfpflags::from_hex(report.gfp_mask, range, rules);
                let key = Gfp::RECLAIM.0
                    | Gfp::HIGH.0
                    | Gfp::DMA.0
                    | Gfp::DMA32.0
                    | Gfp::HIGHMEM.0
                    | Gfp::MOVABLE.0
                    | Gfp::NORETRY.0
                    | Gfp::RETRY_MAYFAIL.0
                    | Gfp::NOMEMALLOC.0;
                if hex.sem.0 & key != g.sem.0 & key {
                    unknown.push(format!(
                        "the gfp flags: mode:{} decoded with this version's bit table says {} \
                         but the report prints {names}; the printed names are used",
                        report.mode_text,
                        hex.names.join("|")
                    ));
                }
            }
            g
        }
        None => {
            let g = gfpflags::from_hex(report.gfp_mask, range, rules);
            let (singles, _) = gfpflags::decode_bits(report.gfp_mask, range);
            if singles.is_empty() && report.gfp_mask != 0 {
                unknown.push(format!(
                    "the gfp flags: mode:{} is printed without names and no bit table covers \
                     this kernel ({range})",
                    report.mode_text
                ));
                return None;
            }
            g
        }
    };
    if g.unknown_bits != 0 {
        unknown.push(format!(
            "the meaning of gfp bits {:#x} (no name for them in this kernel's table)",
            g.unknown_bits
        ));
    }
    for n in &g.unknown_names {
        unknown.push(format!("the gfp name {n} (not one this tool knows)"));
    }
    Some(g)
}

/// What the flags allowed the slow path to do, in words.
fn describe_request(
    report: &Report,
    rules: Rules,
    range: &VersionRange,
    g: Option<&GfpMeaning>,
    highest: Option<ZoneKind>,
    unknown: &mut Vec<String>,
) -> Request {
    let order = report.order;
    let costly = order > PAGE_ALLOC_COSTLY_ORDER as u32;
    let page_kb = report.page_kb.max(1);
    let nodes = match (&report.nodemask, &report.mems_allowed) {
        (Some(NodeMask::Nodes(v)), _) => format!(
            "nodemask {}",
            v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
        (Some(NodeMask::Null), Some(m)) => format!(
            "any node (nodemask (null)); cpuset {} mems_allowed={}",
            report.cpuset.as_deref().unwrap_or("?"),
            m.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
        (Some(NodeMask::Null), None) => "any node (nodemask (null))".into(),
        (None, _) => "any node (no nodemask printed)".into(),
    };
    let Some(g) = g else {
        return Request {
            order,
            size_kb: page_kb << order.min(40),
            highest_zone: None,
            can_reclaim: Tri::Unknown,
            wakes_kswapd: Tri::Unknown,
            can_compact: Tri::Unknown,
            costly,
            reserves: "unknown".into(),
            retry: "unknown".into(),
            nodes,
        };
    };
    let sem = g.sem;
    let yes = |b: bool| if b { Tri::Yes } else { Tri::No };
    let can_reclaim = sem.contains(Gfp::DIRECT_RECLAIM);
    let io = sem.contains(Gfp::IO);
    let fs = sem.contains(Gfp::FS);
    // try_to_compact_pages() wanted __GFP_FS and __GFP_IO until a 4.x release between 4.8
    // and 4.19 dropped __GFP_FS (4.19 has only __GFP_IO).
    let can_compact = if order == 0 || !can_reclaim || !io {
        Tri::No
    } else if fs || range.within(KernelVersion(4, 19, 0), KernelVersion::MAX) {
        Tri::Yes
    } else if range.within(KernelVersion::MIN, KernelVersion(4, 8, 0)) {
        Tri::No
    } else {
        unknown.push(
            "whether this kernel let a request without __GFP_FS compact (the rule changed \
             between 4.8 and 4.19)"
                .into(),
        );
        Tri::Unknown
    };
    let r = rights(rules, g, order, false);
    let mut reserves = Vec::new();
    if r.high {
        reserves.push("__GFP_HIGH: may use half of the min reserve");
    }
    if r.harder {
        reserves.push(match rules {
            Rules::V63 => {
                "cannot sleep (ALLOC_NON_BLOCK): a further quarter below the mark with \
                 __GFP_HIGH, and the high-atomic reserve"
            }
            Rules::V44 => {
                "__GFP_ATOMIC (ALLOC_HARDER): a further quarter below the mark, and the \
                 high-atomic reserve"
            }
            Rules::Pre44 => "cannot sleep (ALLOC_HARDER): a further quarter below the mark",
        });
    }
    if r.flags.has(AllocFlags::CMA) {
        reserves.push("movable: may use CMA blocks");
    }
    if sem.contains(Gfp::MEMALLOC) && !sem.contains(Gfp::NOMEMALLOC) {
        reserves.push("__GFP_MEMALLOC: may ignore the watermarks");
    }
    let reserves = if reserves.is_empty() {
        "none: the min watermark applies in full".to_string()
    } else {
        reserves.join("; ")
    };
    let retry_name = if range.within(KernelVersion::MIN, KernelVersion(4, 13, 0)) {
        "__GFP_REPEAT"
    } else {
        "__GFP_RETRY_MAYFAIL"
    };
    let retry = if !can_reclaim {
        "none: a request that cannot sleep fails after its attempts at the watermark".to_string()
    } else if sem.contains(Gfp::NOFAIL) {
        "__GFP_NOFAIL: retried without end (a failure report should not happen)".to_string()
    } else if sem.contains(Gfp::NORETRY) {
        "__GFP_NORETRY: one round of reclaim and compaction, then fail".to_string()
    } else if costly && sem.contains(Gfp::RETRY_MAYFAIL) {
        format!("{retry_name}: retried while reclaim makes progress, then fail")
    } else if costly {
        format!(
            "costly order ({order} > {PAGE_ALLOC_COSTLY_ORDER}) without {retry_name}: one round \
             of reclaim and compaction (where allowed), then fail"
        )
    } else if highest.is_some_and(|h| h < ZoneKind::Normal) {
        "retried while reclaim makes progress; the OOM killer is not called for a \
         request limited to a DMA zone"
            .to_string()
    } else if rules == Rules::Pre44 {
        "order 3 or less: retried until the OOM killer frees memory; it fails only when the \
         OOM killer may not run (a dying task, a disabled OOM killer, a suspend)"
            .to_string()
    } else {
        "order 3 or less: retried while reclaim or compaction make progress and the OOM \
         killer is tried; it fails when all of that makes no progress"
            .to_string()
    };
    Request {
        order,
        size_kb: page_kb.checked_shl(order).unwrap_or(u64::MAX),
        highest_zone: highest,
        can_reclaim: yes(can_reclaim),
        wakes_kswapd: yes(sem.contains(Gfp::KSWAPD_RECLAIM)),
        can_compact,
        costly,
        reserves,
        retry,
        nodes,
    }
}

/// The watermark check of one zone under `rules`, with the numbers behind it.
///
/// DEVIATION(linux): only the check of the slow path's last attempt (MIN mark) is judged,
/// on the memory the report shows after the failure; `rmqueue()` past a passing check and
/// what reclaim or compaction did during the attempt are not replayed.
fn check_zone(
    rules: Rules,
    z: &ZoneReport,
    order: u32,
    r: &Rights,
    classzone: usize,
    page_kb: u64,
    report: &Report,
) -> (ZoneCheck, Outcome) {
    let pages = |kb: u64| (kb / page_kb) as i64;
    let free_pages = pages(z.free_kb);
    let mark = z.min_kb / page_kb;
    let lowmem_reserve = z.lowmem_reserve.get(classzone).copied().unwrap_or(0);
    let nr = &z.free_by_order;
    // Pages in blocks of orders whose letters show `c`: the most a type can hold free.
    let at_most = |c: char| -> u64 {
        if !r.unknown_at_most {
            return 0;
        }
        nr.iter()
            .enumerate()
            .filter(|(o, _)| z.types_by_order.get(*o).is_some_and(|l| l.contains(c)))
            .fold(0u64, |a, (o, &n)| {
                a.saturating_add(n.saturating_mul(1 << o))
            })
    };
    let cma_pages = z.free_cma_kb.map_or_else(|| at_most('C'), |k| k / page_kb);
    // `reserve_highatomic_pageblock()` keeps the reserve within 1% of the zone plus a
    // pageblock (at most the largest order's block).
    let highatomic_cap = z.managed_kb.map_or(u64::MAX, |m| {
        (m / page_kb / 100).saturating_add(1u64 << nr.len().saturating_sub(1).min(40))
    });
    let highatomic = match rules {
        Rules::Pre44 => 0,
        _ => z
            .free_highatomic_kb
            .or(z.reserved_highatomic_kb)
            .map_or_else(|| at_most('H').min(highatomic_cap), |k| k / page_kb),
    };
    let max_order = nr.len().saturating_sub(1);
    let letters = |o: usize| z.types_by_order.get(o).map(String::as_str).unwrap_or("");
    let at_or_above: Vec<usize> = (order as usize..nr.len()).filter(|&o| nr[o] > 0).collect();
    let blocks_at_or_above: u64 = at_or_above.iter().map(|&o| nr[o]).sum();
    let mut types_at_or_above = String::new();
    for &o in &at_or_above {
        for c in letters(o).chars() {
            if !types_at_or_above.contains(c) {
                types_at_or_above.push(c);
            }
        }
    }
    let largest_free_order = (0..nr.len()).rev().find(|&o| nr[o] > 0);
    let eff = effective_mark(rules, mark, r);
    let order_u8 = Order(order.min(63) as u8);
    let (unusable_order, unusable_highatomic, unusable_cma) = match rules {
        Rules::Pre44 => {
            let cma = if r.flags.has(AllocFlags::CMA) {
                0
            } else {
                cma_pages
            };
            ((1u64 << order.min(62)) - 1, 0, cma)
        }
        _ => {
            let all = watermark_unusable_free(order_u8, r.flags, highatomic, cma_pages, true);
            let ho = watermark_unusable_free(order_u8, r.flags, highatomic, 0, true);
            let o = (1u64 << order.min(62)) - 1;
            (o, ho - o, all - ho)
        }
    };
    let usable_free = free_pages
        .saturating_sub(unusable_order as i64)
        .saturating_sub(unusable_highatomic as i64)
        .saturating_sub(unusable_cma as i64);
    let mut check = ZoneCheck {
        free_pages,
        mark_pages: mark,
        effective_mark: eff,
        lowmem_reserve,
        lowmem_idx: Some(classzone),
        unusable_order,
        unusable_highatomic,
        unusable_cma,
        usable_free,
        old_step: None,
        blocks_at_or_above,
        types_at_or_above: types_at_or_above.clone(),
        largest_free_order,
        compaction: None,
    };
    let below = |usable: i64| {
        if usable <= eff {
            Outcome::BelowMin
        } else {
            Outcome::BelowReserve
        }
    };
    let outcome = match rules {
        Rules::Pre44 => {
            // Mirrors 3.x `__zone_watermark_ok()`: after the order-0 test, the free pages
            // in blocks below each order are taken away and the mark halved per order.
            if usable_free <= eff + lowmem_reserve as i64 {
                below(usable_free)
            } else {
                // The per-order loop starts from the free pages less the order's own; the
                // CMA pages were only left out of the first comparison.
                let mut free = free_pages.saturating_sub(unusable_order as i64);
                let mut min = eff;
                let mut failed = None;
                for o in 0..order as usize {
                    let c = nr.get(o).copied().unwrap_or(0) as i64;
                    free -= c << o;
                    min >>= 1;
                    if free <= min {
                        failed = Some((o as u32 + 1, free, min));
                        break;
                    }
                }
                match failed {
                    Some(step) => {
                        check.old_step = Some(step);
                        Outcome::OldOrderCheck { at_order: step.0 }
                    }
                    None if order as usize > max_order => Outcome::NoFreeBlock,
                    None => Outcome::Passes,
                }
            }
        }
        Rules::V44 | Rules::V63 => {
            let counts = WatermarkCounts {
                free_pages,
                lowmem_reserve,
                nr_free_highatomic: highatomic,
                nr_free_cma: cma_pages,
            };
            // Before 6.3 the mark is lowered here (`effective_mark`); the core gets it
            // with flags that do not lower it again.
            let (mark_in, flags) = match rules {
                Rules::V63 => (mark, r.flags),
                _ => (eff.max(0) as u64, r.flags),
            };
            let untyped = !z.letters_printed;
            let res = watermark_check_counts(
                &counts,
                order_u8,
                mark_in,
                flags,
                true,
                max_order.min(63) as u8,
                |o, mt| {
                    let o = o as usize;
                    nr.get(o).is_some_and(|&c| c > 0)
                        && (letters(o).contains(letter(mt))
                            || (untyped
                                && matches!(
                                    mt,
                                    MigrateType::Unmovable
                                        | MigrateType::Movable
                                        | MigrateType::Reclaimable
                                )))
                },
            );
            match res {
                Ok(()) if untyped && order > 0 => Outcome::Unknown(format!(
                    "{} has free blocks of order {order} or more but no migratetype letters: \
                     whether they are on lists the request may use is not printed",
                    z.name
                )),
                Ok(()) => Outcome::Passes,
                Err(WatermarkFail::BelowMark) => below(usable_free),
                Err(WatermarkFail::NoFreeBlock) if blocks_at_or_above > 0 => {
                    Outcome::OnlyReservedTypes(types_at_or_above)
                }
                Err(WatermarkFail::NoFreeBlock) => Outcome::NoFreeBlock,
            }
        }
    };
    if order > 0
        && matches!(
            outcome,
            Outcome::NoFreeBlock | Outcome::OldOrderCheck { .. } | Outcome::OnlyReservedTypes(_)
        )
    {
        check.compaction = Some(compaction_view(
            rules,
            z,
            order,
            page_kb,
            lowmem_reserve,
            report,
        ));
    }
    (check, outcome)
}

/// Mirrors `compaction_suitable()` on the report's numbers: enough free pages (CMA
/// counted) above the mark plus `compact_gap()` (the low mark for costly orders, min
/// otherwise; 3.x: always low), and for costly orders (3.x: every order) a
/// `fragmentation_index()` above the default `extfrag_threshold` of 500.
fn compaction_view(
    rules: Rules,
    z: &ZoneReport,
    order: u32,
    page_kb: u64,
    lowmem_reserve: u64,
    _report: &Report,
) -> CompactionView {
    let costly = order > PAGE_ALLOC_COSTLY_ORDER as u32;
    let base = if costly || rules == Rules::Pre44 {
        z.low_kb / page_kb
    } else {
        z.min_kb / page_kb
    };
    let gap = 2u64 << order.min(40);
    let needs_above = (base + gap) as i64
        + if rules == Rules::Pre44 {
            0
        } else {
            lowmem_reserve as i64
        };
    let has = (z.free_kb / page_kb) as i64;
    let mut info = ContigPageInfo::default();
    for (o, &c) in z.free_by_order.iter().enumerate() {
        info.free_blocks_total = info.free_blocks_total.saturating_add(c);
        info.free_pages = info.free_pages.saturating_add(c << o);
        if o >= order as usize {
            info.free_blocks_suitable = info
                .free_blocks_suitable
                .saturating_add(c << (o - order as usize));
        }
    }
    let fragindex = fragmentation_index(Order(order.min(40) as u8), &info);
    let index_checked = costly || rules == Rules::Pre44;
    let would_run = has > needs_above && !(index_checked && (0..=500).contains(&fragindex));
    CompactionView {
        needs_above,
        has,
        fragindex,
        would_run,
    }
}

/// The zones the request may use, the preferred (highest) zone first, as the zonelist
/// tries them.
fn preferred_first(zones: &[ZoneFinding]) -> Vec<&ZoneFinding> {
    let mut v: Vec<&ZoneFinding> = zones
        .iter()
        .filter(|f| !matches!(f.outcome, Outcome::NotUsable(_)))
        .collect();
    v.sort_by_key(|f| (std::cmp::Reverse(f.zone_idx), f.zone));
    v
}

/// `Node N NAME`, or `NAME` where the kernel prints no node.
fn zone_label(report: &Report, i: usize) -> String {
    let z = &report.zones[i];
    if z.node_printed {
        format!("Node {} {}", z.node, z.name)
    } else {
        z.name.clone()
    }
}

/// The verdict from the zones' outcomes.
fn verdict_of(
    report: &Report,
    rules: Rules,
    zones: &[ZoneFinding],
    request: &Request,
    order: u32,
    page_kb: u64,
) -> (VerdictKind, String) {
    let usable = preferred_first(zones);
    let name = |f: &ZoneFinding| zone_label(report, f.zone);
    let size = size_words(order, page_kb);
    if usable.is_empty() {
        return (
            VerdictKind::NoUsableZone,
            "None of the zones the report prints could serve this request; the zones it \
             could use are not in the report."
                .into(),
        );
    }
    if let Some(f) = usable
        .iter()
        .find(|f| matches!(f.outcome, Outcome::Unknown(_)))
    {
        if let Outcome::Unknown(why) = &f.outcome {
            return (VerdictKind::Unknown, format!("Cannot tell: {why}."));
        }
    }
    let tail = format!(
        "{}{}",
        elsewhere(report, zones, order, request),
        flag_tail(request)
    );
    if let Some(f) = usable.iter().find(|f| f.outcome == Outcome::Passes) {
        let c = f.check.as_ref().expect("usable zones are checked");
        return (
            VerdictKind::WouldPass,
            format!(
                "The report's numbers pass the allocator's check in {}: {} free pages it may \
                 count against a mark of {} plus a reserve of {}, and a free block of {size} \
                 or larger. What made the request fail is not in the report: memory taken \
                 between the last attempt and the report, pages held on per-CPU lists, a \
                 cpuset or memory policy, or a racing allocation.{tail}",
                name(f),
                c.usable_free,
                c.effective_mark,
                c.lowmem_reserve
            ),
        );
    }
    if let Some(f) = usable
        .iter()
        .find(|f| matches!(f.outcome, Outcome::OnlyReservedTypes(_)))
    {
        let c = f.check.as_ref().expect("checked");
        let Outcome::OnlyReservedTypes(t) = &f.outcome else {
            unreachable!()
        };
        return (
            VerdictKind::ReservedTypes,
            format!(
                "{} had enough free memory ({} pages it may count, above its mark of {}) and \
                 {} free block(s) of {size} or larger, but only on {} free lists, which this \
                 request may not use.{tail}",
                name(f),
                c.usable_free,
                c.effective_mark,
                c.blocks_at_or_above,
                type_words(t)
            ),
        );
    }
    let frag: Vec<&&ZoneFinding> = usable
        .iter()
        .filter(|f| {
            matches!(
                f.outcome,
                Outcome::NoFreeBlock | Outcome::OldOrderCheck { .. }
            )
        })
        .collect();
    if let Some(f) = frag.first() {
        let c = f.check.as_ref().expect("checked");
        let others: Vec<String> = frag.iter().skip(1).map(|f| name(f)).collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" {} fared the same.", others.join(", "))
        };
        let body = match (&f.outcome, c.old_step) {
            (Outcome::OldOrderCheck { .. }, Some((o, left, min))) if c.blocks_at_or_above > 0 => {
                format!(
                    "Fragmentation, as the check of {} counts it: {} had {} free pages it may \
                 count, above its mark of {} plus a reserve of {}, and {} free block(s) of \
                 {size} or larger; but that check also wants more than {min} free pages (the \
                 mark halved {o} time(s)) in blocks of {} and larger, and after taking away \
                 the pages in smaller blocks from its free count, {left} were left.",
                    rules.label(),
                    name(f),
                    c.usable_free,
                    c.effective_mark,
                    c.lowmem_reserve,
                    c.blocks_at_or_above,
                    size_words(o, page_kb),
                )
            }
            _ => {
                let largest = match c.largest_free_order {
                    Some(o) if (o as u32) < order => {
                        format!(
                            "; its largest free block was {}",
                            size_words(o as u32, page_kb)
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "Fragmentation: {} had enough free memory ({} free pages it may count, \
                     above its mark of {} plus a reserve of {}) but no free block of {size} or \
                     larger{largest}.",
                    name(f),
                    c.usable_free,
                    c.effective_mark,
                    c.lowmem_reserve,
                )
            }
        };
        return (VerdictKind::Fragmented, format!("{body}{also}{tail}"));
    }
    let parts: Vec<String> = usable
        .iter()
        .filter_map(|f| {
            let c = f.check.as_ref()?;
            Some(match f.outcome {
                Outcome::BelowReserve => format!(
                    "{}: {} pages it may count, above the mark of {} but not above it plus the \
                     lowmem reserve of {}",
                    name(f),
                    c.usable_free,
                    c.effective_mark,
                    c.lowmem_reserve
                ),
                _ => format!(
                    "{}: {} pages it may count, not above the mark of {}",
                    name(f),
                    c.usable_free,
                    c.effective_mark
                ),
            })
        })
        .collect();
    (
        VerdictKind::LowMemory,
        format!(
            "Not enough free memory in any zone the request could use ({}).{tail}",
            parts.join("; ")
        ),
    )
}

/// Free blocks of the order the request could not reach: in zones above its highest zone,
/// or held back by a lowmem reserve.
fn elsewhere(report: &Report, zones: &[ZoneFinding], order: u32, request: &Request) -> String {
    let mut s = String::new();
    for f in zones {
        let z = &report.zones[f.zone];
        let blocks: u64 = z
            .free_by_order
            .iter()
            .skip(order as usize)
            .fold(0u64, |a, &c| a.saturating_add(c));
        if blocks == 0 {
            continue;
        }
        match &f.outcome {
            Outcome::NotUsable(why) => {
                let _ = write!(
                    s,
                    " {} had {blocks} free block(s) of that size or larger, but the request \
                     may not use it ({why}).",
                    zone_label(report, f.zone)
                );
            }
            Outcome::BelowReserve => {
                let c = f.check.as_ref().expect("checked");
                let _ = write!(
                    s,
                    " {} had {blocks} free block(s) of that size or larger, held back by its \
                     lowmem_reserve of {} pages from requests that may use {}.",
                    zone_label(report, f.zone),
                    c.lowmem_reserve,
                    request.highest_zone.map_or("a higher zone", ZoneKind::name)
                );
            }
            _ => {}
        }
    }
    s
}

/// What the flags meant for the outcome, as a closing sentence.
fn flag_tail(request: &Request) -> String {
    let mut s = String::new();
    if request.can_reclaim == Tri::No {
        s.push_str(" The request could not sleep: no reclaim, no compaction, no retry");
        if request.wakes_kswapd == Tri::Yes {
            s.push_str("; only kswapd, woken in the background, could free memory");
        }
        s.push('.');
    } else if request.order > 0 && request.can_compact == Tri::No {
        s.push_str(" The request could reclaim but not compact (direct compaction needs __GFP_IO), and reclaim frees pages without making them contiguous.");
    }
    s
}

fn type_words(letters: &str) -> String {
    let names: Vec<&str> = letters
        .chars()
        .map(|c| match c {
            'C' => "CMA",
            'H' => "high-atomic reserve",
            'I' => "isolated",
            'R' => "reserve",
            'U' => "unmovable",
            'M' => "movable",
            'E' => "reclaimable",
            _ => "unknown-type",
        })
        .collect();
    names.join(" and ")
}

/// What would have made the request succeed.
#[allow(clippy::too_many_arguments)]
fn remedies(
    report: &Report,
    rules: Rules,
    range: &VersionRange,
    g: &GfpMeaning,
    base: &Rights,
    zones: &[ZoneFinding],
    kind: VerdictKind,
    request: &Request,
    judge_zones: &dyn Fn(u32, &Rights) -> Vec<ZoneFinding>,
    unknown: &mut Vec<String>,
) -> Vec<Remedy> {
    let mut out = Vec::new();
    let page_kb = report.page_kb.max(1);
    let order = report.order;
    let zname = |i: usize| zone_label(report, i);
    if matches!(
        kind,
        VerdictKind::WouldPass | VerdictKind::Unknown | VerdictKind::NoUsableZone
    ) {
        return out;
    }
    // A smaller order: the largest that passes now.
    for k in (0..order).rev() {
        let zs = judge_zones(k, base);
        if let Some(f) = preferred_first(&zs)
            .into_iter()
            .find(|f| f.outcome == Outcome::Passes)
        {
            out.push(Remedy {
                change: format!("order <= {k}"),
                sure: true,
                why: format!(
                    "{} passes the check at order {k} ({}) with the report's numbers",
                    zname(f.zone),
                    size_words(k, page_kb)
                ),
            });
            break;
        }
    }
    // The newer one-free-block check, for failures judged by the old per-order rule.
    if rules == Rules::Pre44 {
        let v44 = rights(Rules::V44, g, order, false);
        let passes = preferred_first(zones).into_iter().find_map(|f| {
            let z = &report.zones[f.zone];
            if matches!(f.outcome, Outcome::Unknown(_)) {
                return None;
            }
            let c = f.check.as_ref()?;
            // The slot does not matter beyond its value: find one holding it.
            let classzone = c
                .lowmem_idx
                .or_else(|| z.lowmem_reserve.iter().position(|&v| v == c.lowmem_reserve))?;
            let (_, o) = check_zone(Rules::V44, z, order, &v44, classzone, page_kb, report);
            (o == Outcome::Passes && z.letters_printed).then_some(f.zone)
        });
        if let Some(i) = passes {
            out.push(Remedy {
                change: "Linux 4.4 or later".into(),
                sure: true,
                why: format!(
                    "from 4.4 the check wants one free block of the order on a list the \
                     request may use, not enough free pages in blocks of each order: {} passes \
                     that check with the report's numbers",
                    zname(i)
                ),
            });
        }
    }
    let sem = g.sem;
    let can_reclaim = sem.contains(Gfp::DIRECT_RECLAIM);
    let retry_name = if range.within(KernelVersion::MIN, KernelVersion(4, 13, 0)) {
        "__GFP_REPEAT"
    } else {
        "__GFP_RETRY_MAYFAIL"
    };
    // A costly request that may not compact gains nothing from __GFP_RETRY_MAYFAIL: since
    // "mm, vmscan: prevent infinite loop for costly GFP_NOIO | __GFP_RETRY_MAYFAIL
    // allocations" (2024, also in stable kernels) it stops after one round as before, and
    // before that fix it could loop without end (the model's slow path has the fix).
    let retry_helps = request.can_compact != Tri::No;
    if can_reclaim
        && request.costly
        && retry_helps
        && !sem.contains(Gfp::RETRY_MAYFAIL)
        && !sem.contains(Gfp::NORETRY)
    {
        out.push(Remedy {
            change: retry_name.into(),
            sure: false,
            why: format!(
                "a costly order ({order} > {PAGE_ALLOC_COSTLY_ORDER}) gives up after one round \
                 of reclaim and compaction; with {retry_name} the allocator keeps reclaiming \
                 and compacting while that makes progress"
            ),
        });
    }
    if can_reclaim && sem.contains(Gfp::NORETRY) {
        out.push(Remedy {
            change: "without __GFP_NORETRY".into(),
            sure: false,
            why: "__GFP_NORETRY stops after one light round of reclaim and compaction".into(),
        });
    }
    // Compaction, where free memory is there but not contiguous.
    let frag: Vec<&ZoneFinding> = preferred_first(zones)
        .into_iter()
        .filter(|f| {
            matches!(
                f.outcome,
                Outcome::NoFreeBlock
                    | Outcome::OldOrderCheck { .. }
                    | Outcome::OnlyReservedTypes(_)
            )
        })
        .collect();
    if order > 0 && !frag.is_empty() {
        let f = frag[0];
        let c = f.check.as_ref().expect("checked");
        let cv = c.compaction.as_ref();
        let how = match request.can_compact {
            Tri::Yes => "the request could compact, and compaction did not make a block in time; compacting ahead of the request (echo 1 > /proc/sys/vm/compact_memory, or vm.compaction_proactiveness)".to_string(),
            _ => "the request could not compact; compacting ahead of it (echo 1 > /proc/sys/vm/compact_memory, or vm.compaction_proactiveness) or a caller allowed to compact (__GFP_DIRECT_RECLAIM with __GFP_IO)".to_string(),
        };
        let run = match cv {
            Some(v) if v.has <= v.needs_above => format!(
                "; but {} has {} free pages and compaction starts only above {}: reclaim \
                 must free more first",
                zname(f.zone),
                v.has,
                v.needs_above
            ),
            Some(v) if !v.would_run => format!(
                "; but {}'s fragmentation index for order {order} is {}.{:03}, at or below \
                 the default extfrag_threshold of 500: the kernel counts this a shortage of \
                 memory, not fragmentation, and skips compaction",
                zname(f.zone),
                v.fragindex / 1000,
                (v.fragindex % 1000).abs()
            ),
            _ => String::new(),
        };
        out.push(Remedy {
            change: "compaction".into(),
            sure: false,
            why: format!(
                "{how} can merge {}'s free pages into a block of {} if the pages between them \
                 are movable{run}",
                zname(f.zone),
                size_words(order, page_kb)
            ),
        });
        unknown.push(
            "which of the used pages are movable (compaction can only move movable ones; the \
             report does not show it)"
                .into(),
        );
        if cv.is_some_and(|v| v.fragindex >= 0) && (request.costly || rules == Rules::Pre44) {
            unknown.push("vm.extfrag_threshold (taken as the default, 500)".into());
        }
        if !report.trace_shows_compaction {
            unknown.push(
                "whether the kernel has compaction (CONFIG_COMPACTION; the call trace does not \
                 name it)"
                    .into(),
            );
        }
    }
    if let Some(f) = zones
        .iter()
        .find(|f| matches!(&f.outcome, Outcome::OnlyReservedTypes(t) if t.contains('C')))
    {
        out.push(Remedy {
            change: "a smaller CMA area".into(),
            sure: false,
            why: format!(
                "{}'s free blocks of {} and larger are all in CMA pageblocks, which only \
                 movable requests may use; less memory set aside for CMA (cma=, \
                 CONFIG_CMA_SIZE_MBYTES) leaves such blocks to other requests",
                zname(f.zone),
                size_words(order, page_kb)
            ),
        });
    }
    if !can_reclaim {
        out.push(Remedy {
            change: "__GFP_DIRECT_RECLAIM".into(),
            sure: false,
            why: "a caller that may sleep (GFP_KERNEL rather than GFP_ATOMIC/GFP_NOWAIT) can \
                  reclaim and compact before giving up"
                .into(),
        });
        if kind == VerdictKind::LowMemory {
            out.push(Remedy {
                change: "more vm.min_free_kbytes".into(),
                sure: false,
                why: "a higher min_free_kbytes makes kswapd start earlier and keep more pages \
                      free for requests that cannot reclaim"
                    .into(),
            });
        } else if order > 0 && matches!(kind, VerdictKind::Fragmented | VerdictKind::ReservedTypes)
        {
            out.push(Remedy {
                change: "more vm.min_free_kbytes".into(),
                sure: false,
                why: format!(
                    "a higher min_free_kbytes makes kswapd, woken for order {order}, keep more \
                     memory free ahead of requests that cannot reclaim, which gives blocks of \
                     that order a better chance; by itself it does not make free pages \
                     contiguous"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfp_zone_follows_the_layout() {
        let x86 = [
            ZoneKind::Dma,
            ZoneKind::Dma32,
            ZoneKind::Normal,
            ZoneKind::Movable,
        ];
        let mips = [ZoneKind::Normal, ZoneKind::HighMem, ZoneKind::Movable];
        assert_eq!(gfp_zone(Gfp::GFP_KERNEL, &x86), Some(ZoneKind::Normal));
        assert_eq!(gfp_zone(Gfp::GFP_DMA32, &x86), Some(ZoneKind::Dma32));
        assert_eq!(gfp_zone(Gfp::GFP_DMA32, &mips), Some(ZoneKind::Normal));
        assert_eq!(gfp_zone(Gfp::GFP_HIGHUSER, &mips), Some(ZoneKind::HighMem));
        assert_eq!(gfp_zone(Gfp::GFP_HIGHUSER, &x86), Some(ZoneKind::Normal));
        assert_eq!(
            gfp_zone(Gfp::GFP_HIGHUSER_MOVABLE, &x86),
            Some(ZoneKind::Movable)
        );
        assert_eq!(gfp_zone(Gfp::DMA | Gfp::DMA32, &x86), None);
    }
}
