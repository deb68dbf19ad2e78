//! Helpers shared by the core crate's integration tests: small machines and draining.
#![allow(dead_code)]

use kcompact::alloc::AllocContext;
use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
use kcompact::units::{NodeId, Order, Pfn};
use kcompact::verify::verify;
use kcompact::{Machine, VmConfig};

/// A machine with a DMA32 zone of `dma32_blocks` pageblocks at pfn 0x1000 and a Normal zone
/// of `normal_blocks` pageblocks right after it (pageblock order 9, so 512 pages a block).
pub fn small_layout(dma32_blocks: u64, normal_blocks: u64) -> Layout {
    small_layout_pb(dma32_blocks, normal_blocks, Order(9))
}

/// As [`small_layout`] (sizes still in units of 512 pages) with another pageblock order.
pub fn small_layout_pb(dma32_blocks: u64, normal_blocks: u64, pageblock_order: Order) -> Layout {
    let mut zones = Vec::new();
    let mut start = 0x1000u64;
    for (zt, blocks) in [
        (ZoneType::Dma32, dma32_blocks),
        (ZoneType::Normal, normal_blocks),
    ] {
        if blocks == 0 {
            continue;
        }
        let end = start + blocks * 512;
        zones.push(ZoneSpec {
            node: NodeId(0),
            zone_type: zt,
            start_pfn: Pfn(start),
            spanned: end - start,
            present: vec![PfnRange::new(start, end)],
            reserved: vec![],
        });
        start = end.next_multiple_of(1024);
    }
    Layout::from_zones(zones, pageblock_order).expect("valid small layout")
}

/// Boots `small_layout` with watermark boosting off unless the test wants it.
pub fn small_machine(dma32_blocks: u64, normal_blocks: u64, cfg: VmConfig) -> Machine {
    Machine::boot(&small_layout(dma32_blocks, normal_blocks), cfg).expect("boot")
}

/// Checks every invariant, panicking with the checker's report.
pub fn check(m: &Machine) {
    if let Err(e) = verify(m) {
        panic!("checker found violations:\n{e}");
    }
}

/// The allocation context of `gfp` on node 0.
pub fn ctx(m: &Machine, gfp: Gfp) -> AllocContext {
    m.prepare_alloc(gfp, NodeId(0)).0
}

/// Allocates one block of `order` with exactly `flags`, ignoring nothing else.
pub fn alloc_flags(m: &mut Machine, gfp: Gfp, order: Order, flags: AllocFlags) -> Option<Pfn> {
    let ac = ctx(m, gfp);
    m.get_page_from_freelist(gfp, order, flags, &ac)
}

/// Frees an order-0 page, taking it off the LRU first as its owner would.
pub fn free_page(m: &mut Machine, p: Pfn) {
    m.mem.clear_flag(p, kcompact::memmap::PageFlags::LRU);
    m.free_pages(p, Order(0));
}

/// Allocates every free page of the machine as order-0 pages of `gfp`, ignoring
/// watermarks, and returns them.
pub fn drain(m: &mut Machine, gfp: Gfp) -> Vec<Pfn> {
    let mut out = Vec::new();
    while let Some(p) = alloc_flags(m, gfp, Order(0), AllocFlags::NO_WATERMARKS) {
        out.push(p);
    }
    assert_eq!(m.nr_free_pages(), 0);
    m.vmstat = Default::default();
    out
}
