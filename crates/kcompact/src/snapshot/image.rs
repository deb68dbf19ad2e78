//! The model's state as a snapshot (the layout `kcompact capture` writes, which
//! [`super::load`] reads back): each page's `/proc/kpageflags` word as Linux 6.18 would
//! print it, its `/proc/kpagecount`, `/proc/meminfo`, and the tunables as `sysctl_vm.txt`
//! and `thp.txt` hold them. The command line adds the kernel-format views
//! ([`crate::views`]) and `meta.txt`, compresses the page arrays and writes the files.
//!
//! So that big test snapshots can be made from scenarios: `kcompact run --snapshot` and
//! its kind write what a fully used machine of any size would look like to `capture`.

use super::kpageflags::{kpf, PageClass};
use crate::memmap::PageFlags;
use crate::owners::table::FolioKind;
use crate::units::Pfn;
use crate::{Machine, VmConfig};
use std::fmt::Write as _;

/// The pfns a snapshot of `m` covers: from the first populated zone's start to the end of
/// the memory map (`meta.txt`'s `pfn_start` and `pfn_end`).
pub fn pfn_range(m: &Machine) -> (u64, u64) {
    let start = m
        .zones
        .iter()
        .filter(|z| z.is_populated())
        .map(|z| z.zone_start_pfn.0)
        .min()
        .unwrap_or(0);
    (start, m.mem.end_pfn().0.max(start + 1))
}

/// The kpageflags bit each model flag copies to (`kpf_copy_bit()`'s pairs in
/// `stable_page_flags()`, and its page types).
const COPIED: [(PageFlags, u32); 16] = [
    (PageFlags::LOCKED, kpf::LOCKED),
    (PageFlags::REFERENCED, kpf::REFERENCED),
    (PageFlags::DIRTY, kpf::DIRTY),
    (PageFlags::LRU, kpf::LRU),
    (PageFlags::ACTIVE, kpf::ACTIVE),
    (PageFlags::SLAB, kpf::SLAB),
    (PageFlags::WRITEBACK, kpf::WRITEBACK),
    (PageFlags::RECLAIM, kpf::RECLAIM),
    (PageFlags::SWAPBACKED, kpf::SWAPBACKED),
    (PageFlags::UNEVICTABLE, kpf::UNEVICTABLE),
    (PageFlags::MLOCKED, kpf::MLOCKED),
    (PageFlags::RESERVED, kpf::RESERVED),
    (PageFlags::PGTABLE, kpf::PGTABLE),
    (PageFlags::OFFLINE, kpf::OFFLINE),
    (PageFlags::PRIVATE, kpf::PRIVATE),
    (PageFlags::ANON, kpf::ANON),
];

/// What the loader's kernel memory stands for: [`super::load`] places a snapshot's slab,
/// page-table and hugetlb pages it gives no owner of their kind as kernel memory tagged
/// with the [`PageClass`] index; a snapshot of a loaded machine shows them as the kernel
/// did.
fn loaded_class(kind: Option<FolioKind>, owner: u32) -> Option<PageClass> {
    (kind == Some(FolioKind::Kernel))
        .then(|| PageClass::ALL.get(owner as usize).copied())
        .flatten()
}

