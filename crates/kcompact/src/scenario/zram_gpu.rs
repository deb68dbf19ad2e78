//! `zram-gpu`: seed 004 (Minchan Kim, "non-LRU movable page migration", Linux 4.8). A
//! phone or TV: apps are launched and switched between while the low memory killer keeps
//! a bounded number of them alive; their anonymous memory is swapped to zram (a zsmalloc
//! pool in RAM), their GPU buffers come and go, and the system keeps starting threads and
//! forking, which needs order-2 and order-3 pages. Before 4.8 (`non_lru_movable=off`)
//! zsmalloc and GPU pages were unmovable: spread over pageblocks by the churn, compaction
//! could not move them, and reclaim had to make the order-2 blocks instead.
//!
//! The machine: swap on zram with half of memory as its disksize, `vm.swappiness=100`
//! (Android's setting), no THP (the phones' kernels had none, so khugepaged does not raise
//! `min_free_kbytes`) and no CMA area; each can be changed with `--set`. With a CMA area
//! (`--set cma=12%`, phones reserve hundreds of MiB for cameras and video decoders) most
//! direct compactions for the order-2 stacks end before scanning: `compaction_suitable()`
//! counts free CMA pages, the unmovable request's watermark does not (docs/results.md).
//!
//! The workload makes free memory fragmented the way many processes do: a running app
//! faults its anonymous memory over its first `grow_rounds` rounds, the running apps in
//! turn page by page, so one app's pages lie between the others' and between the zsmalloc
//! pages its swap-out made; when the low memory killer ends an app its pages leave single
//! free pages behind. An app starts `threads` threads while it launches, each with a
//! 16 KiB kernel stack kept until the app dies; its GPU buffers are single pages by default
//! (`gpu_order=0`, a GPU driver's page pool), orders 0 to 3 with `gpu_order=3`.
//!
//! A kernel stack is an order-2 `GFP_KERNEL` allocation that may reclaim and compact
//! (`alloc_thread_stack_node()` of arm64 without CONFIG_VMAP_STACK, as on the seed's 2016
//! phones). A fork asks for a stack and a task_struct from its SLUB cache, whose new slab
//! today's `allocate_slab()` first tries at order 3 with `__GFP_NORETRY | __GFP_NOWARN |
//! __GFP_NOMEMALLOC` and `__GFP_RECLAIM` cleared, falling back to the cache's minimum
//! order (1 here). DEVIATION(linux): the model runs today's allocator and slab masks,
//! not those of 2016, on its x86-64 zone layout (ZONE_DMA and ZONE_DMA32 at 1 GiB), not an
//! arm64 phone's. A child lives for two rounds.

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::owners::table::DriverKind;
use crate::owners::table::FolioId;
use crate::rng::SimRng;
use crate::units::Order;
use std::collections::VecDeque;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "zram-gpu",
    source: "seed 004 (Minchan Kim, mm: migrate: support non-lru movable page migration, 2016)",
    summary: "apps launched and switched under a low memory killer, anonymous memory swapped to zram, GPU buffers; threads and forks need order-2/3 pages",
    ab_key: "non_lru_movable",
    params: &[
        ("rounds", "160", "app launches and switches (1..=100000)"),
        ("max_apps", "10", "apps the low memory killer keeps alive (1..=1000)"),
        ("app_pct", "8", "anonymous memory of one app, percent of memory (1..=50)"),
        ("file_pct", "2", "page cache one app reads (code, assets), percent of memory (0..=50)"),
        ("gpu_pct", "2", "GPU buffers of one app, percent of memory (0..=50)"),
        ("forks", "4", "forks per round (0..=1000)"),
        ("gpu_order", "0", "largest order of a GPU buffer; buffers take orders 0 to it (0..=3)"),
        ("threads", "100", "threads an app starts while it launches, each with an order-2 kernel stack until the app dies (0..=1000)"),
        ("grow_rounds", "8", "rounds over which a running app faults its anonymous memory, the apps in turn (1..=1000)"),
    ],
    machine: &[("swap", "50%"), ("zram", "on"), ("thp", "off"), ("swappiness", "100")],
    mem: "1G",
    run,
};

/// `THREADINFO_GFP`: the kernel stack's mask.
const STACK_GFP: Gfp = Gfp::GFP_KERNEL_ACCOUNT;
/// SLUB's first try at a slab of the cache's preferred order: no reclaim, no retry, no
/// reserves.
const SLAB_HIGH_GFP: Gfp = Gfp((Gfp::GFP_KERNEL_ACCOUNT.0 & !Gfp::RECLAIM.0)
    | Gfp::NOWARN.0
    | Gfp::NORETRY.0
    | Gfp::NOMEMALLOC.0);

