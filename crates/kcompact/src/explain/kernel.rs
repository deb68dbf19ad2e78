//! Kernel versions, what a report's format says about its kernel, and the three sets of
//! allocator rules a report can be judged by.
//!
//! The allocator changed under the same report format: before 4.4 a high-order request had
//! to find enough free pages in blocks of its order and above (the watermark halved per
//! order); from 4.4 it needs one free block of its order on a list it may use; 6.3 replaced
//! `__GFP_ATOMIC` and ALLOC_HARDER with ALLOC_NON_BLOCK / ALLOC_MIN_RESERVE. A report names
//! its kernel in the `CPU: … Comm: … <release>` line (3.10+); older ones are placed by
//! their format (each marker below cites the kernel change it follows).

use std::fmt;

/// A kernel release `major.minor.patch` (the suffix after the numbers is not kept).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct KernelVersion(pub u32, pub u32, pub u32);

impl KernelVersion {
    /// Reads the leading `major.minor[.patch]` of a release string (`6.11.11-valve17`,
    /// `3.13.0-29-generic`, `5.10.0-rc1+`, `6.2-generic-64k`). None if it does not start so.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut nums = [0u32; 3];
        let mut rest = release;
        for (i, n) in nums.iter_mut().enumerate() {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 4 {
                if i < 2 {
                    return None;
                }
                break;
            }
            *n = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            match rest.strip_prefix('.') {
                Some(r) if i < 2 => rest = r,
                _ => break,
            }
            if i == 1 && !rest.starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
        }
        if !(2..=9).contains(&nums[0]) {
            return None;
        }
        Some(KernelVersion(nums[0], nums[1], nums[2]))
    }

    /// The first version after every 2.x/3.x/…/9.x release: an open upper bound.
    pub const MAX: KernelVersion = KernelVersion(99, 0, 0);
    /// Older than any report format this module reads.
    pub const MIN: KernelVersion = KernelVersion(2, 6, 0);
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.2 == 0 {
            write!(f, "{}.{}", self.0, self.1)
        } else {
            write!(f, "{}.{}.{}", self.0, self.1, self.2)
        }
    }
}

/// Versions `lo` (inclusive) up to `hi` (exclusive).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionRange {
    /// The oldest version the evidence allows.
    pub lo: KernelVersion,
    /// The first version the evidence excludes.
    pub hi: KernelVersion,
}

impl VersionRange {
    /// Every version.
    pub const ANY: VersionRange = VersionRange {
        lo: KernelVersion::MIN,
        hi: KernelVersion::MAX,
    };

    /// Just `v`.
    pub fn exactly(v: KernelVersion) -> VersionRange {
        VersionRange {
            lo: v,
            hi: KernelVersion(v.0, v.1, v.2 + 1),
        }
    }

    /// True if some version lies in both ranges.
    pub fn overlaps(&self, lo: KernelVersion, hi: KernelVersion) -> bool {
        self.lo < hi && lo < self.hi
    }

    /// True if every version of the range lies in `lo..hi`.
    pub fn within(&self, lo: KernelVersion, hi: KernelVersion) -> bool {
        lo <= self.lo && self.hi <= hi
    }

    /// Narrows the range to versions `>= v`.
    pub fn at_least(&mut self, v: KernelVersion) {
        self.lo = self.lo.max(v);
    }

    /// Narrows the range to versions `< v`.
    pub fn below(&mut self, v: KernelVersion) {
        self.hi = self.hi.min(v);
    }

    /// True if no version is left (the markers contradict each other).
    pub fn is_empty(&self) -> bool {
        self.lo >= self.hi
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hi == VersionRange::exactly(self.lo).hi {
            return write!(f, "{}", self.lo);
        }
        match (self.lo == KernelVersion::MIN, self.hi == KernelVersion::MAX) {
            (true, true) => f.write_str("any version"),
            (true, false) => write!(f, "older than {}", self.hi),
            (false, true) => write!(f, "{} or later", self.lo),
            (false, false) => write!(f, "{} to before {}", self.lo, self.hi),
        }
    }
}

