//! Trace replay (issue 9): real kmem allocation traces driving the model.
//!
//! - [`parse`]: ftrace / trace-cmd / perf script text to events.
//!
//! Two modes:
//! - **exact** places every `mm_page_alloc` at the pfn the trace recorded and frees what
//!   each `mm_page_free` names, from a snapshot's state (or an empty machine), counting
//!   every event the model's state contradicts;
//! - **policy** lets the model's allocator choose the pfns for the same sequence of
//!   requests (order, migratetype, gfp) and frees, following each kernel pfn to the model
//!   folio that stands for it.
//!
//! Where the trace shows the kernel compacting a zone (`mm_compaction_begin`), the model
//! compacts the same zone the same way (a `compact_memory` run is SYNC over the whole
//! zone), and the report sets the model's scanners and migrations next to the kernel's
//! (summed from `mm_compaction_isolate_*` and `mm_compaction_migratepages`).
//!
//! What the events cannot tell the model, and how it decides:
//! - Which kind of memory a page is. A movable request (`migratetype=1`) becomes clean
//!   page cache of one replay file, which compaction can move and reclaim can drop; other
//!   requests become kernel memory. DEVIATION(linux): anonymous memory is page cache here.
//! - Per-CPU lists. Every event runs on the CPU the trace recorded it on, so a free goes
//!   to that CPU's per-CPU list by the model's rules (`free_frozen_page_commit()`, which
//!   may drain). In exact mode the trace also says where the lists' pages come from and
//!   go: a run of `mm_page_alloc_zone_locked` events with `percpu_refill` is one refill of
//!   the CPU's list (`nr_pcp_alloc()` tunes `high` as the kernel's did, and each block
//!   moves from the buddy lists to the list), `mm_page_pcpu_drain` moves a block back, and
//!   an allocation takes its block from whichever list holds it. `mm_page_free_batched`
//!   repeats a free already seen and changes nothing.
//! - Where compaction put a page: compaction takes free pages without `mm_page_alloc`, so
//!   a migration source freed inside a compaction window is left to the model's own
//!   compaction (counted as `compaction_sources`), and a later free of a page the kernel
//!   filled by migration is an inconsistency of its own kind.

pub mod parse;

use crate::compaction::CompactControl;
use crate::event::Tracepoint;
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::migrate::MigrateMode;
use crate::owners::table::{FolioId, FolioKind};
use crate::units::{Order, Pfn, NR_PAGE_ORDERS};
use parse::Trace;
use std::collections::HashMap;

/// When the start snapshot read its page flags, on the trace's clock (boot time): pfn `p`
/// of `pfn_start..pfn_end` was read at `start_ns` + its share of the read, in pfn order. A
/// trace recorded across the capture has events on a pfn before its flags were read, which
/// the snapshot already shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRead {
    /// The first pfn of the page arrays.
    pub pfn_start: u64,
    /// One past the last.
    pub pfn_end: u64,
    /// When reading `/proc/kpageflags` began, ns since boot.
    pub start_ns: u64,
    /// When it ended.
    pub end_ns: u64,
}

impl SnapshotRead {
    /// When pfn `p`'s flags were read.
    pub fn read_at(&self, p: u64) -> u64 {
        let span = self.pfn_end.saturating_sub(self.pfn_start).max(1) as u128;
        let off = p.clamp(self.pfn_start, self.pfn_end) - self.pfn_start;
        self.start_ns
            + ((self.end_ns.saturating_sub(self.start_ns)) as u128 * off as u128 / span) as u64
    }
}

/// How pfns are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// At the pfn the trace recorded.
    Exact,
    /// Where the model's allocator puts them.
    Policy,
}

impl Mode {
    /// `exact` or `policy`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "exact" => Some(Mode::Exact),
            "policy" => Some(Mode::Policy),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::Policy => "policy",
        }
    }
}

/// Events the model's state contradicts, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inconsistencies {
    /// exact: an allocation at a pfn the model does not have free.
    pub alloc_not_free: u64,
    /// exact: an allocation outside every zone of the model.
    pub alloc_outside: u64,
    /// A free of a page the model has free.
    pub free_not_allocated: u64,
    /// A free of a block whose model folio has another order or head.
    pub free_order_mismatch: u64,
    /// A free of a page the model holds as something the replay cannot free (a page
    /// table) or outside every zone.
    pub free_untracked: u64,
    /// A free of a page the kernel's compaction had filled (a migration target).
    pub free_after_migration: u64,
    /// policy: an allocation the model could not satisfy.
    pub policy_alloc_failed: u64,
    /// policy: a free of a kernel pfn the replay never allocated (allocated before the
    /// trace began).
    pub policy_free_unknown: u64,
}

