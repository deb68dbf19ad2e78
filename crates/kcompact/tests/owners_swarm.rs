//! Swarm test of page owners and migration, with every fault of issue 3 injected.
//!
//! Each seed draws a machine, a content-tracking mode (stamps, or real bytes for some
//! seeds), drivers with or without non-LRU movability, and its own mix of operations:
//! faults, fork, copy-on-write, munmap, exit, mlock, page cache reads, writes, mmaps and
//! truncation, dirtying and writeback, slab and kernel allocations, pins, speculative
//! references, page locks, zsmalloc/balloon/GPU activity, and migrations. A migration
//! isolates random folios, then may interfere the way the kernel's races do — a pin or a
//! speculative reference appears, the owner frees a folio, a large folio is split, the
//! driver refuses or fails, the destination allocation fails, `compaction_free()` gets a
//! destination back that a scanner holds — before `migrate_pages()` runs in a random mode.
//! The full-state checker (buddy lists, owners, references, contents) runs after every
//! operation. Rerun one seed with `KCOMPACT_OWNERS_SEED=N cargo test -p kcompact --test owners_swarm`.

mod common;

use common::{small_layout, FreePagesTarget};
use kcompact::event::VmEvent;
use kcompact::memmap::PageFlags;
use kcompact::migrate::{AllocTarget, Injection, MigrateMode, MigrateReason, MigrationTarget};
use kcompact::owners::table::{DriverKind, DriverMigrate};
use kcompact::owners::table::{FolioId, FolioKind};
use kcompact::rng::SimRng;
use kcompact::units::{Order, Pfn};
use kcompact::verify::verify;
use kcompact::{Machine, VmConfig};

const SEEDS: u64 = 64;
const STEPS: u64 = 4096;
const BYTES_STEPS: u64 = 1024;

/// A target whose allocations fail at random (an exhausted free list).
struct Flaky<'a> {
    rng: &'a mut SimRng,
    fail_pct: u64,
}

impl MigrationTarget for Flaky<'_> {
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn> {
        if self.rng.chance(self.fail_pct, 100) {
            return None;
        }
        AllocTarget.get_new_folio(m, src, order)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        AllocTarget.put_new_folio(m, dst, order);
    }
}

/// A pool target whose handed-back destinations a scanner sometimes holds.
struct Scanned<'a> {
    pool: FreePagesTarget,
    rng: &'a mut SimRng,
    held: Vec<(Pfn, Order)>,
}

impl MigrationTarget for Scanned<'_> {
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn> {
        self.pool.get_new_folio(m, src, order)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        if self.rng.chance(1, 3) && m.get_page_unless_zero(dst) {
            self.held.push((dst, order));
        }
        self.pool.put_new_folio(m, dst, order);
    }
}

struct Swarm {
    seed: u64,
    rng: SimRng,
    m: Machine,
    weights: [u64; 25],
    procs: Vec<u32>,
    files: Vec<u32>,
    caches: Vec<u32>,
    slab_objs: Vec<(u32, FolioId)>,
    kernel: Vec<FolioId>,
    pins: Vec<u32>,
    spec: Vec<(FolioId, u32)>,
    drivers: [u32; 3],
    zs_objs: Vec<u32>,
    gpu_bufs: Vec<FolioId>,
    stats: Stats,
    last: &'static str,
    /// Simulated time for kcompactd, in ms.
    now_ms: u64,
}

#[derive(Default, Debug)]
struct Stats {
    ops: u64,
    migrate_calls: u64,
    pages_migrated: u64,
    pages_failed: u64,
    splits: u64,
    released_while_isolated: u64,
    driver_pages_migrated: u64,
    bytes_seeds: u64,
    compactions: u64,
    kcompactd_runs: u64,
    /// `compact_daemon_wake`: kcompactd passes that compacted (wake-ups and proactive).
    kcompactd_wakes: u64,
    /// `compact_daemon_migrate_scanned`: pages kcompactd scanned (wake-ups and proactive).
    kcompactd_scanned: u64,
}

