//! Watermarks: `min_free_kbytes`, the per-zone min/low/high/promo marks, lowmem reserves,
//! and the watermark checks every allocation makes.

use super::rmqueue::mult_frac;
use crate::gfp::AllocFlags;
use crate::layout::{ZoneType, MAX_NR_ZONES};
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, MAX_PAGE_ORDER, PAGE_SHIFT};
use crate::zone::{Wmark, Zone};

/// `SWAP_CLUSTER_MAX`: the floor of ZONE_MOVABLE's MIN watermark.
const SWAP_CLUSTER_MAX: u64 = 32;

/// Integer square root (`int_sqrt()`), floor.
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

impl Machine {
    /// Mirrors `nr_free_zone_pages(ZONE_NORMAL)` = `nr_free_buffer_pages()`: managed pages
    /// above the high watermark in every zone up to Normal.
    pub fn nr_free_buffer_pages(&self) -> u64 {
        self.zones
            .iter()
            .filter(|z| z.zone_type <= ZoneType::Normal)
            .map(|z| z.managed_pages.saturating_sub(z.high_wmark_pages()))
            .sum()
    }

    /// Mirrors `calculate_min_free_kbytes()`: ⌊√(lowmem KiB × 16)⌋ clamped to
    /// [128, 262144], unless the user set a larger value.
    pub fn calculate_min_free_kbytes(&mut self) {
        let lowmem_kbytes = self.nr_free_buffer_pages() << (PAGE_SHIFT - 10);
        let new = int_sqrt(lowmem_kbytes * 16);
        match self.config.user_min_free_kbytes {
            Some(user) if user >= new => self.min_free_kbytes = user,
            _ => self.min_free_kbytes = new.clamp(128, 262144),
        }
    }

    /// Mirrors `__setup_per_zone_wmarks()`: MIN is each lowmem zone's share of
    /// `min_free_kbytes` (clamp(managed/1024, 32, 128) for ZONE_MOVABLE); LOW, HIGH and PROMO
    /// each add max(share/4, managed × watermark_scale_factor / 10000). The boost is reset.
    pub fn setup_per_zone_wmarks(&mut self) {
        let pages_min = self.min_free_kbytes >> (PAGE_SHIFT - 10);
        let lowmem: u64 = self
            .zones
            .iter()
            .filter(|z| !z.zone_type.is_highmem_or_movable())
            .map(|z| z.managed_pages)
            .sum();
        let wsf = self.config.watermark_scale_factor as u64;
        for z in &mut self.zones {
            let tmp = (pages_min * z.managed_pages)
                .checked_div(lowmem)
                .unwrap_or(0);
            let min = if z.zone_type.is_highmem_or_movable() {
                (z.managed_pages / 1024).clamp(SWAP_CLUSTER_MAX, 128)
            } else {
                tmp
            };
            let delta = (tmp >> 2).max(mult_frac(z.managed_pages, wsf, 10000));
            z.watermark_boost = 0;
            z.watermark = [min, min + delta, min + 2 * delta, min + 3 * delta];
        }
        // The per-CPU lists' limits follow the low watermark.
        self.zone_pcp_update_all();
        self.calculate_totalreserve_pages();
    }

    /// Mirrors `setup_per_zone_lowmem_reserve()`: zone i keeps back, from requests that
    /// could use zone j > i, the managed pages of zones i+1..=j divided by zone i's ratio.
    pub fn setup_per_zone_lowmem_reserve(&mut self) {
        let nodes = self.zones.len() / MAX_NR_ZONES;
        for n in 0..nodes {
            let base = n * MAX_NR_ZONES;
            for i in 0..MAX_NR_ZONES - 1 {
                let ratio = self.config.lowmem_reserve_ratio[i] as u64;
                let clear = ratio == 0 || self.zones[base + i].managed_pages == 0;
                let mut acc = 0;
                for j in i + 1..MAX_NR_ZONES {
                    acc += self.zones[base + j].managed_pages;
                    self.zones[base + i].lowmem_reserve[j] = if clear { 0 } else { acc / ratio };
                }
            }
        }
        self.calculate_totalreserve_pages();
    }

    /// Mirrors `calculate_totalreserve_pages()`.
    pub fn calculate_totalreserve_pages(&mut self) {
        self.totalreserve_pages = self
            .zones
            .iter()
            .map(|z| {
                let max = z
                    .lowmem_reserve
                    .iter()
                    .copied()
                    .rev()
                    .find(|&r| r > 0)
                    .unwrap_or(0);
                (max + z.high_wmark_pages()).min(z.managed_pages)
            })
            .sum();
    }

