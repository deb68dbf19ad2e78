//! A snapshot of this machine's physical memory in the layout of ../shared/data/README.md:
//! written to a directory for `analyze`, `predict` and `validate` ([`capture_to`]), or held
//! in memory and loaded at once for `--live` ([`capture`] with [`Keep::Words`]).
//!
//! The text files are read before the page arrays (`buddyinfo`, `vmstat`, `pagetypeinfo`,
//! `zoneinfo`, `meminfo`) and the moving ones again after (`.post`), so the drift during
//! the copy is bounded; `/proc/kpageflags` and `/proc/kpagecount` are copied over the
//! populated pfn range (zones with present pages), compressed with zstd as they are read
//! or kept as words. The process lists its own anonymous pages (`capture_pfns.txt`).
//! Nothing is written until everything is read; a directory's files are then written back
//! and their page cache dropped, so what the capture leaves in the machine is not mistaken
//! for the machine's state. Linux only, as root.

use crate::input::WordDecoder;
use crate::snapshot_dir::CAPTURE_PFNS;
use crate::ui::usage;
use anyhow::Context;
use indicatif::ProgressBar;
use kcompact::snapshot::text::parse_zoneinfo;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a capture measured.
pub struct Captured {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// Seconds spent copying /proc/kpageflags (read and compress; kpagecount is copied
    /// at the same time).
    pub kpageflags_s: f64,
    /// Raw bytes of each page array.
    pub raw_bytes: u64,
    /// Seconds for the whole capture.
    pub total_s: f64,
}

fn read_proc(path: &str) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) => usage(format!("{path}: {e} (capture needs Linux and root)")),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| p.display().to_string())
}

/// The populated pfn range: [min start_pfn, max start_pfn + spanned) over zones with
/// present pages, as capture.sh computes it.
pub fn pfn_range(zoneinfo: &str) -> anyhow::Result<(u64, u64)> {
    let zones = match parse_zoneinfo("/proc/zoneinfo", zoneinfo) {
        Ok(z) => z,
        Err(e) => return usage(format!("{e}")),
    };
    let populated: Vec<_> = zones.iter().filter(|z| z.present > 0).collect();
    let (Some(lo), Some(hi)) = (
        populated.iter().map(|z| z.start_pfn).min(),
        populated.iter().map(|z| z.start_pfn + z.spanned).max(),
    ) else {
        return usage("/proc/zoneinfo: no zone with present pages");
    };
    Ok((lo, hi))
}

/// The pfns of this process's own anonymous pages now (`/proc/self/maps` and
/// `/proc/self/pagemap`: present entries of private mappings that are not file pages).
/// Needs root for the pfns; empty where pagemap hides them.
pub fn own_anon_pfns() -> Vec<u64> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let Ok(mut pm) = std::fs::File::open("/proc/self/pagemap") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut entries = Vec::new();
    for line in maps.lines() {
        let mut w = line.split_whitespace();
        let (Some(range), Some(perms)) = (w.next(), w.next()) else {
            continue;
        };
        let path = line.split_whitespace().nth(5).unwrap_or("");
        if !perms.ends_with('p') || perms.starts_with("---") || path == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let Some(len) = b.checked_sub(a) else {
            continue;
        };
        let pages = (len / 4096) as usize;
        entries.resize(pages * 8, 0u8);
        if pm.seek(SeekFrom::Start(a / 4096 * 8)).is_err() || pm.read_exact(&mut entries).is_err() {
            continue;
        }
        for e in entries.chunks_exact(8) {
            let v = u64::from_le_bytes(e.try_into().expect("8 bytes"));
            // Bit 63: present; bit 61: a file page or shared anonymous memory.
            let pfn = v & ((1 << 55) - 1);
            if v >> 63 & 1 == 1 && v >> 61 & 1 == 0 && pfn != 0 {
                out.push(pfn);
            }
        }
    }
    out
}

/// How a capture keeps the page arrays.
#[derive(Clone, Copy)]
pub enum Keep {
    /// zstd streams at this level, for a snapshot directory.
    Zstd(i32),
    /// The words themselves, for a capture loaded at once (`--live`).
    Words,
}

/// A page array as a capture keeps it.
pub enum Array {
    /// Its zstd stream.
    Zstd(Vec<u8>),
    /// Its little-endian u64 words.
    Words(Vec<u64>),
}