/// The word of every page of the folio headed at `head` (flags `f`, `n` pages, `mapped`
/// if any page is mapped): mirrors `fs/proc/page.c: stable_page_flags()`, which reads the
/// folio's flags for every page of it, so a tail shows its folio's flags with
/// `KPF_COMPOUND_TAIL` instead of `KPF_COMPOUND_HEAD`. `loaded`: `m` was loaded from a
/// snapshot (its kernel memory's tags name classes, [`loaded_class`]).
fn folio_word(m: &Machine, head: Pfn, f: PageFlags, n: u64, mapped: bool, loaded: bool) -> u64 {
    let mut u = 0u64;
    for (flag, bit) in COPIED {
        if f.contains(flag) {
            u |= 1 << bit;
        }
    }
    if mapped {
        u |= 1 << kpf::MMAP;
    }
    // PG_swapcache reads as KPF_SWAPCACHE only beside PG_swapbacked.
    if f.contains(PageFlags::SWAPCACHE) && f.contains(PageFlags::SWAPBACKED) {
        u |= 1 << kpf::SWAPCACHE;
    }
    if f.contains(PageFlags::HEAD) {
        u |= 1 << kpf::COMPOUND_HEAD;
    }
    let rec = m.folio_of(head).map(|id| m.owners.folio(id));
    let kind = rec.map(|r| r.kind);
    match loaded_class(kind, rec.map_or(0, |r| r.owner)).filter(|_| loaded) {
        Some(PageClass::Slab) => u |= 1 << kpf::SLAB,
        Some(PageClass::PageTable) => u |= 1 << kpf::PGTABLE,
        Some(PageClass::Hugetlb) => u |= (1 << kpf::HUGE) | ((n > 1) as u64) << kpf::COMPOUND_HEAD,
        _ => {}
    }
    if f.contains(PageFlags::HUGETLB) || kind == Some(FolioKind::Hugetlb) {
        u |= 1 << kpf::HUGE;
    } else if n > 1
        && f.contains(PageFlags::HEAD)
        && matches!(
            kind,
            Some(FolioKind::Anon | FolioKind::File | FolioKind::Shmem)
        )
    {
        // folio_test_large_rmappable(): every large anonymous and page-cache folio.
        u |= 1 << kpf::THP;
    }
    if matches!(
        kind,
        Some(FolioKind::Anon | FolioKind::File | FolioKind::Shmem)
    ) {
        // Faulted-in anonymous memory and page cache that was read or written are
        // PG_uptodate. DEVIATION(linux): the model keeps no PG_uptodate; it is set on
        // every such folio.
        u |= 1 << kpf::UPTODATE;
    }
    u
}

/// `/proc/kpageflags` of pfns `start..end`: mirrors `fs/proc/page.c: kpage_read()` with
/// `stable_page_flags()`. A hole reads as 0 (`pfn_to_online_page()` finds no page); every
/// page of a free buddy block has `KPF_BUDDY` (`PageBuddy()` on the head,
/// `is_free_buddy_page()` for the rest); a page on a per-CPU list has no flag (it is not
/// `PageBuddy`); a folio's pages carry its flags, `KPF_MMAP` when mapped, `KPF_THP` for a
/// large anonymous or page-cache folio, `KPF_HUGE` for hugetlb; the pages of a
/// non-compound allocation after its first have none of their own. `loaded`: `m` was
/// loaded from a snapshot ([`loaded_class`]).
pub fn kpageflags(m: &Machine, start: u64, end: u64, loaded: bool) -> Vec<u64> {
    let mut out = vec![0u64; (end - start) as usize];
    let lim = end.min(m.mem.end_pfn().0);
    let tail_of = |w: u64| (w & !(1 << kpf::COMPOUND_HEAD)) | (1 << kpf::COMPOUND_TAIL);
    let mut p = start;
    while p < lim {
        let f = m.mem.flags(Pfn(p));
        let i = (p - start) as usize;
        if f.contains(PageFlags::NOPAGE) {
            p += 1;
        } else if f.contains(PageFlags::BUDDY) {
            let n = (1u64 << m.mem.buddy_order(Pfn(p)).0).min(lim - p);
            out[i..i + n as usize].fill(1 << kpf::BUDDY);
            p += n;
        } else if f.contains(PageFlags::PCP) {
            p += (1u64 << f.order()).min(lim - p);
        } else if f.contains(PageFlags::TAIL) {
            // A tail before its head (a range starting inside a folio): its folio's word.
            let head = m.mem.compound_head(Pfn(p));
            let hf = m.mem.flags(head);
            let w = folio_word(
                m,
                head,
                hf,
                1 << hf.order(),
                m.mem.mapcount(head) > 0,
                loaded,
            );
            out[i] = tail_of(w);
            p += 1;
        } else {
            // The folio's pages: a compound one's, or a non-compound allocation's.
            let n = match m.folio_of(Pfn(p)).map(|id| m.owners.folio(id)) {
                Some(r) if r.pfn.0 == p => r.order.nr_pages(),
                _ if f.contains(PageFlags::HEAD) => 1 << f.order(),
                _ => 1,
            }
            .min(lim - p);
            let mapped = (p..p + n).any(|q| m.mem.mapcount(Pfn(q)) > 0);
            let w = folio_word(m, Pfn(p), f, n, mapped, loaded);
            out[i] = w;
            if w & (1 << kpf::COMPOUND_HEAD) != 0 {
                out[i + 1..i + n as usize].fill(tail_of(w));
            }
            p += n;
        }
    }
    out
}

