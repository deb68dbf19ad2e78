//! Snapshots of the model (`run --snapshot`, `ab --snapshot`, `replay --end-snapshot`):
//! what a scenario leaves loads back (`load_dir`, the loader's cross-checks included) to
//! the same buddyinfo and pagetypeinfo, byte for byte, and the same page classes; the
//! snapshot's files are written once the output is complete.

mod common;

use common::{kcompact, ok, stderr};
use kcompact::snapshot::image;
use kcompact::snapshot::kpageflags::{class_counts, PageClass};
use kcompact::views::{buddyinfo, pagetypeinfo};
use kcompact_cli::snapshot_dir::load_dir;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kcompact-rt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn words(path: &Path) -> Vec<u64> {
    let raw = zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap();
    kcompact::snapshot::u64_array("kpageflags", &raw).unwrap()
}

fn meta(dir: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join("meta.txt")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap()
        .parse()
        .unwrap()
}

/// Page classes with the pages outside the buddy allocator and no owner as one: the
/// loader keeps a page with no flag (kernel memory that sets none) out of the allocator as
/// a reserved page, which a second snapshot shows as reserved.
fn classes(flags: &[u64], pfn_start: u64) -> Vec<(PageClass, u64)> {
    let c = class_counts(flags, pfn_start, 0, u64::MAX);
    let mut out: Vec<(PageClass, u64)> = PageClass::ALL.iter().copied().zip(c).collect();
    let nf = out
        .iter()
        .position(|(k, _)| *k == PageClass::NoFlags)
        .unwrap();
    let rs = out
        .iter()
        .position(|(k, _)| *k == PageClass::Reserved)
        .unwrap();
    out[rs].1 += out[nf].1;
    out.remove(nf);
    out
}

/// The snapshot in `snap` loads to the buddyinfo and pagetypeinfo it holds, byte for byte,
/// and to the same page classes.
fn loads_back(snap: &Path) {
    let loaded = load_dir(snap).unwrap_or_else(|e| panic!("{}: {e}", snap.display()));
    let m = &loaded.machine;
    let read = |f: &str| std::fs::read_to_string(snap.join(f)).unwrap();
    assert_eq!(
        buddyinfo(m),
        read("buddyinfo"),
        "{}: buddyinfo",
        snap.display()
    );
    assert_eq!(
        pagetypeinfo(m),
        read("pagetypeinfo"),
        "{}: pagetypeinfo",
        snap.display()
    );
    let (start, end) = (meta(snap, "pfn_start"), meta(snap, "pfn_end"));
    let written = words(&snap.join("kpageflags.zst"));
    assert_eq!(written.len() as u64, end - start);
    let again = image::kpageflags(m, start, end, true);
    assert_eq!(
        classes(&written, start),
        classes(&again, start),
        "{}: page classes",
        snap.display()
    );
}

#[test]
fn every_scenario_snapshot_loads_back_to_the_same_buddyinfo_pagetypeinfo_and_classes() {
    for s in [
        "highalloc",
        "file-holes",
        "compaction-test",
        "thpscale",
        "vfio-pin",
        "mthp",
        "zram-gpu",
        "churn",
    ] {
        let dir = tmp(s);
        let mut args = vec![
            "run",
            s,
            "--mem",
            "1G",
            "--out",
            dir.to_str().unwrap(),
            "--snapshot",
        ];
        if s == "zram-gpu" {
            // A CMA area is made at boot: a snapshot's loader makes none (its blocks load
            // as the types their pages show).
            args.extend(["--set", "cma=0"]);
        }
        ok(&args);
        loads_back(&dir.join("snapshot"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn ab_writes_a_snapshot_per_side_and_predict_and_analyze_load_it() {
    let dir = tmp("ab");
    ok(&[
        "ab",
        "file-holes",
        "--toggle",
        "compaction=on,off",
        "--seeds",
        "2",
        "--mem",
        "1G",
        "--out",
        dir.to_str().unwrap(),
        "--snapshot",
    ]);
    let marker = std::fs::read_to_string(dir.join(".kcompact-out")).unwrap();
    for side in ["snapshot-a", "snapshot-b"] {
        assert!(marker.lines().any(|l| l == side), "{marker}");
        let snap = dir.join(side);
        loads_back(&snap);
        let label = std::fs::read_to_string(snap.join("meta.txt")).unwrap();
        assert!(
            label.contains(&format!("side {} seed 1", &side[9..])),
            "{label}"
        );
        ok(&["predict", snap.to_str().unwrap(), "--action", "compact"]);
        ok(&["analyze", snap.to_str().unwrap()]);
    }
    // The sides differ: compaction off leaves other free lists.
    let read = |s: &str| std::fs::read(dir.join(s).join("buddyinfo")).unwrap();
    assert_ne!(read("snapshot-a"), read("snapshot-b"));
    // --force replaces the whole output, the snapshots' directories included.
    ok(&[
        "ab",
        "file-holes",
        "--toggle",
        "compaction=on,off",
        "--seeds",
        "1",
        "--mem",
        "1G",
        "--out",
        dir.to_str().unwrap(),
        "--force",
    ]);
    assert!(!dir.join("snapshot-a").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_end_snapshot_of_a_loaded_machine_loads_back_and_needs_out() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trace_thp");
    let (trace, start) = (d.join("trace.txt.zst"), d.join("start"));
    let dir = tmp("replay");
    ok(&[
        "replay",
        trace.to_str().unwrap(),
        "--snapshot",
        start.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--end-snapshot",
    ]);
    loads_back(&dir.join("snapshot"));
    std::fs::remove_dir_all(&dir).unwrap();
    let o = kcompact(&["run", "--mem", "1G", "--snapshot"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
}