const OPS: [&str; 25] = [
    "fault",
    "munmap",
    "fork",
    "cow",
    "exit",
    "mlock",
    "file_add",
    "file_mmap",
    "file_remove",
    "dirty",
    "writeback",
    "end_writeback",
    "slab_alloc",
    "slab_free",
    "kernel",
    "pin",
    "unpin",
    "spec",
    "lock",
    "zsmalloc",
    "balloon",
    "gpu",
    "migrate",
    "unspec",
    "compact",
];

impl Swarm {
    fn new(seed: u64) -> Swarm {
        let mut rng = SimRng::new(seed);
        let bytes = seed % 8 == 5;
        let blocks = if bytes { 8 } else { rng.range(12, 28) };
        let cfg = VmConfig {
            watermark_boost_factor: if rng.chance(1, 2) { 0 } else { 15000 },
            // Proactive compaction off, the default, and at its most eager.
            compaction_proactiveness: [0, 20, 100][(seed % 3) as usize],
            ..VmConfig::default()
        };
        let mut m = Machine::boot(
            &small_layout(if rng.chance(1, 2) { 4 } else { 0 }, blocks),
            cfg,
        )
        .expect("boot");
        m.enable_contents(bytes);
        let movable = rng.chance(3, 4);
        let drivers = [
            m.driver_new(DriverKind::Zsmalloc, movable),
            m.driver_new(DriverKind::Balloon, movable),
            m.driver_new(DriverKind::Gpu, movable),
        ];
        let mut weights = [0u64; 25];
        for w in weights.iter_mut() {
            *w = if rng.chance(4, 5) {
                rng.range(1, 20)
            } else {
                0
            };
        }
        weights[0] += 20; // faults feed everything else
        weights[22] += 8; // always migrate
        let procs = vec![m.new_process(), m.new_process()];
        let files = vec![
            m.new_file(false, true, true),
            m.new_file(true, true, false),
            m.new_file(false, false, false),
        ];
        let caches = vec![
            m.kmem_cache_create(192, false),
            m.kmem_cache_create(1024, true),
        ];
        let stats = Stats {
            bytes_seeds: bytes as u64,
            ..Stats::default()
        };
        Swarm {
            seed,
            rng,
            m,
            weights,
            procs,
            files,
            caches,
            slab_objs: vec![],
            kernel: vec![],
            pins: vec![],
            spec: vec![],
            drivers,
            zs_objs: vec![],
            gpu_bufs: vec![],
            stats,
            last: "boot",
            now_ms: 0,
        }
    }

