//! GFP flags and ALLOC flags: what an allocation asks for and how the allocator treats it.
//!
//! Mirrors `include/linux/gfp_types.h` (bit positions of Linux 6.x, where the bits are an
//! enum), `gfp_migratetype()` and `gfp_zone()` (include/linux/gfp.h), and the `ALLOC_*`
//! flags of mm/internal.h.

use crate::layout::ZoneType;
use crate::memmap::MigrateType;

/// A GFP mask (`gfp_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gfp(pub u32);

macro_rules! gfp_bits {
    ($($(#[$doc:meta])* $name:ident = $bit:expr, $text:expr;)*) => {
        impl Gfp {
            $($(#[$doc])* pub const $name: Gfp = Gfp(1 << $bit);)*
            /// Every single-bit flag with the name trace output uses for it.
            pub const NAMED_BITS: &'static [(Gfp, &'static str)] = &[$((Gfp::$name, $text),)*];
        }
    };
}

gfp_bits! {
    /// __GFP_DMA: ZONE_DMA only.
    DMA = 0, "__GFP_DMA";
    /// __GFP_HIGHMEM: may use highmem (on 64-bit: with MOVABLE, ZONE_MOVABLE).
    HIGHMEM = 1, "__GFP_HIGHMEM";
    /// __GFP_DMA32: ZONE_DMA32 and below.
    DMA32 = 2, "__GFP_DMA32";
    /// __GFP_MOVABLE: the page can be migrated or reclaimed.
    MOVABLE = 3, "__GFP_MOVABLE";
    /// __GFP_RECLAIMABLE: slab pages reclaimable through shrinkers.
    RECLAIMABLE = 4, "__GFP_RECLAIMABLE";
    /// __GFP_HIGH: high priority, may dip into reserves.
    HIGH = 5, "__GFP_HIGH";
    /// __GFP_IO: may start physical I/O.
    IO = 6, "__GFP_IO";
    /// __GFP_FS: may call into the filesystem.
    FS = 7, "__GFP_FS";
    /// __GFP_ZERO: return a zeroed page.
    ZERO = 8, "__GFP_ZERO";
    /// __GFP_DIRECT_RECLAIM: the caller may enter direct reclaim.
    DIRECT_RECLAIM = 10, "__GFP_DIRECT_RECLAIM";
    /// __GFP_KSWAPD_RECLAIM: wake kswapd at the low watermark.
    KSWAPD_RECLAIM = 11, "__GFP_KSWAPD_RECLAIM";
    /// __GFP_WRITE: the page will be dirtied.
    WRITE = 12, "__GFP_WRITE";
    /// __GFP_NOWARN: no failure report.
    NOWARN = 13, "__GFP_NOWARN";
    /// __GFP_RETRY_MAYFAIL: retry hard, but may fail.
    RETRY_MAYFAIL = 14, "__GFP_RETRY_MAYFAIL";
    /// __GFP_NOFAIL: never fail.
    NOFAIL = 15, "__GFP_NOFAIL";
    /// __GFP_NORETRY: fail rather than retry.
    NORETRY = 16, "__GFP_NORETRY";
    /// __GFP_MEMALLOC: may use all reserves.
    MEMALLOC = 17, "__GFP_MEMALLOC";
    /// __GFP_COMP: make a compound page.
    COMP = 18, "__GFP_COMP";
    /// __GFP_NOMEMALLOC: never use emergency reserves.
    NOMEMALLOC = 19, "__GFP_NOMEMALLOC";
    /// __GFP_HARDWALL: enforce the cpuset.
    HARDWALL = 20, "__GFP_HARDWALL";
    /// __GFP_THISNODE: this node only.
    THISNODE = 21, "__GFP_THISNODE";
    /// __GFP_ACCOUNT: charge to the memory cgroup.
    ACCOUNT = 22, "__GFP_ACCOUNT";
}

// The names and order of `__def_gfpflag_names` (include/trace/events/mmflags.h).
const SYMBOLIC_NAMES: &[(Gfp, &str)] = &[
    (Gfp::GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (Gfp::GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (Gfp::GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (Gfp::GFP_HIGHUSER, "GFP_HIGHUSER"),
    (Gfp::GFP_USER, "GFP_USER"),
    (Gfp::GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (Gfp::GFP_KERNEL, "GFP_KERNEL"),
    (Gfp::GFP_NOFS, "GFP_NOFS"),
    (Gfp::GFP_ATOMIC, "GFP_ATOMIC"),
    (Gfp::GFP_NOIO, "GFP_NOIO"),
    (Gfp::GFP_NOWAIT, "GFP_NOWAIT"),
    (Gfp::DMA, "GFP_DMA"),
    (Gfp::HIGHMEM, "__GFP_HIGHMEM"),
    (Gfp::DMA32, "GFP_DMA32"),
    (Gfp::HIGH, "__GFP_HIGH"),
    (Gfp::IO, "__GFP_IO"),
    (Gfp::FS, "__GFP_FS"),
    (Gfp::NOWARN, "__GFP_NOWARN"),
    (Gfp::RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (Gfp::NOFAIL, "__GFP_NOFAIL"),
    (Gfp::NORETRY, "__GFP_NORETRY"),
    (Gfp::COMP, "__GFP_COMP"),
    (Gfp::ZERO, "__GFP_ZERO"),
    (Gfp::NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (Gfp::MEMALLOC, "__GFP_MEMALLOC"),
    (Gfp::HARDWALL, "__GFP_HARDWALL"),
    (Gfp::THISNODE, "__GFP_THISNODE"),
    (Gfp::RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (Gfp::MOVABLE, "__GFP_MOVABLE"),
    (Gfp::ACCOUNT, "__GFP_ACCOUNT"),
    (Gfp::WRITE, "__GFP_WRITE"),
    (Gfp::RECLAIM, "__GFP_RECLAIM"),
    (Gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (Gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
];

impl Gfp {
    /// No flags (GFP_NOWAIT without kswapd).
    pub const NONE: Gfp = Gfp(0);
    /// __GFP_RECLAIM.
    pub const RECLAIM: Gfp = Gfp(Gfp::DIRECT_RECLAIM.0 | Gfp::KSWAPD_RECLAIM.0);
    /// GFP_ATOMIC.
    pub const GFP_ATOMIC: Gfp = Gfp(Gfp::HIGH.0 | Gfp::KSWAPD_RECLAIM.0);
    /// GFP_KERNEL.
    pub const GFP_KERNEL: Gfp = Gfp(Gfp::RECLAIM.0 | Gfp::IO.0 | Gfp::FS.0);
    /// GFP_NOWAIT.
    pub const GFP_NOWAIT: Gfp = Gfp(Gfp::KSWAPD_RECLAIM.0 | Gfp::NOWARN.0);
    /// GFP_NOIO.
    pub const GFP_NOIO: Gfp = Gfp(Gfp::RECLAIM.0);
    /// GFP_NOFS.
    pub const GFP_NOFS: Gfp = Gfp(Gfp::RECLAIM.0 | Gfp::IO.0);
    /// GFP_USER.
    pub const GFP_USER: Gfp = Gfp(Gfp::GFP_KERNEL.0 | Gfp::HARDWALL.0);
    /// GFP_DMA32.
    pub const GFP_DMA32: Gfp = Gfp(Gfp::DMA32.0);
    /// GFP_HIGHUSER.
    pub const GFP_HIGHUSER: Gfp = Gfp(Gfp::GFP_USER.0 | Gfp::HIGHMEM.0);
    /// GFP_HIGHUSER_MOVABLE (user pages, page cache).
    pub const GFP_HIGHUSER_MOVABLE: Gfp = Gfp(Gfp::GFP_HIGHUSER.0 | Gfp::MOVABLE.0);
    /// GFP_KERNEL_ACCOUNT.
    pub const GFP_KERNEL_ACCOUNT: Gfp = Gfp(Gfp::GFP_KERNEL.0 | Gfp::ACCOUNT.0);
    /// GFP_TRANSHUGE_LIGHT: a THP fault that neither reclaims nor compacts directly.
    pub const GFP_TRANSHUGE_LIGHT: Gfp = Gfp((Gfp::GFP_HIGHUSER_MOVABLE.0
        | Gfp::COMP.0
        | Gfp::NOMEMALLOC.0
        | Gfp::NOWARN.0)
        & !Gfp::RECLAIM.0);
    /// GFP_TRANSHUGE: a THP fault that may compact directly.
    pub const GFP_TRANSHUGE: Gfp = Gfp(Gfp::GFP_TRANSHUGE_LIGHT.0 | Gfp::DIRECT_RECLAIM.0);
    /// The mask for slab allocations of a reclaimable cache (SLAB_RECLAIM_ACCOUNT).
    pub const GFP_KERNEL_RECLAIMABLE: Gfp = Gfp(Gfp::GFP_KERNEL.0 | Gfp::RECLAIMABLE.0);

    /// True if every bit of `other` is set.
    #[inline]
    pub fn contains(self, other: Gfp) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    #[inline]
    pub fn intersects(self, other: Gfp) -> bool {
        self.0 & other.0 != 0
    }

    /// Mirrors `gfp_migratetype()`: the MOVABLE and RECLAIMABLE bits shifted down give the
    /// migratetype (both together are a misuse Linux warns about and reads as 3,
    /// MIGRATE_HIGHATOMIC; so does the model). With grouping by mobility disabled, every request is UNMOVABLE.
    pub fn migratetype(self, group_by_mobility: bool) -> MigrateType {
        if !group_by_mobility {
            return MigrateType::Unmovable;
        }
        match (self.0 & (Gfp::MOVABLE.0 | Gfp::RECLAIMABLE.0)) >> 3 {
            0 => MigrateType::Unmovable,
            1 => MigrateType::Movable,
            2 => MigrateType::Reclaimable,
            // Both bits: the value 3 is MIGRATE_HIGHATOMIC, as in Linux (which warns).
            _ => MigrateType::HighAtomic,
        }
    }

    /// Mirrors `gfp_zone()` on x86-64: the highest zone the request may use.
    pub fn zone(self) -> ZoneType {
        if self.contains(Gfp::DMA) {
            ZoneType::Dma
        } else if self.contains(Gfp::DMA32) {
            ZoneType::Dma32
        } else if self.contains(Gfp::MOVABLE) && self.contains(Gfp::HIGHMEM) {
            ZoneType::Movable
        } else {
            ZoneType::Normal
        }
    }

    /// Mirrors `gfpflags_allow_blocking()`.
    pub fn allows_blocking(self) -> bool {
        self.contains(Gfp::DIRECT_RECLAIM)
    }

    /// Reads the symbolic form trace output prints (`GFP_KERNEL|__GFP_COMP`); names the
    /// model does not know (`__GFP_NOLOCKDEP`, …) are returned apart. `none` is no flag.
    pub fn parse_symbolic(text: &str) -> (Gfp, Vec<&str>) {
        let mut g = 0;
        let mut unknown = Vec::new();
        for part in text.split('|').filter(|p| !p.is_empty() && *p != "none") {
            match SYMBOLIC_NAMES.iter().find(|(_, n)| *n == part) {
                Some((f, _)) => g |= f.0,
                None => unknown.push(part),
            }
        }
        (Gfp(g), unknown)
    }

    /// The symbolic form trace output uses (`GFP_KERNEL|__GFP_COMP`), composite names first
    /// as `show_gfp_flags()` prints them.
    pub fn symbolic(self) -> String {
        if self.0 == 0 {
            return "none".to_string();
        }
        let mut rest = self.0;
        let mut parts = Vec::new();
        for (g, name) in SYMBOLIC_NAMES {
            if rest & g.0 == g.0 {
                parts.push(*name);
                rest &= !g.0;
            }
        }
        if rest != 0 {
            parts.push("");
            return format!("{}{:#x}", parts.join("|"), rest);
        }
        parts.join("|")
    }
}

impl std::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, rhs: Gfp) -> Gfp {
        Gfp(self.0 | rhs.0)
    }
}

impl std::fmt::Debug for Gfp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.symbolic())
    }
}

/// Mirrors the `ALLOC_*` flags (mm/internal.h): how the allocator treats one attempt.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct AllocFlags(pub u32);

impl AllocFlags {
    /// ALLOC_WMARK_MIN (watermark index 0).
    pub const WMARK_MIN: AllocFlags = AllocFlags(0);
    /// ALLOC_WMARK_LOW.
    pub const WMARK_LOW: AllocFlags = AllocFlags(1);
    /// ALLOC_WMARK_HIGH.
    pub const WMARK_HIGH: AllocFlags = AllocFlags(2);
    /// ALLOC_WMARK_MASK: the watermark index bits.
    pub const WMARK_MASK: AllocFlags = AllocFlags(3);
    /// ALLOC_NO_WATERMARKS.
    pub const NO_WATERMARKS: AllocFlags = AllocFlags(0x04);
    /// ALLOC_OOM.
    pub const OOM: AllocFlags = AllocFlags(0x08);
    /// ALLOC_NON_BLOCK: the caller cannot reclaim.
    pub const NON_BLOCK: AllocFlags = AllocFlags(0x10);
    /// ALLOC_MIN_RESERVE: may use part of the MIN reserve (__GFP_HIGH).
    pub const MIN_RESERVE: AllocFlags = AllocFlags(0x20);
    /// ALLOC_CPUSET.
    pub const CPUSET: AllocFlags = AllocFlags(0x40);
    /// ALLOC_CMA: may allocate from CMA blocks.
    pub const CMA: AllocFlags = AllocFlags(0x80);
    /// ALLOC_NOFRAGMENT: avoid falling back to another type below pageblock order.
    pub const NOFRAGMENT: AllocFlags = AllocFlags(0x100);
    /// ALLOC_HIGHATOMIC: may use the high-order atomic reserve.
    pub const HIGHATOMIC: AllocFlags = AllocFlags(0x200);
    /// ALLOC_KSWAPD: wake kswapd (from __GFP_KSWAPD_RECLAIM).
    pub const KSWAPD: AllocFlags = AllocFlags(0x800);
    /// ALLOC_RESERVES: any of the reserve-access flags.
    pub const RESERVES: AllocFlags =
        AllocFlags(Self::NON_BLOCK.0 | Self::MIN_RESERVE.0 | Self::HIGHATOMIC.0 | Self::OOM.0);

    /// True if any bit of `other` is set.
    #[inline]
    pub fn has(self, other: AllocFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// These flags with `other` cleared.
    #[inline]
    pub fn without(self, other: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 & !other.0)
    }

    /// The watermark index (`alloc_flags & ALLOC_WMARK_MASK`).
    #[inline]
    pub fn wmark(self) -> usize {
        (self.0 & Self::WMARK_MASK.0) as usize
    }
}

impl std::ops::BitOr for AllocFlags {
    type Output = AllocFlags;
    fn bitor(self, rhs: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_bit_values() {
        assert_eq!(Gfp::MOVABLE.0, 0x08);
        assert_eq!(Gfp::RECLAIMABLE.0, 0x10);
        assert_eq!(Gfp::HIGH.0, 0x20);
        assert_eq!(Gfp::DIRECT_RECLAIM.0, 0x400);
        assert_eq!(Gfp::KSWAPD_RECLAIM.0, 0x800);
        assert_eq!(Gfp::COMP.0, 0x40000);
        assert_eq!(Gfp::GFP_KERNEL.0, 0xcc0);
        assert_eq!(Gfp::GFP_HIGHUSER_MOVABLE.0, 0x100cca);
    }

    #[test]
    fn migratetype_and_zone_from_gfp() {
        assert_eq!(Gfp::GFP_KERNEL.migratetype(true), MigrateType::Unmovable);
        assert_eq!(
            Gfp::GFP_HIGHUSER_MOVABLE.migratetype(true),
            MigrateType::Movable
        );
        assert_eq!(
            Gfp::GFP_KERNEL_RECLAIMABLE.migratetype(true),
            MigrateType::Reclaimable
        );
        assert_eq!(
            Gfp::GFP_HIGHUSER_MOVABLE.migratetype(false),
            MigrateType::Unmovable
        );
        assert_eq!(Gfp::GFP_HIGHUSER_MOVABLE.zone(), ZoneType::Movable);
        assert_eq!((Gfp::GFP_KERNEL | Gfp::MOVABLE).zone(), ZoneType::Normal);
        assert_eq!(Gfp::GFP_DMA32.zone(), ZoneType::Dma32);
        assert_eq!((Gfp::GFP_KERNEL | Gfp::DMA).zone(), ZoneType::Dma);
    }

    #[test]
    fn symbolic_names_compose() {
        assert_eq!(Gfp::GFP_KERNEL.symbolic(), "GFP_KERNEL");
        assert_eq!(
            (Gfp::GFP_KERNEL | Gfp::COMP).symbolic(),
            "GFP_KERNEL|__GFP_COMP"
        );
        assert_eq!(Gfp::GFP_TRANSHUGE.symbolic(), "GFP_TRANSHUGE");
        assert_eq!(Gfp(0).symbolic(), "none");
        assert_eq!(
            (Gfp::DIRECT_RECLAIM | Gfp::KSWAPD_RECLAIM | Gfp::DMA).symbolic(),
            "GFP_NOIO|GFP_DMA"
        );
        assert_eq!(Gfp::DIRECT_RECLAIM.symbolic(), "__GFP_DIRECT_RECLAIM");
        assert_eq!(
            (Gfp::COMP | Gfp(1 << 30)).symbolic(),
            "__GFP_COMP|0x40000000"
        );
    }
}
