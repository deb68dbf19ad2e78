//! Fragmentation indices (mm/vmstat.c): how much free memory is unusable for an order, and
//! whether a failure at that order is for lack of memory or for fragmentation.

use crate::machine::Machine;
use crate::units::{Order, NR_PAGE_ORDERS};
use std::fmt::Write;

/// Mirrors `struct contig_page_info` as `fill_contig_page_info()` fills it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ContigPageInfo {
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks of any order.
    pub free_blocks_total: u64,
    /// Free blocks of the suitable order, counting larger blocks as several.
    pub free_blocks_suitable: u64,
}

impl ContigPageInfo {
    /// Mirrors `fill_contig_page_info()` for `nr_free` per order and `suitable_order`.
    pub fn new(nr_free: &[u64; NR_PAGE_ORDERS], suitable_order: Order) -> ContigPageInfo {
        let mut info = ContigPageInfo::default();
        for (o, &blocks) in nr_free.iter().enumerate() {
            info.free_blocks_total += blocks;
            info.free_pages += blocks << o;
            if o >= suitable_order.idx() {
                info.free_blocks_suitable += blocks << (o - suitable_order.idx());
            }
        }
        info
    }
}

/// Mirrors `unusable_free_index()`: thousandths of free memory unusable at `order`.
pub fn unusable_free_index(order: Order, info: &ContigPageInfo) -> i64 {
    if info.free_pages == 0 {
        return 1000;
    }
    ((info.free_pages - (info.free_blocks_suitable << order.0)) * 1000 / info.free_pages) as i64
}

/// Mirrors `__fragmentation_index()`: −1000 if the order would succeed; otherwise toward 0
/// for lack of memory, toward 1000 for fragmentation.
pub fn fragmentation_index(order: Order, info: &ContigPageInfo) -> i64 {
    if info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable > 0 {
        return -1000;
    }
    let requested = order.nr_pages();
    1000 - ((1000 + info.free_pages * 1000 / requested) / info.free_blocks_total) as i64
}

/// Mirrors `extfrag_for_order()`: percent of free memory unusable at `order`.
pub fn extfrag_for_order(nr_free: &[u64; NR_PAGE_ORDERS], order: Order) -> u64 {
    let info = ContigPageInfo::new(nr_free, order);
    if info.free_pages == 0 {
        return 0;
    }
    (info.free_pages - (info.free_blocks_suitable << order.0)) * 100 / info.free_pages
}

/// C's `%d.%03d` of `index / 1000`, `index % 1000` (truncating toward zero), with the
/// integer part `width` wide.
fn thousandths(out: &mut String, index: i64, width: usize) {
    let _ = write!(
        out,
        "{:>width$}.{:03} ",
        index / 1000,
        index % 1000,
        width = width
    );
}

fn per_zone(m: &Machine, width: usize, f: fn(Order, &ContigPageInfo) -> i64) -> String {
    let mut s = String::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let _ = write!(s, "Node {}, zone {:>8} ", z.node.0, z.name());
        let nr_free = z.free_by_order();
        for o in Order::all() {
            thousandths(&mut s, f(o, &ContigPageInfo::new(&nr_free, o)), width);
        }
        s.push('\n');
    }
    s
}

/// debugfs `extfrag/unusable_index` (`unusable_show_print()`).
pub fn unusable_index(m: &Machine) -> String {
    per_zone(m, 0, unusable_free_index)
}

/// debugfs `extfrag/extfrag_index` (`extfrag_show_print()`).
pub fn extfrag_index(m: &Machine) -> String {
    per_zone(m, 2, fragmentation_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live machine's DMA zone (free 0…0,1,1,3) gave "0.066" at order 9 and "0.200" at 10.
    #[test]
    fn unusable_index_matches_the_kernel() {
        let nr_free = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3];
        assert_eq!(
            unusable_free_index(Order(9), &ContigPageInfo::new(&nr_free, Order(9))),
            66
        );
        assert_eq!(
            unusable_free_index(Order(10), &ContigPageInfo::new(&nr_free, Order(10))),
            200
        );
        assert_eq!(
            unusable_free_index(Order(0), &ContigPageInfo::new(&[0; 11], Order(0))),
            1000
        );
        assert_eq!(extfrag_for_order(&nr_free, Order(10)), 20);
    }

    #[test]
    fn fragmentation_index_sign_and_range() {
        // Only order-0 pages: an order-9 request fails for fragmentation.
        let frag = [1000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            fragmentation_index(Order(9), &ContigPageInfo::new(&frag, Order(9))),
            1000 - (1000 + 1000 * 1000 / 512) / 1000
        );
        // A suitable block exists.
        let ok = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(
            fragmentation_index(Order(9), &ContigPageInfo::new(&ok, Order(9))),
            -1000
        );
        // One free page and an order-1 request: the kernel's negative quirk.
        assert_eq!(
            fragmentation_index(
                Order(1),
                &ContigPageInfo::new(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Order(1))
            ),
            -500
        );
        assert_eq!(
            fragmentation_index(Order(3), &ContigPageInfo::new(&[0; 11], Order(3))),
            0
        );
    }

    #[test]
    fn thousandths_print_like_c() {
        let mut s = String::new();
        thousandths(&mut s, -1000, 2);
        thousandths(&mut s, 66, 0);
        thousandths(&mut s, 1000, 2);
        thousandths(&mut s, -500, 2);
        assert_eq!(s, "-1.000 0.066  1.000  0.-500 ");
    }
}
