//! A snapshot (the layout of `kcompact capture`, ../shared/data/README.md) read into a
//! loaded model machine: its files read (zstd or plain page arrays) and parsed, then
//! [`kcompact::snapshot::load::load`]. The files come from a directory or from a capture
//! held in memory ([`Source`]). `predict`, `analyze`, `replay --snapshot`, `validate` and
//! the snapshot report load a directory through [`load_dir`]; `--live` loads a capture
//! through [`load_from`].

use crate::capture::{Array, Capture};
use crate::input;
use crate::ui::usage;
use kcompact::snapshot::check::{
    load_checked, parse_meta, parse_pageblock_order, Readings, ZoneDrift,
};
use kcompact::snapshot::load::{LoadReport, SnapshotFiles};
use kcompact::snapshot::slab::FsState;
use kcompact::snapshot::text::{
    pages_in_orders, parse_buddyinfo, parse_fs_state, parse_pagetypeinfo, parse_slabinfo,
    parse_zoneinfo, BuddyInfoRecord,
};
use kcompact::snapshot::SnapshotError;
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
    /// The drift the cross-checks accepted, per zone ([`kcompact::snapshot::check`]).
    pub drift: Vec<ZoneDrift>,
    /// The optional files the snapshot lacks and what that leaves out.
    pub missing: Vec<String>,
    /// buddyinfo and buddyinfo.post, when there.
    pub buddyinfo: [Option<Vec<BuddyInfoRecord>>; 2],
}

/// The optional files of a snapshot and what the loader does without them.
const OPTIONAL: &[(&str, &str)] = &[
    ("kpagecount", "page cache loads unmapped"),
    (
        "buddyinfo",
        "free pages not checked against the kernel's reading before the copy",
    ),
    (
        "buddyinfo.post",
        "free pages not checked against the kernel's reading after the copy",
    ),
    (
        "pagetypeinfo",
        "pageblock types inferred from the pages alone",
    ),
    ("zoneinfo.post", "per-CPU list limits from zoneinfo"),
    (
        "slabinfo",
        "the page cache's buffer heads and XArray nodes not freed with it",
    ),
    ("dentry-state", "drop_caches 2 frees no dentries or inodes"),
    ("inode-state", "drop_caches 2 frees no dentries or inodes"),
    ("sysctl_vm.txt", "the model's default tunables"),
    ("thp.txt", "the model's default THP settings"),
];

/// Where a snapshot's files are read from.
pub enum Source<'a> {
    /// A snapshot directory.
    Dir(&'a Path),
    /// A capture of this machine held in memory (`--live`): its files as read, the page
    /// arrays taken out as they are loaded.
    Memory(Box<Capture>),
}

impl Source<'_> {
    /// What error messages name: the directory, or `--live`.
    fn label(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Memory(_) => "--live".to_string(),
        }
    }

    /// Whether the file `name` (or, in a directory, `name.zst`) is there.
    fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => has_optional(d, name),
            Source::Memory(c) => {
                matches!(name, "kpageflags" | "kpagecount")
                    || c.texts.iter().any(|(n, _)| *n == name)
            }
        }
    }

    /// Whether the text file `name` itself is there (a directory's `name.zst` does not
    /// count: text files are read plain).
    fn has_text(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => input::present(&d.join(name)),
            Source::Memory(c) => c.texts.iter().any(|(n, _)| *n == name),
        }
    }

    /// The text file `name`.
    fn text(&self, name: &str) -> anyhow::Result<String> {
        match self {
            Source::Dir(d) => read_text(d, name),
            Source::Memory(c) => match c.texts.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => Ok(t.clone()),
                None => usage(format!("--live: {name} was not read")),
            },
        }
    }
}

/// A page array of a capture held in memory, taken out of it as words.
fn take_array(a: &mut Array, name: &str, pfns: u64) -> anyhow::Result<Vec<u64>> {
    let words = match std::mem::replace(a, Array::Words(Vec::new())) {
        Array::Words(w) => w,
        Array::Zstd(z) => {
            let mut dec = input::WordDecoder::with_capacity(pfns as usize);
            match zstd::decode_all(&z[..]) {
                Ok(b) => dec.push(&b),
                Err(e) => return usage(format!("--live: {name}: not zstd data: {e}")),
            }
            dec.words
        }
    };
    Ok(words)
}

/// A text file of the snapshot (a regular file, bounded).
fn read_text(dir: &Path, name: &str) -> anyhow::Result<String> {
    input::read_text(&dir.join(name))
}

