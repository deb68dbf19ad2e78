//! `kcompact validate`: the model against the real kernel on this machine.
//!
//! Fragments memory the way seed 003 and ../shared/data/scripts/fragment.sh do (files of
//! 512 KiB written by two writers, eight files open each, 4 KiB at a time round-robin, so
//! consecutive pages belong to different files; then every second file deleted), lets the
//! machine settle, captures a snapshot, writes `/proc/sys/vm/compact_memory` with the
//! compaction tracepoints on, reads what the kernel did, captures again, and only then
//! predicts `compact_memory` on the first snapshot in the model (so the model's own memory
//! never lands in the machine it measures). It prints predicted against actual: free
//! blocks per order, free order ≥ 9 blocks and the gain, `compact_migrate_scanned`,
//! `compact_free_scanned`, `compact_isolated`, `pgmigrate_success`, and how each zone's
//! compaction ended (status, where the scanners stopped). Then it does what an operator
//! does next — `sync; echo 3 > /proc/sys/vm/drop_caches` on the compacted machine, with a
//! snapshot just before — and prints the model's drop_caches on that snapshot against it
//! (free pages and free order ≥ 9 blocks; not part of `--check`: the model keeps the
//! dentry and inode caches `drop_slab()` prunes, docs/results.md). It cleans up after itself (files deleted,
//! caches dropped, trace instance removed) and changes no setting. Linux, root.
//! `--action hugepages=N` validates the hugetlb pool instead (`validate/hugepages.rs`).

mod hugepages;

use crate::capture::capture_to;
use crate::snapshot_dir::load_dir;
use crate::ui::{out, outln, usage};
use anyhow::Context;
use kcompact::snapshot::text::parse_buddyinfo;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WRITERS: usize = 2;
const OPEN_PER_WRITER: usize = 8;
const FILE_PAGES: usize = 128;

fn say(msg: &str) {
    eprintln!("validate: {msg}");
}

fn write_sysctl(path: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value} to {path}"))
}

