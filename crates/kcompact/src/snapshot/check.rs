//! Cross-checks of a snapshot's files against each other, so that a cut, mixed or corrupt
//! snapshot is refused (naming the file and the mismatch) instead of giving a confident
//! wrong answer. [`load_checked`] runs them around [`load`]:
//!
//! - `meta.txt` ([`parse_meta`]): `pfn_start` and `pfn_end` each given once and parsable,
//!   `page_size` (when given) the model's 4096;
//! - before loading ([`check_files`]): the page arrays span `pfn_start..pfn_end`; every
//!   zone of zoneinfo has `managed <= present <= spanned` and a span when it has pages, and
//!   lies inside the arrays; kpageflags shows at least each zone's `present` pages in its
//!   span (less the drift allowance) and no present page outside every zone (a zoneinfo
//!   cut short or of another machine: zone spans do not drift); every kpagecount fits the kernel's `int` map count; buddyinfo names only
//!   populated zones and every one of them, its counts add up without overflow to at most
//!   the zone's pages; zoneinfo's `pages free` and pagetypeinfo's free lists agree with
//!   buddyinfo; pagetypeinfo's pageblock order is the model's and its block counts fit
//!   each zone's span;
//! - after loading ([`check_loaded`]): each zone's free pages, and its free pages in
//!   blocks of pageblock order or more, as loaded from kpageflags, against buddyinfo read
//!   before and `buddyinfo.post` read after the page arrays.
//!
//! A live machine moves while its page arrays are copied, so counts read at different
//! moments differ; they are accepted within [`drift_allowance`] of the range the two
//! buddyinfo readings span: [`DRIFT_PCT`] % of the zone's managed pages plus
//! [`DRIFT_PAGES`]. Measured on the real snapshots of `../shared/data` (every
//! `realkernel/*/before|after`, `trace/case0/start|end`) and the project's own
//! `trace_thp/start|end`: the loaded free pages lay at most 2,483 pages (0.18 % of managed)
//! outside the buddyinfo range, the free pages in order >= 9 blocks at most 7,680 (0.57 %),
//! zoneinfo's `pages free` at most 23; the two buddyinfo readings themselves were up to
//! 38,178 pages (1.27 %) apart; zone spans, present pages and pageblock counts agreed
//! exactly. The allowance is 3.5 times the largest drift measured.

use super::kpageflags::{has, kpf};
use super::load::{load, LoadReport, SnapshotFiles};
use super::text::{BuddyInfoRecord, PagetypeInfoRecord, ZoneInfoRecord};
use super::SnapshotError;
use crate::units::MAX_PAGE_ORDER;
use crate::{Machine, VmConfig};

/// The share of a zone's managed pages two readings of a live machine may differ by.
pub const DRIFT_PCT: u64 = 2;
/// Pages two readings may differ by on top of [`DRIFT_PCT`] (small zones).
pub const DRIFT_PAGES: u64 = 1024;
/// The model's page size.
pub const PAGE_SIZE: u64 = 4096;
/// The model's pageblock order.
pub const PAGEBLOCK_ORDER: u32 = 9;

/// How far two readings of a zone with `managed` pages may differ.
pub fn drift_allowance(managed: u64) -> u64 {
    (managed / 100)
        .saturating_mul(DRIFT_PCT)
        .saturating_add(DRIFT_PAGES)
}

/// The keys of `meta.txt` the loader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The first pfn of the page arrays.
    pub pfn_start: u64,
    /// One past the last pfn of the page arrays.
    pub pfn_end: u64,
    /// `page_size`, when given (always 4096 once parsed).
    pub page_size: Option<u64>,
}

fn file_err(file: &str, msg: impl Into<String>) -> SnapshotError {
    SnapshotError::File {
        file: file.to_string(),
        msg: msg.into(),
    }
}

