//! `kcompact watch`: this machine's zones refreshed in the terminal — free pages by order,
//! per-CPU pages, watermarks, the compaction and migration counters per second, and the
//! huge pages obtainable now and (as root) after compaction, predicted by the model on a
//! capture taken in the background.
//!
//! On a terminal it takes the screen (crossterm: raw mode, the alternate screen) and `q`,
//! Esc or Ctrl-C quit; otherwise it prints one plain block per interval. `--count N` stops
//! after N refreshes (scripts, tests).

use crate::cli::WatchArgs;
use crate::ui::{usage, StdoutError};
use kcompact::snapshot::text::{parse_buddyinfo, parse_zoneinfo, BuddyInfoRecord, ZoneInfoRecord};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The counters shown per second, in this order, with their short heading.
const RATES: [(&str, &str); 12] = [
    ("compact_stall", "stall"),
    ("compact_success", "success"),
    ("compact_fail", "fail"),
    ("compact_migrate_scanned", "migr_scan"),
    ("compact_free_scanned", "free_scan"),
    ("compact_isolated", "isolated"),
    ("compact_daemon_wake", "kcd_wake"),
    ("pgmigrate_success", "migrated"),
    ("pgmigrate_fail", "mig_fail"),
    ("pgsteal_kswapd", "steal_kswapd"),
    ("pgsteal_direct", "steal_direct"),
    ("allocstall_normal", "allocstall"),
];

/// One reading of the /proc files.
struct Sample {
    at: Instant,
    buddy: Vec<BuddyInfoRecord>,
    zones: Vec<ZoneInfoRecord>,
    vmstat: BTreeMap<String, u64>,
}

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).or_else(|e| usage(format!("{path}: {e} (watch needs Linux)")))
}

fn sample() -> anyhow::Result<Sample> {
    let buddy = parse_buddyinfo("/proc/buddyinfo", &read("/proc/buddyinfo")?)
        .or_else(|e| usage(format!("{e}")))?;
    let zones = parse_zoneinfo("/proc/zoneinfo", &read("/proc/zoneinfo")?)
        .or_else(|e| usage(format!("{e}")))?;
    let vmstat = read("/proc/vmstat")?
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    Ok(Sample {
        at: Instant::now(),
        buddy,
        zones,
        vmstat,
    })
}

/// Free order >= 9 blocks in buddyinfo (order 10 counts two), as `analyze` counts them.
fn hugepages_now(buddy: &[BuddyInfoRecord]) -> u64 {
    buddy.iter().map(|b| b.nr_free[9] + 2 * b.nr_free[10]).sum()
}

/// What the background prediction last gave.
#[derive(Clone, Default)]
struct Predicted {
    /// When it finished, huge pages in the capture and after the model's compaction.
    done: Option<(Instant, u64, u64)>,
    /// Why it could not run, if it could not.
    error: Option<String>,
    running: bool,
}

/// Captures this machine and predicts `compact_memory` on it, every `every`, until `stop`
/// is set (a capture under way is finished first).
fn predict_loop(state: Arc<Mutex<Predicted>>, every: Duration, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut s) = state.lock() {
            s.running = true;
        }
        let r = crate::live::load_live().map(|loaded| {
            let now = kcompact::scenario::free_order9_blocks(&loaded.machine);
            let mut m = loaded.machine;
            m.compact_memory();
            (now, kcompact::scenario::free_order9_blocks(&m))
        });
        if let Ok(mut s) = state.lock() {
            s.running = false;
            match r {
                Ok((now, after)) => {
                    s.done = Some((Instant::now(), now, after));
                    s.error = None;
                }
                Err(e) => {
                    s.error = Some(format!("{e}"));
                    return;
                }
            }
        }
        let end = Instant::now() + every;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The screen (or block) for `cur`, with rates against `prev`.
fn render(
    cur: &Sample,
    prev: Option<&Sample>,
    pred: &Predicted,
    interval: Duration,
) -> Vec<String> {
    let mut lines = Vec::new();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    lines.push(format!(
        "kcompact watch — every {:.1}s — {:02}:{:02}:{:02} UTC — q quits",
        interval.as_secs_f64(),
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    ));
    lines.push(String::new());
    lines.push(format!(
        "{:<24} {}  {:>9} {:>8} {:>8} {:>8} {:>8}",
        "free blocks by order",
        (0..=10).map(|o| format!("{o:>7}")).collect::<String>(),
        "free",
        "min",
        "low",
        "high",
        "pcp"
    ));
    for b in &cur.buddy {
        let z = cur
            .zones
            .iter()
            .find(|z| z.node == b.node && z.name == b.name);
        let pcp: u64 = z.map_or(0, |z| z.pagesets.iter().map(|p| p.count).sum());
        let (free, min, low, high) = z.map_or((0, 0, 0, 0), |z| (z.free, z.min, z.low, z.high));
        lines.push(format!(
            "{:<24} {}  {:>9} {:>8} {:>8} {:>8} {:>8}",
            format!("Node {}, zone {:>8}", b.node, b.name),
            b.nr_free
                .iter()
                .map(|n| format!("{n:>7}"))
                .collect::<String>(),
            free,
            min,
            low,
            high,
            pcp
        ));
    }
    lines.push(String::new());
    let rate = |k: &str| -> String {
        let Some(p) = prev else {
            return "-".into();
        };
        let dt = cur.at.duration_since(p.at).as_secs_f64();
        match (cur.vmstat.get(k), p.vmstat.get(k)) {
            (Some(a), Some(b)) if dt > 0.0 => format!("{:.0}", a.saturating_sub(*b) as f64 / dt),
            _ => "-".into(),
        }
    };
    for (i, half) in RATES.chunks(6).enumerate() {
        lines.push(format!(
            "{:<12}{}",
            if i == 0 { "per second" } else { "" },
            half.iter()
                .map(|(_, h)| format!("{h:>13}"))
                .collect::<String>()
        ));
        lines.push(format!(
            "{:<12}{}",
            "",
            half.iter()
                .map(|(k, _)| format!("{:>13}", rate(k)))
                .collect::<String>()
        ));
    }
    lines.push(String::new());
    let now = hugepages_now(&cur.buddy);
    let after = match (&pred.done, &pred.error) {
        (_, Some(e)) => format!("after compaction: not predicted ({e})"),
        (Some((at, captured, after)), None) => format!(
            "after compaction (model, on a capture {}s ago holding {captured}): {after}{}",
            at.elapsed().as_secs(),
            if pred.running {
                "; capturing again"
            } else {
                ""
            }
        ),
        (None, None) => "after compaction: capturing and predicting...".into(),
    };
    lines.push(format!(
        "huge pages (free order>=9 blocks, order 10 counts two): now {now}; {after}"
    ));
    lines
}

