//! A snapshot directory (the layout of `kcompact capture`, ../shared/data/README.md) read
//! into a loaded model machine: its files read (zstd or plain page arrays) and parsed,
//! then [`kcompact::snapshot::load::load`]. `predict`, `analyze`, `replay --snapshot`,
//! `validate` and the snapshot report load through [`load_dir`].

use crate::ui::usage;
use anyhow::Context;
use kcompact::snapshot::load::{load, LoadReport, SnapshotFiles};
use kcompact::snapshot::text::{
    pages_in_orders, parse_buddyinfo, parse_pagetypeinfo, parse_slabinfo, parse_zoneinfo,
};
use kcompact::snapshot::u64_array;
use kcompact::{Machine, VmConfig};
use serde_json::json;
use std::path::Path;

/// The file listing the capturing process's own anonymous pages (hex pfns, one a line).
pub const CAPTURE_PFNS: &str = "capture_pfns.txt";

/// A loaded snapshot.
pub struct Loaded {
    /// The model machine as the snapshot shows it.
    pub machine: Machine,
    /// What loading did (pages placed, pageblock types reconciled, capture pages freed).
    pub report: LoadReport,
    /// `/proc/kpageflags`, from pfn `pfn_start`.
    pub flags: Vec<u64>,
    /// The first pfn of the page arrays.
    pub pfn_start: u64,
}

fn read_text(dir: &Path, name: &str) -> anyhow::Result<String> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(t),
        Err(e) => usage(format!("{}: {e}", p.display())),
    }
}

/// `name.zst` (zstd) or `name` (plain).
fn read_binary(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let zst = dir.join(format!("{name}.zst"));
    if zst.is_file() {
        let f = std::fs::File::open(&zst).with_context(|| zst.display().to_string())?;
        return match zstd::decode_all(f) {
            Ok(b) => Ok(b),
            Err(e) => usage(format!("{}: not zstd data: {e}", zst.display())),
        };
    }
    let plain = dir.join(name);
    match std::fs::read(&plain) {
        Ok(b) => Ok(b),
        Err(e) => usage(format!("{} (or {}.zst): {e}", plain.display(), name)),
    }
}

/// A page array (`kpageflags`, `kpagecount`) read and decoded.
fn read_array(dir: &Path, name: &str) -> anyhow::Result<Vec<u64>> {
    match u64_array(name, &read_binary(dir, name)?) {
        Ok(a) => Ok(a),
        Err(e) => usage(format!("{}: {e}", dir.display())),
    }
}

fn meta_f64(meta: &str, key: &str) -> Option<f64> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
}

/// When the snapshot in `dir` read its page flags, on the boot clock trace timestamps use
/// (`kcompact replay` skips what a trace recorded on a pfn before then). `kcompact capture`
/// records `uptime_start`; for an older snapshot whose `uptime` was read as the capture
/// ended, the start is that minus the capture's duration.
pub fn snapshot_read_window(dir: &Path) -> Option<kcompact::replay::SnapshotRead> {
    let meta = std::fs::read_to_string(dir.join("meta.txt")).ok()?;
    let (before, kpf) = (
        meta_f64(&meta, "t_text_before_s")?,
        meta_f64(&meta, "t_kpageflags_s")?,
    );
    let start = match meta_f64(&meta, "uptime_start") {
        Some(u) => u + before,
        None => meta_f64(&meta, "uptime")? - meta_f64(&meta, "t_total_s")? + before,
    };
    let ns = |s: f64| (s.max(0.0) * 1e9) as u64;
    Some(kcompact::replay::SnapshotRead {
        pfn_start: meta_value(&meta, "pfn_start")?,
        pfn_end: meta_value(&meta, "pfn_end")?,
        start_ns: ns(start),
        end_ns: ns(start + kpf),
    })
}

fn meta_value(meta: &str, key: &str) -> Option<u64> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
}

/// `capture_pfns.txt`: one hex pfn a line.
fn read_capture_pfns(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let text = read_text(dir, CAPTURE_PFNS)?;
    let mut pfns = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match u64::from_str_radix(l.trim(), 16) {
            Ok(p) => pfns.push(p),
            Err(_) => {
                return usage(format!(
                    "{}: line {}: {l:?} is not a hex pfn",
                    dir.join(CAPTURE_PFNS).display(),
                    i + 1
                ))
            }
        }
    }
    Ok(pfns)
}

/// The tunables of the machine the snapshot was taken on: `sysctl_vm.txt`'s values of the
/// run-time tunables that mirror a `/proc/sys/vm` file, and `thp.txt`'s THP `enabled` and
/// `defrag` (the bracketed word). Files that are missing leave the model's defaults.
pub fn snapshot_config(dir: &Path) -> anyhow::Result<VmConfig> {
    use kcompact::sysctl::{Scope, ThpDefrag, TUNABLES};
    let mut vm = VmConfig::default();
    if dir.join("sysctl_vm.txt").is_file() {
        let text = read_text(dir, "sysctl_vm.txt")?;
        for (i, l) in text.lines().enumerate() {
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let Some(t) = TUNABLES
                .iter()
                .find(|t| t.scope == Scope::Runtime && t.file == Some(k))
            else {
                continue;
            };
            if let Err(e) = vm.set_runtime(t.name, v) {
                return usage(format!(
                    "{}: line {}: {e}",
                    dir.join("sysctl_vm.txt").display(),
                    i + 1
                ));
            }
        }
    }
    if dir.join("thp.txt").is_file() {
        let text = read_text(dir, "thp.txt")?;
        let chosen = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.split('[').nth(1)?.split(']').next())
                .map(str::to_string)
        };
        if let Some(e) = chosen("enabled") {
            vm.thp_enabled = e != "never";
            vm.thp_madvise_only = e == "madvise";
        }
        if let Some(d) = chosen("defrag").and_then(|d| ThpDefrag::parse(&d)) {
            vm.thp_defrag = d;
        }
    }
    Ok(vm)
}

