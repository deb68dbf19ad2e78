//! Building a model machine from a snapshot: the zones of `/proc/zoneinfo`, every page's
//! state from `/proc/kpageflags`, placed pfn by pfn with [`Machine::with_placement`]; then
//! the pageblock types reconciled with `/proc/pagetypeinfo` and the capture's own pages
//! freed, when the snapshot has those files ([`SnapshotFiles`], [`load`]).
//!
//! What the files cannot show is assumed (docs/linux-map.md, "Snapshot loading"):
//! - refcounts and pins: each folio holds its owner's references only (no pins);
//!   kpagecount is the map count: page cache with KPF_MMAP is mapped that many times (at
//!   most [`MAX_FILE_MAPS`]) into one process, without page-table pages of its own (the
//!   snapshot's page-table pages, placed where they are, stand for them); KPF_ACTIVE and KPF_REFERENCED
//!   carry over to the LRU flags, the PTE accessed bits (invisible) start clear;
//! - pages with no flag at all are outside the buddy allocator (reserved): on this
//!   kind of machine they are mostly memory `deferred_init` has not initialised yet, the
//!   rest per-cpu list pages and kernel pages that set no flag; whole pageblocks of them
//!   at a zone's end are left out of its span (the kernel's compaction stops before
//!   them too);
//! - anonymous folios belong to one process, at virtual page = pfn (packed in pfn order
//!   in a snapshot of the model, [`SnapshotFiles::anon_packed`]); its page tables sit on
//!   the snapshot's page-table pages;
//! - pageblocks holding page-table or other kernel pages are UNMOVABLE, those holding
//!   slab pages only RECLAIMABLE (kpageflags cannot tell reclaimable slab from the rest;
//!   on file-heavy machines dentries and inodes dominate), the rest MOVABLE.

use super::kpageflags::{classify, has, kpf, PageClass};
use super::text::{PagetypeInfoRecord, ZoneInfoRecord};
use super::SnapshotError;
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
use crate::memmap::MigrateType;
use crate::units::{NodeId, Order, Pfn, MAX_PAGE_ORDER};
use crate::{Machine, VmConfig};

/// What loading did, for the report and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Pages placed per class ([`PageClass::ALL`] order).
    pub placed: [u64; PageClass::ALL.len()],
    /// Mappings of page cache made from kpagecount.
    pub file_mappings: u64,
    /// Folios that could not be placed (their range was not free in the model).
    pub unplaced: u64,
    /// Compound runs that are no power of two of at most MAX_PAGE_ORDER (placed page by
    /// page).
    pub odd_compounds: u64,
    /// Page tables that found no page-table page of the snapshot left and took a free
    /// page (the snapshot had fewer page-table pages than the model's process needs).
    pub pgtables_from_free: u64,
    /// Pageblocks made UNMOVABLE (page-table or other kernel pages).
    pub unmovable_blocks: u64,
    /// Pageblocks made RECLAIMABLE (slab pages only).
    pub reclaimable_blocks: u64,
    /// Pageblock types reconciled with the snapshot's pagetypeinfo, per zone (empty
    /// without it).
    pub reconcile: Vec<ZoneReconcile>,
    /// Pages of the capturing process freed (`capture_pfns`), when listed.
    pub capture_pages_released: Option<u64>,
    /// Per-CPU lists filled from zoneinfo's `pagesets`, per zone.
    pub pcp: Vec<ZonePcpLoad>,
    /// The page cache's slab objects, when `slabinfo` was given.
    pub cache_slab: Option<super::slab::CacheSlabLoad>,
}

/// How one zone's per-CPU lists were filled ([`place_pcp_pages`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZonePcpLoad {
    /// Node and zone name.
    pub zone: (u32, String),
    /// Pages zoneinfo's `count:` lines put on the zone's lists, all CPUs.
    pub wanted: u64,
    /// Pages with no flag and map count 0 in the zone (the candidates).
    pub candidates: u64,
    /// Pages placed on the lists.
    pub placed: u64,
    /// Candidates left as kernel pages without flags (reserved).
    pub left_over: u64,
}

fn zone_type(file: &str, z: &ZoneInfoRecord) -> Result<ZoneType, SnapshotError> {
    ZoneType::from_name(&z.name).ok_or_else(|| SnapshotError::File {
        file: file.to_string(),
        msg: format!("unknown zone {:?}", z.name),
    })
}

/// Runs of pfns in `[start, end)` for which `pred` holds.
fn runs(start: u64, end: u64, mut pred: impl FnMut(u64) -> bool) -> Vec<PfnRange> {
    let mut out = Vec::new();
    let mut p = start;
    while p < end {
        if !pred(p) {
            p += 1;
            continue;
        }
        let s = p;
        while p < end && pred(p) {
            p += 1;
        }
        out.push(PfnRange::new(s, p));
    }
    out
}

/// The most mappings a loaded page-cache folio gets from its kpagecount.
pub const MAX_FILE_MAPS: u64 = 8;
/// Where the loader maps page cache in its process: mapping `k` of the folio at pfn `p`
/// sits at virtual page `(k + 1) * FILE_MAP_BASE + p`, far above the anonymous memory
/// (virtual page = pfn).
const FILE_MAP_BASE: u64 = 1 << 36;

