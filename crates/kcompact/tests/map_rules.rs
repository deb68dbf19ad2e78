//! The memory map of the reports (issue 8): counts per cell add up, groups keep large
//! machines small, and the terminal picture (the golden test of `kcompact show map`).

mod common;

use common::*;
use kcompact::units::Order;
use kcompact::views::mapdata::{cell_glyph, memory_map, pageblock_map};
use kcompact::VmConfig;

/// Anonymous, page cache, kernel and hugetlb pages in an 8-block zone; with `pcp`, some
/// free pages wait on the per-CPU lists.
fn machine_with_a_mix_pcp(pcp: bool) -> kcompact::Machine {
    let mut m = small_machine(
        0,
        8,
        VmConfig {
            pcp,
            ..VmConfig::default()
        },
    );
    let p = m.new_process();
    for v in 0..700 {
        m.fault_anon(p, v, Order(0)).unwrap();
    }
    let f = m.new_file(false, true, false);
    for i in 0..300 {
        m.file_add(f, i, Order(0), false).unwrap();
    }
    for _ in 0..3 {
        m.alloc_kernel(Order(0), 1).unwrap();
    }
    m.alloc_hugetlb().unwrap();
    check(&m);
    m
}

/// The mix on the buddy lists alone (`pcp=off`), for the picture.
fn machine_with_a_mix() -> kcompact::Machine {
    machine_with_a_mix_pcp(false)
}

#[test]
fn every_page_is_counted_once_in_its_cell() {
    for m in [machine_with_a_mix(), machine_with_a_mix_pcp(true)] {
        every_page_counted_once(&m);
    }
    assert!(machine_with_a_mix_pcp(true).nr_pcp_pages() > 0);
}

fn every_page_counted_once(m: &kcompact::Machine) {
    for max in [1, 2, 3, 8, 1000] {
        let map = memory_map(m, max);
        assert!(map.len() <= max.max(1), "{max}: {} cells", map.len());
        let pages = map.cell_pages();
        for i in 0..map.len() {
            let sum = map.free[i]
                + map.anon[i]
                + map.file[i]
                + map.kernel[i]
                + map.driver[i]
                + map.hugetlb[i]
                + map.reserved[i]
                + map.hole[i];
            assert_eq!(u64::from(sum), pages, "cell {i} with {max} cells at most");
        }
        let sum = |v: &Vec<u32>| v.iter().map(|x| u64::from(*x)).sum::<u64>();
        assert_eq!(
            sum(&map.free),
            m.nr_free_pages() + m.nr_pcp_pages(),
            "pages on the buddy and per-CPU lists are free"
        );
        assert_eq!(sum(&map.anon), 700);
        assert_eq!(sum(&map.file), 300);
        assert_eq!(sum(&map.hugetlb), 512);
        assert!(sum(&map.kernel) > 3, "3 kernel pages and a page table");
    }
    assert_eq!(memory_map(m, 8).group, 1);
    assert_eq!(memory_map(m, 4).group, 2);
    assert_eq!(memory_map(m, 3).group, 4);
}

#[test]
fn a_free_block_larger_than_a_cell_is_free_in_both_cells() {
    let m = small_machine(0, 8, VmConfig::default());
    let map = memory_map(&m, 1000);
    assert_eq!(map.len(), 8);
    for i in 0..8 {
        assert_eq!(
            cell_glyph(&map, i),
            '.',
            "cell {i}: {}",
            pageblock_map(&map)
        );
    }
}

/// The golden picture: one glyph per pageblock, lines of 64 headed by their pfn, the
/// legend. A change to the classification or the layout shows here.
#[test]
fn golden_pageblock_map() {
    let m = machine_with_a_mix();
    let text = pageblock_map(&memory_map(&m, 8192));
    let want = "\
Node 0, zone Normal (pfn 0x1000-0x2000, 8 cells of 1 pageblock)
  0x00001000 u.MMM...
legend: . free  M/U/R/H/C/I migratetype (upper case: at least half in use)  ! unmovable pages in a movable block  # pinned pages  X reserved pages
";
    assert_eq!(text, want, "\n{text}");
}