/// One app: its identity (and file), its process while it runs, its GPU buffers.
struct App {
    file: u32,
    pid: Option<u32>,
    gpu: Vec<FolioId>,
    /// Its threads' kernel stacks.
    stacks: Vec<FolioId>,
    /// Anonymous pages faulted so far.
    size: u64,
}

/// A forked child's kernel memory.
struct Child {
    stack: FolioId,
    slab: FolioId,
    born: u64,
}

/// What the run counts.
#[derive(Default)]
struct Counts {
    forks: u64,
    order3_ok: u64,
    /// Order-3 tries that failed with no free block of order 3 or more.
    order3_no_block: u64,
    both_ok: u64,
    /// Kernel stacks asked for (threads' and forks'), and had.
    stacks: u64,
    stacks_ok: u64,
    /// Their allocation latency (ns), summed.
    stack_ns: u64,
    gpu_fail: u64,
    lmk_kills: u64,
    launches: u64,
    switches: u64,
}

struct World {
    apps: Vec<App>,
    /// Running apps, least recently used first.
    lru: VecDeque<usize>,
    gpu: u32,
    foreground: Option<usize>,
    app_pages: u64,
    file_pages: u64,
    gpu_pages: u64,
    children: VecDeque<Child>,
    grow_rounds: u64,
    threads: u64,
    gpu_order: u64,
    counts: Counts,
}

impl World {
    /// Ends app `a`: its process exits (anonymous memory and swap entries go), its GPU
    /// buffers are freed; its files stay in the page cache.
    fn kill(&mut self, m: &mut Machine, a: usize) {
        if let Some(pid) = self.apps[a].pid.take() {
            if m.owners.processes[pid as usize].alive {
                m.exit_process(pid);
            }
        }
        for id in std::mem::take(&mut self.apps[a].gpu) {
            m.gpu_free(self.gpu, id);
        }
        for id in std::mem::take(&mut self.apps[a].stacks) {
            m.free_kernel(id);
        }
        self.lru.retain(|x| *x != a);
        if self.foreground == Some(a) {
            self.foreground = None;
        }
    }

    /// The OOM killer may have taken apps: forget them as the low memory killer would.
    fn reap(&mut self, m: &mut Machine) {
        let dead: Vec<usize> = self
            .lru
            .iter()
            .copied()
            .filter(|a| {
                self.apps[*a]
                    .pid
                    .is_some_and(|p| !m.owners.processes[p as usize].alive)
            })
            .collect();
        for a in dead {
            self.kill(m, a);
        }
    }

    /// Starts app `a`: a process faults its anonymous memory, reads its files, allocates
    /// its GPU buffers.
    fn launch(&mut self, m: &mut Machine, rng: &mut SimRng, a: usize) {
        let pid = m.new_process();
        self.apps[a].pid = Some(pid);
        self.lru.push_back(a);
        self.counts.launches += 1;
        self.apps[a].size = 0;
        let first = self.app_pages.div_ceil(self.grow_rounds);
        let every = (first / self.threads.max(1)).max(1);
        for v in 0..first {
            if v % every == 0 && (v / every) < self.threads {
                if let Some(id) = self.stack(m) {
                    self.apps[a].stacks.push(id);
                }
            }
            if m.fault_anon(pid, v, Order(0)).is_err() || !m.owners.processes[pid as usize].alive {
                break;
            }
            self.apps[a].size = v + 1;
        }
        let f = self.apps[a].file;
        for i in 0..self.file_pages {
            if m.file_lookup(f, i).is_none() && m.file_add(f, i, Order(0), false).is_err() {
                break;
            }
        }
        let mut got = 0;
        while got < self.gpu_pages {
            let o = Order(rng.range(0, self.gpu_order) as u8);
            match m.gpu_alloc(self.gpu, o) {
                Some(id) => {
                    self.apps[a].gpu.push(id);
                    got += o.nr_pages();
                }
                None => {
                    self.counts.gpu_fail += 1;
                    break;
                }
            }
        }
    }

    /// Brings running app `a` to the foreground: it touches a quarter of its memory
    /// (swapping in what zram holds) and its GPU buffers become busy.
    fn switch_to(&mut self, m: &mut Machine, rng: &mut SimRng, a: usize) {
        self.counts.switches += 1;
        self.lru.retain(|x| *x != a);
        self.lru.push_back(a);
        let Some(pid) = self.apps[a].pid else { return };
        let n = (self.app_pages / 4).max(1);
        let start = rng.range(0, self.app_pages.saturating_sub(n));
        for v in start..(start + n).min(self.app_pages) {
            if !m.owners.processes[pid as usize].alive {
                return;
            }
            if m.lookup(pid, v).is_none() && m.fault_anon(pid, v, Order(0)).is_err() {
                break;
            }
            m.touch(pid, v);
        }
    }