/// The `pageblocks` file of a snapshot of the model: one byte per pageblock from pageblock
/// 0 to the one holding pfn `end - 1`, its migratetype ([`crate::memmap::MigrateType::idx`]).
/// The kernel shows pageblock types only counted (`/proc/pagetypeinfo`); with this file
/// the loader gives each block back its type, so the free lists per type load as they were.
pub fn pageblock_types(m: &Machine, end: u64) -> Vec<u8> {
    let pb = m.pageblocks.nr_pages();
    (0..end.div_ceil(pb))
        .map(|b| m.pageblocks.migratetype(Pfn(b * pb)).idx() as u8)
        .collect()
}

/// `/proc/kpagecount` of pfns `start..end`: each page of a mapped folio shows the folio's
/// mappings (`folio_average_page_mapcount()`: the model maps folios whole); free pages,
/// holes and unmapped pages 0.
pub fn kpagecount(m: &Machine, start: u64, end: u64) -> Vec<u64> {
    let mut out = vec![0u64; (end - start) as usize];
    let lim = end.min(m.mem.end_pfn().0);
    for p in start..lim {
        let f = m.mem.flags(Pfn(p));
        if f.intersects(PageFlags::NOPAGE | PageFlags::BUDDY | PageFlags::PCP) {
            continue;
        }
        let head = m.mem.compound_head(Pfn(p));
        out[(p - start) as usize] = m.mem.mapcount(head) as u64;
    }
    out
}

/// `/proc/meminfo` (Linux 6.18's `meminfo_proc_show()` layout and field names) for the
/// fields the model keeps: totals, the LRU lists, page cache, anonymous memory, slab,
/// page tables and the hugetlb pool. Fields the model has no state for are left out.
pub fn meminfo(m: &Machine) -> String {
    let mut c = [0u64; 16];
    const ACTIVE_ANON: usize = 0;
    const INACTIVE_ANON: usize = 1;
    const ACTIVE_FILE: usize = 2;
    const INACTIVE_FILE: usize = 3;
    const UNEVICTABLE: usize = 4;
    const MLOCKED: usize = 5;
    const DIRTY: usize = 6;
    const WRITEBACK: usize = 7;
    const ANON: usize = 8;
    const MAPPED: usize = 9;
    const SHMEM: usize = 10;
    const CACHED: usize = 11;
    const SWAPCACHED: usize = 12;
    const SLAB: usize = 13;
    const PGTABLE: usize = 14;
    const HUGETLB: usize = 15;
    for (_, rec) in m.owners.iter() {
        let n = rec.order.nr_pages();
        let f = m.mem.flags(rec.pfn);
        let swapcache = f.contains(PageFlags::SWAPCACHE);
        match rec.kind {
            FolioKind::Anon | FolioKind::File | FolioKind::Shmem => {
                let anon_lru = rec.kind != FolioKind::File;
                let list = if f.contains(PageFlags::UNEVICTABLE) {
                    UNEVICTABLE
                } else {
                    match (anon_lru, f.contains(PageFlags::ACTIVE)) {
                        (true, true) => ACTIVE_ANON,
                        (true, false) => INACTIVE_ANON,
                        (false, true) => ACTIVE_FILE,
                        (false, false) => INACTIVE_FILE,
                    }
                };
                if f.intersects(PageFlags::LRU | PageFlags::UNEVICTABLE) {
                    c[list] += n;
                }
                if f.contains(PageFlags::MLOCKED) {
                    c[MLOCKED] += n;
                }
                if f.contains(PageFlags::DIRTY) {
                    c[DIRTY] += n;
                }
                if f.contains(PageFlags::WRITEBACK) {
                    c[WRITEBACK] += n;
                }
                match rec.kind {
                    FolioKind::Anon => c[ANON] += n,
                    FolioKind::Shmem => {
                        c[SHMEM] += n;
                        c[CACHED] += n;
                    }
                    _ => c[CACHED] += n,
                }
                if swapcache {
                    c[SWAPCACHED] += n;
                }
                if rec.kind != FolioKind::Anon && m.mem.mapcount(rec.pfn) > 0 {
                    c[MAPPED] += n;
                }
            }
            FolioKind::Slab => c[SLAB] += n,
            FolioKind::PageTable => c[PGTABLE] += n,
            FolioKind::Hugetlb => c[HUGETLB] += n,
            FolioKind::Kernel | FolioKind::Driver => {}
        }
    }
    let total: u64 = m.zones.iter().map(|z| z.managed_pages).sum();
    let huge_pages = |pages: u64| pages >> 9;
    let mut s = String::new();
    let mut kb = |name: &str, pages: u64| {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{name}:"), pages * 4);
    };
    kb("MemTotal", total);
    kb("MemFree", m.nr_free_pages());
    kb("Buffers", 0);
    kb("Cached", c[CACHED]);
    kb("SwapCached", c[SWAPCACHED]);
    kb("Active", c[ACTIVE_ANON] + c[ACTIVE_FILE]);
    kb("Inactive", c[INACTIVE_ANON] + c[INACTIVE_FILE]);
    kb("Active(anon)", c[ACTIVE_ANON]);
    kb("Inactive(anon)", c[INACTIVE_ANON]);
    kb("Active(file)", c[ACTIVE_FILE]);
    kb("Inactive(file)", c[INACTIVE_FILE]);
    kb("Unevictable", c[UNEVICTABLE]);
    kb("Mlocked", c[MLOCKED]);
    kb("Dirty", c[DIRTY]);
    kb("Writeback", c[WRITEBACK]);
    kb("AnonPages", c[ANON]);
    kb("Mapped", c[MAPPED]);
    kb("Shmem", c[SHMEM]);
    kb("Slab", c[SLAB]);
    kb("PageTables", c[PGTABLE]);
    let pool = huge_pages(c[HUGETLB]);
    let _ = writeln!(s, "HugePages_Total: {pool:>5}");
    let _ = writeln!(s, "HugePages_Free:  {:>5}", m.hugetlb.pages.len() as u64);
    let _ = writeln!(s, "HugePages_Rsvd:  {:>5}", 0);
    let _ = writeln!(s, "HugePages_Surp:  {:>5}", 0);
    let _ = writeln!(s, "Hugepagesize:   {:>8} kB", 2048);
    let _ = writeln!(s, "Hugetlb:        {:>8} kB", c[HUGETLB] * 4);
    s
}

