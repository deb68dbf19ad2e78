//! Reading a snapshot of a real machine (the layout of `kcompact capture`, see
//! `../shared/data/README.md`): pure parsers over bytes and text the caller has read and
//! decompressed. Errors name the file and the line or byte offset.
//!
//! - [`text`]: `/proc/zoneinfo` and `/proc/buddyinfo`.
//! - [`kpageflags`]: the `/proc/kpageflags` bits, the page classes they imply, and the free
//!   blocks rebuilt from the BUDDY runs.
//! - [`load`]: a machine built from the files ([`load::SnapshotFiles`]), placed pfn by pfn
//!   with [`Machine::with_placement`].
//! - [`image`]: the model's own state as a snapshot's files (kpageflags, kpagecount,
//!   meminfo, tunables), which [`load`] reads back.
//! - [`check`]: the files cross-checked against each other before and after loading
//!   ([`check::load_checked`]), within a live machine's drift.

pub mod check;
pub mod image;
pub mod kpageflags;
pub mod load;
pub mod slab;
pub mod text;

use crate::units::Pfn;
use crate::Machine;

impl Machine {
    /// Runs `f` with the next page allocation placed at `at` ([`Machine::place_at`]): that
    /// allocation takes exactly the block at `at` or fails; `None` leaves the choice to the
    /// allocator. The placement ends with `f`, whether an allocation took it or not. The
    /// loader builds a snapshot's machine pfn by pfn with it, and exact replay puts each
    /// allocation at its recorded pfn.
    pub fn with_placement<R>(&mut self, at: Option<Pfn>, f: impl FnOnce(&mut Machine) -> R) -> R {
        self.place_at = at;
        let r = f(self);
        self.place_at = None;
        r
    }
}

/// A snapshot file that cannot be read as what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A text file's line does not parse.
    #[error("{file}: line {line}: {msg}")]
    Line {
        /// The file's name in the snapshot.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A file's content does not fit the rest of the snapshot.
    #[error("{file}: {msg}")]
    File {
        /// The file's name in the snapshot.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// A binary file is malformed.
    #[error("{file}: byte {offset}: {msg}")]
    Bytes {
        /// The file's name in the snapshot.
        file: String,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
}

/// Decodes a `/proc/kpageflags` or `/proc/kpagecount` image: one little-endian u64 per pfn.
/// A length that is no multiple of 8 is refused (the kernel refuses such reads too).
pub fn u64_array(file: &str, bytes: &[u8]) -> Result<Vec<u64>, SnapshotError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(SnapshotError::Bytes {
            file: file.to_string(),
            offset: (bytes.len() - bytes.len() % 8) as u64,
            msg: format!(
                "{} bytes is no whole number of 8-byte entries (truncated?)",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_array_is_little_endian_and_refuses_partial_entries() {
        let mut b = 1u64.to_le_bytes().to_vec();
        b.extend(0x400u64.to_le_bytes());
        assert_eq!(u64_array("f", &b).unwrap(), vec![1, 0x400]);
        b.pop();
        let e = u64_array("kpageflags", &b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kpageflags: byte 8: 15 bytes is no whole number of 8-byte entries (truncated?)"
        );
    }
}
