//! `highalloc`: seed 003's third test (mmtests stress-highalloc). Kernel builds fill
//! memory with a pressured mix of movable and unmovable allocations — source files read
//! into the page cache, object files written (dirty, written back later), compiler heaps
//! (anonymous memory), dentries and inodes (reclaimable slab), other kernel objects
//! (unmovable slab), page tables — and while they run, huge pages are allocated one at a
//! time, with a short delay between attempts, up to 90 % of memory. The huge pages are
//! held (as the test's kernel module held them).

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::owners::table::FolioId;
use crate::rng::SimRng;
use crate::units::Order;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "highalloc",
    source: "seed 003 (Mel Gorman, memory compaction v8, 2010): third test; mmtests stress-highalloc",
    summary: "kernel builds fill memory with page cache, anonymous memory and slab; meanwhile huge pages are allocated one at a time up to 90 % of memory",
    ab_key: "compaction",
    params: &[
        ("builds", "4", "kernel builds running at once (1..=64)"),
        ("warmup_ops", "20000", "build operations after memory is full, before the huge page requests start"),
        ("ops_per_attempt", "40", "build operations between two huge page attempts"),
        ("request_pct", "90", "memory asked for as huge pages, percent (1..=100)"),
        ("delay_ms", "10", "simulated delay between huge page attempts, ms"),
        ("heap_pct", "3", "largest compiler heap of one build, percent of memory (1..=50)"),
    ],
    machine: &[],
    mem: "1G",
    run,
};

/// The mask of the allocating module: movable huge pages that may reclaim and compact,
/// and try hard.
const HUGE_GFP: Gfp =
    Gfp(Gfp::GFP_HIGHUSER_MOVABLE.0 | Gfp::COMP.0 | Gfp::RETRY_MAYFAIL.0 | Gfp::NOWARN.0);

/// One kernel build: a process with a compiler heap, compiling files of the tree.
struct Build {
    pid: u32,
    heap: u64,
    heap_max: u64,
    left: u64,
}

struct Load {
    builds: Vec<Build>,
    tree: u32,
    objs: u32,
    obj_next: u64,
    dentries: u32,
    kernel: u32,
    slabs: Vec<(u32, FolioId)>,
    heap_max: u64,
    tree_pages: u64,
    /// Pages one operation touches scale with memory (16 a GiB) so a build fills any
    /// machine in about the same number of operations.
    scale: u64,
}

impl Load {
    fn new(m: &mut Machine, builds: u64, heap_max: u64) -> Load {
        let tree = m.new_file(false, true, true);
        let objs = m.new_file(false, true, true);
        let dentries = m.kmem_cache_create(192, true);
        let kernel = m.kmem_cache_create(512, false);
        let mut l = Load {
            builds: Vec::new(),
            tree,
            objs,
            obj_next: 0,
            dentries,
            kernel,
            slabs: Vec::new(),
            heap_max,
            tree_pages: m.managed_pages(),
            scale: (m.managed_pages() >> 18).max(1),
        };
        for _ in 0..builds {
            let b = l.new_build(m);
            l.builds.push(b);
        }
        l
    }

    fn new_build(&self, m: &mut Machine) -> Build {
        Build {
            pid: m.new_process(),
            heap: 0,
            heap_max: self.heap_max,
            left: 4000,
        }
    }

    /// One operation of build `i`.
    fn op(&mut self, m: &mut Machine, rng: &mut SimRng, i: usize) {
        let b = &mut self.builds[i];
        if !m.owners.processes[b.pid as usize].alive || b.left == 0 {
            // The compiler exits (or the OOM killer took it); the next one starts.
            m.exit_process(b.pid);
            let nb = self.new_build(m);
            self.builds[i] = nb;
            return;
        }
        b.left -= 1;
        match rng.below(100) {
            // Read source files (16 pages a GiB of memory).
            0..=39 => {
                let n = 16 * self.scale;
                let base = rng.below((self.tree_pages / n).max(1)) * n;
                for idx in base..base + n {
                    match m.file_lookup(self.tree, idx) {
                        Some((_, id)) => m.folio_mark_accessed(id),
                        None => {
                            let _ = m.file_add(self.tree, idx, Order(0), false);
                        }
                    }
                }
            }
            // Write object files (8 pages a GiB, dirty until written back).
            40..=54 => {
                for _ in 0..8 * self.scale {
                    let _ = m.file_add(self.objs, self.obj_next, Order(0), true);
                    self.obj_next += 1;
                }
            }
            // Compiler heap (4 pages a GiB).
            55..=79 => {
                if b.heap < b.heap_max {
                    for _ in 0..4 * self.scale {
                        if m.fault_anon(b.pid, b.heap, Order(0)).is_ok() {
                            b.heap += 1;
                        }
                    }
                } else {
                    let v = rng.below(b.heap.max(1));
                    m.touch(b.pid, v);
                }
            }
            // Dentries and inodes (reclaimable slab), other kernel objects (unmovable).
            80..=91 => {
                let cache = if rng.chance(2, 3) {
                    self.dentries
                } else {
                    self.kernel
                };
                if let Some(s) = m.kmem_cache_alloc(cache) {
                    self.slabs.push((cache, s));
                }
            }
            _ => {
                if !self.slabs.is_empty() {
                    let k = rng.below(self.slabs.len() as u64) as usize;
                    let (c, s) = self.slabs.swap_remove(k);
                    m.kmem_cache_free(c, s);
                }
            }
        }
    }