impl Inconsistencies {
    /// Every kind with its count, in report order.
    pub fn pairs(&self) -> [(&'static str, u64); 8] {
        [
            ("alloc_not_free", self.alloc_not_free),
            ("alloc_outside", self.alloc_outside),
            ("free_not_allocated", self.free_not_allocated),
            ("free_order_mismatch", self.free_order_mismatch),
            ("free_untracked", self.free_untracked),
            ("free_after_migration", self.free_after_migration),
            ("policy_alloc_failed", self.policy_alloc_failed),
            ("policy_free_unknown", self.policy_free_unknown),
        ]
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.pairs().iter().map(|(_, n)| n).sum()
    }
}

/// One timeline row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Events replayed so far.
    pub events: u64,
    /// Trace time since the first event, ns.
    pub time_ns: u64,
    /// Free pages of every zone by order.
    pub free_by_order: [u64; NR_PAGE_ORDERS],
    /// Free pages.
    pub free_pages: u64,
    /// Free order ≥ 9 blocks (order 10 counts twice).
    pub free_order9_blocks: u64,
}

/// Compaction work, the kernel's (from its events) or the model's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactWork {
    /// Pages the migrate scanner scanned.
    pub migrate_scanned: u64,
    /// Pages the free scanner scanned.
    pub free_scanned: u64,
    /// Pages isolated, by the migrate and the free scanner (`compact_isolated`).
    pub isolated: u64,
    /// Pages migrated.
    pub migrated: u64,
    /// Pages that failed to migrate.
    pub failed: u64,
    /// Where the migrate scanner stopped (`migrate_pfn` at `mm_compaction_end`).
    pub end_migrate_pfn: u64,
}

/// One compaction run of the trace and the model's run of the same zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionRun {
    /// `zone_start` of the trace.
    pub zone_start: u64,
    /// `zone_end`.
    pub zone_end: u64,
    /// The kernel's mode.
    pub mode: String,
    /// The kernel's status at `mm_compaction_end`.
    pub status: String,
    /// The kernel's work.
    pub kernel: CompactWork,
    /// The model's work on the same zone.
    pub model: CompactWork,
}

/// What a replay found.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// The mode.
    pub mode: Mode,
    /// Events replayed (every understood event).
    pub events: u64,
    /// Allocations and frees applied to the model.
    pub applied: u64,
    /// Inconsistencies.
    pub inconsistencies: Inconsistencies,
    /// Frees of migration sources inside a kernel compaction window, left to the model.
    pub compaction_sources: u64,
    /// Pages the start snapshot left out of the allocator (count 0, no flags) that the
    /// trace allocated or freed, given to the model's allocator then.
    pub adopted: u64,
    /// Frees of blocks the model had already reclaimed (policy mode).
    pub freed_by_model_first: u64,
    /// Fallbacks the kernel reported (`mm_page_alloc_extfrag`).
    pub kernel_extfrag: u64,
    /// exact: events on a pfn recorded before the start snapshot read its flags (already
    /// in the snapshot), skipped.
    pub before_snapshot: u64,
    /// exact: refills of a per-CPU list the trace recorded, and their blocks moved from
    /// the buddy lists (blocks not free there are not counted).
    pub pcp_refills: (u64, u64),
    /// exact: drains the trace recorded (`mm_page_pcpu_drain`): blocks moved back, and
    /// blocks the model had already given back by its own rules.
    pub pcp_drains: (u64, u64),
    /// The kernel's per-CPU lists as the trace moved them, per zone (by index) and CPU:
    /// pages refilled and freed onto them less pages allocated from and drained off them,
    /// over the events at or after the start snapshot's read began (all events without a
    /// snapshot). Added to the snapshot's `count:` lines, it gives the kernel's lists at
    /// the trace's end.
    pub kernel_pcp_flow: Vec<Vec<i64>>,
    /// exact: pageblocks whose type the trace showed to differ from the model's (a block
    /// taken from a type's free list, a fallback that claimed a block), set to it.
    pub blocks_retyped: u64,
    /// gfp flag names the model does not know, with their count.
    pub unknown_gfp: Vec<(String, u64)>,
    /// The timeline.
    pub timeline: Vec<Row>,
    /// Compaction runs.
    pub compactions: Vec<CompactionRun>,
}