/// Every file of a snapshot the loader uses, read and parsed by the caller (the core does
/// no I/O): `kpageflags[i]` and `kpagecount[i]` are pfn `pfn_start + i`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotFiles<'a> {
    /// `meta.txt`'s `pfn_start`: the first pfn of the page arrays.
    pub pfn_start: u64,
    /// `/proc/zoneinfo`.
    pub zoneinfo: &'a [ZoneInfoRecord],
    /// `/proc/kpageflags`.
    pub kpageflags: &'a [u64],
    /// `/proc/kpagecount` (the map count), when captured; without it page cache loads
    /// unmapped.
    pub kpagecount: Option<&'a [u64]>,
    /// `/proc/pagetypeinfo`, when captured: the pageblock types inferred from the pages
    /// are reconciled with it ([`reconcile_pageblock_types`]).
    pub pagetypeinfo: Option<&'a [PagetypeInfoRecord]>,
    /// `capture_pfns.txt`, when captured: the capturing process's own anonymous pages,
    /// freed once the machine is built ([`release_capture_pages`]).
    pub capture_pfns: Option<&'a [u64]>,
    /// `zoneinfo.post`, read just after the page arrays, when captured: the per-CPU lists'
    /// `high` when the capture ended, right before an action ([`place_pcp_pages`]).
    pub zoneinfo_post: Option<&'a [ZoneInfoRecord]>,
    /// `/proc/slabinfo`, when captured: the page cache's buffer heads and XArray nodes
    /// ([`super::slab::attach_cache_slab`]).
    pub slabinfo: Option<&'a [super::text::SlabInfoRecord]>,
    /// `dentry-state` and `inode-state`, when captured: the unused dentries and inodes
    /// `drop_caches` 2 frees ([`super::slab::attach_cache_slab`]).
    pub fs_state: Option<super::slab::FsState>,
    /// `meta.txt`'s `anon_layout=packed` (a snapshot of the model, [`super::image`]):
    /// anonymous folios are mapped at virtual pages packed in pfn order, which needs no
    /// more page tables than the model that wrote it had; otherwise at virtual page = pfn.
    pub anon_packed: bool,
    /// `pageblocks`, in a snapshot of the model ([`super::image::pageblock_types`]): each
    /// pageblock's migratetype (byte `i` is pageblock `i`, [`MigrateType::from_u8`]), set
    /// after the types are inferred from the pages; the kernel shows no such file.
    pub pageblock_types: Option<&'a [u8]>,
}

impl SnapshotFiles<'_> {
    /// The kpageflags word of pfn `p` (NOPAGE outside the array).
    fn flags_of(&self, p: u64) -> u64 {
        match p.checked_sub(self.pfn_start) {
            Some(i) if i < self.kpageflags.len() as u64 => self.kpageflags[i as usize],
            _ => 1 << kpf::NOPAGE,
        }
    }

    /// The kpagecount of pfn `p` (0 without the array).
    fn mapcount(&self, p: u64) -> u64 {
        self.kpagecount
            .and_then(|c| c.get(p.wrapping_sub(self.pfn_start) as usize).copied())
            .unwrap_or(0)
    }
}

/// Builds a machine from a snapshot's files (see the module documentation): the zones, then
/// every page placed where it was, then the pageblock types reconciled with pagetypeinfo
/// and the capture's own pages freed, when the snapshot has those files.
pub fn load(
    files: &SnapshotFiles,
    mut config: VmConfig,
) -> Result<(Machine, LoadReport), SnapshotError> {
    // As many CPUs as zoneinfo prints pagesets for.
    if let Some(n) = files.zoneinfo.iter().map(|z| z.pagesets.len()).max() {
        if n > 0 {
            config.cpus = n as u32;
        }
    }
    if let Some(c) = files.kpagecount {
        if c.len() != files.kpageflags.len() {
            return Err(SnapshotError::File {
                file: "kpagecount".into(),
                msg: format!(
                    "{} pfns, but kpageflags has {}",
                    c.len(),
                    files.kpageflags.len()
                ),
            });
        }
    }
    let layout =
        Layout::from_zones(zone_specs(files)?, Order(9)).map_err(|e| SnapshotError::File {
            file: "zoneinfo".into(),
            msg: format!("zones do not form a layout: {e}"),
        })?;
    let m = Machine::boot(&layout, config).map_err(|e| SnapshotError::File {
        file: "zoneinfo".into(),
        msg: format!("cannot boot the zones: {e}"),
    })?;
    let mut m = m;
    m.keep_lru_ghosts();
    set_watermarks(&mut m, files);
    let mut l = Loader::new(m, files);
    l.place_folios(&layout);
    l.index_page_cache();
    l.place_anon();
    l.map_page_cache();
    l.set_lru_flags();
    l.place_spare_page_tables();
    l.set_pageblock_types();
    let (mut m, mut report) = (l.m, l.report);
    if let Some(types) = files.pageblock_types {
        // DEVIATION(linux): a file only a model snapshot has (no kernel file shows the
        // type of each pageblock).
        set_written_pageblock_types(&mut m, types);
    }
    if let Some(pti) = files.pagetypeinfo {
        report.reconcile = reconcile_pageblock_types(&mut m, pti);
    }
    // DEVIATION(linux): the order of the free lists and of the LRU lists is not in the
    // files; it is drawn at random from a fixed seed (see Machine::shuffle_free_lists and
    // Machine::shuffle_lru_lists).
    let mut rng = crate::rng::SimRng::new(LIST_ORDER_SEED);
    m.shuffle_free_lists(&mut rng);
    m.shuffle_lru_lists(&mut rng);
    if let Some(si) = files.slabinfo {
        report.cache_slab = Some(super::slab::attach_cache_slab(
            &mut m,
            si,
            files.fs_state,
            class_idx(PageClass::Slab) as u32,
        ));
    }
    report.pcp = place_pcp_pages(&mut m, files);
    if let Some(pfns) = files.capture_pfns {
        report.capture_pages_released = Some(release_capture_pages(&mut m, pfns));
    }
    Ok((m, report))
}

