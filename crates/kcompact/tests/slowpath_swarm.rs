//! Swarm test of the slow path, reclaim and simulated time (issue 5).
//!
//! Each seed draws a machine and a configuration — swap or none, compaction on or off,
//! a THP defrag setting and mTHP sizes, swappiness, proactiveness, defrag_mode — and a
//! mix of operations by several tasks interleaved on the clock: anonymous and THP faults,
//! touches, munmap, page cache reads and writes (clean and dirty), deletes, mmaps,
//! mlock, kernel allocations of every order with every kind of GFP mask (NORETRY,
//! RETRY_MAYFAIL, NOFAIL, atomic), hugetlb pool resizing, drop_caches, sync, forks and
//! exits, and time passing, which runs kswapd, kcompactd and the disk. Memory is kept
//! under pressure, so direct reclaim, swap, writeback, compaction and the OOM killer all
//! run. The full-state checker runs after every operation, and a reference map of what
//! each process wrote checks that every page it still has — mapped or swapped out —
//! holds its own data. Rerun one seed with
//! `KCOMPACT_SLOWPATH_SEED=N cargo test -p kcompact --test slowpath_swarm`.

mod common;

use common::small_layout;
use kcompact::event::VmEvent;
use kcompact::gfp::Gfp;
use kcompact::owners::table::FolioId;
use kcompact::rng::SimRng;
use kcompact::sysctl::ThpDefrag;
use kcompact::units::{NodeId, Order};
use kcompact::verify::verify;
use kcompact::{Machine, VmConfig};
use std::collections::BTreeMap;

const SEEDS: u64 = 32;
const STEPS: u64 = 1500;

const OPS: [&str; 18] = [
    "fault",
    "thp_fault",
    "touch",
    "munmap",
    "file_write",
    "file_read",
    "file_delete",
    "file_mmap",
    "mlock",
    "kernel",
    "kernel_free",
    "high_order",
    "hugetlb",
    "drop_caches",
    "sync",
    "fork_exit",
    "time",
    "settle",
];

struct Swarm {
    seed: u64,
    rng: SimRng,
    m: Machine,
    weights: [u64; OPS.len()],
    procs: Vec<u32>,
    files: Vec<u32>,
    kernel: Vec<FolioId>,
    /// What each process wrote: (process, first page) → (stamp, offset, order).
    wrote: BTreeMap<(u32, u64), (u32, u32, u8)>,
    /// Each task's next time to act.
    task_at: Vec<u64>,
    vspace: u64,
    counts: [u64; OPS.len()],
}

impl Swarm {
    fn new(seed: u64) -> Swarm {
        let mut rng = SimRng::new(seed ^ 0x5105);
        let blocks = rng.range(16, 40);
        let defrag = [
            ThpDefrag::Always,
            ThpDefrag::Defer,
            ThpDefrag::DeferMadvise,
            ThpDefrag::Madvise,
            ThpDefrag::Never,
        ][rng.below(5) as usize];
        let cfg = VmConfig {
            swap_pages: if rng.chance(1, 2) { blocks * 512 } else { 0 },
            swappiness: [0, 60, 100, 200][rng.below(4) as usize],
            compaction: rng.chance(4, 5),
            compaction_proactiveness: [0, 20, 100][rng.below(3) as usize],
            defrag_mode: rng.chance(1, 6),
            thp_defrag: defrag,
            thp_orders: if rng.chance(1, 2) {
                1 << 9
            } else {
                (1 << 9) | (1 << 4) | (1 << 2)
            },
            watermark_boost_factor: if rng.chance(1, 2) { 0 } else { 15000 },
            ..VmConfig::default()
        };
        let mut m = Machine::boot(
            &small_layout(if rng.chance(1, 2) { 4 } else { 0 }, blocks),
            cfg,
        )
        .expect("boot");
        m.enable_contents(false);
        let mut weights = [0u64; OPS.len()];
        for w in weights.iter_mut() {
            *w = if rng.chance(4, 5) {
                rng.range(1, 20)
            } else {
                0
            };
        }
        weights[0] += 25;
        weights[4] += 15;
        weights[16] += 5;
        let procs = (0..3).map(|_| m.new_process()).collect();
        let files = (0..4)
            .map(|i| m.new_file(i == 3, true, i % 2 == 0))
            .collect();
        Swarm {
            seed,
            rng,
            m,
            weights,
            procs,
            files,
            kernel: Vec::new(),
            wrote: BTreeMap::new(),
            task_at: vec![0; 3],
            vspace: blocks * 512 * 2,
            counts: [0; OPS.len()],
        }
    }