/// Parses `meta.txt`: `pfn_start`, `pfn_end` and `page_size` given at most once each and
/// parsable; the first two required, `page_size` the model's when given.
pub fn parse_meta(text: &str) -> Result<Meta, SnapshotError> {
    let mut vals: [Option<u64>; 3] = [None; 3];
    let keys = ["pfn_start", "pfn_end", "page_size"];
    for (i, l) in text.lines().enumerate() {
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let Some(slot) = keys.iter().position(|x| *x == k.trim()) else {
            continue;
        };
        let line = |msg: String| SnapshotError::Line {
            file: "meta.txt".into(),
            line: i + 1,
            msg,
        };
        if vals[slot].is_some() {
            return Err(line(format!("a second {} line", keys[slot])));
        }
        vals[slot] = Some(
            v.trim()
                .parse()
                .map_err(|_| line(format!("{}: {:?} is not a number", keys[slot], v.trim())))?,
        );
    }
    let [Some(pfn_start), pfn_end, page_size] = vals else {
        return Err(file_err("meta.txt", "no pfn_start=N line"));
    };
    let Some(pfn_end) = pfn_end else {
        return Err(file_err("meta.txt", "no pfn_end=N line"));
    };
    if pfn_end <= pfn_start {
        return Err(file_err(
            "meta.txt",
            format!("pfn_end {pfn_end} is not above pfn_start {pfn_start}"),
        ));
    }
    if let Some(ps) = page_size.filter(|p| *p != PAGE_SIZE) {
        return Err(file_err(
            "meta.txt",
            format!("page_size {ps}: the model has {PAGE_SIZE}-byte pages"),
        ));
    }
    Ok(Meta {
        pfn_start,
        pfn_end,
        page_size,
    })
}

/// pagetypeinfo's `Page block order: N` (and `Pages per block: 2^N` beside it), when the
/// file prints it.
pub fn parse_pageblock_order(text: &str) -> Result<Option<u32>, SnapshotError> {
    let mut order = None;
    for (i, l) in text.lines().enumerate() {
        let line = |msg: String| SnapshotError::Line {
            file: "pagetypeinfo".into(),
            line: i + 1,
            msg,
        };
        if let Some(v) = l.strip_prefix("Page block order:") {
            order =
                Some(v.trim().parse::<u32>().map_err(|_| {
                    line(format!("page block order {:?} is not a number", v.trim()))
                })?);
        } else if let Some(v) = l.strip_prefix("Pages per block:") {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| line(format!("pages per block {:?} is not a number", v.trim())))?;
            if let Some(o) = order.filter(|o| 1u64.checked_shl(*o) != Some(n)) {
                return Err(line(format!(
                    "{n} pages per block for page block order {o}"
                )));
            }
        }
    }
    Ok(order)
}

/// Free pages of per-order block counts, or None where the sum overflows.
pub fn checked_pages(nr_free: &[u64]) -> Option<u64> {
    nr_free.iter().enumerate().try_fold(0u64, |acc, (o, n)| {
        let pages = n.checked_mul(1u64.checked_shl(o as u32)?)?;
        acc.checked_add(pages)
    })
}

/// The files the checks read beside those [`load`] takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readings<'a> {
    /// `meta.txt`.
    pub meta: Option<Meta>,
    /// `buddyinfo`, read before the page arrays.
    pub buddyinfo: Option<&'a [BuddyInfoRecord]>,
    /// `buddyinfo.post`, read after them.
    pub buddyinfo_post: Option<&'a [BuddyInfoRecord]>,
    /// pagetypeinfo's pageblock order ([`parse_pageblock_order`]).
    pub pageblock_order: Option<u32>,
}

/// What the checks accepted in one zone: the counts and how far apart they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDrift {
    /// Node id.
    pub node: u32,
    /// Zone name.
    pub zone: String,
    /// The most a count may lie outside the buddyinfo readings ([`drift_allowance`]).
    pub allowed: u64,
    /// Free pages as loaded (the buddy lists).
    pub free_pages: u64,
    /// Free pages of buddyinfo and buddyinfo.post (`None` where missing).
    pub buddyinfo_free: (Option<u64>, Option<u64>),
    /// How far the loaded free pages lie outside the readings' range.
    pub free_drift: u64,
    /// Free pages in blocks of pageblock order or more, as loaded.
    pub huge_free_pages: u64,
    /// The same of buddyinfo and buddyinfo.post.
    pub buddyinfo_huge: (Option<u64>, Option<u64>),
    /// How far the loaded ones lie outside the readings' range.
    pub huge_drift: u64,
}

/// How far `x` lies outside the range of `a` and `b` (0 inside, or without readings).
fn outside(x: u64, a: Option<u64>, b: Option<u64>) -> u64 {
    let vals: Vec<u64> = [a, b].into_iter().flatten().collect();
    let (Some(lo), Some(hi)) = (vals.iter().min(), vals.iter().max()) else {
        return 0;
    };
    if x < *lo {
        lo - x
    } else {
        x.saturating_sub(*hi)
    }
}