/// Reads the snapshot in `dir` and loads it: its zones, every page, the pageblock types
/// reconciled with its pagetypeinfo and the capture's own pages freed, when it has those
/// files. Bad input names the file.
pub fn load_dir(dir: &Path) -> anyhow::Result<Loaded> {
    if !dir.is_dir() {
        return usage(format!("{}: no such snapshot directory", dir.display()));
    }
    let meta = read_text(dir, "meta.txt")?;
    let Some(pfn_start) = meta_value(&meta, "pfn_start") else {
        return usage(format!(
            "{}: no pfn_start=N line",
            dir.join("meta.txt").display()
        ));
    };
    let zones = match parse_zoneinfo("zoneinfo", &read_text(dir, "zoneinfo")?) {
        Ok(z) => z,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    let flags = read_array(dir, "kpageflags")?;
    if let Some(end) = meta_value(&meta, "pfn_end") {
        if pfn_start.checked_add(flags.len() as u64) != Some(end) {
            return usage(format!(
                "{}: kpageflags holds {} pfns but meta.txt says {pfn_start}..{end}",
                dir.display(),
                flags.len()
            ));
        }
    }
    // kpagecount (the map count) is optional: without it page cache loads unmapped.
    let has_counts = dir.join("kpagecount.zst").is_file() || dir.join("kpagecount").is_file();
    let counts = if has_counts {
        Some(read_array(dir, "kpagecount")?)
    } else {
        None
    };
    let pagetypeinfo = if dir.join("pagetypeinfo").is_file() {
        match parse_pagetypeinfo("pagetypeinfo", &read_text(dir, "pagetypeinfo")?) {
            Ok(p) => Some(p),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    } else {
        None
    };
    // The capture's own memory, freed once it was done (kcompact capture lists it).
    let capture_pfns = if dir.join(CAPTURE_PFNS).is_file() {
        Some(read_capture_pfns(dir)?)
    } else {
        None
    };
    let zones_post = if dir.join("zoneinfo.post").is_file() {
        match parse_zoneinfo("zoneinfo.post", &read_text(dir, "zoneinfo.post")?) {
            Ok(z) => Some(z),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    } else {
        None
    };
    // slabinfo (optional): the page cache's buffer heads and XArray nodes, which
    // drop_caches and reclaim free with the pages.
    let slabinfo = if dir.join("slabinfo").is_file() {
        match parse_slabinfo("slabinfo", &read_text(dir, "slabinfo")?) {
            Ok(s) => Some(s),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    } else {
        None
    };
    let files = SnapshotFiles {
        pfn_start,
        zoneinfo: &zones,
        kpageflags: &flags,
        kpagecount: counts.as_deref(),
        pagetypeinfo: pagetypeinfo.as_deref(),
        capture_pfns: capture_pfns.as_deref(),
        zoneinfo_post: zones_post.as_deref(),
        slabinfo: slabinfo.as_deref(),
    };
    let config = snapshot_config(dir)?;
    let (machine, report) = match load(&files, config) {
        Ok(x) => x,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    Ok(Loaded {
        machine,
        report,
        flags,
        pfn_start,
    })
}
/// The loaded free lists against the snapshot's buddyinfo, read before the page arrays,
/// and `buddyinfo.post`, read after them: per zone, free pages and free blocks apart
/// (summed over orders). A live machine moves while it is copied; the two readings bound
/// the drift.
pub fn buddyinfo_check(dir: &Path, m: &Machine) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut readings = Vec::new();
    for name in ["buddyinfo", "buddyinfo.post"] {
        if !dir.join(name).is_file() {
            readings.push(None);
            continue;
        }
        match parse_buddyinfo(name, &read_text(dir, name)?) {
            Ok(r) => readings.push(Some(r)),
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
    }
    let mut out = Vec::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let model = z.free_by_order();
        let mut row = json!({"node": z.node.0, "zone": z.name(), "model_free_pages": pages_in_orders(&model)});
        for (key, r) in ["buddyinfo", "buddyinfo_post"].iter().zip(&readings) {
            let Some(r) = r else { continue };
            if let Some(b) = r
                .iter()
                .find(|b| b.node == z.node.0 as u32 && b.name == z.name())
            {
                let apart: u64 = (0..11).map(|o| model[o].abs_diff(b.nr_free[o])).sum();
                row[format!("{key}_free_pages")] = json!(pages_in_orders(&b.nr_free));
                row[format!("{key}_blocks_apart")] = json!(apart);
            }
        }
        out.push(row);
    }
    Ok(out)
}