/// Each zone's watermarks, boost and lowmem reserves as zoneinfo prints them (the machine
/// computed its own from its managed pages, which lazily initialised memory and the pages
/// the loader holds back make differ by a little), and the per-CPU lists sized from them.
fn set_watermarks(m: &mut Machine, files: &SnapshotFiles) {
    for rec in files.zoneinfo.iter().filter(|z| z.managed > 0 && z.min > 0) {
        let Some(zt) = ZoneType::from_name(&rec.name) else {
            continue;
        };
        if rec.node as usize >= m.nr_nodes() {
            continue;
        }
        let zi = m.zone_of(NodeId(rec.node as u8), zt);
        let z = &mut m.zones[zi.idx()];
        let promo = if rec.promo > 0 {
            rec.promo
        } else {
            rec.high + (rec.high - rec.low)
        };
        z.watermark = [rec.min, rec.low, rec.high, promo];
        z.watermark_boost = rec.boost;
        for (i, p) in rec
            .protection
            .iter()
            .enumerate()
            .take(z.lowmem_reserve.len())
        {
            z.lowmem_reserve[i] = *p;
        }
    }
    m.zone_pcp_update_all();
    m.calculate_totalreserve_pages();
}

/// The seed of the loaded free and LRU lists' order.
pub const LIST_ORDER_SEED: u64 = 0x6b63_6f6d_7061_6374;

/// Fills each zone's per-CPU lists with as many pages as zoneinfo's `pagesets` count, per
/// CPU, and sets each CPU's `high` to what zoneinfo prints.
///
/// A page on a per-CPU list is a free page the kernel keeps off the buddy lists: kpageflags
/// shows it with no flag and map count 0, like a kernel page that sets no flag (vmalloc,
/// page fragments). The candidates are the zone's pages with no flag; whole pageblocks of
/// them (most likely one large kernel allocation, or memory not yet initialised) are taken
/// last. Among the rest the pages are chosen evenly spaced over the zone, in pfn order,
/// CPU after CPU; the candidates not chosen stay kernel pages.
///
/// DEVIATION(linux): which no-flag pages wait on a per-CPU list is not in the files (and
/// zoneinfo and kpageflags are read at different moments); the even spacing is the
/// model's choice. Every page goes on as an order-0 block of its pageblock's type's list.
pub fn place_pcp_pages(m: &mut Machine, files: &SnapshotFiles) -> Vec<ZonePcpLoad> {
    let mut out = Vec::new();
    if !m.config.pcp {
        return out;
    }
    for rec in files.zoneinfo.iter().filter(|z| !z.pagesets.is_empty()) {
        let Some(zt) = ZoneType::from_name(&rec.name) else {
            continue;
        };
        if rec.node as usize >= m.nr_nodes() {
            continue;
        }
        let zi = m.zone_of(NodeId(rec.node as u8), zt);
        if !m.zone(zi).is_populated() || m.zone(zi).pageset.is_empty() {
            continue;
        }
        let (start, end) = (m.zone(zi).zone_start_pfn.0, m.zone(zi).end_pfn().0);
        let no_flags = |p: u64| {
            files.flags_of(p) == 0
                && files.mapcount(p) == 0
                && m.mem
                    .flags(Pfn(p))
                    .contains(crate::memmap::PageFlags::RESERVED)
        };
        let whole_block = |p: u64| {
            let b = p & !511;
            (b..b + 512).all(|q| q >= start && q < end && files.flags_of(q) == 0)
        };
        let (mut loose, mut blocks) = (Vec::new(), Vec::new());
        for p in start..end {
            if no_flags(p) {
                if whole_block(p) {
                    blocks.push(p);
                } else {
                    loose.push(p);
                }
            }
        }
        let wanted: u64 = rec.pagesets.iter().map(|s| s.count).sum();
        let candidates = (loose.len() + blocks.len()) as u64;
        let chosen = evenly_spaced(&loose, wanted.min(loose.len() as u64))
            .into_iter()
            .chain(evenly_spaced(
                &blocks,
                wanted
                    .saturating_sub(loose.len() as u64)
                    .min(blocks.len() as u64),
            ));
        let mut chosen: Vec<u64> = chosen.collect();
        chosen.sort_unstable();
        // The limit the lists had when the capture ended (its own allocations raise it),
        // which is what an action right after the capture meets; zoneinfo's otherwise.
        let post = files.zoneinfo_post.and_then(|zs| {
            zs.iter()
                .find(|z| z.node == rec.node && z.name == rec.name)
                .filter(|z| z.pagesets.len() == rec.pagesets.len())
        });
        let mut placed = 0;
        let mut it = chosen.into_iter();
        for (cpu, set) in rec.pagesets.iter().enumerate() {
            for p in it.by_ref().take(set.count as usize) {
                placed += m.adopt_reserved_page_to_pcp(Pfn(p), cpu as u32) as u64;
            }
            let high = post.map_or(set.high, |z| z.pagesets[cpu].high);
            if let Some(pcp) = m.zones[zi.idx()].pageset.get_mut(cpu) {
                // Within the bounds the loaded watermarks give.
                pcp.high = high.max(pcp.high_min).min(pcp.high_max);
            }
        }
        out.push(ZonePcpLoad {
            zone: (rec.node, rec.name.clone()),
            wanted,
            candidates,
            placed,
            left_over: candidates - placed,
        });
    }
    out
}

