//! `--live`: this machine's memory state now, loaded into the model like a snapshot.
//!
//! The capture reads what `kcompact capture` reads (the /proc text files, then
//! `/proc/kpageflags` and `/proc/kpagecount` over the populated pfn range) into a private
//! directory under the temporary directory, loads it at once and removes it, whatever
//! happens. The capture's own anonymous pages are given back to the model's allocator as
//! for any capture, and its files are written only after the page arrays are read, so they
//! are not in the state loaded.

use crate::capture::capture_to;
use crate::cli::SourceArgs;
use crate::snapshot_dir::{load_dir, Loaded};
use crate::ui::usage;
use std::path::PathBuf;

/// Removes the private capture directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process may read the page arrays (Linux, root: the files are mode 0400).
fn may_read_page_arrays() -> bool {
    std::fs::File::open("/proc/kpageflags").is_ok()
        && std::fs::File::open("/proc/kpagecount").is_ok()
}

/// The private capture directories' names: this prefix and the process id.
const PREFIX: &str = "kcompact-live-";

/// Removes the capture directories of kcompact processes that were killed during a
/// capture (their process id no longer runs).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Captures this machine now and loads it (`--live`).
pub fn load_live() -> anyhow::Result<Loaded> {
    if !may_read_page_arrays() {
        return usage(
            "--live reads /proc/kpageflags and /proc/kpagecount: it needs Linux and root",
        );
    }
    remove_stale();
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        return usage(format!("--live: {}: {e}", dir.display()));
    }
    let guard = TempDir(dir);
    // Level 1: the fastest zstd level, the copy's time is the kernel's read.
    capture_to(&guard.0, "live", 1)?;
    let loaded = load_dir(&guard.0)?;
    drop(guard);
    Ok(loaded)
}

/// The machine a command reads, loaded: the snapshot directory or this machine now, with
/// the name its output gives it.
pub fn load_source(src: &SourceArgs) -> anyhow::Result<(Loaded, String)> {
    match (&src.snapshot, src.live) {
        (Some(dir), false) => Ok((load_dir(dir)?, dir.display().to_string())),
        (None, true) => Ok((load_live()?, "this machine (--live)".to_string())),
        _ => usage("give a snapshot directory or --live, not both"),
    }
}

/// Whether the loaded snapshot had the machine's settings files (`sysctl_vm.txt`): the
/// tunables `--set` changes are then the machine's own.
pub fn has_machine_settings(loaded: &Loaded) -> bool {
    !loaded
        .missing
        .iter()
        .any(|m| m.starts_with("sysctl_vm.txt"))
}
