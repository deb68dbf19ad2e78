//! GFP flags as a report prints them: the names of `%pGg` (include/trace/events/mmflags.h,
//! 4.5 and later) or the bare hex of older kernels, whose bits moved between versions.
//!
//! The bit table below holds each flag's bit and the versions it held it, from the
//! `___GFP_*` definitions of include/linux/gfp.h (2.6.24 to 6.2) and
//! include/linux/gfp_types.h (6.0 and later): 3.13 and earlier (`__GFP_WAIT` at 0x10),
//! 4.4–4.9 (`__GFP_DIRECT_RECLAIM` 0x400000, `__GFP_KSWAPD_RECLAIM` 0x2000000), 4.10–4.13
//! (`__GFP_OTHER_NODE` gone), 4.15–4.19 (`__GFP_COLD` gone, the rest shifted down), 5.4–6.2
//! (the reshuffle that made GFP_KERNEL 0xcc0) and 6.3 (`__GFP_ATOMIC` gone). A bit in a
//! version no entry covers (for instance 4.20–5.3, where the reshuffle happened) is left
//! unknown rather than guessed; those kernels print the names anyway.
//!
//! Names carry the meaning: each is mapped to the model's [`Gfp`] bits (the 6.x layout),
//! `__GFP_ATOMIC` kept aside (it has no 6.x bit), `__GFP_WAIT` read as direct reclaim and
//! the absence of `__GFP_NO_KSWAPD` as `__GFP_KSWAPD_RECLAIM`.

use super::kernel::{KernelVersion as V, Rules, VersionRange};
use crate::gfp::Gfp;

/// One flag's bit in one span of versions (`lo` inclusive, `hi` exclusive).
struct BitName {
    bit: u32,
    name: &'static str,
    lo: V,
    hi: V,
}

const fn b(bit: u32, name: &'static str, lo: V, hi: V) -> BitName {
    BitName { bit, name, lo, hi }
}

const ANY: V = V::MIN;
const END: V = V::MAX;
const V2624: V = V(2, 6, 24);
const V2631: V = V(2, 6, 31);
const V2638: V = V(2, 6, 38);
const V2639: V = V(2, 6, 39);
const V36: V = V(3, 6, 0);
const V38: V = V(3, 8, 0);
const V315: V = V(3, 15, 0);
const V32: V = V(3, 2, 0);
const V44: V = V(4, 4, 0);
const V45: V = V(4, 5, 0);
const V410: V = V(4, 10, 0);
const V413: V = V(4, 13, 0);
const V414: V = V(4, 14, 0);
const V415: V = V(4, 15, 0);
const V420: V = V(4, 20, 0);
const V54: V = V(5, 4, 0);
const V63: V = V(6, 3, 0);

