//! Parsers of the `/proc` text files a snapshot holds.

use super::SnapshotError;
use crate::units::MAX_PAGE_ORDER;

/// One zone of `/proc/zoneinfo`: where it lies and how much of it the kernel manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneInfoRecord {
    /// Node id.
    pub node: u32,
    /// Zone name as printed (`DMA`, `DMA32`, `Normal`, `Movable`, `Device`).
    pub name: String,
    /// `pages free`.
    pub free: u64,
    /// `min`, `low`, `high` watermarks.
    pub min: u64,
    /// `low` watermark.
    pub low: u64,
    /// `high` watermark.
    pub high: u64,
    /// `promo` watermark (0 when the kernel does not print it).
    pub promo: u64,
    /// `boost`: the watermark boost at the time.
    pub boost: u64,
    /// `spanned`.
    pub spanned: u64,
    /// `present`.
    pub present: u64,
    /// `managed`.
    pub managed: u64,
    /// `protection: (...)`, the lowmem reserves against each higher zone.
    pub protection: Vec<u64>,
    /// `start_pfn`.
    pub start_pfn: u64,
    /// The `pagesets` section: each online CPU's per-CPU lists.
    pub pagesets: Vec<PagesetRecord>,
}

/// One CPU's entry of a zone's `pagesets` section (Linux 6.7+ prints `high_min` and
/// `high_max`; older kernels leave them 0 here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesetRecord {
    /// `cpu:`.
    pub cpu: u32,
    /// `count:`: free pages on the CPU's lists of this zone.
    pub count: u64,
    /// `high:`.
    pub high: u64,
    /// `batch:`.
    pub batch: u64,
    /// `high_min:`.
    pub high_min: u64,
    /// `high_max:`.
    pub high_max: u64,
}

fn line_err(file: &str, line: usize, msg: impl Into<String>) -> SnapshotError {
    SnapshotError::Line {
        file: file.to_string(),
        line,
        msg: msg.into(),
    }
}

fn number(file: &str, line: usize, word: Option<&str>, what: &str) -> Result<u64, SnapshotError> {
    let w = word.ok_or_else(|| line_err(file, line, format!("{what} has no value")))?;
    w.parse()
        .map_err(|_| line_err(file, line, format!("{what}: {w:?} is not a number")))
}

/// Parses `/proc/zoneinfo` (Linux 4.x–6.x layout): every zone section, populated or not.
pub fn parse_zoneinfo(file: &str, text: &str) -> Result<Vec<ZoneInfoRecord>, SnapshotError> {
    let mut zones: Vec<ZoneInfoRecord> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let l = raw.trim();
        if let Some(rest) = l.strip_prefix("Node ") {
            let (node, zone) = rest
                .split_once(", zone")
                .ok_or_else(|| line_err(file, ln, "a `Node N, zone NAME` header was expected"))?;
            let node = number(file, ln, Some(node.trim()), "node")? as u32;
            let name = zone.trim();
            if name.is_empty() {
                return Err(line_err(file, ln, "zone name missing"));
            }
            zones.push(ZoneInfoRecord {
                node,
                name: name.to_string(),
                free: 0,
                min: 0,
                low: 0,
                high: 0,
                promo: 0,
                boost: 0,
                spanned: 0,
                present: 0,
                managed: 0,
                protection: Vec::new(),
                start_pfn: 0,
                pagesets: Vec::new(),
            });
            continue;
        }
        let Some(z) = zones.last_mut() else {
            if l.is_empty() {
                continue;
            }
            return Err(line_err(file, ln, "text before the first `Node` header"));
        };
        let mut words = l.split_whitespace();
        match words.next() {
            Some("pages") if l.starts_with("pages free") => {
                z.free = number(file, ln, l.split_whitespace().nth(2), "pages free")?
            }
            Some("min") => z.min = number(file, ln, words.next(), "min")?,
            Some("low") => z.low = number(file, ln, words.next(), "low")?,
            Some("high") => z.high = number(file, ln, words.next(), "high")?,
            Some("promo") => z.promo = number(file, ln, words.next(), "promo")?,
            Some("boost") => z.boost = number(file, ln, words.next(), "boost")?,
            Some("spanned") => z.spanned = number(file, ln, words.next(), "spanned")?,
            Some("present") => z.present = number(file, ln, words.next(), "present")?,
            Some("managed") => z.managed = number(file, ln, words.next(), "managed")?,
            Some("start_pfn:") => z.start_pfn = number(file, ln, words.next(), "start_pfn")?,
            Some("cpu:") => z.pagesets.push(PagesetRecord {
                cpu: number(file, ln, words.next(), "cpu")? as u32,
                ..Default::default()
            }),
            Some(key @ ("count:" | "high:" | "batch:" | "high_min:" | "high_max:")) => {
                let v = number(file, ln, words.next(), key)?;
                let Some(p) = z.pagesets.last_mut() else {
                    return Err(line_err(file, ln, format!("{key} outside a `cpu:` entry")));
                };
                match key {
                    "count:" => p.count = v,
                    "high:" => p.high = v,
                    "batch:" => p.batch = v,
                    "high_min:" => p.high_min = v,
                    _ => p.high_max = v,
                }
            }
            Some("protection:") => {
                let inner = l
                    .strip_prefix("protection:")
                    .map(str::trim)
                    .and_then(|s| s.strip_prefix('('))
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| line_err(file, ln, "protection: `(a, b, ...)` expected"))?;
                z.protection = inner
                    .split(',')
                    .map(|w| number(file, ln, Some(w.trim()), "protection"))
                    .collect::<Result<_, _>>()?;
            }
            _ => {}
        }
    }
    if zones.is_empty() {
        return Err(line_err(file, 1, "no `Node N, zone NAME` section"));
    }
    Ok(zones)
}