/// `n` of `items`, spread evenly from the first to the last.
fn evenly_spaced(items: &[u64], n: u64) -> Vec<u64> {
    let len = items.len() as u64;
    if n == 0 || len == 0 {
        return Vec::new();
    }
    (0..n).map(|i| items[(i * len / n) as usize]).collect()
}

/// The zones of the layout: each populated zone of zoneinfo with its present and reserved
/// pfns as kpageflags shows them.
fn zone_specs(files: &SnapshotFiles) -> Result<Vec<ZoneSpec>, SnapshotError> {
    let pfn_start = files.pfn_start;
    let Some(flags_end) = pfn_start.checked_add(files.kpageflags.len() as u64) else {
        return Err(SnapshotError::File {
            file: "meta.txt".into(),
            msg: format!("pfn_start {pfn_start} leaves no room for the page arrays"),
        });
    };
    let word = |p: u64| files.flags_of(p);
    let mut specs = Vec::new();
    for z in files
        .zoneinfo
        .iter()
        .filter(|z| z.spanned > 0 && z.present > 0)
    {
        let (start, end) = (z.start_pfn, z.start_pfn.saturating_add(z.spanned));
        if start < pfn_start || end > flags_end {
            return Err(SnapshotError::File {
                file: "zoneinfo".into(),
                msg: format!(
                    "zone {} spans pfns {start}..{end}, outside kpageflags' {pfn_start}..{flags_end}",
                    z.name
                ),
            });
        }
        let (end, present_end) = initialised_end(files, z, start, end);
        specs.push(ZoneSpec {
            node: NodeId(z.node as u8),
            zone_type: zone_type("zoneinfo", z)?,
            start_pfn: Pfn(start),
            spanned: end - start,
            present: runs(start, present_end, |p| !has(word(p), kpf::NOPAGE)),
            reserved: runs(start, present_end, |p| {
                let w = word(p);
                !has(w, kpf::NOPAGE)
                    && matches!(
                        classify(w, w),
                        PageClass::Reserved | PageClass::NoFlags | PageClass::NoPage
                    )
            }),
        });
    }
    Ok(specs)
}

/// Where zone `z` (pfns `start..end`) ends in the model, and where its present pages end.
///
/// Memory `deferred_init=lazy` has not initialised yet reads as pages with no flag at the
/// zone's end; this kernel's compaction runs only up to the initialised end (its trace
/// shows Normal's zone_end = start + managed while zoneinfo's spanned is far larger), so
/// the model's zone ends there too, at a pageblock boundary. A trailing run no longer than
/// the zone's holes (spanned - present) is a hole (DMA32's end below 4 GiB), not
/// uninitialised memory.
fn initialised_end(files: &SnapshotFiles, z: &ZoneInfoRecord, start: u64, end: u64) -> (u64, u64) {
    let mut last = end;
    while last > start && files.flags_of(last - 1) == 0 {
        last -= 1;
    }
    let init_end = last.div_ceil(1 << 9) << 9;
    let hole_end = init_end < end && end - init_end <= z.spanned.saturating_sub(z.present);
    let mut end = end;
    if init_end < end && end - init_end >= 1 << 9 && !hole_end {
        end = init_end.max(start + 1);
    }
    let present_end = if hole_end { init_end } else { end };
    (end, present_end)
}

/// The index of a class in [`PageClass::ALL`] (the tag of the kernel memory standing for
/// it, and its slot in [`LoadReport::placed`]).
fn class_idx(c: PageClass) -> usize {
    PageClass::ALL.iter().position(|x| *x == c).expect("class")
}

/// The loader's state while it places the pages of a booted machine.
struct Loader<'a> {
    files: &'a SnapshotFiles<'a>,
    m: Machine,
    report: LoadReport,
    /// The process owning the anonymous memory and the page-cache mappings.
    pid: u32,
    /// Page cache without and with buffers (PG_private), and shmem.
    file_plain: u32,
    file_buffers: u32,
    shmem: u32,
    /// Order-0 page-table pages of the snapshot, for the process's page tables.
    table_slots: Vec<u64>,
    /// Anonymous folios to fault in: (pfn = virtual page, order).
    anon: Vec<(u64, Order)>,
    /// Page cache to map: (file, pfn = index, mappings).
    mapped: Vec<(u32, u64, u64)>,
    /// LRU folios whose list position the flags give: (pfn, active, referenced).
    lru_state: Vec<(u64, u64)>,
    /// Pageblocks holding kernel pages: (block, holds page-table or other kernel pages).
    kernel_blocks: Vec<(u64, bool)>,
    /// Page cache placed, in pfn order: (file, index = pfn, folio), entered in the files'
    /// indices once all is placed ([`Loader::index_page_cache`]).
    cache_index: Vec<(u32, u64, crate::owners::table::FolioId)>,
}

