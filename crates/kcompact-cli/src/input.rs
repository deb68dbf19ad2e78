//! Reading input files within bounds: only regular files are opened (a FIFO would block
//! forever, a device never ends), a file is read only up to what its content can need,
//! and a zstd stream is inflated only that far. Every refusal is a [`Usage`] error naming
//! the file.
//!
//! [`Usage`]: crate::ui::Usage

use crate::ui::usage;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The most bytes a `/proc` text file of a snapshot may hold (zoneinfo of a large machine
/// with many CPUs is a few MiB).
pub const TEXT_MAX: u64 = 256 << 20;

/// Whether something is at `path` (a file, a directory, a FIFO, a dangling link): what
/// is there must be readable, what is not is absent.
pub fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Opens `path` if it is a regular file (after links); anything else is refused. The
/// open does not block on a FIFO (`O_NONBLOCK`), and the type is checked on the opened
/// file, so nothing can swap it in between.
pub fn open_regular(path: &Path) -> anyhow::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let f = match opts.open(path) {
        Ok(f) => f,
        Err(e) => return usage(format!("{}: {e}", path.display())),
    };
    match f.metadata() {
        Ok(md) if md.is_file() => Ok(f),
        Ok(md) => usage(format!(
            "{}: not a regular file ({})",
            path.display(),
            kind(&md)
        )),
        Err(e) => usage(format!("{}: {e}", path.display())),
    }
}

/// What a file that is not regular is.
fn kind(md: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = md.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if md.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Reads the regular file `path`, refusing one larger than `max` bytes (`why` says what
/// bounds it).
pub fn read_capped(path: &Path, max: u64, why: &str) -> anyhow::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        return usage(format!(
            "{}: {len} bytes, more than the {max} {why}",
            path.display()
        ));
    }
    let mut b = Vec::with_capacity(len as usize);
    // A file that grows while it is read is still cut at the bound.
    if let Err(e) = f.take(max + 1).read_to_end(&mut b) {
        return usage(format!("{}: {e}", path.display()));
    }
    if b.len() as u64 > max {
        return usage(format!(
            "{}: more than the {max} bytes {why}",
            path.display()
        ));
    }
    Ok(b)
}

/// Reads the regular text file `path` (at most [`TEXT_MAX`] bytes, UTF-8).
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let b = read_capped(path, TEXT_MAX, "bytes a text file of kcompact's may hold")?;
    String::from_utf8(b).or_else(|e| {
        usage(format!(
            "{}: not text (invalid UTF-8 at byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Inflates the zstd stream of the regular file `path` up to `max` bytes; a stream that
/// inflates past them is refused (`why` says what bounds it), as is one that holds a NUL
/// byte where `text` is expected (a stream of zeros is refused at its first block).
pub fn inflate_capped(path: &Path, max: u64, why: &str, text: bool) -> anyhow::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let mut dec = match zstd::stream::read::Decoder::new(f) {
        Ok(d) => d,
        Err(e) => return usage(format!("{}: not zstd data: {e}", path.display())),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return usage(format!("{}: not zstd data: {e}", path.display())),
        };
        if text && buf[..n].contains(&0) {
            return usage(format!(
                "{}: not text (a NUL byte at byte {} of the inflated stream)",
                path.display(),
                out.len() + buf[..n].iter().position(|b| *b == 0).unwrap_or(0)
            ));
        }
        if (out.len() + n) as u64 > max {
            return usage(format!(
                "{}: inflates past {max} bytes, more than {why}",
                path.display()
            ));
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// A page array read as it streams: its little-endian u64 words and the bytes the file
/// held (a count that is no multiple of 8 leaves its last bytes out of the words).
pub struct Words {
    /// The whole words.
    pub words: Vec<u64>,
    /// Bytes read.
    pub bytes: u64,
}

/// Little-endian u64 words decoded from bytes as they arrive, a word split between two
/// chunks carried over.
pub struct WordDecoder {
    /// The whole words so far.
    pub words: Vec<u64>,
    carry: [u8; 8],
    held: usize,
}

impl WordDecoder {
    /// A decoder with room for `words` words.
    pub fn with_capacity(words: usize) -> WordDecoder {
        WordDecoder {
            words: Vec::with_capacity(words),
            carry: [0; 8],
            held: 0,
        }
    }

    /// Decodes the next bytes; a last partial word waits for the next chunk.
    pub fn push(&mut self, mut chunk: &[u8]) {
        if self.held > 0 {
            let take = (8 - self.held).min(chunk.len());
            self.carry[self.held..self.held + take].copy_from_slice(&chunk[..take]);
            self.held += take;
            chunk = &chunk[take..];
            if self.held < 8 {
                return;
            }
            self.words.push(u64::from_le_bytes(self.carry));
            self.held = 0;
        }
        let whole = chunk.len() / 8 * 8;
        self.words.extend(
            chunk[..whole]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8"))),
        );
        self.held = chunk.len() - whole;
        self.carry[..self.held].copy_from_slice(&chunk[whole..]);
    }
}

/// Reads a page array of little-endian u64 words from the regular file `path`, its zstd
/// stream inflated (`zstd`) or plain, converting the bytes to words as they come: no copy
/// of the bytes is kept beside the words. At most `max` bytes, refused past them as
/// [`inflate_capped`] and [`read_capped`] refuse (`why` says what bounds it); room for
/// `max / 8` words is made at once (what a snapshot of the size `meta.txt` gives holds).
pub fn read_words(path: &Path, zstd: bool, max: u64, why: &str) -> anyhow::Result<Words> {
    let f = open_regular(path)?;
    let mut src: Box<dyn Read> = if zstd {
        match zstd::stream::read::Decoder::new(f) {
            Ok(d) => Box::new(d),
            Err(e) => return usage(format!("{}: not zstd data: {e}", path.display())),
        }
    } else {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > max {
            return usage(format!(
                "{}: {len} bytes, more than the {max} {why}",
                path.display()
            ));
        }
        Box::new(f)
    };
    let mut dec = WordDecoder::with_capacity((max / 8).min(1 << 31) as usize);
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if zstd => return usage(format!("{}: not zstd data: {e}", path.display())),
            Err(e) => return usage(format!("{}: {e}", path.display())),
        };
        bytes += n as u64;
        if bytes > max {
            return usage(if zstd {
                format!(
                    "{}: inflates past {max} bytes, more than {why}",
                    path.display()
                )
            } else {
                format!("{}: more than the {max} bytes {why}", path.display())
            });
        }
        dec.push(&buf[..n]);
    }
    let words = dec.words;
    Ok(Words { words, bytes })
}