/// The `___GFP_*` values by version (see the module documentation for the sources).
const BITS: &[BitName] = &[
    b(0x1, "__GFP_DMA", ANY, END),
    b(0x2, "__GFP_HIGHMEM", ANY, END),
    b(0x4, "__GFP_DMA32", ANY, END),
    b(0x8, "__GFP_MOVABLE", V2631, END),
    b(0x10, "__GFP_WAIT", ANY, V44),
    b(0x10, "__GFP_RECLAIMABLE", V44, END),
    b(0x20, "__GFP_HIGH", ANY, END),
    b(0x40, "__GFP_IO", ANY, END),
    b(0x80, "__GFP_FS", ANY, END),
    b(0x100, "__GFP_COLD", V2624, V415),
    b(0x100, "__GFP_WRITE", V415, V420),
    b(0x100, "__GFP_ZERO", V54, END),
    b(0x200, "__GFP_NOWARN", V2624, V420),
    b(0x200, "__GFP_ATOMIC", V54, V63),
    b(0x400, "__GFP_REPEAT", V2624, V413),
    b(0x400, "__GFP_RETRY_MAYFAIL", V413, V420),
    b(0x400, "__GFP_DIRECT_RECLAIM", V54, END),
    b(0x800, "__GFP_NOFAIL", V2624, V420),
    b(0x800, "__GFP_KSWAPD_RECLAIM", V54, END),
    b(0x1000, "__GFP_NORETRY", V2624, V420),
    b(0x1000, "__GFP_WRITE", V54, END),
    b(0x2000, "__GFP_MEMALLOC", V36, V420),
    b(0x2000, "__GFP_NOWARN", V54, END),
    b(0x4000, "__GFP_COMP", V2624, V420),
    b(0x4000, "__GFP_RETRY_MAYFAIL", V54, END),
    b(0x8000, "__GFP_ZERO", V2624, V420),
    b(0x8000, "__GFP_NOFAIL", V54, END),
    b(0x10000, "__GFP_NOMEMALLOC", V2624, V420),
    b(0x10000, "__GFP_NORETRY", V54, END),
    b(0x20000, "__GFP_HARDWALL", V2624, V420),
    b(0x20000, "__GFP_MEMALLOC", V54, END),
    b(0x40000, "__GFP_THISNODE", V2624, V420),
    b(0x40000, "__GFP_COMP", V54, END),
    b(0x80000, "__GFP_RECLAIMABLE", V2624, V44),
    b(0x80000, "__GFP_ATOMIC", V44, V420),
    b(0x80000, "__GFP_NOMEMALLOC", V54, END),
    b(0x100000, "__GFP_KMEMCG", V38, V315),
    b(0x100000, "__GFP_NOACCOUNT", V44, V45),
    b(0x100000, "__GFP_ACCOUNT", V45, V420),
    b(0x100000, "__GFP_HARDWALL", V54, END),
    b(0x200000, "__GFP_NOTRACK", V2631, V414),
    b(0x200000, "__GFP_DIRECT_RECLAIM", V415, V420),
    b(0x200000, "__GFP_THISNODE", V54, END),
    b(0x400000, "__GFP_NO_KSWAPD", V2638, V44),
    b(0x400000, "__GFP_DIRECT_RECLAIM", V44, V415),
    b(0x400000, "__GFP_KSWAPD_RECLAIM", V415, V420),
    b(0x400000, "__GFP_ACCOUNT", V54, END),
    b(0x800000, "__GFP_OTHER_NODE", V2639, V410),
    b(0x800000, "__GFP_WRITE", V410, V415),
    b(0x1000000, "__GFP_WRITE", V32, V410),
    b(0x1000000, "__GFP_KSWAPD_RECLAIM", V410, V415),
    b(0x2000000, "__GFP_KSWAPD_RECLAIM", V44, V410),
];

/// Composite names in the order `show_gfp_flags()` tries them (most bits first), each as
/// the single flags it stands for. `RECLAIM` stands for `__GFP_WAIT` before 4.4 and for
/// `__GFP_DIRECT_RECLAIM|__GFP_KSWAPD_RECLAIM` after; `eras` says which rule sets define
/// the name (bit 0: before 4.4, bit 1: 4.4–6.2, bit 2: 6.3 on).
const COMPOSITES: &[(&str, &[&str], u8)] = &[
    (
        "GFP_TRANSHUGE",
        &[
            "RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NORETRY",
            "__GFP_NOWARN",
            "__GFP_NO_KSWAPD",
        ],
        0b001,
    ),
    (
        "GFP_TRANSHUGE",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NOWARN",
        ],
        0b110,
    ),
    (
        "GFP_TRANSHUGE_LIGHT",
        &[
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NOWARN",
        ],
        0b110,
    ),
    (
        "GFP_HIGHUSER_MOVABLE",
        &[
            "RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
        ],
        0b111,
    ),
    (
        "GFP_HIGHUSER",
        &[
            "RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
        ],
        0b111,
    ),
    (
        "GFP_USER",
        &["RECLAIM", "__GFP_IO", "__GFP_FS", "__GFP_HARDWALL"],
        0b111,
    ),
    (
        "GFP_TEMPORARY",
        &["RECLAIM", "__GFP_IO", "__GFP_FS", "__GFP_RECLAIMABLE"],
        0b011,
    ),
    (
        "GFP_KERNEL_ACCOUNT",
        &["RECLAIM", "__GFP_IO", "__GFP_FS", "__GFP_ACCOUNT"],
        0b110,
    ),
    ("GFP_KERNEL", &["RECLAIM", "__GFP_IO", "__GFP_FS"], 0b111),
    ("GFP_NOFS", &["RECLAIM", "__GFP_IO"], 0b111),
    ("GFP_ATOMIC", &["__GFP_HIGH"], 0b001),
    (
        "GFP_ATOMIC",
        &["__GFP_HIGH", "__GFP_ATOMIC", "__GFP_KSWAPD_RECLAIM"],
        0b010,
    ),
    ("GFP_ATOMIC", &["__GFP_HIGH", "__GFP_KSWAPD_RECLAIM"], 0b100),
    ("GFP_NOIO", &["RECLAIM"], 0b111),
    ("GFP_NOWAIT", &["__GFP_KSWAPD_RECLAIM"], 0b110),
    ("GFP_DMA", &["__GFP_DMA"], 0b110),
    ("GFP_DMA32", &["__GFP_DMA32"], 0b110),
    ("__GFP_RECLAIM", &["RECLAIM"], 0b110),
];