/// Which allocator rules judged the request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Rules {
    /// Before 4.4: `__GFP_WAIT`, ALLOC_HIGH / ALLOC_HARDER, MIGRATE_RESERVE, and the
    /// per-order watermark of `__zone_watermark_ok()` (free pages in blocks below each
    /// order taken away, the mark halved per order).
    Pre44,
    /// 4.4 to 6.2: `__GFP_DIRECT_RECLAIM`, `__GFP_ATOMIC` → ALLOC_HARDER, the high-atomic
    /// reserve, and the one-free-block check of `__zone_watermark_ok()`.
    V44,
    /// 6.3 and later: ALLOC_MIN_RESERVE / ALLOC_NON_BLOCK (`alloc_flags_slowpath()`), the
    /// model's own rules.
    V63,
}

impl Rules {
    /// The versions each rule set covers.
    pub fn range(self) -> (KernelVersion, KernelVersion) {
        match self {
            Rules::Pre44 => (KernelVersion::MIN, KernelVersion(4, 4, 0)),
            Rules::V44 => (KernelVersion(4, 4, 0), KernelVersion(6, 3, 0)),
            Rules::V63 => (KernelVersion(6, 3, 0), KernelVersion::MAX),
        }
    }

    /// The rule sets a version range may fall under, oldest first.
    pub fn candidates(range: &VersionRange) -> Vec<Rules> {
        [Rules::Pre44, Rules::V44, Rules::V63]
            .into_iter()
            .filter(|r| {
                let (lo, hi) = r.range();
                range.overlaps(lo, hi)
            })
            .collect()
    }

    /// How the text names the rule set.
    pub fn label(self) -> &'static str {
        match self {
            Rules::Pre44 => "Linux before 4.4",
            Rules::V44 => "Linux 4.4 to 6.2",
            Rules::V63 => "Linux 6.3 and later",
        }
    }
}

/// What a report's format says about its kernel, each marker with the version bound it
/// implies (`lo` inclusive, `hi` exclusive) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// What was seen.
    pub what: &'static str,
    /// The bound it sets: versions at least this.
    pub lo: Option<KernelVersion>,
    /// The bound it sets: versions below this.
    pub hi: Option<KernelVersion>,
}

/// The markers this module knows, by the text that shows them.
pub mod markers {
    use super::{KernelVersion as V, Marker};