/// `name.zst` (zstd) or `name` (plain), at most `max` bytes once inflated.
fn read_binary(dir: &Path, name: &str, max: u64, why: &str) -> anyhow::Result<Vec<u8>> {
    let zst = dir.join(format!("{name}.zst"));
    if input::present(&zst) {
        return input::inflate_capped(&zst, max, why, false);
    }
    let plain = dir.join(name);
    if !input::present(&plain) {
        return usage(format!(
            "{}: missing (neither {name}.zst nor {name})",
            plain.display()
        ));
    }
    input::read_capped(&plain, max, why)
}

/// A page array (`kpageflags`, `kpagecount`) read and decoded as it streams (zstd or
/// plain), at most the 8 bytes per pfn that `pfns` pfns need.
fn read_array(dir: &Path, name: &str, pfns: u64) -> anyhow::Result<Vec<u64>> {
    let why = format!("the 8 bytes per pfn of meta.txt's {pfns} pfns");
    let max = pfns.saturating_mul(8);
    let zst = dir.join(format!("{name}.zst"));
    let plain = dir.join(name);
    let w = if input::present(&zst) {
        input::read_words(&zst, true, max, &why)?
    } else if input::present(&plain) {
        input::read_words(&plain, false, max, &why)?
    } else {
        return usage(format!(
            "{}: missing (neither {name}.zst nor {name})",
            plain.display()
        ));
    };
    if !w.bytes.is_multiple_of(8) {
        let e = SnapshotError::Bytes {
            file: name.to_string(),
            offset: w.bytes - w.bytes % 8,
            msg: format!(
                "{} bytes is no whole number of 8-byte entries (truncated?)",
                w.bytes
            ),
        };
        return usage(format!("{}: {e}", dir.display()));
    }
    Ok(w.words)
}

