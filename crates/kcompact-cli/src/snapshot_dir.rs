//! A snapshot directory (the layout of `kcompact capture`, ../shared/data/README.md) read
//! into a loaded model machine: its files read (zstd or plain page arrays) and parsed,
//! then [`kcompact::snapshot::load::load`]. `predict`, `analyze`, `replay --snapshot`,
//! `validate` and the snapshot report load through [`load_dir`].

use crate::ui::usage;
use anyhow::Context;
use kcompact::snapshot::load::{load, LoadReport, SnapshotFiles};
use kcompact::snapshot::text::{
    pages_in_orders, parse_buddyinfo, parse_pagetypeinfo, parse_zoneinfo,
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
    let files = SnapshotFiles {
        pfn_start,
        zoneinfo: &zones,
        kpageflags: &flags,
        kpagecount: counts.as_deref(),
        pagetypeinfo: pagetypeinfo.as_deref(),
        capture_pfns: capture_pfns.as_deref(),
    };
    let (machine, report) = match load(&files, VmConfig::default()) {
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