/// The pfn a kmem event is about.
fn event_pfn(e: &Tracepoint) -> Option<u64> {
    match e {
        Tracepoint::PageAlloc { pfn, .. } => pfn.map(|p| p.0),
        Tracepoint::PageFree { pfn, .. }
        | Tracepoint::PageAllocZoneLocked { pfn, .. }
        | Tracepoint::PagePcpuDrain { pfn, .. } => Some(pfn.0),
        _ => None,
    }
}

/// True if the model's state already shows the event's effect at its pfn: an allocation
/// or a refill whose page is not free on the buddy lists, a free whose page is free or
/// unused, a drain whose page is on no per-CPU list.
fn already_shown(m: &Machine, e: &Tracepoint) -> bool {
    let free = |p: Pfn| m.is_free_buddy_page(p) || m.is_pcp_page(p);
    match e {
        Tracepoint::PageAlloc { pfn: Some(p), .. } => !free(*p),
        Tracepoint::PageAllocZoneLocked { pfn, .. } => !m.is_free_buddy_page(*pfn),
        // A page the snapshot left reserved (count 0, no flags) and the trace frees was
        // on a per-CPU list when read: the free puts it there.
        Tracepoint::PageFree { pfn, .. } => {
            free(*pfn)
                || (m.folio_of(*pfn).is_none() && !m.mem.flags(*pfn).contains(PageFlags::RESERVED))
        }
        Tracepoint::PagePcpuDrain { pfn, .. } => !m.is_pcp_page(*pfn),
        _ => true,
    }
}

/// Rows in the timeline, about.
const TIMELINE_ROWS: u64 = 200;

fn row(m: &Machine, events: u64, time_ns: u64) -> Row {
    Row {
        events,
        time_ns,
        free_by_order: m.free_by_order(),
        free_pages: m.nr_free_pages(),
        free_order9_blocks: crate::scenario::free_order9_blocks(m),
    }
}

/// The replay's state.
struct Replayer<'a> {
    m: &'a mut Machine,
    mode: Mode,
    file: u32,
    next_index: u64,
    /// Kernel pfn → the model folio standing for the block allocated there, with its
    /// content stamp (a folio id is reused once freed).
    held: HashMap<u64, (FolioId, u32)>,
    /// Pfns filled by the kernel's compaction windows (inside the free scanner's ranges).
    migrated_to: Vec<(u64, u64)>,
    in_compaction: Option<usize>,
    /// exact: the CPUs whose list a refill run is filling now.
    refilling: Vec<bool>,
    report: ReplayReport,
    unknown_gfp: HashMap<String, u64>,
}