    fn live_proc(&mut self) -> Option<u32> {
        let alive: Vec<u32> = self
            .procs
            .iter()
            .copied()
            .filter(|p| self.m.owners.processes[*p as usize].alive)
            .collect();
        if alive.is_empty() {
            return None;
        }
        Some(alive[self.rng.below(alive.len() as u64) as usize])
    }

    fn record(&mut self, pid: u32, id: FolioId) {
        let rec = self.m.owners.folio(id);
        let base = self
            .m
            .owners
            .mappers(id)
            .find(|(p, _)| *p == pid)
            .map(|(_, v)| v)
            .expect("just mapped");
        self.wrote
            .insert((pid, base), (rec.stamp, rec.stamp_offset, rec.order.0));
    }

    fn step(&mut self, task: usize) {
        let op = self.rng.weighted(&self.weights);
        self.counts[op] += 1;
        match OPS[op] {
            "fault" => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(self.vspace);
                    let swapped = self.m.swap_lookup(p, vpn).is_some();
                    if let Ok(id) = self.m.fault_anon(p, vpn, Order(0)) {
                        if !swapped {
                            self.record(p, id);
                        }
                    }
                }
            }
            "thp_fault" => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(self.vspace);
                    let swapped = self.m.swap_lookup(p, vpn).is_some();
                    let madv = self.rng.chance(1, 2);
                    if let Ok(id) = self.m.thp_fault(p, vpn, madv) {
                        if !swapped {
                            self.record(p, id);
                        }
                    }
                }
            }
            "touch" => {
                if let Some(p) = self.live_proc() {
                    let keys: Vec<u64> = self
                        .wrote
                        .range((p, 0)..(p + 1, 0))
                        .map(|((_, v), _)| *v)
                        .take(64)
                        .collect();
                    for v in keys {
                        if self.rng.chance(1, 3) {
                            self.m.touch(p, v);
                        }
                    }
                }
            }
            "munmap" => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(self.vspace);
                    let nr = self.rng.range(1, 1024);
                    self.m.munmap(p, vpn, nr);
                    let gone: Vec<(u32, u64)> = self
                        .wrote
                        .range((p, vpn.saturating_sub(512))..(p, vpn + nr))
                        .map(|(k, _)| *k)
                        .filter(|(_, b)| *b >= vpn && *b < vpn + nr)
                        .collect();
                    for k in gone {
                        self.wrote.remove(&k);
                    }
                }
            }
            "file_write" | "file_read" => {
                let f = self.files[self.rng.below(self.files.len() as u64) as usize];
                let dirty = OPS[op] == "file_write" && self.rng.chance(1, 2);
                let start = self.rng.below(4096);
                for i in start..start + self.rng.range(1, 128) {
                    match self.m.file_lookup(f, i) {
                        Some((_, id)) => self.m.folio_mark_accessed(id),
                        None => {
                            if self.m.file_add(f, i, Order(0), dirty).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
            "file_delete" => {
                let f = self.files[self.rng.below(self.files.len() as u64) as usize];
                let start = self.rng.below(4096);
                for i in start..start + self.rng.range(1, 512) {
                    self.m.file_remove(f, i);
                }
            }
            "file_mmap" => {
                if let Some(p) = self.live_proc() {
                    let f = self.files[self.rng.below(self.files.len() as u64) as usize];
                    let i = self.rng.below(4096);
                    let _ = self.m.file_mmap(p, self.vspace + i, f, i);
                }
            }
            "mlock" => {
                if let Some(p) = self.live_proc() {
                    let vpn = self.rng.below(self.vspace);
                    let on = self.rng.chance(2, 3);
                    self.m.mlock(p, vpn, 64, on);
                }
            }
            "kernel" => {
                let gfp = [
                    Gfp::GFP_KERNEL,
                    Gfp::GFP_ATOMIC,
                    Gfp::GFP_KERNEL_RECLAIMABLE,
                    Gfp::GFP_KERNEL | Gfp::NORETRY,
                ][self.rng.below(4) as usize];
                let order = Order(self.rng.below(4) as u8);
                if let Some(id) = self.m.alloc_kernel_gfp(gfp, order, 1) {
                    self.kernel.push(id);
                }
            }
            "kernel_free" => {
                if !self.kernel.is_empty() {
                    let i = self.rng.below(self.kernel.len() as u64) as usize;
                    let id = self.kernel.swap_remove(i);
                    self.m.free_kernel(id);
                }
            }
            "high_order" => {
                let gfp = [
                    Gfp::GFP_KERNEL | Gfp::NORETRY,
                    Gfp::GFP_KERNEL | Gfp::RETRY_MAYFAIL,
                    Gfp::GFP_TRANSHUGE,
                    Gfp::GFP_TRANSHUGE | Gfp::NORETRY,
                    Gfp::GFP_KERNEL | Gfp::NOFAIL,
                    Gfp::GFP_NOWAIT,
                ][self.rng.below(6) as usize];
                let order = if gfp.contains(Gfp::NOFAIL) {
                    Order(self.rng.below(2) as u8)
                } else {
                    Order(self.rng.range(1, 10) as u8)
                };
                if let Some(id) = self.m.alloc_kernel_gfp(gfp, order, 2) {
                    self.kernel.push(id);
                }
            }
            "hugetlb" => {
                let n = self.rng.below(8);
                self.m.set_nr_hugepages(n);
            }
            "drop_caches" => {
                let what = self.rng.range(1, 4) as u32;
                self.m.drop_caches(what);
            }
            "sync" => self.m.sync_all(),
            "fork_exit" => {
                if let Some(p) = self.live_proc() {
                    if self.rng.chance(1, 2) {
                        if let Ok(c) = self.m.fork(p) {
                            self.procs.push(c);
                            self.task_at.push(self.m.clock.now_ns);
                        }
                    } else if self.procs.len() > 1 {
                        self.m.exit_process(p);
                    }
                }
            }
            "time" => {
                let t = self.m.clock.now_ns + self.rng.range(1, 200) * 1_000_000;
                self.m.advance_to(t);
            }
            "settle" => {
                self.m.settle();
            }
            _ => unreachable!(),
        }
        // The task spent its latency and some think time.
        let spent = self.m.clock.last_alloc_ns + self.rng.range(1_000, 200_000);
        self.task_at[task] = self.task_at[task].max(self.m.clock.now_ns) + spent;
    }

    /// Every page a live process wrote is mapped or swapped out with its own data.
    fn check_data(&mut self) {
        let dead: Vec<(u32, u64)> = self
            .wrote
            .keys()
            .copied()
            .filter(|(p, _)| !self.m.owners.processes[*p as usize].alive)
            .collect();
        for k in dead {
            self.wrote.remove(&k);
        }
        for (&(pid, base), &(stamp, off, order)) in &self.wrote {
            for i in 0..1u64 << order {
                let vpn = base + i;
                let want = off + i as u32;
                let got = if let Some((b, id)) = self.m.lookup(pid, vpn) {
                    let r = self.m.owners.folio(id);
                    (r.stamp, r.stamp_offset + (vpn - b) as u32)
                } else if let Some((b, e)) = self.m.swap_lookup(pid, vpn) {
                    (e.stamp, e.stamp_offset + (vpn - b) as u32)
                } else {
                    panic!(
                        "seed {}: process {pid} lost page {vpn:#x} it wrote",
                        self.seed
                    );
                };
                assert_eq!(
                    got,
                    (stamp, want),
                    "seed {}: process {pid} page {vpn:#x} holds another's data",
                    self.seed
                );
            }
        }
    }

    fn run(&mut self) {
        for step in 0..STEPS {
            // The task due first acts (lowest id on a tie); the daemons run up to then.
            let task = (0..self.task_at.len())
                .min_by_key(|t| (self.task_at[*t], *t))
                .expect("tasks");
            let t = self.task_at[task].max(self.m.clock.now_ns);
            self.m.advance_to(t);
            self.step(task);
            if let Err(e) = verify(&self.m) {
                panic!("seed {} step {step} ({:?}): {e}", self.seed, self.counts);
            }
            if step % 64 == 0 {
                self.check_data();
            }
        }
        self.m.settle();
        verify(&self.m).unwrap_or_else(|e| panic!("seed {} at the end: {e}", self.seed));
        self.check_data();
    }
}

#[test]
fn slowpath_swarm_keeps_every_invariant_and_every_process_data() {
    let seeds: Vec<u64> = match std::env::var("KCOMPACT_SLOWPATH_SEED") {
        Ok(s) => vec![s.parse().expect("a seed number")],
        Err(_) => (0..SEEDS).collect(),
    };
    let mut total = kcompact::event::VmStat::default();
    let mut kinds = 0u64;
    for seed in seeds {
        let mut s = Swarm::new(seed);
        s.run();
        let v = &s.m.vmstat;
        kinds += (v[VmEvent::Allocstall] > 0) as u64
            + (v[VmEvent::Pswpout] > 0) as u64
            + (v[VmEvent::CompactStall] > 0) as u64
            + (v[VmEvent::PgstealKswapd] > 0) as u64
            + (v[VmEvent::NrVmscanWrite] + v[VmEvent::Pgrotated] > 0) as u64;
        total[VmEvent::Allocstall] += v[VmEvent::Allocstall];
        total[VmEvent::PgstealKswapd] += v[VmEvent::PgstealKswapd];
        total[VmEvent::PgstealDirect] += v[VmEvent::PgstealDirect];
        total[VmEvent::Pswpout] += v[VmEvent::Pswpout];
        total[VmEvent::Pswpin] += v[VmEvent::Pswpin];
        total[VmEvent::CompactStall] += v[VmEvent::CompactStall];
        total[VmEvent::CompactSuccess] += v[VmEvent::CompactSuccess];
        total[VmEvent::CompactDaemonWake] += v[VmEvent::CompactDaemonWake];
        total[VmEvent::CompactDaemonMigrateScanned] += v[VmEvent::CompactDaemonMigrateScanned];
        total[VmEvent::KswapdWake] += v[VmEvent::KswapdWake];
        total[VmEvent::Pageoutrun] += v[VmEvent::Pageoutrun];
        total[VmEvent::CompactMigrateScanned] += v[VmEvent::CompactMigrateScanned];
        total[VmEvent::OomKill] += v[VmEvent::OomKill];
        total[VmEvent::Pgrotated] += v[VmEvent::Pgrotated];
        total[VmEvent::HtlbBuddyAllocSuccess] += v[VmEvent::HtlbBuddyAllocSuccess];
        total[VmEvent::ThpFaultAlloc] += v[VmEvent::ThpFaultAlloc];
        total[VmEvent::ThpFaultFallback] += v[VmEvent::ThpFaultFallback];
        let _ = NodeId(0);
    }
    println!("{total:?} kinds {kinds}");
    if std::env::var("KCOMPACT_SLOWPATH_SEED").is_err() {
        // The swarm reaches every engine it is meant to exercise.
        for (name, v) in [
            ("direct reclaim", total[VmEvent::Allocstall]),
            ("kswapd reclaim", total[VmEvent::PgstealKswapd]),
            ("swap out", total[VmEvent::Pswpout]),
            ("swap in", total[VmEvent::Pswpin]),
            ("direct compaction", total[VmEvent::CompactStall]),
            ("compaction success", total[VmEvent::CompactSuccess]),
            ("kcompactd", total[VmEvent::CompactDaemonMigrateScanned]),
            ("writeback rotation", total[VmEvent::Pgrotated]),
            ("hugetlb", total[VmEvent::HtlbBuddyAllocSuccess]),
            ("THP faults", total[VmEvent::ThpFaultAlloc]),
            ("THP fallback", total[VmEvent::ThpFaultFallback]),
        ] {
            assert!(v > 0, "the swarm never reached {name}");
        }
    }
}