    fn ops(&mut self, m: &mut Machine, rng: &mut SimRng, n: u64) {
        for _ in 0..n {
            let i = rng.below(self.builds.len() as u64) as usize;
            self.op(m, rng, i);
            // The builds' own time passes: 20 µs an operation plus their allocations.
            let t = m.clock.now_ns + 20_000 + m.clock.last_alloc_ns;
            m.advance_to(t);
        }
    }
}

/// Runs the scenario.
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let builds = p.num_in("builds", 1, 64)?;
    let warmup = p.num("warmup_ops")?;
    let per_attempt = p.num("ops_per_attempt")?;
    let request_pct = p.num_in("request_pct", 1, 100)?;
    let delay = p.num("delay_ms")? * 1_000_000;
    let heap_pct = p.num_in("heap_pct", 1, 50)?;
    let mut out = Outcome::default();
    let mut load = Load::new(m, builds, m.managed_pages() * heap_pct / 100);
    let requested = m.managed_pages() * request_pct / 100 / 512;
    let total = warmup + requested * per_attempt;
    // Build until memory is full, then `warmup` more operations.
    let high: u64 = m.zones.iter().map(|z| z.high_wmark_pages()).sum();
    let mut filled = false;
    let mut extra = 0;
    let mut done = 0;
    let mut chunk = 0u64;
    while extra < warmup && chunk < 5_000 {
        load.ops(m, rng, 1000);
        chunk += 1;
        // Full: free memory down to the high watermarks, or kswapd already at work.
        if !filled && (m.nr_free_pages() <= high || m.vmstat[VmEvent::Pageoutrun] > 0) {
            filled = true;
        }
        if filled {
            extra += 1000;
            done = extra;
        }
        progress(done, total);
        if chunk.is_multiple_of(10) {
            // Periodic writeback of dirty object files (dirty_expire).
            m.sync_all();
            out.timeline.push(tick(m, "build", 0));
        }
    }
    out.timeline.push(tick(m, "build", 0));
    let reclaimed_before = pages_reclaimed(m);
    let latency_before = m.clock.latency.total_ns[9];
    let count_before = m.clock.latency.count[9];
    let mut held = Vec::new();
    for a in 0..requested {
        load.ops(m, rng, per_attempt);
        if let Some(id) = m.alloc_kernel_gfp(HUGE_GFP, Order(9), 9) {
            held.push(id);
        }
        let t = m.clock.now_ns + delay;
        m.advance_to(t);
        done += per_attempt;
        if a % 16 == 15 {
            m.sync_all();
            out.timeline.push(tick(m, "hugepages", held.len() as u64));
            progress(done, total);
        }
    }
    out.timeline.push(tick(m, "hugepages", held.len() as u64));
    let allocated = held.len() as u64;
    let attempts = m.clock.latency.count[9] - count_before;
    let mean_us = if attempts > 0 {
        (m.clock.latency.total_ns[9] - latency_before) as f64 / attempts as f64 / 1000.0
    } else {
        0.0
    };
    out.metrics = vec![
        ("success_pct", Metric::Float(pct(allocated, requested))),
        ("hugepages_requested", Metric::Int(requested)),
        ("hugepages_allocated", Metric::Int(allocated)),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
        (
            "alloc_latency_us_mean",
            Metric::Float((mean_us * 100.0).round() / 100.0),
        ),
    ];
    Ok(out)
}