impl Replayer<'_> {
    /// A new folio for a request: page cache for movable requests, kernel memory else;
    /// at `at` in exact mode.
    fn allocate(&mut self, at: Option<Pfn>, order: Order, mt: i32, gfp: Gfp) -> Option<FolioId> {
        let (file, next_index) = (self.file, &mut self.next_index);
        self.m.with_placement(at, |m| {
            if mt == MigrateType::Movable as i32 {
                let idx = next_index.next_multiple_of(order.nr_pages());
                *next_index = idx + order.nr_pages();
                m.file_add(file, idx, order, false).ok()
            } else {
                let gfp = if gfp.0 == 0 { Gfp::GFP_KERNEL } else { gfp };
                m.alloc_kernel_gfp(Gfp(gfp.0 & !Gfp::MOVABLE.0), order, REPLAY_TAG)
            }
        })
    }

    /// Frees the model folio `id` by what it is; false if the replay cannot free it.
    fn release(&mut self, id: FolioId) -> bool {
        let rec = self.m.owners.folio(id);
        match rec.kind {
            FolioKind::Kernel => {
                self.m.free_kernel(id);
                true
            }
            FolioKind::File | FolioKind::Shmem => self.m.file_remove(rec.owner, rec.index),
            FolioKind::Anon => {
                self.m.munmap(rec.owner, rec.index, rec.order.nr_pages());
                true
            }
            _ => false,
        }
    }

    fn alloc(&mut self, pfn: Option<u64>, order: u8, mt: i32, gfp_text: &str) {
        let (gfp, unknown) = Gfp::parse_symbolic(gfp_text);
        for u in unknown {
            *self.unknown_gfp.entry(u.to_string()).or_default() += 1;
        }
        let order = Order(order);
        match (self.mode, pfn) {
            (Mode::Exact, Some(p)) => {
                if self.m.page_zone(Pfn(p)).is_none()
                    || self.m.page_zone(Pfn(p + order.nr_pages() - 1)).is_none()
                {
                    self.report.inconsistencies.alloc_outside += 1;
                    return;
                }
                self.adopt(p, order, false);
                match self.allocate(Some(Pfn(p)), order, mt, gfp) {
                    Some(id) => {
                        self.held.insert(p, (id, self.m.owners.folio(id).stamp));
                        self.report.applied += 1;
                    }
                    None => {
                        self.report.inconsistencies.alloc_not_free += 1;
                    }
                }
            }
            (Mode::Exact, None) => self.report.inconsistencies.alloc_outside += 1,
            (Mode::Policy, p) => match self.allocate(None, order, mt, gfp) {
                Some(id) => {
                    if let Some(p) = p {
                        self.held.insert(p, (id, self.m.owners.folio(id).stamp));
                    }
                    self.report.applied += 1;
                }
                None => self.report.inconsistencies.policy_alloc_failed += 1,
            },
        }
    }

    fn free(&mut self, pfn: u64, order: u8) {
        let order = Order(order);
        if let Some((id, stamp)) = self.held.remove(&pfn) {
            if self.in_compaction.is_some() {
                // A migration source: the kernel moved it; the model's compaction decides
                // where the model's copy goes.
                self.report.compaction_sources += 1;
                self.held.insert(pfn, (id, stamp));
                return;
            }
            match self
                .m
                .owners
                .get(id)
                .filter(|r| r.stamp == stamp && !r.orphan)
            {
                // The model reclaimed it already (policy mode runs reclaim).
                None => self.report.freed_by_model_first += 1,
                Some(r) if r.order == order && self.release(id) => self.report.applied += 1,
                Some(_) => self.report.inconsistencies.free_order_mismatch += 1,
            }
            return;
        }
        if self.mode == Mode::Policy {
            // A block allocated before the trace began sits where the snapshot put it,
            // unless the replay's own folio is there now.
            let snapshot_folio = self.m.folio_of(Pfn(pfn)).filter(|id| {
                let r = self.m.owners.folio(*id);
                r.pfn == Pfn(pfn)
                    && r.order == order
                    && !(r.kind == FolioKind::Kernel && r.owner == REPLAY_TAG)
                    && !(r.kind == FolioKind::File && r.owner == self.file)
            });
            match snapshot_folio {
                Some(id) if self.release(id) => self.report.applied += 1,
                _ => self.report.inconsistencies.policy_free_unknown += 1,
            }
            return;
        }
        if self.in_compaction.is_some() {
            self.report.compaction_sources += 1;
            return;
        }
        let p = Pfn(pfn);
        if self.m.page_zone(p).is_none() {
            self.report.inconsistencies.free_untracked += 1;
            return;
        }
        if self.adopt(pfn, order, true) > 0 {
            // The allocator had it: it is free now.
            self.report.applied += 1;
            return;
        }
        let inc = &mut self.report.inconsistencies;
        if self
            .migrated_to
            .iter()
            .any(|(a, b)| (*a..*b).contains(&pfn))
        {
            inc.free_after_migration += 1;
            return;
        }
        match self.m.folio_of(p) {
            None => inc.free_not_allocated += 1,
            Some(id) => {
                let rec = self.m.owners.folio(id);
                if rec.pfn != p || rec.order != order {
                    inc.free_order_mismatch += 1;
                } else if self.release(id) {
                    self.report.applied += 1;
                } else {
                    self.report.inconsistencies.free_untracked += 1;
                }
            }
        }
    }

    /// One block of a refill of the current CPU's list the trace recorded: the first block
    /// of a run starts the refill (`nr_pcp_alloc()`), each moves from the buddy lists to
    /// the list.
    fn pcp_refill(&mut self, pfn: Pfn, order: Order, mt: i32) {
        let cpu = self.m.cpu;
        let Some(zi) = self.m.page_zone(pfn) else {
            return;
        };
        if !self.refilling[cpu as usize] {
            self.refilling[cpu as usize] = true;
            self.m.pcp_refill_begin(zi, cpu, order);
            self.report.pcp_refills.0 += 1;
        }
        self.adopt(pfn.0, order, false);
        self.learn_block_type(pfn, mt);
        let mt = match mt {
            0 => MigrateType::Unmovable,
            2 => MigrateType::Reclaimable,
            _ => MigrateType::Movable,
        };
        if self.m.pcp_refill_block(pfn, order, cpu, mt) {
            self.report.pcp_refills.1 += 1;
        }
    }

    /// Counts what event `rec` did to the kernel's per-CPU lists (pcp orders only): a
    /// refill (`mm_page_alloc_zone_locked`, whose `percpu_refill=1` also marks an order-0
    /// allocation straight from the buddy lists, whose `mm_page_alloc` then cancels it) and
    /// a free add, an allocation and a drain take. A free that bypassed the lists (an
    /// isolated block, a failed trylock) cannot be told from the trace.
    fn kernel_pcp_flow(&mut self, rec: &parse::Record) {
        let (pfn, order, sign) = match rec.event {
            Tracepoint::PageAllocZoneLocked {
                pfn,
                order,
                percpu_refill: true,
                ..
            } => (pfn, order, 1),
            Tracepoint::PageFree { pfn, order } => (pfn, order, 1),
            Tracepoint::PageAlloc {
                pfn: Some(pfn),
                order,
                ..
            } => (pfn, order, -1),
            Tracepoint::PagePcpuDrain { pfn, order, .. } => (pfn, order, -1),
            _ => return,
        };
        if !crate::buddy::pcp::pcp_allowed_order(order) {
            return;
        }
        let (Some(zi), cpu) = (self.m.page_zone(pfn), (rec.cpu % self.m.nr_cpus()) as usize) else {
            return;
        };
        self.report.kernel_pcp_flow[zi.idx()][cpu] += sign * order.nr_pages() as i64;
    }

    /// A block the kernel took from free list `mt` (`mm_page_alloc_zone_locked`, fired by
    /// `__rmqueue_smallest()` for the list it searched; every fallback also fires
    /// `mm_page_alloc_extfrag`) sat in a pageblock of that type: the snapshot cannot tell a
    /// nearly free block's type, the trace can.
    fn learn_block_type(&mut self, pfn: Pfn, mt: i32) {
        let Some(mt) = mobility_type(mt) else {
            return;
        };
        self.report.blocks_retyped += self.m.retype_pageblock(pfn, mt);
    }

    /// A fallback that changed owner (`mm_page_alloc_extfrag` with `change_ownership=1`):
    /// the pageblocks it claimed, all of a block above pageblock order, become the
    /// request's type.
    fn learn_claim(&mut self, pfn: Pfn, fallback_order: Order, alloc_mt: i32) {
        let Some(mt) = mobility_type(alloc_mt) else {
            return;
        };
        let pb = self.m.pageblock_order();
        let span = fallback_order.max(pb);
        let start = pfn.align_down(span);
        let mut p = start;
        while p < start.plus(span.nr_pages()) {
            self.report.blocks_retyped += self.m.retype_pageblock(p, mt);
            p = p.plus(pb.nr_pages());
        }
    }

    /// Pages of `[pfn, pfn + 2^order)` the model holds reserved but the trace shows in
    /// the allocator's hands: an allocation of them finds them on the buddy lists
    /// ([`Machine::adopt_reserved_page`]), a free frees them as the kernel did, onto the
    /// CPU's list ([`Machine::free_reserved_page`]). Returns how many.
    fn adopt(&mut self, pfn: u64, order: Order, freed: bool) -> u64 {
        let mut n = 0;
        for p in pfn..pfn + order.nr_pages() {
            let p = Pfn(p);
            if !self.m.mem.flags(p).contains(PageFlags::RESERVED) {
                continue;
            }
            let done = if freed {
                self.m.free_reserved_page(p)
            } else {
                self.m.adopt_reserved_page(p)
            };
            n += done as u64;
        }
        self.report.adopted += n;
        n
    }

    /// The model compacts the zone the kernel compacts, in its mode: a whole-zone run as
    /// `compact_memory` does, or kcompactd's proactive run (stopping when the zone's
    /// fragmentation score is low enough) when kcompactd ran it.
    fn compact(&mut self, zone_start: u64, sync: bool, kcompactd: bool) -> CompactWork {
        let Some(zi) = self.m.page_zone(Pfn(zone_start)) else {
            return CompactWork::default();
        };
        if !self.m.config.compaction {
            return CompactWork::default();
        }
        // DEVIATION(linux): the trace says only sync or async; a synchronous run is
        // replayed as MIGRATE_SYNC (`compact_memory`'s), also when kcompactd ran it in
        // MIGRATE_SYNC_LIGHT.
        let mode = if sync {
            MigrateMode::Sync
        } else {
            MigrateMode::Async
        };
        let before = self.m.vmstat.clone();
        let mut cc = CompactControl::new(zi, None, Gfp::GFP_KERNEL, mode);
        cc.ignore_skip_hint = true;
        cc.whole_zone = true;
        cc.proactive_compaction = kcompactd;
        cc.zone = zi;
        self.m.compact_zone(&mut cc);
        let v = &self.m.vmstat;
        CompactWork {
            migrate_scanned: v[VmEvent::CompactMigrateScanned]
                - before[VmEvent::CompactMigrateScanned],
            free_scanned: v[VmEvent::CompactFreeScanned] - before[VmEvent::CompactFreeScanned],
            isolated: v[VmEvent::CompactIsolated] - before[VmEvent::CompactIsolated],
            migrated: v[VmEvent::PgmigrateSuccess] - before[VmEvent::PgmigrateSuccess],
            failed: v[VmEvent::PgmigrateFail] - before[VmEvent::PgmigrateFail],
            end_migrate_pfn: cc.migrate_pfn.0,
        }
    }
}

