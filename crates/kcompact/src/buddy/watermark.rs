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
    let mut unusable = order.nr_pages() - 1;
    if !alloc_flags.has(AllocFlags::RESERVES) {
        unusable += z.nr_free_highatomic;
    }
    if config_cma && !alloc_flags.has(AllocFlags::CMA) {
        unusable += z.nr_free_cma;
    }
    unusable
}

/// Mirrors `__zone_watermark_ok()`: after discounting what the request cannot use, more
/// than `mark` (reduced for reserve-entitled requests) plus the lowmem reserve against the
/// request's highest zone must be free; a high-order request also needs a free block of at
/// least its order on a list it may use.
pub fn zone_watermark_ok_free(
    z: &Zone,
    order: Order,
    mark: u64,
    highest: ZoneType,
    alloc_flags: AllocFlags,
    free_pages: i64,
    config_cma: bool,
) -> bool {
    let mut min = mark as i64;
    let free = free_pages - zone_watermark_unusable_free(z, order, alloc_flags, config_cma) as i64;
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
    if free <= min + z.lowmem_reserve[highest.idx()] as i64 {
        return false;
    }
    if order.0 == 0 {
        return true;
    }
    (order.0..=MAX_PAGE_ORDER).any(|o| {
        let area = &z.free_area[o as usize];
        if area.nr_free == 0 {
            return false;
        }
        let nonempty = |mt: MigrateType| !area.free_list[mt.idx()].is_empty();
        nonempty(MigrateType::Unmovable)
            || nonempty(MigrateType::Movable)
            || nonempty(MigrateType::Reclaimable)
            || (config_cma && alloc_flags.has(AllocFlags::CMA) && nonempty(MigrateType::Cma))
            || (alloc_flags.has(AllocFlags(AllocFlags::HIGHATOMIC.0 | AllocFlags::OOM.0))
                && nonempty(MigrateType::HighAtomic))
    })
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