/// A capture of this machine, held in memory: every file of the snapshot layout.
pub struct Capture {
    /// The text files by their names in the layout, in the order they were read.
    pub texts: Vec<(&'static str, String)>,
    /// `/proc/kpageflags` over the populated pfn range.
    pub kpageflags: Array,
    /// `/proc/kpagecount` over the same range.
    pub kpagecount: Array,
    /// Seconds spent copying /proc/kpageflags.
    pub kpageflags_s: f64,
    /// Raw bytes of each page array.
    pub raw_bytes: u64,
    /// Seconds for the whole capture.
    pub total_s: f64,
}

/// A page array copied and this process's own anonymous pfns at the end of the read.
type Copied = (Array, Vec<u64>);

/// Where a page array's bytes go as they are read.
enum Sink {
    Zstd(zstd::Encoder<'static, Vec<u8>>),
    Words(WordDecoder),
}

/// Copies `npfn` u64 entries of a /proc page array from `pfn_start` into memory, kept as
/// `keep` says, in 4 MiB reads. Nothing is written to a file while the arrays are read:
/// a file written during the read would be page cache the read may or may not see.
fn copy_array(
    src: &str,
    pfn_start: u64,
    npfn: u64,
    keep: Keep,
    bar: Option<&ProgressBar>,
) -> anyhow::Result<Copied> {
    let mut f = match std::fs::File::open(src) {
        Ok(f) => f,
        Err(e) => return usage(format!("{src}: {e} (capture needs Linux and root)")),
    };
    f.seek(SeekFrom::Start(pfn_start * 8))
        .with_context(|| src.to_string())?;
    let mut sink = match keep {
        Keep::Zstd(level) => Sink::Zstd(zstd::Encoder::new(Vec::new(), level)?),
        Keep::Words => Sink::Words(WordDecoder::with_capacity(npfn as usize)),
    };
    let mut left = npfn * 8;
    let mut buf = vec![0u8; 4 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..want]).with_context(|| src.to_string())?;
        if n == 0 {
            return usage(format!(
                "{src}: ended {left} bytes early (pfn range from /proc/zoneinfo)"
            ));
        }
        match &mut sink {
            Sink::Zstd(enc) => enc.write_all(&buf[..n])?,
            Sink::Words(dec) => dec.push(&buf[..n]),
        }
        left -= n as u64;
        if let Some(b) = bar {
            b.inc(n as u64);
        }
    }
    // This process's own memory (the read buffers, the copies) while it is all there.
    let own = own_anon_pfns();
    let array = match sink {
        Sink::Zstd(enc) => Array::Zstd(enc.finish()?),
        Sink::Words(dec) => Array::Words(dec.words),
    };
    Ok((array, own))
}

/// Captures this machine into memory: the text files read before the page arrays, the
/// arrays, the moving text files again after, the settings, meta.txt (labelled `label`).
pub fn capture(label: &str, keep: Keep) -> anyhow::Result<Capture> {
    let t0 = Instant::now();
    // The boot-clock time of t0, the clock trace timestamps use: with it a trace recorded
    // across the capture knows when each pfn's flags were read.
    let uptime_start = one_line("/proc/uptime")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let mut texts = Vec::new();
    for (src, name) in [
        ("/proc/buddyinfo", "buddyinfo"),
        ("/proc/vmstat", "vmstat"),
        ("/proc/pagetypeinfo", "pagetypeinfo"),
        ("/proc/zoneinfo", "zoneinfo"),
        ("/proc/meminfo", "meminfo"),
    ] {
        texts.push((name, read_proc(src)?));
    }
    let t1 = t0.elapsed().as_secs_f64();
    let zoneinfo = texts
        .iter()
        .find(|(n, _)| *n == "zoneinfo")
        .map_or("", |(_, t)| t.as_str());
    let (pfn_start, pfn_end) = pfn_range(zoneinfo)?;
    let npfn = pfn_end - pfn_start;
    let bar = crate::ui::progress_bar(
        2 * npfn * 8,
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} page arrays",
    );
    let [((kpageflags, mut own), t2), ((kpagecount, own2), t3)] =
        copy_arrays(pfn_start, npfn, keep, t0, bar.as_ref())?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Freed when the capture is done: `capture_pfns.txt` lets a loader give them back.
    own.extend(own2);
    own.sort_unstable();
    own.dedup();
    texts.push((
        CAPTURE_PFNS,
        own.iter().map(|p| format!("{p:x}\n")).collect(),
    ));
    let t3 = t3.max(t2);
    for (src, name) in [
        ("/proc/buddyinfo", "buddyinfo.post"),
        ("/proc/vmstat", "vmstat.post"),
        ("/proc/zoneinfo", "zoneinfo.post"),
    ] {
        texts.push((name, read_proc(src)?));
    }
    let t4 = t0.elapsed().as_secs_f64();
    texts.extend(settings());
    let zst_len = |a: &Array| match a {
        Array::Zstd(z) => Some(z.len()),
        Array::Words(_) => None,
    };
    let meta = meta(
        label,
        &uptime_start,
        (pfn_start, pfn_end),
        [t1, t2, t3, t4],
        (zst_len(&kpageflags), zst_len(&kpagecount)),
    );
    texts.push(("meta.txt", meta));
    Ok(Capture {
        texts,
        kpageflags,
        kpagecount,
        kpageflags_s: t2 - t1,
        raw_bytes: npfn * 8,
        total_s: t4,
    })
}