fn era_bit(rules: Rules) -> u8 {
    match rules {
        Rules::Pre44 => 0b001,
        Rules::V44 => 0b010,
        Rules::V63 => 0b100,
    }
}

/// A composite's single flags under `rules` (`RECLAIM` expanded).
fn expand(parts: &[&'static str], rules: Rules) -> Vec<&'static str> {
    let mut out = Vec::new();
    for p in parts {
        match (*p, rules) {
            ("RECLAIM", Rules::Pre44) => out.push("__GFP_WAIT"),
            ("RECLAIM", _) => out.extend(["__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM"]),
            (p, _) => out.push(p),
        }
    }
    out
}

/// What a report's gfp mask means, in the model's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GfpMeaning {
    /// The flags that matter to the allocator, in the model's (6.x) bits.
    pub sem: Gfp,
    /// `__GFP_ATOMIC` (4.4–6.2: ALLOC_HARDER for callers that cannot sleep).
    pub atomic: bool,
    /// The names, composite first, as the report printed them or as its kernel would.
    pub names: Vec<String>,
    /// Bits (of the hex mask) no table entry names for this kernel.
    pub unknown_bits: u32,
    /// Printed names this module does not know.
    pub unknown_names: Vec<String>,
    /// Where the names came from.
    pub source: GfpSource,
}

/// Where a [`GfpMeaning`]'s names came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GfpSource {
    /// The report printed them (`mode:0x…(NAMES)`).
    Printed,
    /// Decoded from the hex with the bit table of the report's kernel.
    Decoded,
}

/// The single-flag names the hex `mask` holds in every version of `range` (the bits the
/// versions disagree on, or no entry covers, are returned as unknown bits).
pub fn decode_bits(mask: u32, range: &VersionRange) -> (Vec<&'static str>, u32) {
    let mut names = Vec::new();
    let mut unknown = 0u32;
    for bit in (0..32).map(|i| 1u32 << i).filter(|b| mask & b != 0) {
        let entries: Vec<&BitName> = BITS
            .iter()
            .filter(|e| e.bit == bit && range.overlaps(e.lo, e.hi))
            .collect();
        let covered = entries.iter().any(|e| range.within(e.lo, e.hi));
        match (entries.as_slice(), covered) {
            ([e], true) => names.push(e.name),
            _ => unknown |= bit,
        }
    }
    (names, unknown)
}

