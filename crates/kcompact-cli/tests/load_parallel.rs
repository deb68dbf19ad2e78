//! Loading a snapshot reads its two page arrays on two threads: the machine loaded is the
//! same, byte for byte (its whole state as `Debug` prints it, hashed as it is printed),
//! loaded twice on every core and once on one thread, and loaded from a capture held in
//! memory (what `--live` loads) instead of the directory.

use kcompact_cli::capture::{Array, Capture};
use kcompact_cli::snapshot_dir::{load_dir, load_from, Loaded, Source};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// A hasher fed with formatted text, so a machine of millions of pages is compared
/// without holding its text.
struct HashWriter(std::hash::DefaultHasher);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// The hash of the loaded machine's whole state and the load's report.
fn state(dir: &Path) -> u64 {
    hash(&load_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
}

fn hash(l: &Loaded) -> u64 {
    let mut h = HashWriter(std::hash::DefaultHasher::new());
    std::fmt::write(
        &mut h,
        format_args!("{:?}{:?}{:?}", l.machine, l.report, l.flags),
    )
    .unwrap();
    h.0.finish()
}

fn single_threaded<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}

fn same_every_way(dir: &Path) {
    let a = state(dir);
    assert_eq!(a, state(dir), "{}: two loads", dir.display());
    assert_eq!(
        a,
        single_threaded(|| state(dir)),
        "{}: a load on one thread",
        dir.display()
    );
}

#[test]
fn a_real_snapshot_loads_the_same_in_parallel_twice_and_on_one_thread() {
    let d: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel/A_g4folio_r1/before");
    if !d.is_dir() {
        eprintln!("skipped: {} is not here", d.display());
        return;
    }
    same_every_way(&d);
}

#[test]
fn a_model_snapshot_loads_the_same_in_parallel_twice_and_on_one_thread() {
    let dir = std::env::temp_dir().join(format!("kcompact-lp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kcompact"))
        .args(["run", "file-holes", "--mem", "1G", "--snapshot", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    same_every_way(&dir.join("snapshot"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every text file of the snapshot layout.
const TEXTS: &[&str] = &[
    "buddyinfo",
    "vmstat",
    "pagetypeinfo",
    "zoneinfo",
    "meminfo",
    "capture_pfns.txt",
    "buddyinfo.post",
    "vmstat.post",
    "zoneinfo.post",
    "slabinfo",
    "dentry-state",
    "inode-state",
    "sysctl_vm.txt",
    "modparams.txt",
    "thp.txt",
    "hugepages.txt",
    "meta.txt",
];

/// The snapshot in `dir` as a capture held in memory: its text files, kpageflags as words
/// and kpagecount as its zstd stream (a capture keeps either).
fn in_memory(dir: &Path) -> Capture {
    let texts = TEXTS
        .iter()
        .filter_map(|n| Some((*n, std::fs::read_to_string(dir.join(n)).ok()?)))
        .collect();
    let flags =
        kcompact_cli::input::read_words(&dir.join("kpageflags.zst"), true, u64::MAX, "test")
            .unwrap();
    Capture {
        texts,
        kpageflags: Array::Words(flags.words),
        kpagecount: Array::Zstd(std::fs::read(dir.join("kpagecount.zst")).unwrap()),
        kpageflags_s: 0.0,
        raw_bytes: flags.bytes,
        total_s: 0.0,
    }
}

#[test]
fn a_capture_held_in_memory_loads_the_machine_its_directory_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/realkernel");
    let mut seen = 0;
    for case in ["A_g4_r1", "D_g4_s1"] {
        let d = root.join(case).join("before");
        if !d.is_dir() {
            continue;
        }
        seen += 1;
        let from_dir = load_dir(&d).unwrap();
        let from_memory = load_from(Source::Memory(Box::new(in_memory(&d)))).unwrap();
        assert_eq!(from_dir.missing, from_memory.missing, "{case}");
        assert_eq!(hash(&from_dir), hash(&from_memory), "{case}");
    }
    if seen == 0 {
        eprintln!("skipped: no shared snapshots at {}", root.display());
    }
}

#[test]
fn a_capture_held_in_memory_without_meta_is_refused_naming_live() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel/A_g4_r1/before");
    if !d.is_dir() {
        eprintln!("skipped: {} is not here", d.display());
        return;
    }
    let mut c = in_memory(&d);
    c.texts.retain(|(n, _)| *n != "meta.txt");
    let e = load_from(Source::Memory(Box::new(c)))
        .err()
        .expect("refused");
    assert_eq!(e.to_string(), "--live: meta.txt was not read");
}