/// Captures this machine into `dir` (created) with `label`; zstd at `level`. Every file is
/// written once everything is read.
pub fn capture_to(dir: &Path, label: &str, level: i32) -> anyhow::Result<Captured> {
    let c = capture(label, Keep::Zstd(level))?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for (name, a) in [
        ("kpageflags.zst", &c.kpageflags),
        ("kpagecount.zst", &c.kpagecount),
    ] {
        let Array::Zstd(data) = a else {
            anyhow::bail!("{name}: the capture kept no zstd stream");
        };
        let p = dir.join(name);
        std::fs::write(&p, data).with_context(|| p.display().to_string())?;
    }
    for (name, text) in &c.texts {
        write(dir, name, text)?;
    }
    release_own_files(dir)?;
    Ok(Captured {
        dir: dir.to_path_buf(),
        kpageflags_s: c.kpageflags_s,
        raw_bytes: c.raw_bytes,
        total_s: c.total_s,
    })
}

/// Copies both page arrays at once, one thread each: the kernel's read is the floor, and
/// copying them together narrows the window in which the machine moves between them.
/// Returns kpageflags' and kpagecount's copies, each with the second since `t0` it ended.
fn copy_arrays(
    pfn_start: u64,
    npfn: u64,
    keep: Keep,
    t0: Instant,
    bar: Option<&ProgressBar>,
) -> anyhow::Result<[(Copied, f64); 2]> {
    let copied: Vec<(anyhow::Result<Copied>, f64)> = std::thread::scope(|s| {
        let readers: Vec<_> = ["kpageflags", "kpagecount"]
            .into_iter()
            .map(|name| {
                s.spawn(move || {
                    let src = format!("/proc/{name}");
                    let r = copy_array(&src, pfn_start, npfn, keep, bar);
                    (r, t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|h| h.join().expect("page array reader"))
            .collect()
    });
    let mut copied = copied.into_iter();
    let (flags, counts) = (
        copied.next().expect("flags"),
        copied.next().expect("counts"),
    );
    Ok([(flags.0?, flags.1), (counts.0?, counts.1)])
}

/// meta.txt: the label, the kernel, the pfn range, the times (`uptime_start`, /proc/uptime
/// at the start; then seconds since the start: the text files read, kpageflags and
/// kpagecount copied, the whole capture) and the sizes.
fn meta(
    label: &str,
    uptime_start: &str,
    (pfn_start, pfn_end): (u64, u64),
    [t1, t2, t3, t4]: [f64; 4],
    (flags_zst, count_zst): (Option<usize>, Option<usize>),
) -> String {
    let mut meta = vec![
        format!("label={label}"),
        format!("uname_r={}", one_line("/proc/sys/kernel/osrelease")),
        format!("cmdline={}", one_line("/proc/cmdline")),
        format!(
            "uptime={}",
            one_line("/proc/uptime")
                .split_whitespace()
                .next()
                .unwrap_or("")
        ),
        format!("uptime_start={uptime_start}"),
        format!("pfn_start={pfn_start}"),
        format!("pfn_end={pfn_end}"),
        "page_size=4096".to_string(),
        format!("t_text_before_s={t1:.9}"),
        format!("t_kpageflags_s={:.9}", t2 - t1),
        format!("t_kpagecount_s={:.9}", t3 - t1),
        format!("t_text_after_s={:.9}", t4 - t3),
        format!("t_total_s={t4:.9}"),
        format!("raw_bytes_each={}", (pfn_end - pfn_start) * 8),
        "captured_by=kcompact capture".to_string(),
    ];
    // The zstd streams' sizes, when the arrays were compressed.
    if let (Some(f), Some(c)) = (flags_zst, count_zst) {
        meta.push(format!("kpageflags_zst_bytes={f}"));
        meta.push(format!("kpagecount_zst_bytes={c}"));
    }
    meta.join("\n") + "\n"
}

/// Writes the snapshot's own files back and drops them from the page cache. Left
/// behind, they are page cache the snapshot does not show (most of it is written after
/// the page arrays were read), and dirty: a dirty large folio keeps its buffer heads, so
/// compaction can neither migrate it without a free page of its order nor split it, and
/// `compact_memory` ends the zone `contended` there (seen live: an order-1 folio of these
/// files ended Normal at migrate_pfn 0x149600 where the model, seeing free pages, ran on).
fn release_own_files(dir: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let p = e?.path();
        if !p.is_file() {
            continue;
        }
        let f = std::fs::File::open(&p).with_context(|| p.display().to_string())?;
        f.sync_all().with_context(|| p.display().to_string())?;
        drop_page_cache(&f);
    }
    Ok(())
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole of a written-back file: its clean
/// page cache folios are freed. Advice only: a failure leaves them cached, nothing worse.
#[cfg(target_os = "linux")]
fn drop_page_cache(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise takes only integers and touches no memory of this process;
    // the descriptor stays open for the call, borrowed from `f`.
    let _ = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

#[cfg(not(target_os = "linux"))]
fn drop_page_cache(_: &std::fs::File) {}

/// The machine's settings beside the snapshot: slabinfo (when readable), the file
/// systems' dentry-state and inode-state, the vm sysctls, the memory modules' parameters,
/// THP and hugetlb.
fn settings() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/proc/slabinfo") {
        out.push(("slabinfo", t));
    }
    // The unused dentries and inodes, which drop_caches 2 frees.
    for name in ["dentry-state", "inode-state"] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/sys/fs/{name}")) {
            out.push((name, t));
        }
    }
    out.push(("sysctl_vm.txt", sysctl_vm()));
    out.push(("modparams.txt", modparams()));
    out.push(("thp.txt", thp()));
    out.push(("hugepages.txt", hugepages()));
    out
}

fn one_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().replace('\n', " "))
        .unwrap_or_default()
}