/// Parses `1s`, `500ms`, `2` (seconds) or `1.5s`.
fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v * scale >= 0.1 && v * scale <= 3600.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => usage(format!(
            "--interval {s:?}: expected a time from 100ms to 3600s, e.g. 1s or 500ms"
        )),
    }
}

/// Leaves the terminal as it found it when dropped.
struct Screen;

impl Screen {
    fn take() -> anyhow::Result<Screen> {
        crossterm::terminal::enable_raw_mode().map_err(StdoutError)?;
        let s = Screen;
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )
        .map_err(StdoutError)?;
        Ok(s)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::cursor::Show,
            crossterm::terminal::LeaveAlternateScreen
        );
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Waits up to `d` for a key; true when it asks to quit.
fn quit_key(d: Duration) -> anyhow::Result<bool> {
    use crossterm::event::{poll, read, Event, KeyCode, KeyEventKind, KeyModifiers};
    let end = Instant::now() + d;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || !poll(left).map_err(StdoutError)? {
            return Ok(false);
        }
        if let Event::Key(k) = read().map_err(StdoutError)? {
            if k.kind == KeyEventKind::Press
                && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (k.code == KeyCode::Char('c')
                        && k.modifiers.contains(KeyModifiers::CONTROL)))
            {
                return Ok(true);
            }
        }
    }
}

/// `kcompact watch [--interval 1s] [--count N] [--predict-every 30s]`.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let interval = parse_interval(&args.interval)?;
    let every = match args.predict_every.as_deref() {
        Some("off") => None,
        Some(s) => Some(parse_interval(s)?),
        None => Some(Duration::from_secs(30)),
    };
    let cur = sample()?;
    let pred = Arc::new(Mutex::new(Predicted::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut worker = None;
    if let Some(every) = every {
        crate::ui::NO_PROGRESS.store(true, Ordering::Relaxed);
        let (state, stop) = (Arc::clone(&pred), Arc::clone(&stop));
        worker = Some(std::thread::spawn(move || predict_loop(state, every, stop)));
    } else if let Ok(mut p) = pred.lock() {
        p.error = Some("--predict-every off".into());
    }
    let r = show_until_quit(&args, interval, cur, &pred);
    // A capture under way finishes and removes its directory before the process ends.
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = worker {
        let _ = w.join();
    }
    r
}

/// Draws every `interval` until `q` (or `--count`).
fn show_until_quit(
    args: &WatchArgs,
    interval: Duration,
    mut cur: Sample,
    pred: &Mutex<Predicted>,
) -> anyhow::Result<()> {
    let mut prev = None;
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let screen = if tty { Some(Screen::take()?) } else { None };
    let mut shown = 0u64;
    loop {
        let p = pred.lock().map(|p| p.clone()).unwrap_or_default();
        let lines = render(&cur, prev.as_ref(), &p, interval);
        let mut out = std::io::stdout().lock();
        if screen.is_some() {
            crossterm::queue!(
                out,
                crossterm::cursor::MoveTo(0, 0),
                crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
            )
            .map_err(StdoutError)?;
            // Lines cut at the terminal's width: a wrapped line would scroll the screen.
            let width = crossterm::terminal::size().map_or(usize::MAX, |(w, _)| w as usize);
            for l in &lines {
                let cut: String = l.chars().take(width).collect();
                write!(out, "{cut}\r\n").map_err(StdoutError)?;
            }
        } else {
            for l in &lines {
                writeln!(out, "{l}").map_err(StdoutError)?;
            }
            writeln!(out).map_err(StdoutError)?;
        }
        out.flush().map_err(StdoutError)?;
        drop(out);
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            break;
        }
        let quit = if screen.is_some() {
            quit_key(interval)?
        } else {
            std::thread::sleep(interval);
            false
        };
        if quit {
            break;
        }
        prev = Some(cur);
        cur = sample()?;
    }
    drop(screen);
    Ok(())
}