impl<'a> Loader<'a> {
    fn new(mut m: Machine, files: &'a SnapshotFiles<'a>) -> Self {
        let pid = m.new_process();
        let file_plain = m.new_file(false, true, false);
        let file_buffers = m.new_file(false, true, true);
        let shmem = m.new_file(true, true, false);
        Loader {
            files,
            m,
            report: LoadReport::default(),
            pid,
            file_plain,
            file_buffers,
            shmem,
            table_slots: Vec::new(),
            anon: Vec::new(),
            mapped: Vec::new(),
            lru_state: Vec::new(),
            kernel_blocks: Vec::new(),
            cache_index: Vec::new(),
        }
    }

    /// Walks every zone's pfns: kernel memory and page cache are placed at once, anonymous
    /// folios and page-table pages are kept for [`Loader::place_anon`].
    fn place_folios(&mut self, layout: &Layout) {
        for z in layout.zones.iter().filter(|z| z.spanned > 0) {
            let (start, end) = (z.start_pfn.0, z.start_pfn.0 + z.spanned);
            let mut p = start;
            while p < end {
                p += self.place_folio_at(p, end);
            }
        }
    }

    /// Places the folio whose head is pfn `p` (a compound head and its tails before
    /// `end`); returns the pfns it covers (1 for a page that heads no folio).
    fn place_folio_at(&mut self, p: u64, end: u64) -> u64 {
        let w = self.files.flags_of(p);
        let c = classify(w, w);
        if matches!(
            c,
            PageClass::NoPage | PageClass::Reserved | PageClass::NoFlags | PageClass::Free
        ) || has(w, kpf::COMPOUND_TAIL)
        {
            return 1;
        }
        let (order, step) = self.folio_extent(p, end, w);
        if matches!(
            c,
            PageClass::Slab | PageClass::PageTable | PageClass::Kernel
        ) {
            let hard = c != PageClass::Slab;
            match self.kernel_blocks.last_mut() {
                Some((b, h)) if *b == p >> 9 => *h |= hard,
                _ => self.kernel_blocks.push((p >> 9, hard)),
            }
        }
        let placed = match c {
            PageClass::Anon => {
                self.anon.push((p, order));
                self.lru_state.push((p, w));
                return step;
            }
            PageClass::PageTable if order.0 == 0 => {
                self.table_slots.push(p);
                return 1;
            }
            PageClass::File | PageClass::Shmem => self.place_page_cache(p, c, w, order),
            _ => self.m.with_placement(Some(Pfn(p)), |m| {
                m.alloc_kernel_gfp(Gfp::GFP_KERNEL, order, class_idx(c) as u32)
                    .is_some()
            }),
        };
        if placed {
            self.report.placed[class_idx(c)] += step;
        } else {
            self.report.unplaced += 1;
        }
        step
    }

    /// The order and pfn count of the folio headed at `p` with flags `w`: a compound run
    /// that is no naturally aligned power of two of at most MAX_PAGE_ORDER is placed page
    /// by page.
    fn folio_extent(&mut self, p: u64, end: u64, w: u64) -> (Order, u64) {
        let mut n = 1u64;
        if has(w, kpf::COMPOUND_HEAD) {
            while p + n < end && has(self.files.flags_of(p + n), kpf::COMPOUND_TAIL) {
                n += 1;
            }
        }
        let order = Order(n.trailing_zeros() as u8);
        if !n.is_power_of_two() || order.0 > MAX_PAGE_ORDER || !p.is_multiple_of(n) {
            self.report.odd_compounds += 1;
            return (Order(0), 1);
        }
        (order, n)
    }

    /// Places a page-cache or shmem folio at `p`, dirty or under writeback as its flags
    /// say; keeps its mappings and LRU position for later. False if it could not be placed.
    fn place_page_cache(&mut self, p: u64, c: PageClass, w: u64, order: Order) -> bool {
        let fid = if c == PageClass::Shmem {
            self.shmem
        } else if has(w, kpf::PRIVATE) {
            self.file_buffers
        } else {
            self.file_plain
        };
        let dirty = has(w, kpf::DIRTY) || has(w, kpf::WRITEBACK);
        let files = self.files;
        let (mapped, lru_state, cache_index) =
            (&mut self.mapped, &mut self.lru_state, &mut self.cache_index);
        self.m.with_placement(Some(Pfn(p)), |m| {
            match m.file_add_unindexed(fid, p, order, dirty) {
                Ok(id) => {
                    cache_index.push((fid, p, id));
                    if has(w, kpf::WRITEBACK) {
                        m.folio_start_writeback(id);
                    }
                    if has(w, kpf::MMAP) && files.kpagecount.is_some() {
                        mapped.push((fid, p, files.mapcount(p).clamp(1, MAX_FILE_MAPS)));
                    }
                    lru_state.push((p, w));
                    true
                }
                Err(_) => false,
            }
        })
    }

    /// Enters the page cache placed in each file's index, built at once from the indices
    /// (unique and increasing: the pfns).
    fn index_page_cache(&mut self) {
        let placed = std::mem::take(&mut self.cache_index);
        for fid in [self.file_plain, self.file_buffers, self.shmem] {
            debug_assert!(self.m.owners.files[fid as usize].pages.is_empty());
            for (_, index, id) in placed.iter().filter(|(f, _, _)| *f == fid) {
                let order = self.m.owners.folio(*id).order.0;
                self.m.owners.files[fid as usize]
                    .pages
                    .insert(*index, order, *id);
            }
        }
    }