/// The mobility type a trace's `migratetype=` number names (0 unmovable, 1 movable, 2
/// reclaimable); `None` for the reserves and CMA.
fn mobility_type(mt: i32) -> Option<MigrateType> {
    match mt {
        0 => Some(MigrateType::Unmovable),
        1 => Some(MigrateType::Movable),
        2 => Some(MigrateType::Reclaimable),
        _ => None,
    }
}

/// The tag of kernel memory the replay allocates.
pub const REPLAY_TAG: u32 = 0x7265;

/// Replays `trace` on `m` in `mode`, calling `progress(done, total)` now and then; see
/// the module documentation.
pub fn replay(
    m: &mut Machine,
    trace: &Trace,
    mode: Mode,
    read: Option<SnapshotRead>,
    progress: &mut dyn FnMut(u64, u64),
) -> ReplayReport {
    let file = m.new_file(false, true, false);
    let total = trace.records.len() as u64;
    let every = (total / TIMELINE_ROWS).max(1);
    let t0 = trace.records.first().map(|r| r.ts_ns).unwrap_or(0);
    let m_cpus = m.nr_cpus() as usize;
    let r_zones = m.zones.len();
    let mut r = Replayer {
        m,
        mode,
        file,
        next_index: 0,
        held: HashMap::new(),
        migrated_to: Vec::new(),
        in_compaction: None,
        refilling: vec![false; m_cpus],
        report: ReplayReport {
            mode,
            events: 0,
            applied: 0,
            inconsistencies: Inconsistencies::default(),
            compaction_sources: 0,
            adopted: 0,
            freed_by_model_first: 0,
            kernel_extfrag: 0,
            before_snapshot: 0,
            pcp_refills: (0, 0),
            pcp_drains: (0, 0),
            blocks_retyped: 0,
            kernel_pcp_flow: vec![vec![0; m_cpus]; r_zones],
            unknown_gfp: Vec::new(),
            timeline: Vec::new(),
            compactions: Vec::new(),
        },
        unknown_gfp: HashMap::new(),
    };
    let clock0 = r.m.clock.now_ns;
    r.report.timeline.push(row(r.m, 0, 0));
    for (i, rec) in trace.records.iter().enumerate() {
        let since = rec.ts_ns.saturating_sub(t0);
        if mode == Mode::Policy && clock0 + since > r.m.clock.now_ns + 1_000_000 {
            // The daemons run on the trace's clock.
            r.m.advance_to(clock0 + since);
        }
        if read.is_none_or(|rd| rec.ts_ns >= rd.start_ns) {
            r.kernel_pcp_flow(rec);
        }
        if mode == Mode::Exact {
            if let (Some(read), Some(p)) = (read, event_pfn(&rec.event)) {
                // Before the read by the estimate, and the snapshot shows its effect: the
                // read saw it. (The estimate is linear in pfn; an event the snapshot does
                // not show happened after all and is applied.)
                if rec.ts_ns < read.read_at(p) && already_shown(r.m, &rec.event) {
                    r.report.before_snapshot += 1;
                    r.report.events += 1;
                    continue;
                }
            }
        }
        // The event happens on the CPU the trace recorded it on.
        r.m.cpu = rec.cpu % r.m.nr_cpus();
        let cpu = r.m.cpu as usize;
        let refill_block = matches!(
            rec.event,
            Tracepoint::PageAllocZoneLocked {
                percpu_refill: true,
                ..
            }
        );
        if !refill_block {
            r.refilling[cpu] = false;
        }
        match &rec.event {
            Tracepoint::PageAllocZoneLocked {
                pfn,
                order,
                migratetype,
                percpu_refill: true,
            } if mode == Mode::Exact => r.pcp_refill(*pfn, *order, *migratetype),
            Tracepoint::PagePcpuDrain { pfn, order, .. } if mode == Mode::Exact => {
                if r.m.pcp_drain_block(*pfn, *order) {
                    r.report.pcp_drains.0 += 1;
                } else {
                    r.report.pcp_drains.1 += 1;
                }
            }
            Tracepoint::PageAlloc {
                pfn,
                order,
                migratetype,
                gfp_flags,
            } => r.alloc(pfn.map(|p| p.0), order.0, *migratetype, gfp_flags),
            Tracepoint::PageFree { pfn, order } => r.free(pfn.0, order.0),
            Tracepoint::PageAllocExtfrag {
                pfn,
                fallback_order,
                alloc_migratetype,
                change_ownership,
                ..
            } => {
                r.report.kernel_extfrag += 1;
                if mode == Mode::Exact && *change_ownership {
                    r.learn_claim(*pfn, *fallback_order, *alloc_migratetype);
                }
            }
            Tracepoint::PageAllocZoneLocked {
                pfn, migratetype, ..
            } if mode == Mode::Exact => r.learn_block_type(*pfn, *migratetype),
            Tracepoint::CompactionBegin(run) => {
                let model = r.compact(run.zone_start.0, run.sync, rec.kcompactd);
                r.report.compactions.push(CompactionRun {
                    zone_start: run.zone_start.0,
                    zone_end: run.zone_end.0,
                    mode: if run.sync { "sync" } else { "async" }.to_string(),
                    status: String::new(),
                    kernel: CompactWork::default(),
                    model,
                });
                r.in_compaction = Some(r.report.compactions.len() - 1);
            }
            Tracepoint::CompactionEnd(run, status) => {
                if let Some(c) = r.in_compaction.take() {
                    r.report.compactions[c].status = status.name().to_string();
                    r.report.compactions[c].kernel.end_migrate_pfn = run.migrate_pfn.0;
                }
            }
            Tracepoint::IsolateFreepages(i) => {
                if let Some(c) = r.in_compaction {
                    r.report.compactions[c].kernel.free_scanned += i.nr_scanned;
                    // COMPACTISOLATED counts both scanners' isolations, as the model's does.
                    r.report.compactions[c].kernel.isolated += i.nr_taken;
                    if i.nr_taken > 0 {
                        r.migrated_to.push((i.start_pfn.0, i.end_pfn.0));
                    }
                }
            }
            Tracepoint::IsolateMigratepages(i) => {
                if let Some(c) = r.in_compaction {
                    let k = &mut r.report.compactions[c].kernel;
                    k.migrate_scanned += i.nr_scanned;
                    k.isolated += i.nr_taken;
                }
            }
            Tracepoint::Migratepages {
                nr_migrated,
                nr_failed,
            } => {
                if let Some(c) = r.in_compaction {
                    let k = &mut r.report.compactions[c].kernel;
                    k.migrated += nr_migrated;
                    k.failed += nr_failed;
                }
            }
            // Known events the replay does not act on.
            _ => {}
        }
        r.report.events += 1;
        if (i as u64 + 1).is_multiple_of(every) || i + 1 == trace.records.len() {
            let t = rec.ts_ns.saturating_sub(t0);
            r.report.timeline.push(row(r.m, i as u64 + 1, t));
            progress(i as u64 + 1, total);
        }
    }
    let mut unknown: Vec<(String, u64)> = r.unknown_gfp.into_iter().collect();
    unknown.sort();
    r.report.unknown_gfp = unknown;
    r.report
}
