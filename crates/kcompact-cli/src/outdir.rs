//! Where `--out` writes, safely: a directory that holds nothing but kcompact's own output
//! ([`OutDir`]), or one file ([`OutFile`], `report --out FILE`).
//!
//! The rules:
//! - the target is checked before the work starts, so a bad `--out` (an existing file, a
//!   device, a FIFO, a read-only file system, a path under a file) is a [`Usage`] error
//!   (exit code 2) naming the path, and nothing is computed for nothing;
//! - a directory holding a snapshot (`meta.txt`, the page arrays) or anything kcompact did
//!   not write is refused; one holding an earlier output of kcompact (its [`MARKER`] lists
//!   what it wrote) is replaced only with `--force`;
//! - one writer per directory: an exclusive `flock` on the directory itself (through
//!   `fs4`), held from the check to the last rename. The kernel drops it when the process
//!   ends, however it ends, so no stale lock file is ever left to remove by hand (an
//!   `O_EXCL` lock file would be, after a SIGKILL), and nothing is written to take it;
//! - every file is written under a temporary name in the same directory and renamed into
//!   place only when all of them are written, the main file (`result.json`, `ab.json`)
//!   last, so its presence means the output is complete; a write that fails (a full disk)
//!   removes the temporary files and leaves the directory as it was;
//! - a staged name `SUB/FILE` goes into the subdirectory `SUB` (a snapshot of the model,
//!   `--snapshot`): the subdirectory is written whole under a temporary name and renamed
//!   into place like a file, and listed in the marker as `SUB`.
//!
//! [`Usage`]: crate::ui::Usage

use crate::ui::usage;
use anyhow::Context;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The file in an output directory listing what kcompact wrote there: a first line naming
/// the version and the command, then one file name a line.
pub const MARKER: &str = ".kcompact-out";
/// The prefix of the temporary names files are written under before they are renamed.
const TMP_PREFIX: &str = ".kcompact-tmp.";
/// What the first bytes of every `report.html` carry (see [`crate::report::render`]), by
/// which `report --out FILE` knows a report of its own it may replace.
pub const REPORT_SIGNATURE: &str = "<meta name=\"generator\" content=\"kcompact\">";

/// Files a snapshot directory holds, any of which makes a directory a snapshot.
const SNAPSHOT_FILES: &[&str] = &["meta.txt", "kpageflags", "kpageflags.zst", "zoneinfo.post"];

/// An output directory, checked and locked, and the files staged for it.
pub struct OutDir {
    dir: PathBuf,
    /// The directory opened and `flock`ed; the lock goes with it.
    _lock: File,
    /// Files of an earlier output (with `--force`), removed when this one is committed.
    earlier: Vec<String>,
    staged: Vec<(String, Vec<u8>)>,
    /// Whether [`OutDir::prepare`] created the directory (removed again, if still empty,
    /// when no output is committed).
    created: bool,
    /// Entries written into the directory by other means (`validate`'s snapshots), listed
    /// in the marker.
    adopted: Vec<String>,
}

/// Opens `dir` and takes its exclusive lock, or says who holds it.
fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    let f = match File::open(dir) {
        Ok(f) => f,
        Err(e) => return usage(format!("{}: {e}", dir.display())),
    };
    match fs4::FileExt::try_lock(&f) {
        Ok(()) => Ok(f),
        Err(fs4::TryLockError::WouldBlock) => usage(format!(
            "{}: another kcompact is writing there; wait for it or choose another --out",
            dir.display()
        )),
        Err(fs4::TryLockError::Error(e)) => usage(format!("{}: cannot lock: {e}", dir.display())),
    }
}

/// True if `dir` still names the directory `locked` holds open (not removed or replaced
/// between the open and the lock).
fn still_at(locked: &File, dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (locked.metadata(), std::fs::metadata(dir)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = locked;
        dir.is_dir()
    }
}

/// A temporary name for `name` in `dir`, unique to this process.
fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{TMP_PREFIX}{}.{name}", std::process::id()))
}

/// Writes `bytes` to `dir/name` under a temporary name and returns that name; a failure
/// removes the partial file and names the final path.
fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let tmp = tmp_path(dir, name);
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", dir.join(name).display()));
    }
    Ok(tmp)
}