    fn fail(&self, step: u64, what: String) -> ! {
        panic!(
            "owners swarm seed={} step={step} (after {}): {what}\nrerun: KCOMPACT_OWNERS_SEED={} cargo test -p kcompact --test owners_swarm",
            self.seed, self.last, self.seed
        );
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.rng.below(v.len() as u64) as usize])
    }

    fn live_proc(&mut self) -> Option<u32> {
        let live: Vec<u32> = self
            .procs
            .iter()
            .copied()
            .filter(|p| self.m.owners.processes[*p as usize].alive)
            .collect();
        self.pick(&live)
    }

    fn random_folio(&mut self, lru_or_driver: bool) -> Option<FolioId> {
        let n = self.m.owners.iter().count() as u64;
        if n == 0 {
            return None;
        }
        let skip = self.rng.below(n) as usize;
        let id = self.m.owners.iter().map(|(i, _)| i).nth(skip)?;
        let rec = self.m.owners.folio(id);
        if !lru_or_driver || rec.kind.is_lru() || rec.kind == FolioKind::Driver {
            Some(id)
        } else {
            None
        }
    }

    fn step(&mut self, step: u64) {
        let op = self.rng.weighted(&self.weights);
        self.last = OPS[op];
        let order = |rng: &mut SimRng| Order([0, 0, 0, 0, 2, 3, 4, 9][rng.below(8) as usize]);
        match op {
            0 => {
                if let Some(p) = self.live_proc() {
                    let o = order(&mut self.rng);
                    let vpn = self.rng.below(4096) << o.0;
                    let _ = self.m.fault_anon(p, vpn, o);
                }
            }
            1 => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(4096 << 4);
                    self.m.munmap(p, vpn, self.rng.range(1, 2048));
                }
            }
            2 => {
                if self.procs.len() < 12 {
                    if let Some(p) = self.live_proc() {
                        if let Ok(c) = self.m.fork(p) {
                            self.procs.push(c);
                        }
                    }
                }
            }
            3 => {
                if let Some(p) = self.live_proc() {
                    let keys: Vec<u64> = self.m.owners.processes[p as usize].table.keys().collect();
                    if let Some(v) = self.pick(&keys) {
                        let _ = self.m.cow_write(p, v);
                    }
                }
            }
            4 => {
                if let Some(p) = self.live_proc() {
                    if self.rng.chance(1, 4) {
                        self.m.exit_process(p);
                    }
                }
            }
            5 => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(4096 << 4);
                    let on = self.rng.chance(1, 2);
                    self.m.mlock(p, vpn, 4096, on);
                }
            }
            6 => {
                let f = self.files[self.rng.below(3) as usize];
                let o = Order(self.rng.below(3) as u8);
                let idx = self.rng.below(2048) << o.0;
                let dirty = self.rng.chance(1, 3);
                let _ = self.m.file_add(f, idx, o, dirty);
            }
            7 => {
                let (f, idx) = self.random_file_page();
                if let (Some(idx), Some(p)) = (idx, self.live_proc()) {
                    let vpn = 0x100000 + (self.rng.below(1024) << 2);
                    let _ = self.m.file_mmap(p, vpn, f, idx);
                }
            }
            8 => {
                if let (f, Some(idx)) = self.random_file_page() {
                    self.m.file_remove(f, idx);
                }
            }
            9..=11 => {
                if let Some(id) = self.random_folio(true) {
                    let rec = self.m.owners.folio(id);
                    if rec.kind.in_page_cache() && !rec.orphan {
                        match op {
                            9 => self.m.folio_mark_dirty(id),
                            10 => {
                                self.m.folio_start_writeback(id);
                            }
                            _ => self.m.folio_end_writeback(id),
                        }
                    }
                }
            }
            12 => {
                let c = self.caches[self.rng.below(2) as usize];
                if let Some(s) = self.m.kmem_cache_alloc(c) {
                    self.slab_objs.push((c, s));
                }
            }
            13 => {
                if !self.slab_objs.is_empty() {
                    let i = self.rng.below(self.slab_objs.len() as u64) as usize;
                    let (c, s) = self.slab_objs.swap_remove(i);
                    self.m.kmem_cache_free(c, s);
                }
            }
            14 => {
                if self.rng.chance(1, 2) || self.kernel.is_empty() {
                    if let Some(k) = self.m.alloc_kernel(Order(self.rng.below(3) as u8), 1) {
                        self.kernel.push(k);
                    }
                } else {
                    let i = self.rng.below(self.kernel.len() as u64) as usize;
                    let k = self.kernel.swap_remove(i);
                    self.m.free_kernel(k);
                }
            }
            15 => {
                if let Some(id) = self.random_folio(true) {
                    if self.m.owners.folio(id).kind != FolioKind::Driver {
                        let lt = self.rng.chance(1, 2);
                        self.pins.push(self.m.pin_folio(id, lt));
                    }
                }
            }
            16 => {
                if !self.pins.is_empty() {
                    let i = self.rng.below(self.pins.len() as u64) as usize;
                    let pin = self.pins.swap_remove(i);
                    self.m.unpin_folio(pin);
                }
            }
            17 => {
                if let Some(id) = self.random_folio(false) {
                    let t = self.m.get_speculative(id);
                    self.spec.push((id, t));
                }
            }
            23 => self.drop_spec(),
            24 => self.compact(),
            18 => {
                if let Some(id) = self.random_folio(true) {
                    let pfn = self.m.owners.folio(id).pfn;
                    if self.m.owners.folio(id).kind != FolioKind::Driver {
                        if self.m.mem.flags(pfn).contains(PageFlags::LOCKED) {
                            self.m.mem.clear_flag(pfn, PageFlags::LOCKED);
                        } else {
                            self.m.mem.set_flag(pfn, PageFlags::LOCKED);
                        }
                    }
                }
            }
            19 => {
                let d = self.drivers[0];
                if self.rng.chance(3, 5) || self.zs_objs.is_empty() {
                    let size = [64, 700, 1500, 2800, 3900][self.rng.below(5) as usize];
                    if let Some(z) = self.m.zs_malloc(d, size) {
                        self.zs_objs.push(z);
                    }
                } else {
                    let i = self.rng.below(self.zs_objs.len() as u64) as usize;
                    let z = self.zs_objs.swap_remove(i);
                    self.m.zs_free(d, z);
                }
            }
            20 => {
                let d = self.drivers[1];
                if self.rng.chance(1, 2) {
                    self.m.balloon_inflate(d);
                } else {
                    self.m.balloon_deflate(d);
                }
            }
            21 => {
                let d = self.drivers[2];
                match self.rng.below(3) {
                    0 => {
                        if let Some(b) = self.m.gpu_alloc(d, Order(self.rng.below(4) as u8)) {
                            self.gpu_bufs.push(b);
                        }
                    }
                    1 if !self.gpu_bufs.is_empty() => {
                        let i = self.rng.below(self.gpu_bufs.len() as u64) as usize;
                        let b = self.gpu_bufs.swap_remove(i);
                        self.m.gpu_free(d, b);
                    }
                    _ => {
                        if let Some(b) = self.pick(&self.gpu_bufs.clone()) {
                            let busy = self.rng.chance(1, 2);
                            self.m.gpu_set_busy(d, b, busy);
                        }
                    }
                }
            }
            _ => self.migrate(step),
        }
        self.stats.ops += 1;
        if let Err(e) = verify(&self.m) {
            self.fail(step, format!("checker:\n{e}"));
        }
    }

    /// A random file, and the index of one of its cached folios if it has any.
    fn random_file_page(&mut self) -> (u32, Option<u64>) {
        let f = self.files[self.rng.below(3) as usize];
        let keys: Vec<u64> = self.m.owners.files[f as usize].pages.keys().collect();
        (f, self.pick(&keys))
    }

    /// Compaction of a random zone (or all memory) in a random mode, for a random order.
    fn compact(&mut self) {
        use kcompact::compaction::{CompactControl, CompactPriority};
        use kcompact::gfp::{AllocFlags, Gfp};
        use kcompact::layout::ZoneType;
        self.stats.compactions += 1;
        match self.rng.below(5) {
            0 => {
                self.m.compact_memory();
            }
            4 => {
                // kcompactd: a wake-up for a random order (as kswapd would after
                // balancing), then simulated time moves on and proactive compaction may run.
                let node = kcompact::units::NodeId(0);
                if self.rng.chance(1, 2) {
                    let order = [2, 4, 9][self.rng.below(3) as usize];
                    self.m.wakeup_kcompactd(node, order, ZoneType::Movable);
                }
                self.now_ms += self.rng.range(1, 3000);
                self.m.kcompactd_run_until(node, self.now_ms);
                self.stats.kcompactd_runs += 1;
            }
            3 => {
                let order = Order([2u8, 4, 9][self.rng.below(3) as usize]);
                let gfp = if order.0 == 9 {
                    Gfp::GFP_TRANSHUGE
                } else {
                    Gfp::GFP_KERNEL | Gfp::COMP
                };
                let (ac, _) = self.m.prepare_alloc(gfp, kcompact::units::NodeId(0));
                let prio = [
                    CompactPriority::Async,
                    CompactPriority::SyncLight,
                    CompactPriority::SyncFull,
                ][self.rng.below(3) as usize];
                let (page, _) =
                    self.m
                        .alloc_pages_direct_compact(gfp, order, AllocFlags::WMARK_MIN, &ac, prio);
                if let Some(p) = page {
                    self.m.free_pages(p, order);
                }
            }
            1 => {
                let zl = self
                    .m
                    .zonelist(kcompact::units::NodeId(0), ZoneType::Movable, false);
                let order = [2, 4, 9][self.rng.below(3) as usize];
                let prio = [
                    CompactPriority::Async,
                    CompactPriority::SyncLight,
                    CompactPriority::SyncFull,
                ][self.rng.below(3) as usize];
                self.m.try_to_compact_pages(
                    Gfp::GFP_TRANSHUGE,
                    order,
                    AllocFlags::WMARK_MIN,
                    &zl,
                    ZoneType::Movable,
                    prio,
                );
            }
            _ => {
                let zl = self
                    .m
                    .zonelist(kcompact::units::NodeId(0), ZoneType::Movable, false);
                let zi = zl[self.rng.below(zl.len() as u64) as usize];
                let mode = [
                    MigrateMode::Async,
                    MigrateMode::SyncLight,
                    MigrateMode::Sync,
                ][self.rng.below(3) as usize];
                let mut cc = CompactControl::new(zi, None, Gfp::GFP_KERNEL, mode);
                cc.whole_zone = self.rng.chance(1, 2);
                self.m.compact_zone(&mut cc);
            }
        }
    }

    fn drop_spec(&mut self) {
        if !self.spec.is_empty() {
            let i = self.rng.below(self.spec.len() as u64) as usize;
            let (id, t) = self.spec.swap_remove(i);
            self.m.put_speculative(id, t);
        }
    }

    fn isolate(&mut self, id: FolioId) -> bool {
        if self.m.page_has_movable_ops(id) {
            self.m.isolate_movable_ops_page(id)
        } else {
            self.m.folio_isolate_lru(id)
        }
    }

    fn migrate(&mut self, step: u64) {
        let mut list = Vec::new();
        for _ in 0..self.rng.range(1, 24) {
            if let Some(id) = self.random_folio(true) {
                if !list.contains(&id) && self.isolate(id) {
                    list.push(id);
                }
            }
        }
        if list.is_empty() {
            return;
        }
        // Races between isolation and migration.
        let victim = list[self.rng.below(list.len() as u64) as usize];
        match self.rng.below(8) {
            0 if !self.m.page_has_movable_ops(victim) => {
                self.pins.push(self.m.pin_folio(victim, true))
            }
            1 => {
                let t = self.m.get_speculative(victim);
                self.spec.push((victim, t));
            }
            2 => self.owner_frees(victim),
            3 => {
                let rec = self.m.owners.folio(victim);
                if rec.order.0 > 0 && rec.kind.is_lru() {
                    let mut pieces = Vec::new();
                    if self.m.split_folio(victim, &mut pieces) {
                        list.retain(|i| *i != victim);
                        list.extend(pieces);
                        self.stats.splits += 1;
                    }
                }
            }
            4 => {
                let d = self.drivers[self.rng.below(3) as usize];
                let faults = &mut self.m.owners.drivers[d as usize].faults;
                faults.migrate = [Some(DriverMigrate::Again), Some(DriverMigrate::Fail), None]
                    [self.rng.below(3) as usize];
            }
            _ => {}
        }
        if let Err(e) = verify(&self.m) {
            self.fail(step, format!("checker after isolating {list:?}:\n{e}"));
        }
        let mode = [
            MigrateMode::Async,
            MigrateMode::SyncLight,
            MigrateMode::Sync,
        ][self.rng.below(3) as usize];
        let reason = if self.rng.chance(1, 8) {
            MigrateReason::NumaMisplaced
        } else {
            MigrateReason::Compaction
        };
        let inject_pct = self.rng.below(30);
        let before: Vec<(FolioId, Option<Pfn>)> = list
            .iter()
            .map(|i| (*i, Some(self.m.owners.folio(*i).pfn)))
            .collect();
        let mut rng = SimRng::new(self.rng.next_u64());
        let mut inj_rng = SimRng::new(self.rng.next_u64());
        let mut injected = Vec::new();
        let mut inject = |id: FolioId| {
            if inj_rng.chance(inject_pct, 100) {
                injected.push(id);
                Injection::SpeculativeRef
            } else {
                Injection::None
            }
        };
        let r = match self.rng.below(3) {
            0 => self
                .m
                .migrate_pages_inject(list, &mut AllocTarget, mode, reason, &mut inject),
            1 => {
                let mut t = Flaky {
                    rng: &mut rng,
                    fail_pct: 30,
                };
                self.m
                    .migrate_pages_inject(list, &mut t, mode, reason, &mut inject)
            }
            _ => {
                let mut pool = FreePagesTarget::default();
                for o in [0u8, 2, 3, 4, 9] {
                    pool.fill(&mut self.m, Order(o), 4);
                }
                let mut t = Scanned {
                    pool,
                    rng: &mut rng,
                    held: Vec::new(),
                };
                let r = self
                    .m
                    .migrate_pages_inject(list, &mut t, mode, reason, &mut inject);
                t.pool.release(&mut self.m);
                for (p, o) in t.held {
                    self.m.put_page(p, o);
                }
                r
            }
        };
        // The injected references are real holders now; they let go later.
        let spec_now: Vec<(FolioId, u32)> = self.m.owners.speculative.iter().copied().collect();
        for (id, t) in spec_now {
            if injected.contains(&id) && !self.spec.contains(&(id, t)) {
                self.spec.push((id, t));
            }
        }
        self.stats.migrate_calls += 1;
        self.stats.pages_migrated += r.stats.nr_succeeded;
        self.stats.pages_failed += r.stats.nr_failed_pages;
        for (id, pfn) in &before {
            match self.m.owners.get(*id) {
                None => self.stats.released_while_isolated += 1,
                Some(rec) if rec.kind == FolioKind::Driver && Some(rec.pfn) != *pfn => {
                    self.stats.driver_pages_migrated += 1
                }
                _ => {}
            }
        }
        self.m.putback_movable_pages(r.ret);
        for d in self.drivers {
            self.m.owners.drivers[d as usize].faults.migrate = None;
        }
    }

    /// The owner lets go of an isolated folio.
    fn owner_frees(&mut self, id: FolioId) {
        let rec = self.m.owners.folio(id);
        match rec.kind {
            FolioKind::Anon => {
                let mappers: Vec<(u32, u64)> = self.m.owners.mappers(id).collect();
                for (p, v) in mappers {
                    self.m.munmap(p, v, 1);
                }
            }
            FolioKind::File | FolioKind::Shmem if !rec.orphan => {
                self.m.file_remove(rec.owner, rec.index);
            }
            FolioKind::Driver if !rec.orphan => {
                let d = rec.owner;
                if d == self.drivers[0] {
                    let zs = self.m.owners.drivers[d as usize]
                        .page_zspage
                        .get(&id)
                        .copied();
                    if let Some(zs) = zs {
                        while let Some(i) = self.zs_objs.iter().position(|z| *z == zs) {
                            self.zs_objs.swap_remove(i);
                            self.m.zs_free(d, zs);
                        }
                    }
                } else if d == self.drivers[2] {
                    if let Some(i) = self.gpu_bufs.iter().position(|b| *b == id) {
                        self.gpu_bufs.swap_remove(i);
                        self.m.gpu_free(d, id);
                    }
                }
            }
            _ => {}
        }
    }

    /// Every holder lets go; everything must come back free.
    fn teardown(&mut self, step: u64) {
        while let Some(pin) = self.pins.pop() {
            self.m.unpin_folio(pin);
        }
        while !self.spec.is_empty() {
            self.drop_spec();
        }
        for p in self.procs.clone() {
            if self.m.owners.processes[p as usize].alive {
                self.m.exit_process(p);
            }
        }
        for f in self.files.clone() {
            self.m.delete_file(f);
        }
        while let Some((c, s)) = self.slab_objs.pop() {
            self.m.kmem_cache_free(c, s);
        }
        while let Some(k) = self.kernel.pop() {
            self.m.free_kernel(k);
        }
        while let Some(z) = self.zs_objs.pop() {
            self.m.zs_free(self.drivers[0], z);
        }
        while self.m.balloon_deflate(self.drivers[1]) {}
        while let Some(b) = self.gpu_bufs.pop() {
            self.m.gpu_free(self.drivers[2], b);
        }
        if let Err(e) = verify(&self.m) {
            self.fail(step, format!("checker at teardown:\n{e}"));
        }
        let free = self.m.nr_free_pages() + self.m.nr_pcp_pages();
        if !self.m.owners.is_empty() || free != self.m.managed_pages() {
            self.fail(
                step,
                format!(
                    "leak: {} folios still owned, {} of {} pages free",
                    self.m.owners.len(),
                    free,
                    self.m.managed_pages()
                ),
            );
        }
    }
}