    /// Mirrors `init_per_zone_wmark_min()`.
    pub fn init_per_zone_wmark_min(&mut self) {
        self.calculate_min_free_kbytes();
        self.setup_per_zone_wmarks();
        self.setup_per_zone_lowmem_reserve();
    }

    /// Mirrors khugepaged's `set_recommended_min_free_kbytes()`: with THP on, keep free two
    /// pageblocks per lowmem zone plus room for every pair of mobility types
    /// (`pageblock_nr_pages × zones × (2 + MIGRATE_PCPTYPES²)`), at most 5% of lowmem.
    pub fn set_recommended_min_free_kbytes(&mut self) {
        use crate::memmap::pageblock::MIGRATE_PCPTYPES;
        let nr_zones = self
            .zones
            .iter()
            .filter(|z| z.is_populated() && z.zone_type <= ZoneType::Normal)
            .count() as u64;
        let pb = self.pageblocks.nr_pages();
        let pcp = MIGRATE_PCPTYPES as u64;
        let recommended =
            (pb * nr_zones * 2 + pb * nr_zones * pcp * pcp).min(self.nr_free_buffer_pages() / 20);
        let recommended_kb = recommended << (PAGE_SHIFT - 10);
        if recommended_kb > self.min_free_kbytes {
            self.min_free_kbytes = recommended_kb;
        }
        self.setup_per_zone_wmarks();
    }

    /// Sets `vm.min_free_kbytes` as the sysctl handler does, and recomputes the watermarks.
    pub fn set_min_free_kbytes(&mut self, kbytes: u64) {
        self.config.user_min_free_kbytes = Some(kbytes);
        self.min_free_kbytes = kbytes;
        self.setup_per_zone_wmarks();
    }
}

/// Mirrors `__zone_watermark_unusable_free()`: free pages this request cannot count.
pub fn zone_watermark_unusable_free(
    z: &Zone,
    order: Order,
    alloc_flags: AllocFlags,
    config_cma: bool,
) -> u64 {
    watermark_unusable_free(
        order,
        alloc_flags,
        z.nr_free_highatomic,
        z.nr_free_cma,
        config_cma,
    )
}

/// Mirrors `__zone_watermark_unusable_free()` on a zone's counters: the `2^order - 1`
/// pages the request itself takes beyond one, the free high-atomic reserve unless the
/// request may use reserves, the free CMA pages unless it may use CMA.
pub fn watermark_unusable_free(
    order: Order,
    alloc_flags: AllocFlags,
    nr_free_highatomic: u64,
    nr_free_cma: u64,
    config_cma: bool,
) -> u64 {
    let mut unusable = order.nr_pages() - 1;
    if !alloc_flags.has(AllocFlags::RESERVES) {
        unusable += nr_free_highatomic;
    }
    if config_cma && !alloc_flags.has(AllocFlags::CMA) {
        unusable += nr_free_cma;
    }
    unusable
}

/// The `min` of `__zone_watermark_ok()`: `mark` lowered for requests entitled to reserves
/// (half for ALLOC_MIN_RESERVE, a further quarter for ALLOC_NON_BLOCK with it, half for
/// ALLOC_OOM).
pub fn watermark_reserve_mark(mark: u64, alloc_flags: AllocFlags) -> i64 {
    let mut min = mark as i64;
    if alloc_flags.has(AllocFlags::RESERVES) {
        if alloc_flags.has(AllocFlags::MIN_RESERVE) {
            min -= min / 2;
            if alloc_flags.has(AllocFlags::NON_BLOCK) {
                min -= min / 4;
            }
        }
        if alloc_flags.has(AllocFlags::OOM) {
            min -= min / 2;
        }
    }
    min
}

/// The zone counters `__zone_watermark_ok()` reads, for callers that have the numbers
/// without a model zone (a kernel report's figures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkCounts {
    /// NR_FREE_PAGES (or the caller's free-page figure).
    pub free_pages: i64,
    /// `lowmem_reserve[highest_zoneidx]`.
    pub lowmem_reserve: u64,
    /// `nr_free_highatomic`.
    pub nr_free_highatomic: u64,
    /// NR_FREE_CMA_PAGES.
    pub nr_free_cma: u64,
}

/// Why `__zone_watermark_ok()` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkFail {
    /// The usable free pages are not above the mark plus the lowmem reserve.
    BelowMark,
    /// Enough free pages, but no free block of the order or larger on a list the request
    /// may use.
    NoFreeBlock,
}