/// The composite-first form of single flag names, the way `show_gfp_flags()` prints them.
fn compose(singles: &[&'static str], rules: Rules) -> Vec<String> {
    let mut rest: Vec<&str> = singles.to_vec();
    let mut out = Vec::new();
    for (name, parts, eras) in COMPOSITES {
        if eras & era_bit(rules) == 0 {
            continue;
        }
        let parts = expand(parts, rules);
        if parts.iter().all(|p| rest.contains(p)) {
            rest.retain(|r| !parts.contains(r));
            out.push(name.to_string());
        }
    }
    out.extend(rest.iter().map(|s| s.to_string()));
    out
}

/// The meaning of a hex mask decoded with the bit table of `range`, named the way kernels
/// of `rules` name them.
pub fn from_hex(mask: u32, range: &VersionRange, rules: Rules) -> GfpMeaning {
    let (singles, unknown_bits) = decode_bits(mask, range);
    let mut names = compose(&singles, rules);
    if unknown_bits != 0 {
        names.push(format!("{unknown_bits:#x}"));
    }
    let (sem, atomic) = meaning_of(&singles, rules);
    GfpMeaning {
        sem,
        atomic,
        names,
        unknown_bits,
        unknown_names: Vec::new(),
        source: GfpSource::Decoded,
    }
}

/// The meaning of printed `%pGg` names (`GFP_KERNEL|__GFP_COMP`, `none`, a trailing
/// `0x…` for bits without a name).
pub fn from_names(text: &str, range: &VersionRange, rules: Rules) -> GfpMeaning {
    let mut singles: Vec<&str> = Vec::new();
    let mut unknown_names = Vec::new();
    let mut unknown_bits = 0u32;
    let parts: Vec<&str> = text
        .split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for p in &parts {
        if *p == "none" {
            continue;
        }
        if let Some(hex) = p.strip_prefix("0x") {
            match u32::from_str_radix(hex, 16) {
                Ok(v) => unknown_bits |= v,
                Err(_) => unknown_names.push(p.to_string()),
            }
            continue;
        }
        // The composite as this rule set defines it, else as any other does.
        let comp = COMPOSITES
            .iter()
            .find(|(n, _, e)| n == p && e & era_bit(rules) != 0)
            .or_else(|| COMPOSITES.iter().find(|(n, _, _)| n == p));
        if let Some((name, flags, _)) = comp {
            singles.extend(expand(flags, rules));
            if *name == "GFP_TRANSHUGE"
                && range.overlaps(V(4, 5, 0), V(4, 8, 0))
                && !range.within(V(4, 8, 0), V::MAX)
            {
                // Before 4.8 GFP_TRANSHUGE also held __GFP_NORETRY.
                singles.push("__GFP_NORETRY");
            }
        } else if KNOWN_SINGLES.contains(p) {
            singles.push(p);
        } else {
            unknown_names.push(p.to_string());
        }
    }
    let (sem, atomic) = meaning_of(&singles, rules);
    GfpMeaning {
        sem,
        atomic,
        names: parts.iter().map(|s| s.to_string()).collect(),
        unknown_bits,
        unknown_names,
        source: GfpSource::Printed,
    }
}

/// Every single-flag name any kernel prints.
const KNOWN_SINGLES: &[&str] = &[
    "__GFP_DMA",
    "__GFP_HIGHMEM",
    "__GFP_DMA32",
    "__GFP_MOVABLE",
    "__GFP_RECLAIMABLE",
    "__GFP_HIGH",
    "__GFP_IO",
    "__GFP_FS",
    "__GFP_ZERO",
    "__GFP_ATOMIC",
    "__GFP_DIRECT_RECLAIM",
    "__GFP_KSWAPD_RECLAIM",
    "__GFP_RECLAIM",
    "__GFP_WRITE",
    "__GFP_NOWARN",
    "__GFP_RETRY_MAYFAIL",
    "__GFP_REPEAT",
    "__GFP_NOFAIL",
    "__GFP_NORETRY",
    "__GFP_MEMALLOC",
    "__GFP_COMP",
    "__GFP_NOMEMALLOC",
    "__GFP_HARDWALL",
    "__GFP_THISNODE",
    "__GFP_ACCOUNT",
    "__GFP_NOACCOUNT",
    "__GFP_KMEMCG",
    "__GFP_COLD",
    "__GFP_NOTRACK",
    "__GFP_OTHER_NODE",
    "__GFP_NOLOCKDEP",
    "__GFP_ZEROTAGS",
    "__GFP_SKIP_ZERO",
    "__GFP_SKIP_KASAN",
    "__GFP_SKIP_KASAN_POISON",
    "__GFP_SKIP_KASAN_UNPOISON",
    "__GFP_NO_OBJ_EXT",
    "__GFP_WAIT",
    "__GFP_NO_KSWAPD",
];

/// The model's bits for single flag names, `__GFP_ATOMIC` apart. Before 4.4 a request woke
/// kswapd unless it said `__GFP_NO_KSWAPD`; `__GFP_WAIT` was the right to reclaim.
fn meaning_of(singles: &[&str], rules: Rules) -> (Gfp, bool) {
    let mut g = Gfp::NONE;
    let mut atomic = false;
    for s in singles {
        let add = match *s {
            "__GFP_DMA" => Gfp::DMA,
            "__GFP_HIGHMEM" => Gfp::HIGHMEM,
            "__GFP_DMA32" => Gfp::DMA32,
            "__GFP_MOVABLE" => Gfp::MOVABLE,
            "__GFP_RECLAIMABLE" => Gfp::RECLAIMABLE,
            "__GFP_HIGH" => Gfp::HIGH,
            "__GFP_IO" => Gfp::IO,
            "__GFP_FS" => Gfp::FS,
            "__GFP_ZERO" => Gfp::ZERO,
            "__GFP_DIRECT_RECLAIM" | "__GFP_WAIT" => Gfp::DIRECT_RECLAIM,
            "__GFP_KSWAPD_RECLAIM" => Gfp::KSWAPD_RECLAIM,
            "__GFP_RECLAIM" => Gfp::RECLAIM,
            "__GFP_WRITE" => Gfp::WRITE,
            "__GFP_NOWARN" => Gfp::NOWARN,
            "__GFP_RETRY_MAYFAIL" | "__GFP_REPEAT" => Gfp::RETRY_MAYFAIL,
            "__GFP_NOFAIL" => Gfp::NOFAIL,
            "__GFP_NORETRY" => Gfp::NORETRY,
            "__GFP_MEMALLOC" => Gfp::MEMALLOC,
            "__GFP_COMP" => Gfp::COMP,
            "__GFP_NOMEMALLOC" => Gfp::NOMEMALLOC,
            "__GFP_HARDWALL" => Gfp::HARDWALL,
            "__GFP_THISNODE" => Gfp::THISNODE,
            "__GFP_ACCOUNT" => Gfp::ACCOUNT,
            "__GFP_ATOMIC" => {
                atomic = true;
                Gfp::NONE
            }
            _ => Gfp::NONE,
        };
        g = g | add;
    }
    if rules == Rules::Pre44 && !singles.contains(&"__GFP_NO_KSWAPD") {
        g = g | Gfp::KSWAPD_RECLAIM;
    }
    (g, atomic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: V) -> VersionRange {
        VersionRange::exactly(v)
    }

    #[test]
    fn hex_decodes_with_the_reports_own_table() {
        // 3.13: kmalloc_order() of a zeroed buffer charged to a memcg.
        let g = from_hex(0x10c0d0, &at(V(3, 13, 0)), Rules::Pre44);
        assert_eq!(
            g.names,
            ["GFP_KERNEL", "__GFP_COMP", "__GFP_ZERO", "__GFP_KMEMCG"]
        );
        assert!(g
            .sem
            .contains(Gfp::DIRECT_RECLAIM | Gfp::IO | Gfp::FS | Gfp::COMP));
        assert!(g.sem.contains(Gfp::KSWAPD_RECLAIM), "no __GFP_NO_KSWAPD");
        assert_eq!(g.unknown_bits, 0);
        // 4.9: GFP_ATOMIC|__GFP_COLD|__GFP_COMP, as a 4.9 report printed it.
        let g = from_hex(0x2084120, &at(V(4, 9, 24)), Rules::V44);
        assert_eq!(g.names, ["GFP_ATOMIC", "__GFP_COLD", "__GFP_COMP"]);
        assert!(g.atomic);
        // 5.13: 0x40a20 is GFP_ATOMIC|__GFP_COMP.
        let g = from_hex(0x40a20, &at(V(5, 13, 14)), Rules::V44);
        assert_eq!(g.names, ["GFP_ATOMIC", "__GFP_COMP"]);
        // 6.11: 0xc04 is GFP_NOIO|GFP_DMA32.
        let g = from_hex(0xc04, &at(V(6, 11, 11)), Rules::V63);
        assert_eq!(g.names, ["GFP_NOIO", "GFP_DMA32"]);
        // 4.19: GFP_KERNEL is 0x6000c0.
        let g = from_hex(0x6000c0, &at(V(4, 19, 0)), Rules::V44);
        assert_eq!(g.names, ["GFP_KERNEL"]);
    }

    #[test]
    fn bits_the_versions_disagree_on_stay_unknown() {
        // 0x100 was __GFP_COLD before 4.15 and __GFP_ZERO from 5.4.
        let r = VersionRange {
            lo: V(4, 9, 0),
            hi: V(5, 10, 0),
        };
        let (names, unknown) = decode_bits(0x120, &r);
        assert_eq!(names, ["__GFP_HIGH"]);
        assert_eq!(unknown, 0x100);
        // 4.20–5.3 has no table: only the bits every table agrees on.
        let (names, unknown) = decode_bits(0xcc0, &at(V(5, 1, 0)));
        assert_eq!(names, ["__GFP_IO", "__GFP_FS"]);
        assert_eq!(unknown, 0xc00);
    }

    #[test]
    fn printed_names_carry_the_meaning() {
        let r = at(V(5, 10, 0));
        let g = from_names("GFP_KERNEL|__GFP_COMP", &r, Rules::V44);
        assert_eq!(g.sem, Gfp::GFP_KERNEL | Gfp::COMP);
        assert!(!g.atomic);
        let g = from_names("GFP_ATOMIC|__GFP_COMP|0x800000", &r, Rules::V44);
        assert!(g.atomic && g.sem.contains(Gfp::HIGH) && !g.sem.contains(Gfp::DIRECT_RECLAIM));
        assert_eq!(g.unknown_bits, 0x800000);
        let g = from_names("GFP_KERNEL|__GFP_FROB", &r, Rules::V44);
        assert_eq!(g.unknown_names, ["__GFP_FROB"]);
        let g = from_names("none", &r, Rules::V44);
        assert_eq!(g.sem, Gfp::NONE);
    }
}