    /// `page allocation failure. order:` (a full stop): `__alloc_pages_slowpath()`'s own
    /// printk before `warn_alloc_failed()` took over in 2.6.39.
    pub const FAILURE_DOT: Marker = Marker {
        what: "`page allocation failure.` with a full stop",
        lo: None,
        hi: Some(V(2, 6, 39)),
    };
    /// `page allocation failure: order:` (a colon): `warn_alloc_failed()` (2.6.39).
    pub const FAILURE_COLON: Marker = Marker {
        what: "`page allocation failure:` with a colon",
        lo: Some(V(2, 6, 39)),
        hi: None,
    };
    /// `mode:0x…(NAMES)`: `%pGg` exists from 4.5.
    pub const MODE_NAMES: Marker = Marker {
        what: "gfp names after mode:",
        lo: Some(V(4, 5, 0)),
        hi: None,
    };
    /// `mode:0x…` without names: every kernel from 4.7 on prints them (`%pGg`).
    pub const MODE_HEX_ONLY: Marker = Marker {
        what: "a gfp mask without names",
        lo: None,
        hi: Some(V(4, 7, 0)),
    };
    /// `Pid: N, comm: X`: the x86 `dump_stack()` header before `dump_stack_print_info()`
    /// (3.10) printed `CPU: N PID: N Comm: X` on every architecture.
    pub const PID_COMM_HEADER: Marker = Marker {
        what: "a `Pid: N, comm:` header",
        lo: None,
        hi: Some(V(3, 10, 0)),
    };
    /// `CPU: N PID: N Comm: X`: `dump_stack_print_info()` (3.10).
    pub const CPU_PID_COMM: Marker = Marker {
        what: "a `CPU: N PID: N Comm:` line",
        lo: Some(V(3, 10, 0)),
        hi: None,
    };
    /// Buddy-line letter R: MIGRATE_RESERVE, removed in 4.4.
    pub const LETTER_R: Marker = Marker {
        what: "migratetype letter R (MIGRATE_RESERVE)",
        lo: None,
        hi: Some(V(4, 4, 0)),
    };
    /// Buddy-line letter H: MIGRATE_HIGHATOMIC, added in 4.4.
    pub const LETTER_H: Marker = Marker {
        what: "migratetype letter H (MIGRATE_HIGHATOMIC)",
        lo: Some(V(4, 4, 0)),
        hi: None,
    };
    /// Zone line without `managed:`: `managed_pages` appeared in 3.8.
    pub const NO_MANAGED: Marker = Marker {
        what: "zone lines without managed:",
        lo: None,
        hi: Some(V(3, 8, 0)),
    };
    /// Zone line with `reserved_highatomic:`: the high-atomic reserve came with 4.4.
    pub const RESERVED_HIGHATOMIC: Marker = Marker {
        what: "zone lines with reserved_highatomic:",
        lo: Some(V(4, 4, 0)),
        hi: None,
    };
    /// Zone line with `boost:`: watermark boosting came with 5.0.
    pub const BOOST: Marker = Marker {
        what: "zone lines with boost:",
        lo: Some(V(5, 0, 0)),
        hi: None,
    };
    /// Zone line with `free_highatomic:`: printed only by kernels that count the free
    /// high-atomic pages, well after 6.3.
    pub const FREE_HIGHATOMIC: Marker = Marker {
        what: "zone lines with free_highatomic:",
        lo: Some(V(6, 3, 0)),
        hi: None,
    };
    /// Zone line with `writepending:` or a per-node `Node N active_anon:` line: node-based
    /// LRU accounting (4.8).
    pub const NODE_LRU: Marker = Marker {
        what: "per-node LRU lines (writepending:, `Node N active_anon:`)",
        lo: Some(V(4, 8, 0)),
        hi: None,
    };
    /// Call trace names `warn_alloc_failed`, renamed `warn_alloc` in 4.9.
    pub const TRACE_WARN_ALLOC_FAILED: Marker = Marker {
        what: "warn_alloc_failed in the call trace",
        lo: None,
        hi: Some(V(4, 9, 0)),
    };
    /// Call trace names `warn_alloc` (4.9).
    pub const TRACE_WARN_ALLOC: Marker = Marker {
        what: "warn_alloc in the call trace",
        lo: Some(V(4, 9, 0)),
        hi: None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_release_strings() {
        assert_eq!(
            KernelVersion::parse("6.11.11-valve17-1-neptune"),
            Some(KernelVersion(6, 11, 11))
        );
        assert_eq!(
            KernelVersion::parse("3.13.0-29-generic"),
            Some(KernelVersion(3, 13, 0))
        );
        assert_eq!(
            KernelVersion::parse("5.10.0-rc1+"),
            Some(KernelVersion(5, 10, 0))
        );
        assert_eq!(
            KernelVersion::parse("6.2-generic-64k"),
            Some(KernelVersion(6, 2, 0))
        );
        assert_eq!(
            KernelVersion::parse("2.6.38-10-server"),
            Some(KernelVersion(2, 6, 38))
        );
        assert_eq!(KernelVersion::parse("#1"), None);
        assert_eq!(KernelVersion::parse("G"), None);
        assert_eq!(KernelVersion::parse("1.2.3"), None);
    }

    #[test]
    fn rule_sets_follow_the_version_range() {
        let r = VersionRange::exactly(KernelVersion(3, 13, 0));
        assert_eq!(Rules::candidates(&r), vec![Rules::Pre44]);
        let r = VersionRange::exactly(KernelVersion(6, 2, 0));
        assert_eq!(Rules::candidates(&r), vec![Rules::V44]);
        let r = VersionRange::exactly(KernelVersion(6, 3, 0));
        assert_eq!(Rules::candidates(&r), vec![Rules::V63]);
        assert_eq!(Rules::candidates(&VersionRange::ANY).len(), 3);
    }
}