/// Proves that files can be created in `dir` (a read-only file system, a directory of
/// someone else's).
fn probe_writable(dir: &Path) -> anyhow::Result<()> {
    let p = tmp_path(dir, "probe");
    match File::create(&p) {
        Ok(_) => {
            let _ = std::fs::remove_file(&p);
            Ok(())
        }
        Err(e) => usage(format!("{}: cannot write there: {e}", dir.display())),
    }
}

/// The names a marker lists.
fn marker_files(text: &str) -> Vec<String> {
    text.lines().skip(1).map(str::to_string).collect()
}

/// The order files are renamed into place: as staged, `last` at the end.
fn commit_order<'a>(names: impl Iterator<Item = &'a str>, last: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.collect();
    names.sort_by_key(|n| *n == last);
    names
}

impl OutDir {
    /// Checks `dir` as an output directory (created if it is not there) and locks it;
    /// `force` allows replacing an earlier output of kcompact.
    pub fn prepare(dir: &Path, force: bool) -> anyhow::Result<OutDir> {
        let mut created = false;
        match std::fs::metadata(dir) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return usage(format!(
                    "{}: not a directory (--out takes a directory to create or an empty one)",
                    dir.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The parents as needed, the directory itself exclusively: only the run
                // that created it may remove it again (another may have created it since).
                let made = match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(parent) => std::fs::create_dir_all(parent),
                    None => Ok(()),
                }
                .and_then(|()| std::fs::create_dir(dir));
                match made {
                    Ok(()) => created = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                    Err(e) => return usage(format!("{}: cannot create: {e}", dir.display())),
                }
            }
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        }
        // A run that created the directory but lost the lock leaves it alone: the winner
        // is writing there.
        let lock = lock_dir(dir)?;
        if !still_at(&lock, dir) {
            // Locked a directory a failed run removed meanwhile: the path is someone
            // else's now.
            return usage(format!(
                "{}: another kcompact is writing there; wait for it or choose another --out",
                dir.display()
            ));
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) => return usage(format!("{}: {e}", dir.display())),
        };
        let mut names = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // Left by a run that was killed while writing (the lock is ours now).
                remove_entry(&e.path());
            } else {
                names.push(name);
            }
        }
        names.sort();
        if let Some(s) = names.iter().find(|n| SNAPSHOT_FILES.contains(&n.as_str())) {
            return usage(format!(
                "{}: holds a snapshot ({s}); kcompact writes no output into a snapshot: choose another --out",
                dir.display()
            ));
        }
        let listed = if names.iter().any(|n| n == MARKER) {
            match std::fs::read_to_string(dir.join(MARKER)) {
                Ok(t) => marker_files(&t),
                Err(e) => return usage(format!("{}: {e}", dir.join(MARKER).display())),
            }
        } else {
            Vec::new()
        };
        let foreign: Vec<&String> = names
            .iter()
            .filter(|n| *n != MARKER && !listed.contains(n))
            .collect();
        if let Some(f) = foreign.first() {
            return usage(format!(
                "{}: holds {f}{}, which kcompact did not write; choose a new or empty directory",
                dir.display(),
                if foreign.len() > 1 {
                    format!(" and {} more", foreign.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
        let earlier: Vec<String> = names.into_iter().filter(|n| n != MARKER).collect();
        if !earlier.is_empty() && !force {
            return usage(format!(
                "{}: holds an earlier output of kcompact; --force replaces it",
                dir.display()
            ));
        }
        if let Err(e) = probe_writable(dir) {
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        Ok(OutDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            earlier,
            staged: Vec::new(),
            adopted: Vec::new(),
            created,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Stages `bytes` as `dir/name` (written by [`OutDir::commit`]); `name` may be
    /// `SUB/FILE`, a file of the subdirectory `SUB`.
    pub fn add(&mut self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.staged.retain(|(n, _)| n != name);
        self.staged.push((name.to_string(), bytes.into()));
    }

    /// Lists `name`, written into the directory by other means, in the marker.
    pub fn adopt(&mut self, name: &str) {
        self.adopted.push(name.to_string());
    }

    /// Writes every staged file under a temporary name, then renames them into place:
    /// the marker first, `last` at the end. A failure before the renames removes what it
    /// wrote and leaves the directory as it was.
    pub fn commit(mut self, command: &str, last: &str) -> anyhow::Result<()> {
        // Committed (or failed with nothing changed): the directory stays as it is now.
        let created = std::mem::replace(&mut self.created, false);
        let r = self.write_all(command, last);
        if r.is_err() && created {
            let _ = std::fs::remove_dir(&self.dir);
        }
        r
    }

    fn write_all(&self, command: &str, last: &str) -> anyhow::Result<()> {
        // Top-level entries: files, and subdirectories (the first part of `SUB/FILE`).
        let mut tops: Vec<&str> = Vec::new();
        for (n, _) in &self.staged {
            let top = n.split_once('/').map_or(n.as_str(), |(d, _)| d);
            if !tops.contains(&top) {
                tops.push(top);
            }
        }
        let names = commit_order(tops.into_iter(), last);
        let mut marker = format!("kcompact {} {command}\n", env!("CARGO_PKG_VERSION"));
        for n in self
            .adopted
            .iter()
            .map(String::as_str)
            .chain(names.iter().copied())
        {
            marker.push_str(n);
            marker.push('\n');
        }
        let mut written: Vec<(String, PathBuf)> = Vec::new();
        let undo = |written: &[(String, PathBuf)], e: anyhow::Error| {
            for (_, t) in written {
                remove_entry(t);
            }
            Err(e.context(format!("nothing was changed in {}", self.dir.display())))
        };
        match write_tmp(&self.dir, MARKER, marker.as_bytes()) {
            Ok(tmp) => written.push((MARKER.to_string(), tmp)),
            Err(e) => return undo(&written, e),
        }
        for n in &names {
            let r = match self.staged.iter().find(|(s, _)| s == n) {
                Some((_, b)) => write_tmp(&self.dir, n, b),
                None => self.write_tmp_subdir(n),
            };
            match r {
                Ok(tmp) => written.push((n.to_string(), tmp)),
                Err(e) => return undo(&written, e),
            }
        }
        // An earlier output goes first, its main file before the rest, so that no moment
        // shows its main file beside this output's files.
        let mut earlier = self.earlier.clone();
        earlier.sort_by_key(|n| *n != last);
        for n in earlier {
            remove_entry(&self.dir.join(&n));
        }
        for (name, tmp) in &written {
            std::fs::rename(tmp, self.dir.join(name))
                .with_context(|| format!("renaming into {}", self.dir.join(name).display()))?;
        }
        Ok(())
    }

    /// Writes the staged files `sub/FILE` into a temporary directory for `dir/sub` and
    /// returns its name; a failure removes it and names the final path.
    fn write_tmp_subdir(&self, sub: &str) -> anyhow::Result<PathBuf> {
        let tmp = tmp_path(&self.dir, sub);
        let r = std::fs::create_dir(&tmp).and_then(|()| {
            for (n, b) in &self.staged {
                if let Some(file) = n.strip_prefix(sub).and_then(|r| r.strip_prefix('/')) {
                    std::fs::write(tmp.join(file), b)?;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            remove_entry(&tmp);
            return Err(e).with_context(|| format!("writing {}", self.dir.join(sub).display()));
        }
        Ok(tmp)
    }
}

/// Removes a file, or a directory with what it holds (a subdirectory kcompact wrote).
fn remove_entry(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        _ => {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for OutDir {
    /// A directory made for an output that never came (the work failed) goes again.
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// One output file (`report --out FILE`), checked and its directory locked.
pub struct OutFile {
    path: PathBuf,
    /// The directory's lock (None for a file beside another [`OutFile`], whose lock covers
    /// it).
    _lock: Option<File>,
}

impl OutFile {
    /// Checks `path` as a file to write: its directory exists, is no snapshot (unless
    /// `path` is the snapshot's `report.html`), and can be written; an existing `path` is a regular file, replaced only if it is a report of
    /// kcompact's (`signature` at its start) or with `force`.
    pub fn prepare(path: &Path, signature: Option<&str>, force: bool) -> anyhow::Result<OutFile> {
        OutFile::check(path, signature, force, None)
    }

    /// [`OutFile::prepare`] for a second file; one in `first`'s directory shares its lock.
    pub fn prepare_beside(
        path: &Path,
        signature: Option<&str>,
        force: bool,
        first: &OutFile,
    ) -> anyhow::Result<OutFile> {
        OutFile::check(path, signature, force, Some(first))
    }

    fn check(
        path: &Path,
        signature: Option<&str>,
        force: bool,
        first: Option<&OutFile>,
    ) -> anyhow::Result<OutFile> {
        if first.is_some_and(|f| f.path == path) {
            return usage(format!("{}: named twice", path.display()));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match std::fs::metadata(&parent) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return usage(format!(
                    "{}: {} is not a directory",
                    path.display(),
                    parent.display()
                ))
            }
            Err(e) => return usage(format!("{}: {e}", parent.display())),
        }
        // Into a snapshot only its own report (`kcompact report SNAPSHOT`): the loader
        // reads no report.html, so the snapshot stays what it was.
        let own_report = path.file_name().is_some_and(|n| n == "report.html");
        if let Some(s) = SNAPSHOT_FILES
            .iter()
            .find(|s| !own_report && parent.join(s).exists())
        {
            return usage(format!(
                "{}: {} holds a snapshot ({s}); kcompact writes no output but its report.html into a snapshot",
                path.display(),
                parent.display()
            ));
        }
        match std::fs::symlink_metadata(path) {
            Ok(md) if !md.is_file() => {
                return usage(format!(
                "{}: exists and is not a regular file (a directory, a device, a FIFO or a link)",
                path.display()
            ))
            }
            Ok(_) => {
                let ours = signature.is_some_and(|sig| {
                    let mut head = vec![0u8; 512];
                    let n = File::open(path)
                        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                        .unwrap_or(0);
                    String::from_utf8_lossy(&head[..n]).contains(sig)
                });
                if !ours && !force {
                    return usage(format!(
                        "{}: exists and is not a file kcompact wrote; --force replaces it",
                        path.display()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return usage(format!("{}: {e}", path.display())),
        }
        let same_dir = |f: &OutFile| {
            let canon = |p: &Path| std::fs::canonicalize(p).ok();
            let fp = f
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            canon(fp).is_some() && canon(fp) == canon(&parent)
        };
        let lock = match first {
            Some(f) if same_dir(f) => None,
            _ => Some(lock_dir(&parent)?),
        };
        probe_writable(&parent)?;
        Ok(OutFile {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Writes `bytes` under a temporary name beside the file and renames it into place.
    pub fn write(self, bytes: &[u8]) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy().into_owned());
        let tmp = write_tmp(dir, &name, bytes)?;
        std::fs::rename(&tmp, &self.path).with_context(|| {
            let _ = std::fs::remove_file(&tmp);
            format!("renaming into {}", self.path.display())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new directory under the temp dir, unique to this test.
    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("kcompact-outdir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_main_file_is_renamed_last() {
        let order = commit_order(
            ["result.json", "buddyinfo", "report.html"].into_iter(),
            "result.json",
        );
        assert_eq!(order, ["buddyinfo", "report.html", "result.json"]);
    }

    #[test]
    fn a_second_writer_of_one_directory_is_refused() {
        let d = scratch("lock");
        let first = OutDir::prepare(&d, false).unwrap();
        let e = OutDir::prepare(&d, false).err().expect("locked");
        assert!(e.is::<crate::ui::Usage>());
        assert!(e.to_string().contains("another kcompact"), "{e}");
        drop(first);
        assert!(
            OutDir::prepare(&d, false).is_ok(),
            "the lock goes with the first"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failed_write_leaves_the_directory_as_it_was() {
        let d = scratch("fail");
        let mut o = OutDir::prepare(&d, false).unwrap();
        o.add("result.json", "{}");
        o.add("no/such/dir", "x");
        assert!(o.commit("test", "result.json").is_err());
        assert!(listing(&d).is_empty(), "{:?}", listing(&d));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_earlier_output_is_replaced_only_with_force_and_a_snapshot_never() {
        let d = scratch("force");
        let mut o = OutDir::prepare(&d, false).unwrap();
        o.add("a", "1");
        o.add("result.json", "{}");
        o.commit("test", "result.json").unwrap();
        assert_eq!(listing(&d), [MARKER, "a", "result.json"]);
        let e = OutDir::prepare(&d, false).err().expect("earlier output");
        assert!(e.to_string().contains("--force"), "{e}");
        let mut o = OutDir::prepare(&d, true).unwrap();
        o.add("result.json", "{\"again\": 1}");
        o.commit("test", "result.json").unwrap();
        assert_eq!(
            listing(&d),
            [MARKER, "result.json"],
            "the earlier 'a' is gone"
        );
        std::fs::write(d.join("notes.txt"), "mine").unwrap();
        let e = OutDir::prepare(&d, true).err().expect("a foreign file");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        std::fs::remove_file(d.join("notes.txt")).unwrap();
        std::fs::write(d.join("meta.txt"), "pfn_start=1").unwrap();
        let e = OutDir::prepare(&d, true).err().expect("a snapshot");
        assert!(e.to_string().contains("holds a snapshot"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