/// The seed-003 pattern: `gib` GiB of 512 KiB files written page-interleaved by two
/// writers, synced, every second file (per writer) deleted. Returns the files kept.
fn fragment(dir: &Path, gib: u64) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let files_per_writer = (gib << 30) as usize / (4096 * FILE_PAGES) / WRITERS;
    let page = vec![0x5au8; 4096];
    let results: Vec<anyhow::Result<Vec<PathBuf>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let page = &page;
                s.spawn(move || -> anyhow::Result<Vec<PathBuf>> {
                    let mut paths = Vec::new();
                    let mut k = 0;
                    while k < files_per_writer {
                        let batch: Vec<PathBuf> = (k..(k + OPEN_PER_WRITER).min(files_per_writer))
                            .map(|i| dir.join(format!("w{w:03}_f{i:07}")))
                            .collect();
                        let mut open: Vec<std::fs::File> = batch
                            .iter()
                            .map(|p| {
                                std::fs::File::create(p).with_context(|| p.display().to_string())
                            })
                            .collect::<anyhow::Result<_>>()?;
                        for _ in 0..FILE_PAGES {
                            for f in open.iter_mut() {
                                f.write_all(page)?;
                            }
                        }
                        k += batch.len();
                        paths.extend(batch);
                    }
                    Ok(paths)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    let mut kept = Vec::new();
    let mut all = Vec::new();
    for r in results {
        all.push(r?);
    }
    // sync(1): the files' pages become clean page cache.
    let status = std::process::Command::new("sync").status();
    if !status.map(|s| s.success()).unwrap_or(false) {
        say("sync failed; dirty pages may remain");
    }
    for paths in all {
        for (k, p) in paths.into_iter().enumerate() {
            if k % 2 == 0 {
                std::fs::remove_file(&p).with_context(|| p.display().to_string())?;
            } else {
                kept.push(p);
            }
        }
    }
    Ok(kept)
}

/// Free pages of every zone summed from /proc/zoneinfo.
fn free_pages() -> u64 {
    std::fs::read_to_string("/proc/zoneinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pages free"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// Waits until the machine is quiet: per-cpu lists folded (a read of
/// /proc/sys/vm/stat_refresh), and the free page count and the free blocks of order 0
/// and of order ≥ 9 (buddyinfo) steady over four one-second samples — merging moves the
/// blocks between orders without changing the total — at most `max_s` seconds.
fn settle(max_s: u64) -> u64 {
    let t0 = Instant::now();
    let mut stable = 0;
    let mut last: Option<[u64; 3]> = None;
    while t0.elapsed().as_secs() < max_s && stable < 4 {
        let _ = std::fs::read_to_string("/proc/sys/vm/stat_refresh");
        let b = std::fs::read_to_string("/proc/buddyinfo")
            .ok()
            .and_then(|t| orders_of(&t).ok())
            .unwrap_or([0; 11]);
        let now = [free_pages(), b[0], o9(&b)];
        let steady = |a: u64, b: u64, tol: u64| a.abs_diff(b) <= tol.max(a / 200);
        stable = match last {
            Some(l)
                if steady(now[0], l[0], 1024)
                    && steady(now[1], l[1], 1024)
                    && steady(now[2], l[2], 2) =>
            {
                stable + 1
            }
            _ => 0,
        };
        last = Some(now);
        std::thread::sleep(Duration::from_secs(1));
    }
    t0.elapsed().as_secs()
}

fn vmstat() -> Vec<(String, u64)> {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn get(v: &[(String, u64)], k: &str) -> u64 {
    v.iter().find(|(n, _)| n == k).map(|(_, x)| *x).unwrap_or(0)
}

/// Free blocks per order summed over zones, from buddyinfo text.
fn orders_of(text: &str) -> anyhow::Result<[u64; 11]> {
    let rows = match parse_buddyinfo("buddyinfo", text) {
        Ok(r) => r,
        Err(e) => return usage(format!("{e}")),
    };
    let mut out = [0u64; 11];
    for r in rows {
        for (o, n) in r.nr_free.iter().enumerate() {
            out[o] += n;
        }
    }
    Ok(out)
}

/// Free blocks per order over every zone of a model machine.
fn sum_orders(m: &kcompact::Machine) -> [u64; 11] {
    let mut o = [0u64; 11];
    for z in &m.zones {
        for (i, n) in z.free_by_order().iter().enumerate() {
            o[i] += n;
        }
    }
    o
}

/// The five readings of free blocks per order around one action: the kernel's before,
/// right after and settled, the model's before and after.
struct Readings {
    kernel: [[u64; 11]; 3],
    model: [[u64; 11]; 2],
}

impl Readings {
    /// The table of free blocks per order, a row per reading.
    fn table(&self) -> String {
        let mut text = format!("{:<28}", "");
        for o in 0..11 {
            text += &format!("{o:>9}");
        }
        text += "\n";
        let [k0, k1, k2] = self.kernel;
        let [m0, m1] = self.model;
        for (name, c) in [
            ("kernel before (.post)", k0),
            ("model before (loaded)", m0),
            ("kernel right after", k1),
            ("kernel settled after", k2),
            ("model after", m1),
        ] {
            text += &format!("{name:<28}");
            for n in c {
                text += &format!("{n:>9}");
            }
            text += "\n";
        }
        text
    }

    /// The gain in free order >= 9 blocks: kernel right after, kernel settled, model.
    fn o9_gains(&self) -> (i64, i64, i64) {
        let [k0, k1, k2] = self.kernel.map(|c| o9(&c) as i64);
        let [m0, m1] = self.model.map(|c| o9(&c) as i64);
        (k1 - k0, k2 - k0, m1 - m0)
    }

    /// The line comparing the gains in free order >= 9 blocks.
    fn o9_line(&self) -> String {
        let [k0, k1, k2] = self.kernel.map(|c| o9(&c));
        let [m0, m1] = self.model.map(|c| o9(&c));
        let (kg, kg2, mg) = self.o9_gains();
        format!(
            "free order>=9 blocks: kernel {k0} -> {k1} right after ({kg:+}), {k2} settled ({kg2:+}); model {m0} -> {m1} ({mg:+}); gain error {} (vs settled {})\n",
            pct(mg as f64, kg as f64),
            pct(mg as f64, kg2 as f64)
        )
    }
}

/// Pages on each CPU's lists, over every zone: zoneinfo's `count:` lines, CPU by CPU (the
/// `cpu:` line before each). They are free but off the buddy lists.
fn pcp_per_cpu(zoneinfo: &str) -> Vec<u64> {
    let mut per = Vec::new();
    let mut cpu = 0usize;
    for l in zoneinfo.lines().map(str::trim) {
        if let Some(c) = l.strip_prefix("cpu:").and_then(|v| v.trim().parse().ok()) {
            cpu = c;
        } else if let Some(n) = l
            .strip_prefix("count:")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            if per.len() <= cpu {
                per.resize(cpu + 1, 0);
            }
            per[cpu] += n;
        }
    }
    per
}

/// Pages on each CPU's lists of the model, over every zone.
fn model_pcp_per_cpu(m: &kcompact::Machine) -> Vec<u64> {
    (0..m.nr_cpus() as usize)
        .map(|c| {
            m.zones
                .iter()
                .filter_map(|z| z.pageset.get(c))
                .map(|p| p.count)
                .sum()
        })
        .collect()
}

/// `total (cpu0 cpu1 ...)`.
fn per_cpu_text(v: &[u64]) -> String {
    let each: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("{} ({})", v.iter().sum::<u64>(), each.join(" "))
}

/// The per-CPU lists, kernel beside model: before the action and after it (the kernel's
/// settled reading), total and per CPU.
fn pcp_text(kernel: (&[u64], &[u64]), model: (&kcompact::Machine, &kcompact::Machine)) -> String {
    format!(
        "free pages on the per-CPU lists (not in buddyinfo), total (per CPU): kernel {} before, {} settled after; model {} before, {} after\n",
        per_cpu_text(kernel.0),
        per_cpu_text(kernel.1),
        per_cpu_text(&model_pcp_per_cpu(model.0)),
        per_cpu_text(&model_pcp_per_cpu(model.1))
    )
}

/// Free pages in a buddyinfo-like count per order, signed for differences.
fn pages_of(c: &[u64; 11]) -> i64 {
    kcompact::snapshot::text::pages_in_orders(c) as i64
}

fn o9(c: &[u64; 11]) -> u64 {
    c[9] + 2 * c[10]
}

fn pct(model: f64, kernel: f64) -> String {
    if kernel == 0.0 {
        return "—".into();
    }
    format!("{:+.1} %", 100.0 * (model - kernel) / kernel)
}

/// `--action`: `compact` (then drop_caches, the default) or `hugepages=N` (the pool's size).
fn parse_validate_action(a: &str) -> anyhow::Result<Option<u64>> {
    match a {
        "compact" => Ok(None),
        _ => match a.strip_prefix("hugepages=").map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            _ => usage(format!(
                "--action {a:?}: valid actions are compact, hugepages=N (N > 0)"
            )),
        },
    }
}

/// `kcompact validate`.
pub fn validate(args: crate::cli::ValidateArgs) -> anyhow::Result<()> {
    let action = parse_validate_action(&args.action)?;
    if std::fs::File::open("/proc/kpageflags").is_err() {
        return usage("validate needs Linux and root: /proc/kpageflags is not readable");
    }
    if std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/compact_memory")
        .is_err()
    {
        return usage("validate needs root: /proc/sys/vm/compact_memory is not writable");
    }
    if !(1..=8).contains(&args.gib) {
        return usage(format!(
            "--gib {}: 1..=8 (page cache is kept under 12 GiB)",
            args.gib
        ));
    }
    // Snapshots go beside the files, on the disk-backed file system: on a tmpfs they
    // would stay in memory as shmem while the kernel compacts.
    let out = args.out.clone().unwrap_or_else(|| {
        args.dir.join(format!(
            "kcompact-validate-snapshots-{}",
            std::process::id()
        ))
    });
    let data = args
        .dir
        .join(format!("kcompact-validate-{}", std::process::id()));
    // A given --out is checked (no snapshot, nothing else's) and locked before the work.
    let mut out_dir = args
        .out
        .as_deref()
        .map(|d| crate::outdir::OutDir::prepare(d, false))
        .transpose()?;
    let r = match action {
        None => run(&args, &out, &data, out_dir.as_mut()),
        Some(n) => hugepages::run(&args, n, &out, &data, out_dir.as_mut()),
    };
    let r = match out_dir {
        Some(d) if r.is_ok() => d.commit("validate", "validate.txt"),
        _ => r,
    };
    // Clean up whatever happened: the files, their page cache.
    let _ = std::fs::remove_dir_all(&data);
    let _ = write_sysctl("/proc/sys/vm/drop_caches", "3");
    let _ = write_sysctl(hugepages::NR_HUGEPAGES, "0");
    if args.out.is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
    r
}

/// What the kernel did on this machine, measured before the model runs.
struct Kernel {
    /// The snapshot before `compact_memory`, after it (settled), and before `drop_caches`.
    before_dir: PathBuf,
    after_dir: PathBuf,
    drop_dir: PathBuf,
    /// /proc/vmstat right before and right after `compact_memory`.
    vmstat_before: Vec<(String, u64)>,
    vmstat_after: Vec<(String, u64)>,
    /// Free blocks per order around `compact_memory`: before (`buddyinfo.post`), right
    /// after, settled.
    compacted: [[u64; 11]; 3],
    /// The same around `drop_caches`.
    dropped: [[u64; 11]; 3],
    /// How long the write to `compact_memory` took, ms.
    compact_ms: f64,
    /// Seconds the machine took to settle after `compact_memory`.
    settled_s: u64,
    /// Each zone's traced compaction end (empty without a trace).
    ends: Vec<kcompact::replay::parse::TracedEnd>,
    /// Free pages on the per-CPU lists, settled after `drop_caches`.
    pcp_dropped: Vec<u64>,
}

fn run(
    args: &crate::cli::ValidateArgs,
    out: &Path,
    data: &Path,
    out_dir: Option<&mut crate::outdir::OutDir>,
) -> anyhow::Result<()> {
    let k = measure_kernel(args, out, data)?;
    say("predicting compact_memory on before/ in the model");
    let compaction = compare_compaction(args, &k)?;
    let mut text = compaction.text;
    let (drop_text, drop_json) = compare_drop_caches(&k)?;
    text += &drop_text;
    match out_dir {
        Some(d) => {
            // The snapshots and the trace the measurement wrote there.
            let mut names: Vec<String> = std::fs::read_dir(out)?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for n in names {
                d.adopt(&n);
            }
            d.add("validate.txt", text.as_bytes());
        }
        None => std::fs::write(out.join("validate.txt"), &text)?,
    }
    let (kg, kg2, mg) = compaction.o9_gains;
    let verdict = args.check.map(|limit| check_gain(kg, kg2, mg, limit));
    if args.json {
        let mut j = compaction.json;
        j["drop_caches"] = drop_json;
        outln!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        out!("{text}");
    }
    if let Some((err, limit, ok)) = verdict {
        if !ok {
            anyhow::bail!(
                "the model's gain in free order>=9 blocks is off the kernel's (between the reading right after and the settled one) by {err:+.1} %, beyond --check {limit}"
            );
        }
        say(&format!(
            "check passed: gain error {err:+.1} % (off the kernel's two readings) within {limit} %"
        ));
    }
    Ok(())
}

/// `--check`: the model's gain `mg` off the interval the kernel's two readings `kg`, `kg2`
/// bound, in percent of its nearer end (0 inside it); with the limit and whether it holds.
fn check_gain(kg: i64, kg2: i64, mg: i64, limit: f64) -> (f64, f64, bool) {
    let (lo, hi) = (kg.min(kg2), kg.max(kg2));
    let err = if (lo..=hi).contains(&mg) {
        0.0
    } else {
        let end = if mg < lo { lo } else { hi };
        if end <= 0 {
            f64::INFINITY
        } else {
            100.0 * (mg - end) as f64 / end as f64
        }
    };
    (err, limit, err.abs() <= limit)
}

/// Everything on the real machine, in order: a clean start, the fragmentation, a snapshot,
/// A clean start (sync, caches dropped, settled), the fragmentation, and the machine
/// settled again; returns the seconds the last settling took.
fn clean_start_and_fragment(args: &crate::cli::ValidateArgs, data: &Path) -> anyhow::Result<u64> {
    say("clean start: sync, drop caches, settle");
    let _ = std::process::Command::new("sync").status();
    write_sysctl("/proc/sys/vm/drop_caches", "3")?;
    let s0 = settle(60);
    say(&format!(
        "settled in {s0} s; fragmenting: {} GiB of 512 KiB files, 2 writers x 8 open, 4 KiB round-robin, every second file deleted",
        args.gib
    ));
    let t = Instant::now();
    let kept = fragment(data, args.gib)?;
    say(&format!(
        "{} files kept after {:.1} s; settling",
        kept.len(),
        t.elapsed().as_secs_f64()
    ));
    Ok(settle(90))
}

/// `compact_memory` under a compaction trace, a settled snapshot, then `drop_caches` with a
/// snapshot just before it.
fn measure_kernel(
    args: &crate::cli::ValidateArgs,
    out: &Path,
    data: &Path,
) -> anyhow::Result<Kernel> {
    let s1 = clean_start_and_fragment(args, data)?;
    // The kernel's compaction events during the write, in a private tracefs instance set
    // up before the capture (its ring buffer is kernel memory the snapshot then holds).
    let trace = match crate::tracefs::Instance::start(
        &["compaction", "migrate/mm_migrate_pages"],
        (2 * args.gib).max(8),
    ) {
        Ok(t) => Some(t),
        Err(e) => {
            say(&format!("no kernel trace of the compaction: {e:#}"));
            None
        }
    };
    say(&format!("settled in {s1} s; capturing before/"));
    let before_dir = out.join("before");
    let cap = capture_to(&before_dir, "validate-before", 3)?;
    say(&format!(
        "captured in {:.2} s (kpageflags {:.0} MB/s); writing 1 to /proc/sys/vm/compact_memory",
        cap.total_s,
        cap.raw_bytes as f64 / 1e6 / cap.kpageflags_s.max(1e-9)
    ));
    // The model runs only once the kernel is done: loading it here would put hundreds of
    // MB of this process's memory into the machine between the capture and the write.
    let c = kernel_compact(out, &before_dir, trace.as_ref())?;
    let settled_s = settle(90);
    let after = capture_to(&out.join("after"), "validate-after", 3)?;
    // The ring buffer's pages go only now, so the settled reading is not helped by them.
    drop(trace);
    let b2 = orders_of(&std::fs::read_to_string(after.dir.join("buddyinfo"))?)?;
    let (drop_dir, dropped, pcp_dropped) = kernel_drop_caches(out)?;
    Ok(Kernel {
        before_dir,
        after_dir: after.dir,
        drop_dir,
        vmstat_before: c.vmstat_before,
        vmstat_after: c.vmstat_after,
        compacted: [c.before, c.after, b2],
        dropped,
        compact_ms: c.ms,
        settled_s,
        ends: c.ends,
        pcp_dropped,
    })
}

/// The kernel's `compact_memory`, read right after the write.
struct KernelCompact {
    vmstat_before: Vec<(String, u64)>,
    vmstat_after: Vec<(String, u64)>,
    before: [u64; 11],
    after: [u64; 11],
    ms: f64,
    ends: Vec<kcompact::replay::parse::TracedEnd>,
}

/// Writes `compact_memory` and reads what it did: vmstat and free blocks around it, and,
/// with a trace, each zone's end (the trace is kept in `out/trace.txt.zst`).
fn kernel_compact(
    out: &Path,
    before_dir: &Path,
    trace: Option<&crate::tracefs::Instance>,
) -> anyhow::Result<KernelCompact> {
    let vmstat_before = vmstat();
    // The kernel's state before: buddyinfo re-read right after the page arrays
    // (`buddyinfo.post`), the reading closest to what the model loaded and to the write.
    let before = orders_of(&std::fs::read_to_string(before_dir.join("buddyinfo.post"))?)?;
    let t = Instant::now();
    write_sysctl("/proc/sys/vm/compact_memory", "1")?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let after = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    let vmstat_after = vmstat();
    std::fs::write(
        out.join("buddyinfo_post_immediate"),
        std::fs::read_to_string("/proc/buddyinfo")?,
    )?;
    let ends = match trace {
        Some(t) => {
            t.stop()?;
            let (lost, _) = t.lost_events()?;
            let path = out.join("trace.txt.zst");
            t.save_text(&path, 3)?;
            let text = String::from_utf8_lossy(&zstd::decode_all(std::fs::File::open(&path)?)?)
                .into_owned();
            if lost > 0 {
                say(&format!(
                    "{lost} trace events lost; the kernel's zone ends may be incomplete"
                ));
            }
            kcompact::replay::parse::parse_trace(&text).compaction_ends()
        }
        None => Vec::new(),
    };
    Ok(KernelCompact {
        vmstat_before,
        vmstat_after,
        before,
        after,
        ms,
        ends,
    })
}

/// What an operator does next: `sync; echo 3 > drop_caches` on the compacted machine,
/// with a snapshot just before it. Returns the snapshot, the free blocks per order before
/// (`buddyinfo.post`), right after and settled, and each CPU's free pages settled.
fn kernel_drop_caches(out: &Path) -> anyhow::Result<(PathBuf, [[u64; 11]; 3], Vec<u64>)> {
    say("sync; capturing before_drop/; writing 3 to /proc/sys/vm/drop_caches");
    let _ = std::process::Command::new("sync").status();
    let drop_dir = out.join("before_drop");
    capture_to(&drop_dir, "validate-before-drop", 3)?;
    let d0 = orders_of(&std::fs::read_to_string(drop_dir.join("buddyinfo.post"))?)?;
    write_sysctl("/proc/sys/vm/drop_caches", "3")?;
    let d1 = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    // The kernel's state right after the drop, page by page, to set beside the model's.
    capture_to(&out.join("after_drop"), "validate-after-drop", 3)?;
    let s3 = settle(60);
    let d2 = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    let pcp_dropped = pcp_per_cpu(&std::fs::read_to_string("/proc/zoneinfo")?);
    say(&format!("settled in {s3} s"));
    Ok((drop_dir, [d0, d1, d2], pcp_dropped))
}

/// Pages on each CPU's lists from the zoneinfo file `name` of `dir` (none without).
fn pcp_in(dir: &Path, name: &str) -> Vec<u64> {
    std::fs::read_to_string(dir.join(name))
        .map(|t| pcp_per_cpu(&t))
        .unwrap_or_default()
}

/// The compaction half of the comparison: its text, the JSON without `drop_caches`, and
/// the gains in free order >= 9 blocks (kernel right after, kernel settled, model).
struct CompactionComparison {
    text: String,
    json: serde_json::Value,
    o9_gains: (i64, i64, i64),
}

/// Loads `before/`, runs the model's `compact_memory` and sets it against the kernel's:
/// free blocks per order, the gain in order >= 9 blocks, the counters, each zone's end.
fn compare_compaction(
    args: &crate::cli::ValidateArgs,
    k: &Kernel,
) -> anyhow::Result<CompactionComparison> {
    let t = Instant::now();
    let loaded = load_dir(&k.before_dir)?;
    let load_s = t.elapsed().as_secs_f64();
    let mut model = loaded.machine;
    let model_before = model.clone();
    let t = Instant::now();
    let model_ends = model.compact_memory();
    let model_s = t.elapsed().as_secs_f64();
    let (mb, ma) = (sum_orders(&model_before), sum_orders(&model));
    let [b0, b1, b2] = k.compacted;
    let mut text = format!(
        "kcompact validate: {} GiB fragmented; kernel compact_memory {:.0} ms, model {:.0} ms (load {:.0} ms); settled {} s after\n\n",
        args.gib,
        k.compact_ms,
        model_s * 1e3,
        load_s * 1e3,
        k.settled_s
    );
    let compacted = Readings {
        kernel: k.compacted,
        model: [mb, ma],
    };
    text += "free blocks per order (all zones)\n";
    text += &compacted.table();
    let (kg, kg2, mg) = compacted.o9_gains();
    text += &format!("\n{}\n", compacted.o9_line());
    let pcp = (
        pcp_in(&k.before_dir, "zoneinfo.post"),
        pcp_in(&k.after_dir, "zoneinfo"),
    );
    text += &settling_text(k);
    text += &pcp_text((&pcp.0, &pcp.1), (&model_before, &model));
    text += "\n";
    let (counters, json_counters) = counters_table(k, &model_before, &model);
    text += &counters;
    let (ends, json_ends) = ends_table(k, &model, &model_ends);
    text += &ends;
    let json = serde_json::json!({
        "gib": args.gib,
        "kernel_compact_memory_ms": k.compact_ms,
        "model_compact_memory_ms": model_s * 1e3,
        "free_by_order": {"kernel_before": b0, "kernel_after": b1, "kernel_settled": b2, "model_before": mb, "model_after": ma},
        "order9_gain": {"kernel": kg, "kernel_settled": kg2, "model": mg},
        "counters": json_counters,
        "kernel_pcp_pages": {"before": pcp.0, "settled": pcp.1},
        "model_pcp_pages": {"before": model_pcp_per_cpu(&model_before), "after": model_pcp_per_cpu(&model)},
        "compaction": json_ends,
    });
    Ok(CompactionComparison {
        text,
        json,
        o9_gains: (kg, kg2, mg),
    })
}

/// How the machine moved while it settled after `compact_memory`.
fn settling_text(k: &Kernel) -> String {
    let [_, b1, b2] = k.compacted;
    // Between the two readings the machine moves on its own: free page reporting hands
    // back blocks it held right after (the first reading undercounts), and anything freed
    // while settling merges into blocks compaction did not make (the second overcounts).
    let file_after = std::fs::read_to_string(k.after_dir.join("vmstat"))
        .map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("nr_file_pages "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .unwrap_or(0);
    format!(
        "while settling: free pages {:+}, page cache {:+} pages; the kernel's gain lies between the two readings\n",
        pages_of(&b2) - pages_of(&b1),
        file_after as i64 - get(&k.vmstat_after, "nr_file_pages") as i64
    )
}

/// The compaction counters, kernel against model, as text and JSON.
fn counters_table(
    k: &Kernel,
    model_before: &kcompact::Machine,
    model: &kcompact::Machine,
) -> (String, serde_json::Map<String, serde_json::Value>) {
    let counter = |m: &kcompact::Machine, name: &str| {
        m.vmstat
            .pairs()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    let mut text = format!(
        "{:<26}{:>14}{:>14}{:>10}\n",
        "counter", "kernel", "model", "error"
    );
    let mut json = serde_json::Map::new();
    for c in [
        "compact_migrate_scanned",
        "compact_free_scanned",
        "compact_isolated",
        "pgmigrate_success",
        "pgmigrate_fail",
    ] {
        let kernel = get(&k.vmstat_after, c) - get(&k.vmstat_before, c);
        let m = counter(model, c) - counter(model_before, c);
        text += &format!(
            "{c:<26}{kernel:>14}{m:>14}{:>10}\n",
            pct(m as f64, kernel as f64)
        );
        json.insert(
            c.to_string(),
            serde_json::json!({"kernel": kernel, "model": m}),
        );
    }
    (text, json)
}

/// Each zone's compaction end, the model's and the kernel's traced one, as text and JSON.
fn ends_table(
    k: &Kernel,
    model: &kcompact::Machine,
    model_ends: &[kcompact::compaction::CompactEnd],
) -> (String, Vec<serde_json::Value>) {
    let mut text = String::from("\nhow each zone's compaction ended (mm_compaction_end)\n");
    let mut json = Vec::new();
    for e in model_ends {
        let z = model.zone(e.zone);
        let (start, end) = (z.zone_start_pfn.0.max(1), z.end_pfn().0);
        let kernel = k
            .ends
            .iter()
            .find(|k| k.zone_start == start && k.zone_end == end);
        text += &format!(
            "  {:<7} model  {:<10} migrate_pfn={:#x} free_pfn={:#x}\n",
            z.name(),
            e.status.name(),
            e.migrate_pfn.0,
            e.free_pfn.0
        );
        match kernel {
            Some(k) => {
                text += &format!(
                    "  {:<7} kernel {:<10} migrate_pfn={:#x} free_pfn={:#x}\n",
                    "", k.status, k.migrate_pfn, k.free_pfn
                );
            }
            None => text += &format!("  {:<7} kernel (not traced)\n", ""),
        }
        json.push(serde_json::json!({
            "zone": z.name(),
            "model": {"status": e.status.name(), "migrate_pfn": e.migrate_pfn.0, "free_pfn": e.free_pfn.0},
            "kernel": kernel.map(|k| serde_json::json!({"status": k.status, "migrate_pfn": k.migrate_pfn, "free_pfn": k.free_pfn})),
        }));
    }
    (text, json)
}

/// The model's `drop_caches` on the snapshot taken just before the kernel's, against it:
/// free blocks per order, free pages and order >= 9 blocks gained; as text and JSON.
fn compare_drop_caches(k: &Kernel) -> anyhow::Result<(String, serde_json::Value)> {
    let mut dm = load_dir(&k.drop_dir)?.machine;
    let dm_before = dm.clone();
    let dmb = sum_orders(&dm);
    let slab0 = dm.cache_slab_pages();
    let dropped = dm.drop_caches(3);
    let slab_freed = slab0 - dm.cache_slab_pages();
    let dma = sum_orders(&dm);
    let [d0, d1, d2] = k.dropped;
    let readings = Readings {
        kernel: k.dropped,
        model: [dmb, dma],
    };
    let mut text =
        String::from("\nthen `sync; echo 3 > /proc/sys/vm/drop_caches` (snapshot before_drop/)\n");
    text += &readings.table();
    let (kf, kf2, mf) = (
        pages_of(&d1) - pages_of(&d0),
        pages_of(&d2) - pages_of(&d0),
        pages_of(&dma) - pages_of(&dmb),
    );
    let (kd, kd2, md) = readings.o9_gains();
    text += &format!(
        "free pages: kernel {kf:+} right after, {kf2:+} settled; model {mf:+} ({dropped} page cache pages dropped, {slab_freed} slab pages of their buffer heads and XArray nodes freed; the model keeps the dentry and inode caches); error {} (vs settled {})\n",
        pct(mf as f64, kf as f64),
        pct(mf as f64, kf2 as f64)
    );
    text += &readings.o9_line();
    let pcp_before = pcp_in(&k.drop_dir, "zoneinfo.post");
    text += &pcp_text((&pcp_before, &k.pcp_dropped), (&dm_before, &dm));
    let json = serde_json::json!({
        "free_by_order": {"kernel_before": d0, "kernel_after": d1, "kernel_settled": d2, "model_before": dmb, "model_after": dma},
        "free_pages_gain": {"kernel": kf, "kernel_settled": kf2, "model": mf},
        "order9_gain": {"kernel": kd, "kernel_settled": kd2, "model": md},
        "model_pages_dropped": dropped,
        "model_slab_pages_freed": slab_freed,
        "kernel_pcp_pages": {"before": pcp_before, "settled": k.pcp_dropped},
        "model_pcp_pages": {"before": model_pcp_per_cpu(&dm_before), "after": model_pcp_per_cpu(&dm)},
    });
    Ok((text, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcp_per_cpu_sums_each_cpus_pageset_counts_over_the_zones() {
        let zone = |name: &str, a: u64, b: u64| {
            format!("Node 0, zone {name}\n  pagesets\n    cpu: 0\n              count:    {a}\n              high:     6295\n    cpu: 1\n              count:    {b}\n              high:     6295\n  node_unreclaimable:  0\n")
        };
        let zoneinfo = zone("DMA32", 7, 9) + &zone("Normal", 6295, 5208);
        assert_eq!(pcp_per_cpu(&zoneinfo), vec![6295 + 7, 5208 + 9]);
        assert_eq!(per_cpu_text(&pcp_per_cpu(&zoneinfo)), "11519 (6302 5217)");
        assert!(pcp_per_cpu("Node 0, zone DMA\n  pages free 3\n").is_empty());
    }

    #[test]
    fn check_gain_is_zero_between_the_kernels_readings_and_relative_to_the_nearer_end_outside() {
        assert_eq!(check_gain(10, 20, 15, 5.0), (0.0, 5.0, true));
        assert_eq!(check_gain(20, 10, 10, 0.0), (0.0, 0.0, true));
        // Above the interval: off its upper end, 22 against 20 is +10 %.
        assert_eq!(check_gain(10, 20, 22, 5.0), (10.0, 5.0, false));
        // Below it: off its lower end, 9 against 10 is -10 %.
        assert_eq!(check_gain(10, 20, 9, 10.0), (-10.0, 10.0, true));
        // A nearer end at or below zero leaves no relative error.
        let (err, _, ok) = check_gain(-5, 0, 3, 1000.0);
        assert!(err.is_infinite() && !ok);
    }

    #[test]
    fn readings_gain_counts_an_order_10_block_twice() {
        let mut before = [0u64; 11];
        before[9] = 1;
        let mut after = before;
        after[10] = 2;
        let r = Readings {
            kernel: [before, after, after],
            model: [before, after],
        };
        assert_eq!(r.o9_gains(), (4, 4, 4));
        assert!(r.o9_line().contains("kernel 1 -> 5 right after (+4)"));
        assert_eq!(r.table().lines().count(), 6);
    }
}