/// Mirrors `__zone_watermark_ok()` on counters: after discounting what the request cannot
/// use, more than the reserve-adjusted `mark` plus the lowmem reserve must be free; a
/// high-order request also needs a free block of at least its order (up to `max_order`)
/// on a list it may use: `list_nonempty(order, type)` says whether that free list holds a
/// block.
pub fn watermark_check_counts(
    c: &WatermarkCounts,
    order: Order,
    mark: u64,
    alloc_flags: AllocFlags,
    config_cma: bool,
    max_order: u8,
    list_nonempty: impl Fn(u8, MigrateType) -> bool,
) -> Result<(), WatermarkFail> {
    let min = watermark_reserve_mark(mark, alloc_flags);
    let free = c.free_pages
        - watermark_unusable_free(
            order,
            alloc_flags,
            c.nr_free_highatomic,
            c.nr_free_cma,
            config_cma,
        ) as i64;
    if free <= min + c.lowmem_reserve as i64 {
        return Err(WatermarkFail::BelowMark);
    }
    if order.0 == 0 {
        return Ok(());
    }
    let found = (order.0..=max_order).any(|o| {
        let nonempty = |mt: MigrateType| list_nonempty(o, mt);
        nonempty(MigrateType::Unmovable)
            || nonempty(MigrateType::Movable)
            || nonempty(MigrateType::Reclaimable)
            || (config_cma && alloc_flags.has(AllocFlags::CMA) && nonempty(MigrateType::Cma))
            || (alloc_flags.has(AllocFlags(AllocFlags::HIGHATOMIC.0 | AllocFlags::OOM.0))
                && nonempty(MigrateType::HighAtomic))
    });
    if found {
        Ok(())
    } else {
        Err(WatermarkFail::NoFreeBlock)
    }
}

/// Mirrors `__zone_watermark_ok()`: [`watermark_check_counts`] on the zone's counters and
/// free lists, with `lowmem_reserve` against the request's highest zone.
pub fn zone_watermark_ok_free(
    z: &Zone,
    order: Order,
    mark: u64,
    highest: ZoneType,
    alloc_flags: AllocFlags,
    free_pages: i64,
    config_cma: bool,
) -> bool {
    let counts = WatermarkCounts {
        free_pages,
        lowmem_reserve: z.lowmem_reserve[highest.idx()],
        nr_free_highatomic: z.nr_free_highatomic,
        nr_free_cma: z.nr_free_cma,
    };
    watermark_check_counts(
        &counts,
        order,
        mark,
        alloc_flags,
        config_cma,
        MAX_PAGE_ORDER,
        |o, mt| {
            let area = &z.free_area[o as usize];
            area.nr_free != 0 && !area.free_list[mt.idx()].is_empty()
        },
    )
    .is_ok()
}

/// Mirrors `zone_watermark_ok()`.
pub fn zone_watermark_ok(
    z: &Zone,
    order: Order,
    mark: u64,
    highest: ZoneType,
    alloc_flags: AllocFlags,
    config_cma: bool,
) -> bool {
    zone_watermark_ok_free(
        z,
        order,
        mark,
        highest,
        alloc_flags,
        z.nr_free_pages as i64,
        config_cma,
    )
}

/// Mirrors `zone_watermark_fast()`: an order-0 shortcut, the full check, and for
/// __GFP_HIGH order-0 requests at MIN a second check that ignores the boost.
pub fn zone_watermark_fast(
    z: &Zone,
    order: Order,
    mark: u64,
    highest: ZoneType,
    alloc_flags: AllocFlags,
    config_cma: bool,
) -> bool {
    let free = z.nr_free_pages;
    if order.0 == 0 {
        let reserved = zone_watermark_unusable_free(z, Order(0), alloc_flags, config_cma);
        let usable = free - free.min(reserved);
        if usable > mark + z.lowmem_reserve[highest.idx()] {
            return true;
        }
    }
    if zone_watermark_ok_free(
        z,
        order,
        mark,
        highest,
        alloc_flags,
        free as i64,
        config_cma,
    ) {
        return true;
    }
    if order.0 == 0
        && alloc_flags.has(AllocFlags::MIN_RESERVE)
        && z.watermark_boost > 0
        && alloc_flags.wmark() == Wmark::Min as usize
    {
        return zone_watermark_ok_free(
            z,
            order,
            z.watermark[Wmark::Min as usize],
            highest,
            alloc_flags,
            free as i64,
            config_cma,
        );
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_sqrt_is_floor() {
        for x in [
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 40,
            (1 << 40) - 1,
            99_999_999_999,
        ] {
            let r = int_sqrt(x);
            assert!(r * r <= x && (r + 1) * (r + 1) > x, "{x}");
        }
    }
}