/// Whether the optional file (or its `.zst`) is there; what is there must be readable.
fn has_optional(dir: &Path, name: &str) -> bool {
    input::present(&dir.join(name)) || input::present(&dir.join(format!("{name}.zst")))
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
    let meta = input::read_text(&dir.join("meta.txt")).ok()?;
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
fn read_capture_pfns(label: &str, text: &str) -> anyhow::Result<Vec<u64>> {
    let mut pfns = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match u64::from_str_radix(l.trim(), 16) {
            Ok(p) => pfns.push(p),
            Err(_) => {
                return usage(format!(
                    "{label}/{CAPTURE_PFNS}: line {}: {l:?} is not a hex pfn",
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
pub fn snapshot_config(src: &Source) -> anyhow::Result<VmConfig> {
    use kcompact::sysctl::{Scope, ThpDefrag, TUNABLES};
    let mut vm = VmConfig::default();
    if src.has_text("sysctl_vm.txt") {
        let text = src.text("sysctl_vm.txt")?;
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
                    "{}/sysctl_vm.txt: line {}: {e}",
                    src.label(),
                    i + 1
                ));
            }
        }
    }
    if src.has_text("thp.txt") {
        let text = src.text("thp.txt")?;
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
/// files; the files cross-checked against each other before and after
/// ([`kcompact::snapshot::check::load_checked`]). Bad input names the file.
pub fn load_dir(dir: &Path) -> anyhow::Result<Loaded> {
    if !dir.is_dir() {
        return usage(format!("{}: no such snapshot directory", dir.display()));
    }
    load_from(Source::Dir(dir))
}

/// Reads the snapshot `src` holds and loads it, as [`load_dir`] does a directory.
pub fn load_from(mut src: Source) -> anyhow::Result<Loaded> {
    let label = src.label();
    let named = |e: SnapshotError| usage(format!("{label}: {e}"));
    let meta_text = src.text("meta.txt")?;
    // A snapshot of the model maps its anonymous memory packed (kcompact::snapshot::image).
    let anon_packed = meta_text.lines().any(|l| l.trim() == "anon_layout=packed");
    let meta = match parse_meta(&meta_text) {
        Ok(m) => m,
        Err(e) => return named(e),
    };
    let zones = match parse_zoneinfo("zoneinfo", &src.text("zoneinfo")?) {
        Ok(z) => z,
        Err(e) => return named(e),
    };
    let pfns = meta.pfn_end - meta.pfn_start;
    // Two arrays of 8 bytes and the model's memory map per pfn.
    crate::ui::check_fits(
        &label,
        pfns.saturating_mul(16 + kcompact::memmap::BYTES_PER_PAGE as u64),
        16 + kcompact::memmap::BYTES_PER_PAGE as u64,
    )?;
    // Both page arrays at once, one on each core (each read is the same whichever runs
    // first; an error in kpageflags is reported before one in kpagecount).
    let with_counts = src.has("kpagecount");
    let (flags, counts) = match &mut src {
        Source::Dir(dir) => {
            let dir: &Path = dir;
            rayon::join(
                || read_array(dir, "kpageflags", pfns),
                || with_counts.then(|| read_array(dir, "kpagecount", pfns)),
            )
        }
        Source::Memory(c) => (
            take_array(&mut c.kpageflags, "kpageflags", pfns),
            Some(take_array(&mut c.kpagecount, "kpagecount", pfns)),
        ),
    };
    let flags = flags?;
    if flags.len() as u64 != pfns {
        return usage(format!(
            "{label}: kpageflags holds {} pfns but meta.txt says {}..{}",
            flags.len(),
            meta.pfn_start,
            meta.pfn_end
        ));
    }
    let mut missing = Vec::new();
    let mut optional = |name: &str| {
        let there = src.has(name);
        if !there {
            let why = OPTIONAL
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, w)| w);
            missing.push(format!("{name} ({why})"));
        }
        there
    };
    optional("kpagecount");
    let counts = counts.transpose()?;
    let (pagetypeinfo, pageblock_order) = if optional("pagetypeinfo") {
        let text = src.text("pagetypeinfo")?;
        match (
            parse_pagetypeinfo("pagetypeinfo", &text),
            parse_pageblock_order(&text),
        ) {
            (Ok(p), Ok(o)) => (Some(p), o),
            (Err(e), _) | (_, Err(e)) => return named(e),
        }
    } else {
        (None, None)
    };
    let mut buddyinfo: [Option<Vec<BuddyInfoRecord>>; 2] = [None, None];
    for (slot, name) in buddyinfo.iter_mut().zip(["buddyinfo", "buddyinfo.post"]) {
        if optional(name) {
            match parse_buddyinfo(name, &src.text(name)?) {
                Ok(r) => *slot = Some(r),
                Err(e) => return named(e),
            }
        }
    }
    // The capture's own memory, freed once it was done (kcompact capture lists it; older
    // snapshots have no such list, and nothing of the capture to give back).
    let capture_pfns = if src.has_text(CAPTURE_PFNS) {
        Some(read_capture_pfns(&label, &src.text(CAPTURE_PFNS)?)?)
    } else {
        None
    };
    let zones_post = if optional("zoneinfo.post") {
        match parse_zoneinfo("zoneinfo.post", &src.text("zoneinfo.post")?) {
            Ok(z) => Some(z),
            Err(e) => return named(e),
        }
    } else {
        None
    };
    optional("sysctl_vm.txt");
    optional("thp.txt");
    // The page cache's buffer heads and XArray nodes, which drop_caches and reclaim free
    // with the pages.
    let slabinfo = if optional("slabinfo") {
        match parse_slabinfo("slabinfo", &src.text("slabinfo")?) {
            Ok(s) => Some(s),
            Err(e) => return named(e),
        }
    } else {
        None
    };
    // The unused dentries and inodes drop_caches 2 frees.
    let mut fs_state = |name: &str| -> anyhow::Result<Option<(u64, u64)>> {
        if !optional(name) {
            return Ok(None);
        }
        match parse_fs_state(name, &src.text(name)?) {
            Ok(x) => Ok(Some(x)),
            Err(e) => usage(format!("{label}: {e}")),
        }
    };
    let fs_state = match (fs_state("dentry-state")?, fs_state("inode-state")?) {
        (Some(dentries), Some(inodes)) => Some(FsState { dentries, inodes }),
        _ => None,
    };
    // A snapshot of the model records each pageblock's type (kcompact::snapshot::image);
    // a kernel's has no such file, and is not told it lacks one.
    let pageblock_types = if let (Source::Dir(dir), true) = (&src, src.has("pageblocks")) {
        let blocks = meta.pfn_end.div_ceil(512);
        Some(read_binary(
            dir,
            "pageblocks",
            blocks,
            &format!("the byte per pageblock of meta.txt's {blocks} pageblocks"),
        )?)
    } else {
        None
    };
    let files = SnapshotFiles {
        pfn_start: meta.pfn_start,
        zoneinfo: &zones,
        kpageflags: &flags,
        kpagecount: counts.as_deref(),
        pagetypeinfo: pagetypeinfo.as_deref(),
        capture_pfns: capture_pfns.as_deref(),
        zoneinfo_post: zones_post.as_deref(),
        slabinfo: slabinfo.as_deref(),
        fs_state,
        anon_packed,
        pageblock_types: pageblock_types.as_deref(),
    };
    let readings = Readings {
        meta: Some(meta),
        buddyinfo: buddyinfo[0].as_deref(),
        buddyinfo_post: buddyinfo[1].as_deref(),
        pageblock_order,
    };
    let config = snapshot_config(&src)?;
    let (machine, report, drift) = match load_checked(&files, &readings, config) {
        Ok(x) => x,
        Err(e) => return named(e),
    };
    Ok(Loaded {
        machine,
        report,
        flags,
        pfn_start: meta.pfn_start,
        drift,
        missing,
        buddyinfo,
    })
}

/// The drift the cross-checks accepted and the optional files missing, as text lines.
pub fn check_lines(loaded: &Loaded) -> String {
    let mut o = format!(
        "snapshot checks: files agree; a live machine drifts while it is copied, accepted up to {}% of a zone's managed pages + {} pages outside buddyinfo's readings before / after the copy:\n",
        kcompact::snapshot::check::DRIFT_PCT,
        kcompact::snapshot::check::DRIFT_PAGES
    );
    let range = |r: (Option<u64>, Option<u64>)| match r {
        (Some(a), Some(b)) => format!("{}..{}", a.min(b), a.max(b)),
        (Some(a), None) | (None, Some(a)) => a.to_string(),
        (None, None) => "-".to_string(),
    };
    for d in &loaded.drift {
        o += &format!(
            "Node {}, zone {:>8}  free pages {} (buddyinfo {}, {} outside); in order>=9 blocks {} (buddyinfo {}, {} outside); allowed {}\n",
            d.node,
            d.zone,
            d.free_pages,
            range(d.buddyinfo_free),
            d.free_drift,
            d.huge_free_pages,
            range(d.buddyinfo_huge),
            d.huge_drift,
            d.allowed
        );
    }
    if !loaded.missing.is_empty() {
        o += &format!("missing optional files: {}\n", loaded.missing.join("; "));
    }
    o
}

/// The same as JSON.
pub fn check_json(loaded: &Loaded) -> serde_json::Value {
    json!({
        "drift_pct": kcompact::snapshot::check::DRIFT_PCT,
        "drift_pages": kcompact::snapshot::check::DRIFT_PAGES,
        "zones": loaded.drift.iter().map(|d| json!({
            "node": d.node, "zone": d.zone, "allowed": d.allowed,
            "free_pages": d.free_pages, "buddyinfo_free_pages": [d.buddyinfo_free.0, d.buddyinfo_free.1], "free_drift": d.free_drift,
            "huge_free_pages": d.huge_free_pages, "buddyinfo_huge_free_pages": [d.buddyinfo_huge.0, d.buddyinfo_huge.1], "huge_drift": d.huge_drift,
        })).collect::<Vec<_>>(),
        "missing": loaded.missing,
    })
}

/// The loaded free lists against the snapshot's buddyinfo, read before the page arrays,
/// and `buddyinfo.post`, read after them: per zone, free pages and free blocks apart
/// (summed over orders). A live machine moves while it is copied; the two readings bound
/// the drift.
pub fn buddyinfo_check(loaded: &Loaded) -> Vec<serde_json::Value> {
    let m = &loaded.machine;
    let mut out = Vec::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let model = z.free_by_order();
        let mut row = json!({"node": z.node.0, "zone": z.name(), "model_free_pages": pages_in_orders(&model)});
        for (key, r) in ["buddyinfo", "buddyinfo_post"]
            .iter()
            .zip(&loaded.buddyinfo)
        {
            let Some(r) = r else { continue };
            if let Some(b) = r
                .iter()
                .find(|b| b.node == z.node.0 as u32 && b.name == z.name())
            {
                let apart = (0..11).fold(0u64, |a, o| {
                    a.saturating_add(model[o].abs_diff(b.nr_free[o]))
                });
                row[format!("{key}_free_pages")] = json!(pages_in_orders(&b.nr_free));
                row[format!("{key}_blocks_apart")] = json!(apart);
            }
        }
        out.push(row);
    }
    out
}