/// One line of `/proc/buddyinfo`: free blocks per order of a populated zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuddyInfoRecord {
    /// Node id.
    pub node: u32,
    /// Zone name.
    pub name: String,
    /// Free blocks of each order 0..=10.
    pub nr_free: [u64; MAX_PAGE_ORDER as usize + 1],
}

/// The pages in free-block counts per order (buddyinfo's columns): Σ `nr_free[o]` · 2^o,
/// saturating (counts read from a file can be anything; `check::checked_pages` refuses
/// what overflows).
pub fn pages_in_orders(nr_free: &[u64]) -> u64 {
    nr_free.iter().enumerate().fold(0u64, |acc, (o, n)| {
        acc.saturating_add(n.saturating_mul(1u64 << o.min(63)))
    })
}

/// Parses `/proc/buddyinfo`.
pub fn parse_buddyinfo(file: &str, text: &str) -> Result<Vec<BuddyInfoRecord>, SnapshotError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let ln = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let rest = l
            .strip_prefix("Node ")
            .ok_or_else(|| line_err(file, ln, "`Node N, zone NAME counts...` expected"))?;
        let (node, rest) = rest
            .split_once(", zone")
            .ok_or_else(|| line_err(file, ln, "`, zone` expected"))?;
        let node = number(file, ln, Some(node.trim()), "node")? as u32;
        let mut words = rest.split_whitespace();
        let name = words
            .next()
            .ok_or_else(|| line_err(file, ln, "zone name missing"))?
            .to_string();
        let counts: Vec<u64> = words
            .map(|w| number(file, ln, Some(w), "free count"))
            .collect::<Result<_, _>>()?;
        if counts.len() != MAX_PAGE_ORDER as usize + 1 {
            return Err(line_err(
                file,
                ln,
                format!(
                    "{} counts, {} expected (orders 0..={MAX_PAGE_ORDER})",
                    counts.len(),
                    MAX_PAGE_ORDER + 1
                ),
            ));
        }
        let mut nr_free = [0; MAX_PAGE_ORDER as usize + 1];
        nr_free.copy_from_slice(&counts);
        out.push(BuddyInfoRecord {
            node,
            name,
            nr_free,
        });
    }
    Ok(out)
}

/// One zone of `/proc/pagetypeinfo`: free blocks per migratetype and order, and
/// pageblocks per migratetype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagetypeInfoRecord {
    /// Node id.
    pub node: u32,
    /// Zone name.
    pub name: String,
    /// Free blocks per order of each type's free list, by type name; `None` where the
    /// kernel printed `>100000` (it stops counting there).
    pub free: Vec<(String, [Option<u64>; MAX_PAGE_ORDER as usize + 1])>,
    /// Pageblocks of each type ("Number of blocks type"), by type name.
    pub blocks: Vec<(String, u64)>,
}