    /// Anonymous folios, each page table first, on a page-table page of the snapshot.
    fn place_anon(&mut self) {
        self.table_slots.reverse();
        let pid = self.pid;
        let mut next = 0u64;
        for (p, order) in std::mem::take(&mut self.anon) {
            // The virtual page: the pfn, or the next one in a packed layout.
            // DEVIATION(linux): a model snapshot's layout, so that its page tables suffice.
            let v = if self.files.anon_packed {
                let n = order.nr_pages();
                let v = next.div_ceil(n) * n;
                next = v + n;
                v
            } else {
                p
            };
            let window = v / crate::owners::process::PTRS_PER_PTE;
            if self.m.owners.processes[pid as usize]
                .pgtables
                .load(window)
                .is_none()
            {
                let slot = self.table_slots.pop().map(Pfn);
                if slot.is_none() {
                    self.report.pgtables_from_free += 1;
                }
                if self
                    .m
                    .with_placement(slot, |m| m.ensure_pgtable(pid, v).is_ok())
                {
                    self.report.placed[class_idx(PageClass::PageTable)] += 1;
                }
            }
            if self
                .m
                .with_placement(Some(Pfn(p)), |m| m.fault_anon(pid, v, order).is_ok())
            {
                self.report.placed[class_idx(PageClass::Anon)] += order.nr_pages();
            } else {
                self.report.unplaced += 1;
            }
        }
    }

    /// Mapped page cache. The snapshot's page-table pages (placed as they are) stand for
    /// these mappings' tables: no page is taken for them, so the free lists stay the
    /// snapshot's.
    fn map_page_cache(&mut self) {
        for (fid, p, maps) in std::mem::take(&mut self.mapped) {
            let Some((_, id)) = self.m.file_lookup(fid, p) else {
                continue;
            };
            for k in 0..maps {
                self.m.map_folio(self.pid, (k + 1) * FILE_MAP_BASE + p, id);
                self.report.file_mappings += 1;
            }
        }
    }

    /// The LRU lists as the flags say: unevictable (KPF_UNEVICTABLE: mlocked, or in an
    /// unevictable mapping) with KPF_MLOCKED, else active or not; PG_referenced; no PTE
    /// accessed bit.
    fn set_lru_flags(&mut self) {
        use crate::memmap::PageFlags;
        for (p, w) in std::mem::take(&mut self.lru_state) {
            let Some(id) = self.m.folio_of(Pfn(p)) else {
                continue;
            };
            let f = self.m.mem.flags(Pfn(p));
            let mut new = f.without(PageFlags::YOUNG);
            if has(w, kpf::UNEVICTABLE) {
                new = new.with(PageFlags::UNEVICTABLE);
                if has(w, kpf::MLOCKED) {
                    new = new.with(PageFlags::MLOCKED);
                }
            } else if has(w, kpf::ACTIVE) && !f.contains(PageFlags::UNEVICTABLE) {
                new = new.with(PageFlags::ACTIVE);
            }
            if has(w, kpf::REFERENCED) {
                new = new.with(PageFlags::REFERENCED);
            }
            self.m.folio_set_lru_flags(id, new);
        }
    }

    /// The snapshot's page-table pages the process's page tables did not take, placed as
    /// kernel memory.
    fn place_spare_page_tables(&mut self) {
        let tag = class_idx(PageClass::PageTable);
        for p in std::mem::take(&mut self.table_slots) {
            let placed = self.m.with_placement(Some(Pfn(p)), |m| {
                m.alloc_kernel_gfp(Gfp::GFP_KERNEL, Order(0), tag as u32)
                    .is_some()
            });
            if placed {
                self.report.placed[tag] += 1;
            } else {
                self.report.unplaced += 1;
            }
        }
    }

    /// Pageblock types: blocks holding page-table or other kernel pages become UNMOVABLE,
    /// those holding slab pages only RECLAIMABLE.
    fn set_pageblock_types(&mut self) {
        for (b, hard) in std::mem::take(&mut self.kernel_blocks) {
            let start = Pfn(b << 9);
            let Some(zi) = self.m.page_zone(start) else {
                continue;
            };
            let mt = if hard {
                MigrateType::Unmovable
            } else {
                MigrateType::Reclaimable
            };
            if self.m.migratetype(start) == MigrateType::Movable
                && self
                    .m
                    .move_freepages_block(zi, start, MigrateType::Movable, mt)
                    .is_some()
            {
                if hard {
                    self.report.unmovable_blocks += 1;
                } else {
                    self.report.reclaimable_blocks += 1;
                }
            }
        }
    }
}

/// Gives each pageblock of a populated zone the type `types` records for it (a snapshot
/// of the model), its free pages moving with it ([`Machine::retype_pageblock`]); bytes
/// that name no type and blocks the model cannot retype (isolated, CMA) are left as
/// inferred; a HIGHATOMIC block is reserved as the allocator reserves one.
fn set_written_pageblock_types(m: &mut Machine, types: &[u8]) {
    let pb = m.pageblocks.nr_pages();
    for zi in 0..m.zones.len() {
        let z = &m.zones[zi];
        if !z.is_populated() {
            continue;
        }
        let (start, end) = (z.zone_start_pfn.0, z.end_pfn().0);
        let mut b = start & !(pb - 1);
        while b < end {
            let t = types
                .get((b / pb) as usize)
                .and_then(|t| MigrateType::from_u8(*t));
            if let (Some(t), Some(z)) = (t, m.page_zone(Pfn(b)).filter(|z| z.idx() == zi)) {
                if t == MigrateType::HighAtomic {
                    // The reserve as `reserve_highatomic_pageblock()` made it (the
                    // counter of reservations is the loaded machine's own, from zero).
                    let n = m.vmstat[VmEvent::HighatomicReserved];
                    m.reserve_highatomic_pageblock(z, Pfn(b), Order(0));
                    m.vmstat[VmEvent::HighatomicReserved] = n;
                } else {
                    m.retype_pageblock(Pfn(b), t);
                }
            }
            b += pb;
        }
    }
}