/// The buddyinfo record of zone (`node`, `name`).
fn buddy_of<'b>(
    r: Option<&'b [BuddyInfoRecord]>,
    node: u32,
    name: &str,
) -> Option<&'b BuddyInfoRecord> {
    r?.iter().find(|b| b.node == node && b.name == name)
}

/// Free pages in blocks of pageblock order or more.
fn huge_pages(nr_free: &[u64]) -> Option<u64> {
    checked_pages(
        &nr_free
            .iter()
            .enumerate()
            .map(|(o, n)| if o >= PAGEBLOCK_ORDER as usize { *n } else { 0 })
            .collect::<Vec<_>>(),
    )
}

/// The populated zone (`node`, `name`) of zoneinfo that a line of `file` names.
fn zone_of<'z>(
    populated: &[&'z ZoneInfoRecord],
    file: &str,
    node: u32,
    name: &str,
) -> Result<&'z ZoneInfoRecord, SnapshotError> {
    populated
        .iter()
        .find(|z| z.node == node && z.name == name)
        .copied()
        .ok_or_else(|| {
            file_err(
                file,
                format!("zone {name} of node {node} is no zone of zoneinfo"),
            )
        })
}

/// Checks the files against each other before loading (see the module documentation).
pub fn check_files(files: &SnapshotFiles, r: &Readings) -> Result<(), SnapshotError> {
    let pfn_start = files.pfn_start;
    let flags_end = pfn_start
        .checked_add(files.kpageflags.len() as u64)
        .ok_or_else(|| {
            file_err(
                "meta.txt",
                format!("pfn_start {pfn_start} leaves no room for the page arrays"),
            )
        })?;
    if let Some(m) = r.meta {
        if m.pfn_start != pfn_start || m.pfn_end != flags_end {
            return Err(file_err(
                "kpageflags",
                format!(
                    "holds {} pfns but meta.txt says {}..{}",
                    files.kpageflags.len(),
                    m.pfn_start,
                    m.pfn_end
                ),
            ));
        }
    }
    if let Some(o) = r.pageblock_order.filter(|o| *o != PAGEBLOCK_ORDER) {
        return Err(file_err(
            "pagetypeinfo",
            format!("page block order {o}: the model's is {PAGEBLOCK_ORDER}"),
        ));
    }
    if let Some((i, c)) = files
        .kpagecount
        .and_then(|c| c.iter().enumerate().find(|(_, n)| **n > i32::MAX as u64))
    {
        return Err(file_err(
            "kpagecount",
            format!(
                "pfn {:#x}: map count {c} is beyond the kernel's (an int)",
                pfn_start + i as u64
            ),
        ));
    }
    let populated: Vec<&ZoneInfoRecord> = files
        .zoneinfo
        .iter()
        .filter(|z| z.present > 0 || z.spanned > 0)
        .collect();
    if populated.is_empty() {
        return Err(file_err("zoneinfo", "no zone with pages"));
    }
    let is_present = |p: u64| !has(files.kpageflags[(p - pfn_start) as usize], kpf::NOPAGE);
    for z in &populated {
        let zone = format!("zone {} of node {}", z.name, z.node);
        if z.managed > z.present || z.present > z.spanned {
            return Err(file_err(
                "zoneinfo",
                format!(
                    "{zone}: managed {} <= present {} <= spanned {} does not hold",
                    z.managed, z.present, z.spanned
                ),
            ));
        }
        let end = z.start_pfn.checked_add(z.spanned).ok_or_else(|| {
            file_err("zoneinfo", format!("{zone}: start_pfn + spanned overflows"))
        })?;
        if z.start_pfn < pfn_start || end > flags_end {
            return Err(file_err(
                "zoneinfo",
                format!(
                    "{zone} spans pfns {}..{end}, outside kpageflags' {pfn_start}..{flags_end}",
                    z.start_pfn
                ),
            ));
        }
        let shown = (z.start_pfn..end).filter(|p| is_present(*p)).count() as u64;
        if shown.saturating_add(drift_allowance(z.present)) < z.present {
            return Err(file_err(
                "kpageflags",
                format!(
                    "{zone}: {shown} present pages in its span, zoneinfo says {}",
                    z.present
                ),
            ));
        }
    }
    let mut in_zone = vec![false; files.kpageflags.len()];
    for z in &populated {
        let s = (z.start_pfn - pfn_start) as usize;
        in_zone[s..s + z.spanned as usize]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    let stray = (0..files.kpageflags.len())
        .filter(|i| !in_zone[*i] && is_present(pfn_start + *i as u64))
        .count() as u64;
    if stray > 0 {
        return Err(file_err(
            "zoneinfo",
            format!("its zones leave out {stray} present pages of kpageflags (cut short, or of another machine?)"),
        ));
    }
    for (file, readings) in [
        ("buddyinfo", r.buddyinfo),
        ("buddyinfo.post", r.buddyinfo_post),
    ] {
        let Some(readings) = readings else { continue };
        for b in readings {
            let z = zone_of(populated.as_slice(), file, b.node, &b.name)?;
            let pages = checked_pages(&b.nr_free).filter(|p| *p <= z.spanned);
            if pages.is_none() {
                return Err(file_err(
                    file,
                    format!(
                        "zone {}: its free counts come to more pages than the zone's {}",
                        b.name, z.spanned
                    ),
                ));
            }
        }
        if let Some(z) = populated
            .iter()
            .find(|z| z.present > 0 && buddy_of(Some(readings), z.node, &z.name).is_none())
        {
            return Err(file_err(
                file,
                format!(
                    "no line for zone {} of node {}, which zoneinfo has",
                    z.name, z.node
                ),
            ));
        }
    }
    for z in &populated {
        let before = buddy_of(r.buddyinfo, z.node, &z.name).and_then(|b| checked_pages(&b.nr_free));
        let after =
            buddy_of(r.buddyinfo_post, z.node, &z.name).and_then(|b| checked_pages(&b.nr_free));
        let allowed = drift_allowance(z.managed);
        let d = outside(z.free, before, after);
        if d > allowed {
            return Err(file_err(
                "zoneinfo",
                format!(
                    "zone {}: pages free {} lies {d} pages outside buddyinfo's readings (at most {allowed} allowed)",
                    z.name, z.free
                ),
            ));
        }
    }
    if let Some(pti) = files.pagetypeinfo {
        check_pagetypeinfo(pti, &populated, r)?;
    }
    Ok(())
}

/// pagetypeinfo against zoneinfo and buddyinfo: block counts that fit each zone's span,
/// free lists that add up to buddyinfo's free pages.
fn check_pagetypeinfo(
    pti: &[PagetypeInfoRecord],
    populated: &[&ZoneInfoRecord],
    r: &Readings,
) -> Result<(), SnapshotError> {
    for p in pti {
        let z = zone_of(populated, "pagetypeinfo", p.node, &p.name)?;
        let blocks = p
            .blocks
            .iter()
            .try_fold(0u64, |a, (_, n)| a.checked_add(*n));
        let span_blocks = z.spanned.div_ceil(1 << PAGEBLOCK_ORDER) + 1;
        if !matches!(blocks, Some(b) if b <= span_blocks) {
            return Err(file_err(
                "pagetypeinfo",
                format!(
                    "zone {}: {} pageblocks counted, the zone spans {span_blocks} at most",
                    p.name,
                    blocks.map_or("too many".to_string(), |b| b.to_string())
                ),
            ));
        }
        // `>100000` entries are at least 100001 blocks: a lower bound.
        let mut exact = true;
        let mut free = Some(0u64);
        for (_, counts) in &p.free {
            let c: Vec<u64> = counts
                .iter()
                .map(|n| {
                    exact &= n.is_some();
                    n.unwrap_or(100_001)
                })
                .collect();
            free = free
                .zip(checked_pages(&c))
                .and_then(|(a, b)| a.checked_add(b));
        }
        let Some(free) = free else {
            return Err(file_err(
                "pagetypeinfo",
                format!("zone {}: its free counts overflow", p.name),
            ));
        };
        let before = buddy_of(r.buddyinfo, p.node, &p.name).and_then(|b| checked_pages(&b.nr_free));
        let after =
            buddy_of(r.buddyinfo_post, p.node, &p.name).and_then(|b| checked_pages(&b.nr_free));
        let hi = before.max(after);
        let allowed = drift_allowance(z.managed);
        let d = if exact {
            outside(free, before, after)
        } else {
            hi.map_or(0, |h| free.saturating_sub(h))
        };
        if d > allowed {
            return Err(file_err(
                "pagetypeinfo",
                format!(
                    "zone {}: free lists of {free} pages lie {d} pages outside buddyinfo's readings (at most {allowed} allowed)",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the loaded machine's free pages against the buddyinfo readings; returns the
/// drift accepted per zone.
pub fn check_loaded(m: &Machine, r: &Readings) -> Result<Vec<ZoneDrift>, SnapshotError> {
    let mut out = Vec::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let node = z.node.0 as u32;
        let model = z.free_by_order();
        let reading = |rs: Option<&[BuddyInfoRecord]>, f: &dyn Fn(&[u64]) -> Option<u64>| {
            buddy_of(rs, node, z.name()).and_then(|b| f(&b.nr_free))
        };
        let bf = (
            reading(r.buddyinfo, &checked_pages),
            reading(r.buddyinfo_post, &checked_pages),
        );
        let bh = (
            reading(r.buddyinfo, &huge_pages),
            reading(r.buddyinfo_post, &huge_pages),
        );
        let free_pages = checked_pages(&model).unwrap_or(u64::MAX);
        let huge_free_pages = huge_pages(&model).unwrap_or(u64::MAX);
        let allowed = drift_allowance(z.managed_pages);
        let d = ZoneDrift {
            node,
            zone: z.name().to_string(),
            allowed,
            free_pages,
            buddyinfo_free: bf,
            free_drift: outside(free_pages, bf.0, bf.1),
            huge_free_pages,
            buddyinfo_huge: bh,
            huge_drift: outside(huge_free_pages, bh.0, bh.1),
        };
        for (what, x, drift) in [
            ("free pages", free_pages, d.free_drift),
            (
                "free pages in blocks of order >= 9",
                huge_free_pages,
                d.huge_drift,
            ),
        ] {
            if drift > allowed {
                return Err(file_err(
                    "kpageflags",
                    format!(
                        "zone {}: {x} {what} loaded, {drift} pages outside buddyinfo's readings (at most {allowed} allowed: a live machine drifts less)",
                        d.zone
                    ),
                ));
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// [`check_files`], [`load`], [`check_loaded`]: a machine from a snapshot whose files agree,
/// what loading did, and the drift the checks accepted.
pub fn load_checked(
    files: &SnapshotFiles,
    readings: &Readings,
    config: VmConfig,
) -> Result<(Machine, LoadReport, Vec<ZoneDrift>), SnapshotError> {
    check_files(files, readings)?;
    let (m, report) = load(files, config)?;
    let drift = check_loaded(&m, readings)?;
    Ok((m, report, drift))
}

const _: () = assert!(PAGEBLOCK_ORDER <= MAX_PAGE_ORDER as u32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_needs_each_key_once_and_the_model_page_size() {
        let m = parse_meta("pfn_start=1\npfn_end=100\npage_size=4096\n").unwrap();
        assert_eq!((m.pfn_start, m.pfn_end, m.page_size), (1, 100, Some(4096)));
        assert!(parse_meta("pfn_start=1\n")
            .unwrap_err()
            .to_string()
            .contains("pfn_end"));
        assert!(parse_meta("pfn_start=1\npfn_end=abc\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
        assert!(parse_meta("pfn_start=1\npfn_start=9\npfn_end=5\n")
            .unwrap_err()
            .to_string()
            .contains("a second pfn_start"));
        assert!(parse_meta("pfn_start=1\npfn_end=5\npage_size=8192\n")
            .unwrap_err()
            .to_string()
            .contains("page_size 8192"));
        assert!(parse_meta("pfn_start=5\npfn_end=5\n").is_err());
    }

    #[test]
    fn pageblock_order_is_read_and_checked_against_pages_per_block() {
        assert_eq!(
            parse_pageblock_order("Page block order: 9\nPages per block:  512\n").unwrap(),
            Some(9)
        );
        assert_eq!(parse_pageblock_order("Node 0\n").unwrap(), None);
        assert!(parse_pageblock_order("Page block order: 9\nPages per block: 8\n").is_err());
        assert!(parse_pageblock_order("Page block order: x\n").is_err());
    }

    #[test]
    fn counts_that_overflow_are_none() {
        assert_eq!(checked_pages(&[1, 1, 1]), Some(7));
        assert_eq!(checked_pages(&[u64::MAX]), Some(u64::MAX));
        assert_eq!(checked_pages(&[0, u64::MAX]), None);
        assert_eq!(checked_pages(&[u64::MAX, 1]), None);
    }

    #[test]
    fn drift_is_measured_from_the_range_of_the_readings() {
        assert_eq!(outside(5, Some(3), Some(8)), 0);
        assert_eq!(outside(1, Some(3), Some(8)), 2);
        assert_eq!(outside(10, Some(8), Some(3)), 2);
        assert_eq!(outside(10, None, None), 0);
        assert_eq!(drift_allowance(100_000), 3024);
    }
}
