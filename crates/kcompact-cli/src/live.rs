//! `--live`: this machine's memory state now, loaded into the model like a snapshot.
//!
//! The capture reads what `kcompact capture` reads (the /proc text files, then
//! `/proc/kpageflags` and `/proc/kpagecount` over the populated pfn range) into memory
//! and loads it from there: nothing is written. The capture's own anonymous pages (its
//! copies of the page arrays among them) are given back to the model's allocator as for
//! any capture.

use crate::capture::{capture, Keep};
use crate::cli::SourceArgs;
use crate::snapshot_dir::{load_dir, load_from, Loaded, Source};
use crate::ui::usage;

/// Whether this process may read the page arrays (Linux, root: the files are mode 0400).
fn may_read_page_arrays() -> bool {
    std::fs::File::open("/proc/kpageflags").is_ok()
        && std::fs::File::open("/proc/kpagecount").is_ok()
}

/// Captures this machine now and loads it (`--live`).
pub fn load_live() -> anyhow::Result<Loaded> {
    if !may_read_page_arrays() {
        return usage(
            "--live reads /proc/kpageflags and /proc/kpagecount: it needs Linux and root",
        );
    }
    let c = capture("live", Keep::Words)?;
    load_from(Source::Memory(Box::new(c)))
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