/// What [`reconcile_pageblock_types`] did in one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneReconcile {
    /// Node and zone name.
    pub zone: (u32, String),
    /// Pageblocks UNMOVABLE / MOVABLE / RECLAIMABLE inferred from the pages.
    pub inferred: [u64; 3],
    /// ... after reconciling.
    pub reconciled: [u64; 3],
    /// ... as pagetypeinfo counts them.
    pub kernel: [u64; 3],
    /// Free blocks on the UNMOVABLE and RECLAIMABLE lists that differ from pagetypeinfo's,
    /// summed over orders (L1 distance), before and after.
    pub free_list_distance: (u64, u64),
}

const RECONCILED: [MigrateType; 3] = [
    MigrateType::Unmovable,
    MigrateType::Movable,
    MigrateType::Reclaimable,
];

/// Reconciles the pageblock types the loader inferred with the snapshot's
/// `/proc/pagetypeinfo`: in each zone, as long as the kernel counts more UNMOVABLE
/// (RECLAIMABLE) pageblocks than the pages showed, the block whose free chunks best fill
/// what the kernel's UNMOVABLE (RECLAIMABLE) free lists hold and the model's lack is
/// converted — first from the blocks guessed RECLAIMABLE (slab only) when the kernel has
/// fewer of those, then from MOVABLE blocks, fewest LRU pages first on a tie; where the
/// pages showed more UNMOVABLE or RECLAIMABLE blocks than the kernel counts and fewer
/// MOVABLE, the extra ones become MOVABLE (their kernel pages were stolen into a movable
/// block by a fallback), chosen the same way against the MOVABLE lists.
///
/// kpageflags cannot show a pageblock's type: a block the kernel claimed for unmovable
/// allocations keeps its type after they are freed, and reclaimable slab looks like any
/// slab. The free lists of each type, per order, are the evidence pagetypeinfo gives.
pub fn reconcile_pageblock_types(
    m: &mut Machine,
    pti: &[PagetypeInfoRecord],
) -> Vec<ZoneReconcile> {
    let mut out = Vec::new();
    for rec in pti {
        let Some(zi) = (0..m.zones.len())
            .map(|i| crate::units::ZoneIdx(i as u8))
            .find(|zi| {
                let z = m.zone(*zi);
                z.node.0 as u32 == rec.node && z.name() == rec.name && z.is_populated()
            })
        else {
            continue;
        };
        let (kernel, targets) = kernel_types(rec);
        let before = type_counts(m, zi);
        let d0 = free_list_distance(m, zi, &targets);
        // In order: slab-only blocks guessed RECLAIMABLE beyond the kernel's count become
        // UNMOVABLE; MOVABLE blocks become the UNMOVABLE and RECLAIMABLE ones the kernel
        // counts beyond the pages' evidence; blocks with kernel pages beyond the kernel's
        // counts become MOVABLE (a fallback stole them into a movable block). Each step
        // moves as many blocks as the target type lacks and, but for the MOVABLE pool,
        // the source type has to spare.
        let at = |t: MigrateType| RECONCILED.iter().position(|x| *x == t).expect("type");
        for (from, to) in [
            (MigrateType::Reclaimable, MigrateType::Unmovable),
            (MigrateType::Movable, MigrateType::Unmovable),
            (MigrateType::Movable, MigrateType::Reclaimable),
            (MigrateType::Reclaimable, MigrateType::Movable),
            (MigrateType::Unmovable, MigrateType::Movable),
        ] {
            let cur = type_counts(m, zi);
            let (f, t) = (at(from), at(to));
            let spare = if from == MigrateType::Movable {
                u64::MAX
            } else {
                cur[f].saturating_sub(kernel[f])
            };
            let n = kernel[t].saturating_sub(cur[t]).min(spare);
            convert_blocks(m, zi, from, to, n, &targets[t]);
        }
        out.push(ZoneReconcile {
            zone: (rec.node, rec.name.clone()),
            inferred: before,
            reconciled: type_counts(m, zi),
            kernel,
            free_list_distance: (d0, free_list_distance(m, zi, &targets)),
        });
    }
    out
}

/// What pagetypeinfo says of one zone: its pageblocks per reconciled type, and each
/// type's free blocks per order (orders the file does not count are `None`).
fn kernel_types(rec: &PagetypeInfoRecord) -> ([u64; 3], [[Option<u64>; 11]; 3]) {
    let blocks_of = |name: &str| {
        rec.blocks
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    };
    let hist_of = |name: &str| {
        rec.free
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| *h)
            .unwrap_or([Some(0); 11])
    };
    let names = ["Unmovable", "Movable", "Reclaimable"];
    (names.map(blocks_of), names.map(hist_of))
}

