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
//! (free pages and free order ≥ 9 blocks; not part of `--check`: the model keeps slab and
//! has no per-CPU lists, docs/results.md). It cleans up after itself (files deleted,
//! caches dropped, trace instance removed) and changes no setting. Linux, root.

use crate::capture::capture_to;
use crate::snapshot_dir::load_dir;
use crate::ui::usage;
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

/// Pages on the per-CPU lists of every zone: the sum of zoneinfo's pageset `count:`
/// lines. They are free but off the buddy lists (the model has no per-CPU lists).
fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
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

/// `kcompact validate`.
pub fn validate(args: crate::cli::ValidateArgs) -> anyhow::Result<()> {
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
    let r = run(&args, &out, &data);
    // Clean up whatever happened: the files, their page cache.
    let _ = std::fs::remove_dir_all(&data);
    let _ = write_sysctl("/proc/sys/vm/drop_caches", "3");
    if args.out.is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
    r
}

fn run(args: &crate::cli::ValidateArgs, out: &Path, data: &Path) -> anyhow::Result<()> {
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
    let s1 = settle(90);
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
    let v0 = vmstat();
    // The kernel's state before: buddyinfo re-read right after the page arrays
    // (`buddyinfo.post`), the reading closest to what the model loaded and to the write.
    let b0 = orders_of(&std::fs::read_to_string(before_dir.join("buddyinfo.post"))?)?;
    let t = Instant::now();
    write_sysctl("/proc/sys/vm/compact_memory", "1")?;
    let kernel_ms = t.elapsed().as_secs_f64() * 1e3;
    let b1 = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    let v1 = vmstat();
    std::fs::write(
        out.join("buddyinfo_post_immediate"),
        std::fs::read_to_string("/proc/buddyinfo")?,
    )?;
    let kernel_ends = match &trace {
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
    let s2 = settle(90);
    let after = capture_to(&out.join("after"), "validate-after", 3)?;
    // The ring buffer's pages go only now, so the settled reading is not helped by them.
    drop(trace);
    let b2 = orders_of(&std::fs::read_to_string(after.dir.join("buddyinfo"))?)?;
    // Then what an operator does next: `sync; echo 3 > drop_caches` on the compacted
    // machine, against the model's drop_caches on a snapshot taken just before it.
    say("sync; capturing before_drop/; writing 3 to /proc/sys/vm/drop_caches");
    let _ = std::process::Command::new("sync").status();
    let drop_dir = out.join("before_drop");
    capture_to(&drop_dir, "validate-before-drop", 3)?;
    let d0 = orders_of(&std::fs::read_to_string(drop_dir.join("buddyinfo.post"))?)?;
    write_sysctl("/proc/sys/vm/drop_caches", "3")?;
    let d1 = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    let s3 = settle(60);
    let d2 = orders_of(&std::fs::read_to_string("/proc/buddyinfo")?)?;
    let pcp_dropped = pcp_pages(&std::fs::read_to_string("/proc/zoneinfo")?);
    say(&format!("settled in {s3} s"));
    say("predicting compact_memory on before/ in the model");
    let t = Instant::now();
    let loaded = load_dir(&before_dir)?;
    let load_s = t.elapsed().as_secs_f64();
    let mut model = loaded.machine;
    let model_before = model.clone();
    let t = Instant::now();
    let model_ends = model.compact_memory();
    let model_s = t.elapsed().as_secs_f64();
    let (mb, ma) = (sum_orders(&model_before), sum_orders(&model));
    let mut text = String::new();
    text += &format!(
        "kcompact validate: {} GiB fragmented; kernel compact_memory {kernel_ms:.0} ms, model {:.0} ms (load {:.0} ms); settled {s2} s after\n\n",
        args.gib,
        model_s * 1e3,
        load_s * 1e3
    );
    let compacted = Readings {
        kernel: [b0, b1, b2],
        model: [mb, ma],
    };
    text += "free blocks per order (all zones)\n";
    text += &compacted.table();
    let (kg, kg2, mg) = compacted.o9_gains();
    text += &format!("\n{}\n", compacted.o9_line());
    // Between the two readings the machine moves on its own: free page reporting hands
    // back blocks it held right after (the first reading undercounts), and anything freed
    // while settling merges into blocks compaction did not make (the second overcounts).
    let file_after = std::fs::read_to_string(after.dir.join("vmstat"))
        .map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("nr_file_pages "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .unwrap_or(0);
    text += &format!(
        "while settling: free pages {:+}, page cache {:+} pages; the kernel's gain lies between the two readings\n",
        pages_of(&b2) - pages_of(&b1),
        file_after as i64 - get(&v1, "nr_file_pages") as i64
    );
    let pcp = |dir: &Path, name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map(|t| pcp_pages(&t))
            .unwrap_or(0)
    };
    let (pcp_before, pcp_after) = (
        pcp(&before_dir, "zoneinfo.post"),
        pcp(&after.dir, "zoneinfo"),
    );
    text += &format!(
        "free pages on the kernel's per-CPU lists (not in buddyinfo; the model has none): {pcp_before} before, {pcp_after} settled after\n\n"
    );
    text += &format!(
        "{:<26}{:>14}{:>14}{:>10}\n",
        "counter", "kernel", "model", "error"
    );
    let mut json_counters = serde_json::Map::new();
    for k in [
        "compact_migrate_scanned",
        "compact_free_scanned",
        "compact_isolated",
        "pgmigrate_success",
        "pgmigrate_fail",
    ] {
        let kernel = get(&v1, k) - get(&v0, k);
        let m = model
            .vmstat
            .pairs()
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| *v)
            .unwrap_or(0)
            - model_before
                .vmstat
                .pairs()
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .unwrap_or(0);
        text += &format!(
            "{k:<26}{kernel:>14}{m:>14}{:>10}\n",
            pct(m as f64, kernel as f64)
        );
        json_counters.insert(
            k.to_string(),
            serde_json::json!({"kernel": kernel, "model": m}),
        );
    }
    text += "\nhow each zone's compaction ended (mm_compaction_end)\n";
    let mut json_ends = Vec::new();
    for e in &model_ends {
        let z = model.zone(e.zone);
        let (start, end) = (z.zone_start_pfn.0.max(1), z.end_pfn().0);
        let kernel = kernel_ends
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
        json_ends.push(serde_json::json!({
            "zone": z.name(),
            "model": {"status": e.status.name(), "migrate_pfn": e.migrate_pfn.0, "free_pfn": e.free_pfn.0},
            "kernel": kernel.map(|k| serde_json::json!({"status": k.status, "migrate_pfn": k.migrate_pfn, "free_pfn": k.free_pfn})),
        }));
    }
    // drop_caches: the model loads the snapshot taken just before the write (the compacted
    // model's memory goes first: it would be in that snapshot's machine otherwise).
    drop((model, model_before));
    let mut dm = load_dir(&drop_dir)?.machine;
    let dmb = sum_orders(&dm);
    let dropped = dm.drop_caches(3);
    let dma = sum_orders(&dm);
    let dropped_caches = Readings {
        kernel: [d0, d1, d2],
        model: [dmb, dma],
    };
    text += "\nthen `sync; echo 3 > /proc/sys/vm/drop_caches` (snapshot before_drop/)\n";
    text += &dropped_caches.table();
    let (kf, kf2, mf) = (
        pages_of(&d1) - pages_of(&d0),
        pages_of(&d2) - pages_of(&d0),
        pages_of(&dma) - pages_of(&dmb),
    );
    let (kd, kd2, md) = dropped_caches.o9_gains();
    text += &format!(
        "free pages: kernel {kf:+} right after, {kf2:+} settled; model {mf:+} ({dropped} page cache pages dropped; the model keeps slab); error {} (vs settled {})\n",
        pct(mf as f64, kf as f64),
        pct(mf as f64, kf2 as f64)
    );
    text += &dropped_caches.o9_line();
    text += &format!(
        "free pages on the kernel's per-CPU lists: {} before, {pcp_dropped} settled after\n",
        pcp(&drop_dir, "zoneinfo.post")
    );
    std::fs::write(out.join("validate.txt"), &text)?;
    let verdict = args.check.map(|limit| {
        // Off the interval the two readings bound, relative to its nearer end.
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
    });
    if args.json {
        let j = serde_json::json!({
            "gib": args.gib,
            "kernel_compact_memory_ms": kernel_ms,
            "model_compact_memory_ms": model_s * 1e3,
            "free_by_order": {"kernel_before": b0, "kernel_after": b1, "kernel_settled": b2, "model_before": mb, "model_after": ma},
            "order9_gain": {"kernel": kg, "kernel_settled": kg2, "model": mg},
            "counters": json_counters,
            "kernel_pcp_pages": {"before": pcp_before, "settled": pcp_after},
            "compaction": json_ends,
            "drop_caches": {
                "free_by_order": {"kernel_before": d0, "kernel_after": d1, "kernel_settled": d2, "model_before": dmb, "model_after": dma},
                "free_pages_gain": {"kernel": kf, "kernel_settled": kf2, "model": mf},
                "order9_gain": {"kernel": kd, "kernel_settled": kd2, "model": md},
                "model_pages_dropped": dropped,
                "kernel_pcp_pages": {"before": pcp(&drop_dir, "zoneinfo.post"), "settled": pcp_dropped},
            },
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print!("{text}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcp_pages_sums_every_pageset_count() {
        let zoneinfo = "Node 0, zone   Normal\n  pagesets\n    cpu: 0\n              count:    6295\n              high:     6295\n    cpu: 1\n              count:    5208\n              high:     6295\n  node_unreclaimable:  0\n";
        assert_eq!(pcp_pages(zoneinfo), 6295 + 5208);
        assert_eq!(pcp_pages("Node 0, zone DMA\n  pages free 3\n"), 0);
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
