//! `kcompact validate --action hugepages=N`: the same fragmentation and snapshot as the
//! compaction validation, then `echo N > /proc/sys/vm/nr_hugepages` timed, the pool it
//! reached and the vmstat counters around it read right after, the pool given back
//! (`nr_hugepages` 0); only then the model grows the pool on the snapshot, and the two
//! are printed side by side: the pool, kswapd's and direct reclaim, direct compaction,
//! kcompactd, kswapd's runs and how they began, and how long the write took.

use super::{clean_start_and_fragment, get, pct, say, vmstat, write_sysctl};
use crate::capture::capture_to;
use crate::snapshot_dir::load_dir;
use crate::ui::{out, outln};
use std::path::Path;
use std::time::Instant;

/// The counters compared, as /proc/vmstat names them.
const KEYS: [&str; 9] = [
    "pgsteal_kswapd",
    "pgsteal_direct",
    "compact_stall",
    "compact_success",
    "compact_fail",
    "compact_daemon_wake",
    "pageoutrun",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
];

/// The path of the pool's size.
pub(super) const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// What one side did: the pool, the counters' deltas (in `KEYS` order) and the write's
/// duration in ms.
struct Side {
    pool: u64,
    deltas: Vec<u64>,
    ms: f64,
}

/// Runs the kernel's side and the model's and compares them; `check` bounds the pool's
/// error in percent.
pub(super) fn run(
    args: &crate::cli::ValidateArgs,
    n: u64,
    out_path: &Path,
    data: &Path,
    out_dir: Option<&mut crate::outdir::OutDir>,
) -> anyhow::Result<()> {
    let s1 = clean_start_and_fragment(args, data)?;
    say(&format!("settled in {s1} s; capturing before/"));
    let before_dir = out_path.join("before");
    capture_to(&before_dir, "validate-before", 3)?;
    say(&format!("writing {n} to {NR_HUGEPAGES}"));
    let m0 = managed_pages();
    let v0 = vmstat();
    let t = Instant::now();
    let wrote = write_sysctl(NR_HUGEPAGES, &n.to_string());
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let v1 = vmstat();
    let grown = managed_pages().saturating_sub(m0);
    let pool = std::fs::read_to_string(NR_HUGEPAGES)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    // The pool goes back before anything else, whatever happened.
    write_sysctl(NR_HUGEPAGES, "0")?;
    wrote?;
    let pool = pool.ok_or_else(|| anyhow::anyhow!("{NR_HUGEPAGES}: unreadable"))?;
    let kernel = Side {
        pool,
        deltas: KEYS
            .iter()
            .map(|k| get(&v1, k).saturating_sub(get(&v0, k)))
            .collect(),
        ms,
    };
    say(&format!(
        "the kernel's pool reached {pool} in {ms:.0} ms (given back); growing it in the model on before/"
    ));
    let mut m = load_dir(&before_dir)?.machine;
    let (t0, c0) = (m.clock.now_ns, m.vmstat.clone());
    let got = m.set_nr_hugepages(n);
    let pairs = |v: &kcompact::event::VmStat| -> Vec<(String, u64)> {
        v.pairs()
            .into_iter()
            .map(|(k, x)| (k.to_string(), x))
            .collect()
    };
    let (p0, p1) = (pairs(&c0), pairs(&m.vmstat));
    let model = Side {
        pool: got,
        deltas: KEYS
            .iter()
            .map(|k| get(&p1, k).saturating_sub(get(&p0, k)))
            .collect(),
        ms: (m.clock.now_ns - t0) as f64 / 1e6,
    };
    let mut text = table(n, &kernel, &model);
    if grown > 0 {
        // A machine that initialises its memory lazily (deferred_init=lazy here) hands
        // out never-used memory to a request that finds no block: the zone grows, which
        // no snapshot shows.
        text += &format!(
            "the kernel's zones grew by {grown} managed pages during the write (memory initialised lazily): \
             its pool came partly from memory the snapshot does not hold, so the two do not compare\n"
        );
    }
    let json = serde_json::json!({
        "action": format!("hugepages={n}"),
        "kernel": side_json(&kernel),
        "model": side_json(&model),
        "kernel_managed_pages_grown": grown,
    });
    // Kept only with --out (committed atomically by OutDir); otherwise the snapshot
    // directory is removed at the end.
    if let Some(d) = out_dir {
        d.adopt("before");
        d.add("validate.txt", text.as_bytes());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        out!("{text}");
    }
    if let Some(limit) = args.check {
        if grown > 0 {
            anyhow::bail!(
                "--check: the kernel initialised {grown} more pages during the write, so its pool is not comparable; touch the machine's memory once before validating"
            );
        }
        let err = 100.0 * (model.pool as f64 - kernel.pool as f64) / (kernel.pool.max(1) as f64);
        if err.abs() > limit {
            anyhow::bail!(
                "the model's pool ({}) is off the kernel's ({}) by {err:+.1} %, beyond --check {limit}",
                model.pool,
                kernel.pool
            );
        }
        say(&format!(
            "check passed: pool error {err:+.1} % within {limit} %"
        ));
    }
    Ok(())
}

fn side_json(s: &Side) -> serde_json::Value {
    let mut j = serde_json::json!({"nr_hugepages": s.pool, "action_ms": s.ms});
    for (k, v) in KEYS.iter().zip(&s.deltas) {
        j[*k] = serde_json::json!(v);
    }
    j
}

fn table(n: u64, k: &Side, m: &Side) -> String {
    let mut t = format!(
        "echo {n} > {NR_HUGEPAGES} (snapshot before/)\n{:<32} {:>12} {:>12} {:>9}\n",
        "", "kernel", "model", "error"
    );
    let mut row = |name: &str, kv: f64, mv: f64, digits: usize| {
        t += &format!(
            "{name:<32} {kv:>12.digits$} {mv:>12.digits$} {:>9}\n",
            pct(mv, kv)
        );
    };
    row("nr_hugepages", k.pool as f64, m.pool as f64, 0);
    for (i, key) in KEYS.iter().enumerate() {
        row(key, k.deltas[i] as f64, m.deltas[i] as f64, 0);
    }
    row("action_ms", k.ms, m.ms, 0);
    t
}

/// Managed pages of every zone, from /proc/zoneinfo.
fn managed_pages() -> u64 {
    std::fs::read_to_string("/proc/zoneinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("managed"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}
