//! `vfio-pin`: seeds 000/001 (Khalid Aziz's "mm, compaction: Skip all pinned pages during
//! scan", 2023). A large guest's memory is long-term pinned by vfio and scattered through
//! physical memory; the host then keeps asking for huge pages — THP faults that wake
//! kswapd and kcompactd (`defrag=defer`) and `MADV_HUGEPAGE` faults that compact directly
//! — while time passes. With the guest memory memfd/shmem-backed (QEMU's
//! `memory-backend-memfd`), today's filter (anonymous pages only) lets compaction isolate
//! the pinned pages and fail to migrate them again and again; `skip_pinned=extra-refs`
//! skips them. With `guest_backing=anon` today's filter already skips them (the real
//! case C_pin in ../shared/data).

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::hugepage::vma_thp_gfp_mask;
use crate::machine::Machine;
use crate::rng::SimRng;
use crate::sysctl::ThpDefrag;
use crate::units::Order;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "vfio-pin",
    source: "seeds 000/001 (Khalid Aziz, mm/compaction: skip all pinned pages during scan, 2023)",
    summary: "a guest's memory long-term pinned and scattered; repeated huge page requests wake kcompactd and compact directly",
    ab_key: "skip_pinned",
    params: &[
        ("guest_pct", "50", "guest memory, percent of the machine (1..=90)"),
        ("guest_backing", "memfd|anon", "memfd: memfd/shmem-backed guest memory (the seed's), anon: anonymous"),
        ("rounds", "50", "rounds of huge page requests, 100 ms apart (1..=100000)"),
        ("burst", "8", "huge page requests per round (1..=1000)"),
    ],
    machine: &[],
    mem: "1G",
    run,
};

/// Runs the scenario.
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let guest_pct = p.num_in("guest_pct", 1, 90)?;
    let memfd = p.choice("guest_backing")? == "memfd";
    let rounds = p.num_in("rounds", 1, 100_000)?;
    let burst = p.num_in("burst", 1, 1000)?;
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let guest_pages = m.managed_pages() * guest_pct / 100;
    // The guest's memory is faulted in while the host's page cache grows alongside, then
    // the host's cache is dropped: the pinned guest pages end up scattered with holes
    // between them.
    let guest = m.new_file(true, true, false);
    let vm = m.new_process();
    let host = m.new_file(false, true, false);
    let mut pinned = 0u64;
    // Host pages between the guest's, as many as leave the guest's share of memory (one
    // each at 50 %), so that the guest spreads over all of memory at any size.
    let host_per_guest = (guest_pct.min(100 - guest_pct), guest_pct);
    let mut host_next = 0u64;
    for i in 0..guest_pages {
        let id = if memfd {
            m.file_add(guest, i, Order(0), false).ok()
        } else {
            m.fault_anon(vm, i, Order(0)).ok()
        };
        let Some(id) = id else { break };
        m.pin_folio(id, true);
        pinned += 1;
        // 0, 1 or 2 host pages, as many as `host_per_guest` on average.
        for _ in 0..2 {
            if rng.chance(host_per_guest.0, 2 * host_per_guest.1) {
                host_next += 1;
                let _ = m.file_add(host, host_next, Order(0), false);
            }
        }
    }
    // The host's cache fills the rest of memory too, so that once it is dropped every
    // free page lies between pinned ones.
    // At most as many pages as are free now: on a large machine reclaim starts in one zone
    // while another still has room (lowmem_reserve), and from then on more adding only
    // churns the cache.
    let high: u64 = m.zones.iter().map(|z| z.high_wmark_pages()).sum();
    let (mut i, end) = (host_next + 1, host_next + 1 + m.nr_free_pages());
    while i < end && m.nr_free_pages() > high + 64 && m.file_add(host, i, Order(0), false).is_ok() {
        i += 1;
    }
    m.drop_caches(1);
    let t = m.clock.now_ns + 1_000_000_000;
    m.advance_to(t);
    out.timeline.push(tick(m, "pinned", 0));
    let reclaimed_before = pages_reclaimed(m);
    let kcompactd_before: u64 = m.clock.cpu.kcompactd_ns.iter().sum();
    let direct_before = m.clock.cpu.direct_compact_ns;
    let (mut requested, mut got) = (0u64, 0u64);
    let defer = vma_thp_gfp_mask(ThpDefrag::Defer, false);
    let madvised = vma_thp_gfp_mask(ThpDefrag::Madvise, true);
    for r in 0..rounds {
        for b in 0..burst {
            let gfp: Gfp = if b % 2 == 0 { defer } else { madvised };
            requested += 1;
            // A huge page the host takes and keeps (THP-backed memory of its own tasks).
            if m.alloc_kernel_gfp(gfp, Order(9), 9).is_some() {
                got += 1;
            }
        }
        let t = m.clock.now_ns + 100_000_000;
        m.advance_to(t);
        if r % 8 == 7 {
            out.timeline.push(tick(m, "requests", got));
            progress(r + 1, rounds);
        }
    }
    out.timeline.push(tick(m, "requests", got));
    let kcompactd_ns = m.clock.cpu.kcompactd_ns.iter().sum::<u64>() - kcompactd_before;
    out.metrics = vec![
        ("pinned_pages", Metric::Int(pinned)),
        ("hugepages_allocated", Metric::Int(got)),
        ("success_pct", Metric::Float(pct(got, requested))),
        (
            "kcompactd_cpu_ms",
            Metric::Float((kcompactd_ns as f64 / 1e4).round() / 100.0),
        ),
        (
            "direct_compact_cpu_ms",
            Metric::Float(
                ((m.clock.cpu.direct_compact_ns - direct_before) as f64 / 1e4).round() / 100.0,
            ),
        ),
        (
            "pgmigrate_fail",
            Metric::Int(m.vmstat[VmEvent::PgmigrateFail]),
        ),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
    ];
    Ok(out)
}
