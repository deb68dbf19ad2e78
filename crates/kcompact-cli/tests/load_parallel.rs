//! Loading a snapshot reads its two page arrays on two threads: the machine loaded is the
//! same, byte for byte (its whole state as `Debug` prints it, hashed as it is printed),
//! loaded twice on every core and once on one thread.

use kcompact_cli::snapshot_dir::load_dir;
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
    let l = load_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
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