/// Parses `/proc/pagetypeinfo` (Linux 6.x layout, with or without a CMA column).
pub fn parse_pagetypeinfo(
    file: &str,
    text: &str,
) -> Result<Vec<PagetypeInfoRecord>, SnapshotError> {
    let mut out: Vec<PagetypeInfoRecord> = Vec::new();
    let mut block_types: Vec<String> = Vec::new();
    let zone_of = |rest: &str, ln: usize| -> Result<(u32, String, String), SnapshotError> {
        let (node, rest) = rest
            .split_once(", zone")
            .ok_or_else(|| line_err(file, ln, "`, zone` expected"))?;
        let node = number(file, ln, Some(node.trim()), "node")? as u32;
        let rest = rest.trim_start();
        let (name, rest) = match rest.split_once(',') {
            Some((n, r)) => (n.trim().to_string(), r.to_string()),
            None => {
                let mut w = rest.splitn(2, char::is_whitespace);
                let n = w.next().unwrap_or("").to_string();
                (n, w.next().unwrap_or("").to_string())
            }
        };
        if name.is_empty() {
            return Err(line_err(file, ln, "zone name missing"));
        }
        Ok((node, name, rest))
    };
    for (i, l) in text.lines().enumerate() {
        let ln = i + 1;
        if let Some(h) = l.strip_prefix("Number of blocks type") {
            block_types = h.split_whitespace().map(str::to_string).collect();
            continue;
        }
        let Some(rest) = l.strip_prefix("Node") else {
            continue;
        };
        let (node, name, rest) = zone_of(rest, ln)?;
        let idx = match out.iter().position(|r| r.node == node && r.name == name) {
            Some(i) => i,
            None => {
                out.push(PagetypeInfoRecord {
                    node,
                    name,
                    free: Vec::new(),
                    blocks: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(t) = rest.trim_start().strip_prefix("type") {
            let mut words = t.split_whitespace();
            let ty = words
                .next()
                .ok_or_else(|| line_err(file, ln, "migratetype name missing"))?
                .to_string();
            let counts: Vec<Option<u64>> = words
                .map(|w| {
                    if w.starts_with('>') {
                        Ok(None)
                    } else {
                        number(file, ln, Some(w), "free count").map(Some)
                    }
                })
                .collect::<Result<_, _>>()?;
            if counts.len() != MAX_PAGE_ORDER as usize + 1 {
                return Err(line_err(
                    file,
                    ln,
                    format!("{} counts, {} expected", counts.len(), MAX_PAGE_ORDER + 1),
                ));
            }
            let mut a = [None; MAX_PAGE_ORDER as usize + 1];
            a.copy_from_slice(&counts);
            out[idx].free.push((ty, a));
        } else {
            if block_types.is_empty() {
                return Err(line_err(
                    file,
                    ln,
                    "block counts before the `Number of blocks type` header",
                ));
            }
            let counts: Vec<u64> = rest
                .split_whitespace()
                .map(|w| number(file, ln, Some(w), "block count"))
                .collect::<Result<_, _>>()?;
            if counts.len() != block_types.len() {
                return Err(line_err(
                    file,
                    ln,
                    format!(
                        "{} block counts for {} types",
                        counts.len(),
                        block_types.len()
                    ),
                ));
            }
            out[idx].blocks = block_types.iter().cloned().zip(counts).collect();
        }
    }
    if out.is_empty() {
        return Err(line_err(file, 1, "no `Node N, zone NAME` line"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONEINFO: &str = "Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 971
  pages free     3840
        boost    0
        min      9
        low      12
        high     15
        spanned  4095
        present  3998
        managed  3840
        protection: (0, 2997, 23054, 23054, 23054)
  start_pfn:           1
Node 0, zone    DMA32
  pages free     772917
        min      1234
        low      1500
        high     1800
        spanned  1044480
        present  782336
        managed  772917
        protection: (0, 0, 20057, 20057, 20057)
  start_pfn:           4096
";

    #[test]
    fn zoneinfo_gives_ranges_sizes_and_watermarks() {
        let z = parse_zoneinfo("zoneinfo", ZONEINFO).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(
            (
                z[0].name.as_str(),
                z[0].start_pfn,
                z[0].spanned,
                z[0].present,
                z[0].managed
            ),
            ("DMA", 1, 4095, 3998, 3840)
        );
        assert_eq!(
            (z[0].free, z[0].min, z[0].low, z[0].high),
            (3840, 9, 12, 15)
        );
        assert_eq!(z[0].protection, vec![0, 2997, 23054, 23054, 23054]);
        assert_eq!((z[1].name.as_str(), z[1].start_pfn), ("DMA32", 4096));
    }

    #[test]
    fn zoneinfo_errors_name_the_line() {
        let bad = ZONEINFO.replace("spanned  4095", "spanned  40x5");
        assert_eq!(
            parse_zoneinfo("zoneinfo", &bad).unwrap_err().to_string(),
            "zoneinfo: line 9: spanned: \"40x5\" is not a number"
        );
        assert!(parse_zoneinfo("zoneinfo", "garbage\n").is_err());
        assert!(parse_zoneinfo("zoneinfo", "").is_err());
    }

    #[test]
    fn pagetypeinfo_gives_free_lists_and_block_counts() {
        let t = "Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 
Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0 
Node    0, zone   Normal, type      Movable >100000   1763     33      2      4      4      4      2      3      1    754 
Node    0, zone   Normal, type  Reclaimable      0      0      0      1      0      0      0      1      0      0      0 

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate 
Node 0, zone      DMA            1            7            0            0            0 
Node 0, zone   Normal          128         5623          137            0            0 
";
        let p = parse_pagetypeinfo("pagetypeinfo", t).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "Normal");
        assert_eq!(p[1].free[0].0, "Movable");
        assert_eq!(p[1].free[0].1[0], None, ">100000 is not a count");
        assert_eq!(p[1].free[0].1[10], Some(754));
        assert_eq!(p[1].blocks[0], ("Unmovable".to_string(), 128));
        assert_eq!(p[1].blocks[2], ("Reclaimable".to_string(), 137));
        let bad = t.replace("5623", "56x3");
        assert_eq!(
            parse_pagetypeinfo("pagetypeinfo", &bad)
                .unwrap_err()
                .to_string(),
            "pagetypeinfo: line 11: block count: \"56x3\" is not a number"
        );
        assert!(parse_pagetypeinfo("pagetypeinfo", "garbage\n").is_err());
    }

    #[test]
    fn buddyinfo_reads_eleven_orders_and_refuses_others() {
        let t = "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \nNode 0, zone   Normal 516423   1038   1113    716    940    374    296     92     20      2   1776 \n";
        let b = parse_buddyinfo("buddyinfo", t).unwrap();
        assert_eq!(b[1].name, "Normal");
        assert_eq!(b[1].nr_free[0], 516423);
        assert_eq!(b[1].nr_free[10], 1776);
        let short = "Node 0, zone DMA 1 2 3\n";
        assert_eq!(
            parse_buddyinfo("buddyinfo", short).unwrap_err().to_string(),
            "buddyinfo: line 1: 3 counts, 11 expected (orders 0..=10)"
        );
    }
}

/// One cache of `/proc/slabinfo` (version 2.1, SLUB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabInfoRecord {
    /// The cache's name.
    pub name: String,
    /// `<active_objs>`: objects allocated.
    pub active_objs: u64,
    /// `<num_objs>`: room for objects in the cache's slabs.
    pub num_objs: u64,
    /// `<objsize>` in bytes.
    pub objsize: u64,
    /// `<objperslab>`.
    pub objperslab: u64,
    /// `<pagesperslab>`.
    pub pagesperslab: u64,
    /// `<num_slabs>` of the `slabdata` columns.
    pub num_slabs: u64,
}

/// Parses `/proc/slabinfo` (version 2.1, as SLUB prints it: `name active num size objperslab
/// pagesperslab : tunables ... : slabdata active_slabs num_slabs sharedavail`).
pub fn parse_slabinfo(file: &str, text: &str) -> Result<Vec<SlabInfoRecord>, SnapshotError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        if i == 0 {
            if !raw.starts_with("slabinfo - version: 2.") {
                return Err(line_err(file, ln, "not slabinfo version 2.x"));
            }
            continue;
        }
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = raw.split_whitespace().collect();
        let n = |k: usize, what: &str| number(file, ln, w.get(k).copied(), what);
        let data = w
            .iter()
            .position(|x| *x == "slabdata")
            .ok_or_else(|| line_err(file, ln, "no slabdata columns"))?;
        let r = SlabInfoRecord {
            name: w[0].to_string(),
            active_objs: n(1, "active_objs")?,
            num_objs: n(2, "num_objs")?,
            objsize: n(3, "objsize")?,
            objperslab: n(4, "objperslab")?,
            pagesperslab: n(5, "pagesperslab")?,
            num_slabs: n(data + 2, "num_slabs")?,
        };
        if r.active_objs > r.num_objs
            || r.objperslab == 0
            || !r.pagesperslab.is_power_of_two()
            || r.pagesperslab > 1 << MAX_PAGE_ORDER
            || r.num_objs > r.num_slabs.saturating_mul(r.objperslab)
        {
            return Err(line_err(
                file,
                ln,
                format!(
                    "{}: objects, slabs and pages per slab do not add up",
                    r.name
                ),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// Parses `/proc/sys/fs/dentry-state` or `inode-state`: the first two numbers (objects
/// and unused objects).
pub fn parse_fs_state(file: &str, text: &str) -> Result<(u64, u64), SnapshotError> {
    let mut w = text.split_whitespace();
    let n = number(file, 1, w.next(), "the object count")?;
    let unused = number(file, 1, w.next(), "the unused count")?;
    if unused > n {
        return Err(line_err(file, 1, format!("{unused} unused of {n}")));
    }
    Ok((n, unused))
}