#[test]
fn owners_and_migration_swarm() {
    let seeds: Vec<u64> = match std::env::var("KCOMPACT_OWNERS_SEED") {
        Ok(v) => vec![v.parse().expect("KCOMPACT_OWNERS_SEED must be a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    let mut total = Stats::default();
    for seed in &seeds {
        let mut s = Swarm::new(*seed);
        let steps = if s.stats.bytes_seeds > 0 {
            BYTES_STEPS
        } else {
            STEPS
        };
        for step in 1..=steps {
            s.step(step);
        }
        s.stats.kcompactd_wakes = s.m.vmstat[VmEvent::CompactDaemonWake];
        s.stats.kcompactd_scanned = s.m.vmstat[VmEvent::CompactDaemonMigrateScanned];
        s.teardown(steps + 1);
        let t = &s.stats;
        total.ops += t.ops;
        total.migrate_calls += t.migrate_calls;
        total.pages_migrated += t.pages_migrated;
        total.pages_failed += t.pages_failed;
        total.splits += t.splits;
        total.released_while_isolated += t.released_while_isolated;
        total.driver_pages_migrated += t.driver_pages_migrated;
        total.bytes_seeds += t.bytes_seeds;
        total.compactions += t.compactions;
        total.kcompactd_runs += t.kcompactd_runs;
        total.kcompactd_wakes += t.kcompactd_wakes;
        total.kcompactd_scanned += t.kcompactd_scanned;
    }
    eprintln!(
        "owners swarm: {} seeds, zero violations, nothing leaked or corrupted; {total:?}",
        seeds.len()
    );
    if seeds.len() as u64 == SEEDS {
        assert!(
            total.ops >= 200_000,
            "at least 200,000 operations, ran {}",
            total.ops
        );
        for (what, n) in [
            ("migrations", total.pages_migrated),
            ("failed migrations", total.pages_failed),
            ("splits under migration", total.splits),
            (
                "folios released while isolated",
                total.released_while_isolated,
            ),
            ("driver pages migrated", total.driver_pages_migrated),
            ("bytes-mode seeds", total.bytes_seeds),
            ("compactions", total.compactions),
            ("kcompactd wake-ups", total.kcompactd_wakes),
            ("kcompactd scanning", total.kcompactd_scanned),
        ] {
            assert!(n > 0, "the swarm never exercised {what}: {total:?}");
        }
    }
}
