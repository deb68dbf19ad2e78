//! Helpers shared by the core crate's integration tests: small machines and draining.
#![allow(dead_code)]

use kcompact::alloc::AllocContext;
use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
use kcompact::migrate::MigrationTarget;
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

/// Free pages on the buddy lists and the per-CPU lists together (every page the allocator
/// holds; NR_FREE_PAGES alone leaves the per-CPU lists out).
pub fn free_all(m: &Machine) -> u64 {
    m.nr_free_pages() + m.nr_pcp_pages()
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

/// Builds a one-zone machine from a picture in the format of
/// `kcompact::views::map::zone_picture` (a line per pageblock: type letter, skip mark,
/// space, a glyph per page). Glyphs: `T` the process's page table (first page only), `.`
/// free, `M` anonymous page of process 0 at virtual page = its index, `P` the same,
/// long-term pinned, `F` clean page cache of file 0 at index = its index, `U` kernel page.
/// The zone starts at pfn 0x1000; watermarks are zero so they never get in the way.
pub fn from_picture(pic: &str) -> Machine {
    use kcompact::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
    use kcompact::memmap::MigrateType;
    let lines: Vec<&str> = pic
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let per_block = lines[0].len() - 3;
    assert!(
        per_block.is_power_of_two() && lines.iter().all(|l| l.len() - 3 == per_block),
        "ragged picture"
    );
    let pb = Order(per_block.trailing_zeros() as u8);
    let n = (lines.len() * per_block) as u64;
    let zones = vec![ZoneSpec {
        node: NodeId(0),
        zone_type: ZoneType::Normal,
        start_pfn: Pfn(0x1000),
        spanned: n,
        present: vec![PfnRange::new(0x1000, 0x1000 + n)],
        reserved: vec![],
    }];
    // The pictures show the buddy lists: frees go straight to them (pcp=off), so a
    // picture's free pages are what compaction's scanners see.
    let cfg = VmConfig {
        thp_enabled: false,
        watermark_boost_factor: 0,
        pcp: false,
        ..VmConfig::default()
    };
    let mut m = Machine::boot(&Layout::from_zones(zones, pb).expect("layout"), cfg).expect("boot");
    m.set_min_free_kbytes(0);
    let pid = m.new_process();
    let file = m.new_file(false, true, false);
    let glyphs: Vec<char> = lines.iter().flat_map(|l| l[3..].chars()).collect();
    assert_eq!(glyphs[0], 'T', "the picture starts with the page table");
    m.ensure_pgtable(pid, 0).expect("page table");
    assert_eq!(
        m.owners.processes[pid as usize]
            .pgtables
            .values()
            .next()
            .map(|id| m.owners.folio(id).pfn),
        Some(Pfn(0x1000))
    );
    let mut placeholders = Vec::new();
    for (i, g) in glyphs.iter().enumerate().skip(1) {
        let pfn = Pfn(0x1000 + i as u64);
        m.place_at = Some(pfn);
        match g {
            '.' => placeholders.push(
                m.alloc_pages(Gfp::GFP_HIGHUSER_MOVABLE, Order(0), NodeId(0))
                    .expect("placeholder"),
            ),
            'M' | 'P' => {
                let id = m.fault_anon(pid, i as u64, Order(0)).expect("anon page");
                if *g == 'P' {
                    m.pin_folio(id, true);
                }
            }
            'F' => {
                m.file_add(file, i as u64, Order(0), false)
                    .expect("page cache");
            }
            'U' => {
                m.alloc_kernel(Order(0), 0).expect("kernel page");
            }
            other => panic!("glyph {other:?} not supported by the picture builder"),
        }
        assert_eq!(m.place_at, None);
    }
    for (b, l) in lines.iter().enumerate() {
        let mt = match l.as_bytes()[0] {
            b'M' => MigrateType::Movable,
            b'U' => MigrateType::Unmovable,
            b'R' => MigrateType::Reclaimable,
            other => panic!("block type {:?} not supported", other as char),
        };
        m.set_pageblock_migratetype(Pfn(0x1000 + (b * per_block) as u64), mt);
    }
    for p in placeholders {
        m.free_pages(p, Order(0));
    }
    m.vmstat = Default::default();
    check(&m);
    m
}

/// Fuzz iterations: `KCOMPACT_FUZZ_ITERS` or `default` (a bounded run for CI).
pub fn iters(default: u64) -> u64 {
    std::env::var("KCOMPACT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A copy of `text` with 1 to `max_edits` random byte edits drawn from `alphabet`:
/// replace, delete, insert, or duplicate a run.
pub fn mutate_text(
    rng: &mut kcompact::rng::SimRng,
    text: &str,
    alphabet: &[u8],
    max_edits: u64,
) -> String {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..rng.range(1, max_edits) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len() as u64) as usize;
        match rng.below(4) {
            0 => b[i] = alphabet[rng.below(alphabet.len() as u64) as usize],
            1 => {
                b.remove(i);
            }
            2 => b.insert(i, alphabet[rng.below(alphabet.len() as u64) as usize]),
            _ => {
                let j = (i + rng.range(1, 40) as usize).min(b.len());
                let piece = b[i..j].to_vec();
                b.splice(i..i, piece);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Test support: destinations from a private pool of isolated free blocks kept at their buddy order, as
/// compaction keeps `cc->freepages[order]` since Linux 6.9 (seed 002).
///
/// `get_new_folio` mirrors `compaction_alloc()` (a block of exactly the source's order,
/// splitting a larger one like the buddy allocator); `put_new_folio` mirrors
/// `compaction_free()`: the block returns to the pool only if dropping our reference frees
/// it — someone who took a speculative reference meanwhile frees it to the buddy allocator
/// when they let go (the refcount rule of seed 002's review).
#[derive(Clone, Debug, Default)]
pub struct FreePagesTarget {
    /// Free blocks by order.
    pub lists: [Vec<Pfn>; kcompact::units::NR_PAGE_ORDERS],
    /// Pages in the pool (`cc->nr_freepages`).
    pub nr_freepages: u64,
    /// Destinations handed back while someone else held a reference: (pfn, order).
    pub lost: Vec<(Pfn, Order)>,
}

impl FreePagesTarget {
    /// Takes `count` free blocks of `order` from the buddy allocator (ignoring watermarks)
    /// into the pool. Returns how many it got.
    pub fn fill(&mut self, m: &mut Machine, order: Order, count: u64) -> u64 {
        use kcompact::gfp::{AllocFlags, Gfp};
        let (ac, _) = m.prepare_alloc(Gfp::GFP_HIGHUSER_MOVABLE, kcompact::units::NodeId(0));
        let mut got = 0;
        for _ in 0..count {
            let Some(p) = m.get_page_from_freelist(
                Gfp::GFP_HIGHUSER_MOVABLE,
                order,
                AllocFlags::NO_WATERMARKS,
                &ac,
            ) else {
                break;
            };
            // Isolated free pages carry no reference and no state.
            m.mem.clear_block(p, order);
            self.lists[order.idx()].push(p);
            self.nr_freepages += order.nr_pages();
            got += 1;
        }
        got
    }

    /// Mirrors `release_free_list()`: every pooled block back to the buddy allocator.
    pub fn release(&mut self, m: &mut Machine) {
        for (o, list) in self.lists.iter_mut().enumerate() {
            for p in list.drain(..) {
                m.mem.prep_allocated(p, Order(o as u8), false);
                m.free_pages(p, Order(o as u8));
            }
        }
        self.nr_freepages = 0;
    }
}

impl MigrationTarget for FreePagesTarget {
    fn get_new_folio(&mut self, m: &mut Machine, _src: Pfn, order: Order) -> Option<Pfn> {
        let p = kcompact::compaction::free_scan::take_from_order_lists(&mut self.lists, order)?;
        self.nr_freepages -= order.nr_pages();
        m.mem.prep_allocated(p, order, order.0 > 0);
        Some(p)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        let rc = m.mem.refcount(dst);
        assert!(rc >= 1, "{dst:?} handed back without its reference");
        m.mem.set_refcount(dst, rc - 1);
        if rc == 1 {
            m.mem.clear_block(dst, order);
            self.lists[order.idx()].push(dst);
            self.nr_freepages += order.nr_pages();
        } else {
            self.lost.push((dst, order));
        }
    }
}
