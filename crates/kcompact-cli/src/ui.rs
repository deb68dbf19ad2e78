//! What every command shows the user besides its results: bad input as a [`Usage`] error
//! (one line, exit code 2) and progress bars on a terminal.

/// Bad input from the user: a message naming the flag, key, file or line. Exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Help the user asked for (`--set help=1`): printed on stdout, exit code 0.
#[derive(Debug)]
pub struct Help(pub String);

impl std::fmt::Display for Help {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Help {}

/// Shorthand for returning a [`Usage`] error.
pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(Usage(msg.into()).into())
}

/// Set by a command that owns the terminal (`watch`): no progress bars at all.
pub static NO_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A progress bar of `len` steps drawn with `template`, on a terminal only (nothing of it
/// when stderr is piped, or under [`NO_PROGRESS`]).
pub fn progress_bar(len: u64, template: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || NO_PROGRESS.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(s) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(s);
    }
    Some(b)
}

/// Writing the command's output to stdout failed (a closed pipe, a full disk). `main`
/// ends quietly with exit code 0 on a broken pipe, as ripgrep does (`kcompact ... | head`
/// is no error), and with one line and exit code 1 on any other failure: the work was
/// done, only its printing failed.
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing stdout: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Writes `args` to stdout; a failure is a [`StdoutError`]. Every command prints through
/// [`out!`] and [`outln!`], which call this, so no write to a closed pipe panics.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(|e| StdoutError(e).into())
}

/// Flushes stdout; a failure is a [`StdoutError`].
pub fn flush_stdout() -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .flush()
        .map_err(|e| StdoutError(e).into())
}

/// `print!` whose failure returns a [`StdoutError`] from the enclosing function.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::ui::write_stdout(format_args!($($arg)*))?
    };
}

/// `println!` whose failure returns a [`StdoutError`] from the enclosing function.
macro_rules! outln {
    () => {
        $crate::ui::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::ui::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

pub(crate) use {out, outln};

/// This machine's available memory in bytes (`MemAvailable` of `/proc/meminfo`), or None
/// where it does not say: the one reading of this machine's state the argument checks
/// make, so that a model too large for it is refused before it is allocated.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Refuses (a [`Usage`] error naming `what`) work that needs more than this machine's
/// available memory: `bytes` in all, `per_page` bytes for each of the model's pages.
pub fn check_fits(what: &str, bytes: u64, per_page: u64) -> anyhow::Result<()> {
    let Some(avail) = mem_available() else {
        return Ok(());
    };
    if bytes > avail {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return usage(format!(
            "{what}: the model needs {:.1} GiB ({per_page} bytes per page) and this machine has {:.1} GiB available (MemAvailable)",
            gib(bytes),
            gib(avail)
        ));
    }
    Ok(())
}

/// A caught panic's message (a run of a sweep, a snapshot of a census, a call from Python
/// reports it as an error instead of unwinding further).
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}
