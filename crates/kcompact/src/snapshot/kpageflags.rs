//! `/proc/kpageflags`: the bit layout (include/uapi/linux/kernel-page-flags.h and the
//! unstable bits of include/linux/kernel-page-flags.h, the same in Linux 5.x and 6.x), the
//! class each page falls in, and the free blocks rebuilt from the BUDDY runs.

use crate::units::MAX_PAGE_ORDER;

/// `KPF_*` bit numbers.
#[allow(missing_docs)]
pub mod kpf {
    pub const LOCKED: u32 = 0;
    pub const ERROR: u32 = 1;
    pub const REFERENCED: u32 = 2;
    pub const UPTODATE: u32 = 3;
    pub const DIRTY: u32 = 4;
    pub const LRU: u32 = 5;
    pub const ACTIVE: u32 = 6;
    pub const SLAB: u32 = 7;
    pub const WRITEBACK: u32 = 8;
    pub const RECLAIM: u32 = 9;
    pub const BUDDY: u32 = 10;
    pub const MMAP: u32 = 11;
    pub const ANON: u32 = 12;
    pub const SWAPCACHE: u32 = 13;
    pub const SWAPBACKED: u32 = 14;
    pub const COMPOUND_HEAD: u32 = 15;
    pub const COMPOUND_TAIL: u32 = 16;
    pub const HUGE: u32 = 17;
    pub const UNEVICTABLE: u32 = 18;
    pub const HWPOISON: u32 = 19;
    pub const NOPAGE: u32 = 20;
    pub const KSM: u32 = 21;
    pub const THP: u32 = 22;
    pub const OFFLINE: u32 = 23;
    pub const ZERO_PAGE: u32 = 24;
    pub const IDLE: u32 = 25;
    pub const PGTABLE: u32 = 26;
    pub const RESERVED: u32 = 32;
    pub const MLOCKED: u32 = 33;
    pub const MAPPEDTODISK: u32 = 34;
    pub const PRIVATE: u32 = 35;
    pub const PRIVATE_2: u32 = 36;
    pub const OWNER_PRIVATE: u32 = 37;
    pub const ARCH: u32 = 38;
    pub const UNCACHED: u32 = 39;
    pub const SOFTDIRTY: u32 = 40;
    pub const ARCH_2: u32 = 41;
}

/// Whether bit `bit` is set in a kpageflags word.
#[inline]
pub fn has(word: u64, bit: u32) -> bool {
    word & (1u64 << bit) != 0
}

/// What a page is, as far as kpageflags tells. For compound pages the class is the head's
/// (tails carry few flags of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageClass {
    /// No struct page (a hole) or offline.
    NoPage,
    /// Reserved by firmware or early boot (memblock), never in the buddy allocator.
    Reserved,
    /// In a free buddy block.
    Free,
    /// Hugetlb pool page.
    Hugetlb,
    /// Anonymous memory on the LRU.
    Anon,
    /// Shared memory / tmpfs (swap-backed page cache) on the LRU.
    Shmem,
    /// File page cache on the LRU.
    File,
    /// Slab page.
    Slab,
    /// Page-table page.
    PageTable,
    /// Allocated with some flag but none of the above: kernel memory off the LRU (stacks,
    /// buffers, vmalloc, pages of movable drivers, ...).
    Kernel,
    /// No flag at all: kernel memory that sets none (per-cpu list pages, many driver and
    /// vmalloc pages), or memory the kernel has not initialised yet (`deferred_init`).
    NoFlags,
}

impl PageClass {
    /// Every class, in order.
    pub const ALL: [PageClass; 11] = [
        PageClass::NoPage,
        PageClass::Reserved,
        PageClass::Free,
        PageClass::Hugetlb,
        PageClass::Anon,
        PageClass::Shmem,
        PageClass::File,
        PageClass::Slab,
        PageClass::PageTable,
        PageClass::Kernel,
        PageClass::NoFlags,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            PageClass::NoPage => "nopage",
            PageClass::Reserved => "reserved",
            PageClass::Free => "free",
            PageClass::Hugetlb => "hugetlb",
            PageClass::Anon => "anon",
            PageClass::Shmem => "shmem",
            PageClass::File => "file",
            PageClass::Slab => "slab",
            PageClass::PageTable => "pagetable",
            PageClass::Kernel => "kernel",
            PageClass::NoFlags => "noflags",
        }
    }
}

/// The class of one page from its own word (`head` is its compound head's word, the same
/// word for a page that is no tail).
pub fn classify(word: u64, head: u64) -> PageClass {
    if word == 0 {
        return PageClass::NoFlags;
    }
    if has(word, kpf::NOPAGE) || has(word, kpf::OFFLINE) {
        return PageClass::NoPage;
    }
    if has(word, kpf::BUDDY) {
        return PageClass::Free;
    }
    if has(word, kpf::RESERVED) {
        return PageClass::Reserved;
    }
    let w = if has(word, kpf::COMPOUND_TAIL) {
        head
    } else {
        word
    };
    if has(w, kpf::HUGE) {
        PageClass::Hugetlb
    } else if has(w, kpf::SLAB) {
        PageClass::Slab
    } else if has(w, kpf::PGTABLE) {
        PageClass::PageTable
    } else if has(w, kpf::LRU) || has(w, kpf::UNEVICTABLE) {
        if has(w, kpf::ANON) {
            PageClass::Anon
        } else if has(w, kpf::SWAPBACKED) {
            PageClass::Shmem
        } else {
            PageClass::File
        }
    } else {
        PageClass::Kernel
    }
}

