//! Where migration gets its destination folios: the `get_new_folio` / `put_new_folio` pair
//! every caller of `migrate_pages()` passes, and the page allocator's own
//! (`alloc_migration_target()`). Compaction's (`compaction_alloc()` / `compaction_free()`)
//! is in [`crate::compaction::free_scan`].

use crate::machine::Machine;
use crate::units::{Order, Pfn};

/// Mirrors `get_new_folio` / `put_new_folio`: where migration gets destination folios.
pub trait MigrationTarget {
    /// A free block of exactly `order` for the contents of `src`, or `None`.
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn>;
    /// Takes back a destination that was not used.
    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order);
}

/// Mirrors `alloc_migration_target()`: destinations from the page allocator, movable,
/// anywhere on the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocTarget;

impl MigrationTarget for AllocTarget {
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn> {
        use crate::gfp::Gfp;
        let mut gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::RETRY_MAYFAIL;
        if order.0 > 0 {
            // Large folios are allocated as THP allocations are: no reclaim, no kswapd.
            gfp = Gfp((gfp.0 & !Gfp::RECLAIM.0) | Gfp::GFP_TRANSHUGE.0);
        }
        let node = m.page_zone(src).map(|z| m.zone(z).node).unwrap_or_default();
        m.alloc_pages(gfp, order, node)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        m.free_pages(dst, order);
    }
}