/// Every readable /proc/sys/vm file as `name=value` (the action files left out).
fn sysctl_vm() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/proc/sys/vm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for n in names {
        if matches!(
            n.as_str(),
            "compact_memory" | "drop_caches" | "stat_refresh"
        ) {
            continue;
        }
        if let Ok(v) = std::fs::read_to_string(format!("/proc/sys/vm/{n}")) {
            out += &format!("{n}={}\n", v.trim_end().replace(['\n', '\t'], " "));
        }
    }
    out
}

fn modparams() -> String {
    let mut out = String::new();
    for m in [
        "page_reporting",
        "page_evacuate",
        "compaction",
        "page_alloc",
    ] {
        let Ok(d) = std::fs::read_dir(format!("/sys/module/{m}/parameters")) else {
            continue;
        };
        let mut names: Vec<_> = d.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            if let Ok(v) = std::fs::read_to_string(&p) {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                out += &format!("{m}.{n}={}\n", v.trim_end());
            }
        }
    }
    out
}

fn thp() -> String {
    ["enabled", "defrag", "khugepaged/defrag"]
        .iter()
        .map(|f| {
            format!(
                "{f}={}\n",
                one_line(&format!("/sys/kernel/mm/transparent_hugepage/{f}"))
            )
        })
        .collect()
}

fn hugepages() -> String {
    let mut out = String::new();
    let Ok(d) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return out;
    };
    let mut sizes: Vec<_> = d.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    sizes.sort();
    for s in sizes {
        let Ok(files) = std::fs::read_dir(&s) else {
            continue;
        };
        let mut files: Vec<_> = files.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(v) = std::fs::read_to_string(&f) {
                out += &format!("{}:{}\n", f.display(), v.trim_end());
            }
        }
    }
    out
}