/// Counts of free blocks per order, as buddyinfo prints them.
pub type FreeCounts = [u64; MAX_PAGE_ORDER as usize + 1];

/// Rebuilds the free blocks of pfns `[start, end)` from kpageflags (`flags[i]` is pfn
/// `pfn_base + i`). Every page of a free block has BUDDY since Linux 4.6, so a run of BUDDY
/// pages is a sequence of free blocks; each is taken as the largest naturally aligned block
/// that fits in what is left of the run, at most order [`MAX_PAGE_ORDER`]. This is exact
/// wherever the buddy allocator merged what it could; two free buddies it kept apart (the
/// pageblocks' migratetypes forbade the merge, or one was isolated) read as one block.
pub fn rebuild_free_blocks(flags: &[u64], pfn_base: u64, start: u64, end: u64) -> FreeCounts {
    let mut counts = [0u64; MAX_PAGE_ORDER as usize + 1];
    let first = start.max(pfn_base);
    let last = end.min(pfn_base + flags.len() as u64);
    let mut p = first;
    while p < last {
        if !has(flags[(p - pfn_base) as usize], kpf::BUDDY) {
            p += 1;
            continue;
        }
        let mut run_end = p;
        while run_end < last && has(flags[(run_end - pfn_base) as usize], kpf::BUDDY) {
            run_end += 1;
        }
        while p < run_end {
            let align = if p == 0 {
                MAX_PAGE_ORDER as u32
            } else {
                p.trailing_zeros().min(MAX_PAGE_ORDER as u32)
            };
            let mut o = align;
            while p + (1u64 << o) > run_end {
                o -= 1;
            }
            counts[o as usize] += 1;
            p += 1u64 << o;
        }
    }
    counts
}

/// Pages of each [`PageClass`] in pfns `[start, end)`.
pub fn class_counts(
    flags: &[u64],
    pfn_base: u64,
    start: u64,
    end: u64,
) -> [u64; PageClass::ALL.len()] {
    let mut counts = [0u64; PageClass::ALL.len()];
    let first = start.max(pfn_base);
    let last = end.min(pfn_base + flags.len() as u64);
    let mut head = 0u64;
    for p in first..last {
        let w = flags[(p - pfn_base) as usize];
        if !has(w, kpf::COMPOUND_TAIL) {
            head = w;
        }
        let c = classify(w, head);
        counts[PageClass::ALL
            .iter()
            .position(|x| *x == c)
            .expect("a class")] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u64 = 1 << kpf::BUDDY;

    #[test]
    fn buddy_runs_split_into_largest_aligned_blocks() {
        // pfns 0x100..0x100+1024: an order-9 block at 0x100 would be misaligned, so the run
        // 0x100..0x500 is 0x100 (order 8), 0x200 (order 9), 0x400 (order 8).
        let base = 0x100;
        let mut f = vec![B; 1024];
        // A used page splits the run: 0x480 is used.
        f[0x480 - base] = 1 << kpf::LRU;
        let c = rebuild_free_blocks(&f, base as u64, 0, u64::MAX);
        // 0x100 o8, 0x200 o9, 0x400 o7, 0x481 o0, 0x482 o1, 0x484 o2, 0x488 o3, 0x490 o4,
        // 0x4a0 o5, 0x4c0 o6.
        assert_eq!(c, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(crate::snapshot::text::pages_in_orders(&c), 1023);
    }

    #[test]
    fn a_run_stops_at_the_zone_edge_and_caps_at_max_order() {
        let f = vec![B; 4096];
        assert_eq!(rebuild_free_blocks(&f, 0, 0, 4096)[10], 4);
        let c = rebuild_free_blocks(&f, 0, 1024, 1536);
        assert_eq!(c[9], 1);
        assert_eq!(c.iter().sum::<u64>(), 1);
    }

    #[test]
    fn classes_follow_the_head_for_tails() {
        let head = (1 << kpf::COMPOUND_HEAD) | (1 << kpf::LRU) | (1 << kpf::ANON) | (1 << kpf::THP);
        let tail = (1 << kpf::COMPOUND_TAIL) | (1 << kpf::THP);
        let f = [
            head,
            tail,
            1 << kpf::SLAB,
            1 << kpf::NOPAGE,
            B,
            1 << kpf::RESERVED,
            1 << kpf::REFERENCED,
            0,
        ];
        let c = class_counts(&f, 0, 0, 8);
        let get = |k: PageClass| c[PageClass::ALL.iter().position(|x| *x == k).unwrap()];
        assert_eq!(get(PageClass::Anon), 2);
        assert_eq!(get(PageClass::Slab), 1);
        assert_eq!(get(PageClass::NoPage), 1);
        assert_eq!(get(PageClass::Free), 1);
        assert_eq!(get(PageClass::Reserved), 1);
        assert_eq!(get(PageClass::Kernel), 1);
        assert_eq!(get(PageClass::NoFlags), 1);
        let shmem = (1 << kpf::LRU) | (1 << kpf::SWAPBACKED);
        assert_eq!(classify(shmem, shmem), PageClass::Shmem);
        assert_eq!(classify(1 << kpf::LRU, 1 << kpf::LRU), PageClass::File);
    }
}