/// Pageblocks of the zone per reconciled type.
fn type_counts(m: &Machine, zi: crate::units::ZoneIdx) -> [u64; 3] {
    let mut c = [0u64; 3];
    for b in zone_blocks(m, zi) {
        if let Some(i) = RECONCILED.iter().position(|t| *t == m.migratetype(b)) {
            c[i] += 1;
        }
    }
    c
}

fn zone_blocks(m: &Machine, zi: crate::units::ZoneIdx) -> Vec<Pfn> {
    let pb = m.pageblocks.nr_pages();
    let z = m.zone(zi);
    let mut v = Vec::new();
    let mut b = z.zone_start_pfn.0 & !(pb - 1);
    while b < z.end_pfn().0 {
        if m.page_zone(Pfn(b)) == Some(zi) || m.page_zone(Pfn(b + pb - 1)) == Some(zi) {
            v.push(Pfn(b));
        }
        b += pb;
    }
    v
}

/// Free blocks per order on the list of `mt`.
fn list_hist(m: &Machine, zi: crate::units::ZoneIdx, mt: MigrateType) -> [u64; 11] {
    let z = m.zone(zi);
    std::array::from_fn(|o| z.free_area[o].free_list[mt.idx()].iter(&m.mem).count() as u64)
}

/// L1 distance between the model's UNMOVABLE and RECLAIMABLE free lists and the kernel's
/// (orders the kernel did not count are left out).
fn free_list_distance(
    m: &Machine,
    zi: crate::units::ZoneIdx,
    targets: &[[Option<u64>; 11]; 3],
) -> u64 {
    [0usize, 2]
        .iter()
        .map(|&t| {
            let h = list_hist(m, zi, RECONCILED[t]);
            (0..11)
                .filter_map(|o| targets[t][o].map(|k| k.abs_diff(h[o])))
                .sum::<u64>()
        })
        .sum()
}

/// Converts `n` blocks of type `from` to `to`, each time the one whose free chunks best
/// fill the `to` list's shortfall against `target` (pages of chunks the list lacks, less
/// pages of chunks it would then have too many of).
fn convert_blocks(
    m: &mut Machine,
    zi: crate::units::ZoneIdx,
    from: MigrateType,
    to: MigrateType,
    n: u64,
    target: &[Option<u64>; 11],
) {
    if n == 0 {
        return;
    }
    let mut cands = candidate_blocks(m, zi, from);
    let mut have = list_hist(m, zi, to);
    for _ in 0..n {
        let deficit: [u64; 11] =
            std::array::from_fn(|o| target[o].map_or(0, |t| t.saturating_sub(have[o])));
        let best = cands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.1[9] + c.1[10] == 0)
            .max_by_key(|(_, c)| {
                // Chunks the list lacks count for, chunks beyond its count against (pages).
                let fit: i64 = (0..11)
                    .map(|o| {
                        let hit = c.1[o].min(deficit[o]) as i64;
                        let over = if target[o].is_some() {
                            c.1[o] as i64 - hit
                        } else {
                            0
                        };
                        (hit - over) << o
                    })
                    .sum();
                (fit, std::cmp::Reverse(c.2), std::cmp::Reverse(c.0))
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let (b, chunks, _) = cands.swap_remove(i);
        if m.move_freepages_block(zi, b, from, to).is_some() {
            for o in 0..11 {
                have[o] += chunks[o];
            }
        }
    }
}

/// The blocks of type `from` in the zone that [`convert_blocks`] may convert, each with its
/// free chunks per order below pageblock order and its LRU pages. A block inside a free
/// chunk larger than a pageblock is left out: the chunk's type is that of all its blocks.
fn candidate_blocks(
    m: &Machine,
    zi: crate::units::ZoneIdx,
    from: MigrateType,
) -> Vec<(Pfn, [u64; 11], u64)> {
    let pb = m.pageblock_order();
    zone_blocks(m, zi)
        .into_iter()
        .filter(|b| m.migratetype(*b) == from && m.find_large_buddy(*b).is_none())
        .map(|b| {
            let mut chunks = [0u64; 11];
            let mut lru = 0;
            let mut p = b.0;
            while p < b.0 + pb.nr_pages() {
                let f = m.mem.flags(Pfn(p));
                if m.mem.is_buddy(Pfn(p)) {
                    let o = m.mem.buddy_order(Pfn(p)).0;
                    chunks[o as usize] += 1;
                    p += 1 << o;
                    continue;
                }
                if f.contains(crate::memmap::PageFlags::LRU) {
                    lru += 1;
                }
                p += 1;
            }
            (b, chunks, lru)
        })
        .collect()
}

/// Frees the capturing process's own anonymous pages, listed by `kcompact capture` in
/// `capture_pfns.txt`: its read buffers and encoders were in use while the page arrays
/// were read, so the snapshot shows them as anonymous memory, but the process frees them
/// as soon as the capture is done — before any action the snapshot is used to predict.
/// Only pfns the model holds as anonymous folios are freed (a pfn that changed hands
/// while the arrays were read is left alone). Returns the pages freed.
pub fn release_capture_pages(m: &mut Machine, pfns: &[u64]) -> u64 {
    use crate::owners::table::FolioKind;
    let before = m.vmstat[VmEvent::Pgfree];
    for &p in pfns {
        let Some(id) = m.folio_of(Pfn(p)) else {
            continue;
        };
        let rec = m.owners.folio(id);
        if rec.kind == FolioKind::Anon {
            m.munmap(rec.owner, rec.index, rec.order.nr_pages());
        }
    }
    m.vmstat[VmEvent::Pgfree] - before
}