    /// The foreground app's GPU buffers are in use by the GPU; the others are idle.
    fn set_foreground(&mut self, m: &mut Machine, a: usize) {
        if let Some(old) = self.foreground {
            for id in self.apps[old].gpu.clone() {
                m.gpu_set_busy(self.gpu, id, false);
            }
        }
        for id in self.apps[a].gpu.clone() {
            m.gpu_set_busy(self.gpu, id, true);
        }
        self.foreground = Some(a);
    }

    /// The running apps that have not reached their size grow, one page each in turn, by
    /// `app_pages / grow_rounds` pages each.
    fn grow(&mut self, m: &mut Machine) {
        let step = self.app_pages.div_ceil(self.grow_rounds);
        for _ in 0..step {
            for i in 0..self.lru.len() {
                let a = self.lru[i];
                let Some(pid) = self.apps[a].pid else {
                    continue;
                };
                let v = self.apps[a].size;
                if v >= self.app_pages || !m.owners.processes[pid as usize].alive {
                    continue;
                }
                // A switch to the app may have touched the page already.
                if m.lookup(pid, v).is_none() && m.fault_anon(pid, v, Order(0)).is_err() {
                    continue;
                }
                self.apps[a].size = v + 1;
            }
        }
    }

    /// A kernel stack (order 2, may reclaim and compact), counted with its latency.
    fn stack(&mut self, m: &mut Machine) -> Option<FolioId> {
        let id = m.alloc_kernel_gfp(STACK_GFP, Order(2), 2);
        self.counts.stacks += 1;
        self.counts.stacks_ok += id.is_some() as u64;
        self.counts.stack_ns += m.clock.last_alloc_ns;
        id
    }

    /// One fork: the kernel stack (order 2, may reclaim and compact) and a task_struct
    /// slab (order 3 without reclaim, else order 1).
    fn fork(&mut self, m: &mut Machine, round: u64) {
        self.counts.forks += 1;
        let stack = self.stack(m);
        let slab = match m.alloc_kernel_gfp(SLAB_HIGH_GFP, Order(3), 3) {
            Some(id) => {
                self.counts.order3_ok += 1;
                Some(id)
            }
            None => {
                // Failed for want of a block (fragmentation) rather than of free pages?
                self.counts.order3_no_block += (preferred_zone_blocks(m, Order(3)) == 0) as u64;
                m.alloc_kernel_gfp(STACK_GFP, Order(1), 3)
            }
        };
        let high = stack.is_some() && slab.is_some_and(|s| m.owners.folio(s).order == Order(3));
        self.counts.both_ok += high as u64;
        match (stack, slab) {
            (Some(stack), Some(slab)) => self.children.push_back(Child {
                stack,
                slab,
                born: round,
            }),
            // fork() fails with -ENOMEM and frees what it got.
            (Some(id), None) | (None, Some(id)) => m.free_kernel(id),
            (None, None) => {}
        }
    }

    /// Children older than two rounds exit.
    fn reap_children(&mut self, m: &mut Machine, round: u64) {
        while self.children.front().is_some_and(|c| c.born + 2 <= round) {
            let c = self.children.pop_front().expect("a child");
            m.free_kernel(c.stack);
            m.free_kernel(c.slab);
        }
    }
}

/// Free blocks of `order` or more in the zone a `GFP_KERNEL` request of node 0 tries
/// first (the highest populated zone up to Normal).
fn preferred_zone_blocks(m: &Machine, order: Order) -> u64 {
    m.zones
        .iter()
        .filter(|z| z.node.0 == 0 && z.zone_type <= ZoneType::Normal && z.managed_pages > 0)
        .max_by_key(|z| z.zone_type)
        .map(|z| z.free_by_order()[order.0 as usize..].iter().sum())
        .unwrap_or(0)
}

/// CMA pages in use (allocated) over all zones.
fn cma_used_pages(m: &Machine) -> u64 {
    m.zones.iter().map(|z| z.cma_pages - z.nr_free_cma).sum()
}

