//! `kcompact capture` on this machine (root and /proc/kpageflags needed; skipped with a
//! printed reason elsewhere): the snapshot has the layout of ../shared/data and loads.

mod common;

use common::kcompact;

fn can_capture() -> Option<&'static str> {
    if std::fs::File::open("/proc/kpageflags").is_err() {
        return Some("/proc/kpageflags is not readable (needs Linux and root)");
    }
    None
}

/// The command's stdout, after checking it exited 0 (its stderr in the message if not).
fn stdout_ok(o: &std::process::Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An empty temporary directory named for this test run.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kcompact-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn capture_writes_the_shared_layout_and_the_snapshot_loads() {
    if let Some(why) = can_capture() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = fresh_dir("capture");
    let d = dir.to_str().unwrap();
    let o = kcompact(&["capture", d, "--label", "test"]);
    let out = stdout_ok(&o);
    assert!(out.contains("MB/s"), "{out}");
    // The snapshot's own files leave no page cache behind (written back, then dropped):
    // util-linux's fincore counts the pages still cached. (On tmpfs the files are the
    // page cache and cannot be dropped.)
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    match std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "PAGES"])
        .arg(dir.join("kpageflags.zst"))
        .arg(dir.join("meta.txt"))
        .output()
    {
        _ if matches!(fs.as_str(), "tmpfs" | "ramfs") => {
            eprintln!("not checked: {} is on {fs}", dir.display())
        }
        Ok(f) if f.status.success() => {
            let pages: u64 = String::from_utf8_lossy(&f.stdout)
                .split_whitespace()
                .map(|n| n.parse::<u64>().expect("a page count"))
                .sum();
            assert_eq!(pages, 0, "page cache pages of the snapshot's files");
        }
        _ => eprintln!("not checked: fincore (util-linux) is not here"),
    }
    for f in [
        "buddyinfo",
        "buddyinfo.post",
        "vmstat",
        "vmstat.post",
        "zoneinfo",
        "zoneinfo.post",
        "pagetypeinfo",
        "meminfo",
        "kpageflags.zst",
        "kpagecount.zst",
        "sysctl_vm.txt",
        "thp.txt",
        "hugepages.txt",
        "meta.txt",
    ] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    let meta = std::fs::read_to_string(dir.join("meta.txt")).unwrap();
    let get = |k: &str| -> u64 {
        meta.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in meta.txt:\n{meta}"))
    };
    let (start, end) = (get("pfn_start"), get("pfn_end"));
    assert!(end > start);
    assert_eq!(get("raw_bytes_each"), (end - start) * 8);
    let raw = zstd::decode_all(std::fs::File::open(dir.join("kpageflags.zst")).unwrap()).unwrap();
    assert_eq!(raw.len() as u64, (end - start) * 8, "the whole pfn range");
    assert!(meta.contains("label=test"));
    let sysctl = std::fs::read_to_string(dir.join("sysctl_vm.txt")).unwrap();
    assert!(sysctl.contains("min_free_kbytes="), "{sysctl}");
    assert!(
        !sysctl.contains("drop_caches="),
        "action files are left out"
    );
    // It loads: the free huge pages the model sees are those buddyinfo showed, within
    // what the machine moved during the copy.
    let o = kcompact(&["analyze", d, "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o9 = |text: &str| -> u64 {
        text.lines()
            .map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .skip(4)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                f.get(9).copied().unwrap_or(0) + 2 * f.get(10).copied().unwrap_or(0)
            })
            .sum()
    };
    let before = o9(&std::fs::read_to_string(dir.join("buddyinfo")).unwrap());
    let after = o9(&std::fs::read_to_string(dir.join("buddyinfo.post")).unwrap());
    let model = v["hugepages_now"].as_u64().unwrap();
    let (lo, hi) = (before.min(after), before.max(after));
    assert!(
        model + 64 >= lo && model <= hi + 64,
        "model {model}, buddyinfo {before} before and {after} after the copy"
    );
    // The capture's own memory (its read buffers: 4 MiB for each array at least) is
    // listed, and the loader gives most of it back.
    let own = std::fs::read_to_string(dir.join("capture_pfns.txt")).unwrap();
    assert!(own.lines().count() >= 2048, "{} pfns", own.lines().count());
    let released = v["load"]["capture_pages_released"].as_u64().unwrap();
    assert!(
        released * 2 >= own.lines().count() as u64,
        "{released} of {} released",
        own.lines().count()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn capture_refuses_a_bad_level() {
    let o = kcompact(&["capture", "/tmp/kcompact-never", "--level", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--level") || e.contains("kpageflags"), "{e}");
}

#[test]
fn validate_refuses_bad_sizes() {
    for gib in ["0", "9", "x"] {
        let o = kcompact(&["validate", "--gib", gib]);
        assert_eq!(o.status.code(), Some(2), "--gib {gib}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("gib") || e.contains("root"), "{e}");
    }
}

#[test]
fn validate_refuses_bad_actions_before_touching_the_machine() {
    for action in [
        "bogus",
        "hugepages=",
        "hugepages=0",
        "hugepages=-1",
        "drop-caches",
    ] {
        let o = kcompact(&["validate", "--action", action]);
        assert_eq!(o.status.code(), Some(2), "--action {action}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("--action") && e.lines().count() == 1, "{e}");
    }
}

/// `capture --trace 1`: a second of this machine's kmem events through a private tracefs
/// instance, the snapshots around it, and a replay of what it recorded. The instance is
/// gone afterwards.
#[test]
fn capture_trace_records_a_replayable_trace_and_removes_its_instance() {
    if let Some(why) = can_capture() {
        eprintln!("skipped: {why}");
        return;
    }
    let tracefs = std::path::Path::new("/sys/kernel/tracing");
    let dir = fresh_dir("trace");
    let d = dir.to_str().unwrap();
    let o = kcompact(&["capture", "--trace", "1", d]);
    if o.status.code() == Some(2) && !tracefs.join("instances").is_dir() {
        eprintln!(
            "skipped: no tracefs here: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let out = stdout_ok(&o);
    assert!(out.contains("events lost"), "{out}");
    for f in [
        "trace.txt.zst",
        "ringbuffer_stats.txt",
        "buddyinfo_end_immediate",
        "start/meta.txt",
        "end/meta.txt",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let left = std::fs::read_dir(tracefs.join("instances"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("kcompact-"))
        .count();
    assert_eq!(left, 0, "the tracefs instance is removed");
    let trace = dir.join("trace.txt.zst");
    let start = dir.join("start");
    let o = kcompact(&[
        "replay",
        trace.to_str().unwrap(),
        "--snapshot",
        start.to_str().unwrap(),
    ]);
    // A quiet second may hold no page events at all: then replay says so with exit 2.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        (o.status.code() == Some(0) && text.contains("inconsistencies"))
            || (o.status.code() == Some(2)
                && String::from_utf8_lossy(&o.stderr).contains("no kmem")),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