/// `sysctl_vm.txt` as `kcompact capture` writes it (`name=value` per `/proc/sys/vm`
/// file): the model's run-time tunables that mirror one, as the file would print them
/// (`min_free_kbytes` the value in effect, when the kernel computed it).
pub fn sysctl_vm(m: &Machine) -> String {
    use crate::sysctl::{Handler, Scope, Value, TUNABLES};
    let cfg = crate::sysctl::MachineConfig {
        vm: m.config.clone(),
        ..crate::sysctl::MachineConfig::new(0)
    };
    let mut s = String::new();
    for t in TUNABLES.iter().filter(|t| t.scope == Scope::Runtime) {
        let Some(file) = t.file.filter(|f| !f.contains('/')) else {
            continue;
        };
        let v = match ((t.get)(&cfg), t.handler) {
            (Value::Bool(b), Handler::Bool { .. }) => (b as u8).to_string(),
            (Value::Auto, _) if t.name == "min_free_kbytes" => m.min_free_kbytes.to_string(),
            _ => t.show(&cfg),
        };
        let _ = writeln!(s, "{file}={v}");
    }
    s
}

/// `thp.txt` as `kcompact capture` writes it: THP `enabled` and `defrag` with the chosen
/// word bracketed, as their sysfs files print them.
pub fn thp(vm: &VmConfig) -> String {
    use crate::sysctl::ThpDefrag;
    let enabled = if !vm.thp_enabled {
        "never"
    } else if vm.thp_madvise_only {
        "madvise"
    } else {
        "always"
    };
    let choices = |all: &[&str], chosen: &str| {
        all.iter()
            .map(|w| {
                if *w == chosen {
                    format!("[{w}]")
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let defrag: Vec<&str> = [
        ThpDefrag::Always,
        ThpDefrag::Defer,
        ThpDefrag::DeferMadvise,
        ThpDefrag::Madvise,
        ThpDefrag::Never,
    ]
    .iter()
    .map(|d| d.name())
    .collect();
    format!(
        "enabled={}\ndefrag={}\n",
        choices(&["always", "madvise", "never"], enabled),
        choices(&defrag, vm.thp_defrag.name())
    )
}