/// Runs the scenario.
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let rounds = p.num_in("rounds", 1, 100_000)?;
    let max_apps = p.num_in("max_apps", 1, 1000)? as usize;
    let app_pct = p.num_in("app_pct", 1, 50)?;
    let file_pct = p.num_in("file_pct", 0, 50)?;
    let gpu_pct = p.num_in("gpu_pct", 0, 50)?;
    let forks = p.num_in("forks", 0, 1000)?;
    let managed = m.managed_pages();
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let gpu = m.driver_new(DriverKind::Gpu, true);
    let apps = (0..2 * max_apps)
        .map(|_| App {
            file: m.new_file(false, true, false),
            pid: None,
            gpu: Vec::new(),
            stacks: Vec::new(),
            size: 0,
        })
        .collect();
    let mut w = World {
        apps,
        lru: VecDeque::new(),
        gpu,
        foreground: None,
        app_pages: managed * app_pct / 100,
        file_pages: managed * file_pct / 100,
        gpu_pages: managed * gpu_pct / 100,
        children: VecDeque::new(),
        gpu_order: p.num_in("gpu_order", 0, 3)?,
        threads: p.num_in("threads", 0, 1000)?,
        grow_rounds: p.num_in("grow_rounds", 1, 1000)?,
        counts: Counts::default(),
    };
    let before = m.vmstat.clone();
    let driver_before = m.driver_pages_migrated;
    for round in 0..rounds {
        w.reap(m);
        let idle: Vec<usize> = (0..w.apps.len())
            .filter(|a| w.apps[*a].pid.is_none())
            .collect();
        let a = if w.lru.is_empty() || rng.range(0, 1) == 0 {
            let a = idle[rng.range(0, idle.len() as u64 - 1) as usize];
            // lmkd: the least recently used app goes before a new one starts.
            while w.lru.len() >= max_apps {
                let victim = w.lru[0];
                w.kill(m, victim);
                w.counts.lmk_kills += 1;
            }
            w.launch(m, rng, a);
            a
        } else {
            let a = w.lru[rng.range(0, w.lru.len() as u64 - 1) as usize];
            w.switch_to(m, rng, a);
            a
        };
        w.reap(m);
        if w.grow_rounds > 1 {
            w.grow(m);
            w.reap(m);
        }
        if w.apps[a].pid.is_some() {
            w.set_foreground(m, a);
        }
        for _ in 0..forks {
            w.fork(m, round);
        }
        w.reap_children(m, round);
        let t = m.clock.now_ns + 100_000_000;
        m.advance_to(t);
        if round % 8 == 7 {
            out.timeline.push(tick(m, "apps", w.counts.order3_ok));
        }
        progress(round + 1, rounds);
    }
    out.timeline.push(tick(m, "apps", w.counts.order3_ok));
    let v = &m.vmstat;
    let c = &w.counts;
    let pool: u64 = m
        .reclaim
        .zram
        .map(|d| m.owners.drivers[d as usize].pages.len() as u64)
        .unwrap_or(0);
    let order2_latency_us = if c.stacks == 0 {
        0.0
    } else {
        (c.stack_ns as f64 / c.stacks as f64 / 10.0).round() / 100.0
    };
    out.metrics = vec![
        (
            "order2_success_pct",
            Metric::Float(pct(c.stacks_ok, c.stacks)),
        ),
        ("order2_latency_us_mean", Metric::Float(order2_latency_us)),
        (
            "order3_success_pct",
            Metric::Float(pct(c.order3_ok, c.forks)),
        ),
        ("order3_fail_no_block", Metric::Int(c.order3_no_block)),
        ("success_pct", Metric::Float(pct(c.both_ok, c.forks))),
        ("forks", Metric::Int(c.forks)),
        ("kernel_stacks", Metric::Int(c.stacks)),
        (
            "pages_reclaimed",
            Metric::Int(
                pages_reclaimed(m)
                    - (before[VmEvent::PgstealKswapd] + before[VmEvent::PgstealDirect]),
            ),
        ),
        ("cma_used_pages", Metric::Int(cma_used_pages(m))),
        ("zram_pool_pages", Metric::Int(pool)),
        (
            "pswpout",
            Metric::Int(v[VmEvent::Pswpout] - before[VmEvent::Pswpout]),
        ),
        (
            "oom_kills",
            Metric::Int(v[VmEvent::OomKill] - before[VmEvent::OomKill]),
        ),
        ("lmk_kills", Metric::Int(c.lmk_kills)),
        ("app_launches", Metric::Int(c.launches)),
        ("gpu_alloc_fail", Metric::Int(c.gpu_fail)),
        (
            "compact_stall",
            Metric::Int(v[VmEvent::CompactStall] - before[VmEvent::CompactStall]),
        ),
        (
            "pages_migrated",
            Metric::Int(v[VmEvent::PgmigrateSuccess] - before[VmEvent::PgmigrateSuccess]),
        ),
        (
            "driver_pages_migrated",
            Metric::Int(m.driver_pages_migrated - driver_before),
        ),
    ];
    Ok(out)
}
