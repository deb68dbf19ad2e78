//! `kcompact capture DIR`: a snapshot of this machine (`capture.rs`), or with `--trace
//! SECONDS` the kmem and compaction tracepoints recorded through a private tracefs
//! instance (`tracefs.rs`), bounded in time and buffer size, with snapshots at its start
//! and end — the layout of `../shared/data/trace/case0`: `start/`, `trace.txt.zst`,
//! `ringbuffer_stats.txt` (lost events), `buddyinfo_end_immediate` (read as tracing
//! stops), `end/`.

use crate::capture::capture_to;
use crate::cli::CaptureArgs;
use crate::tracefs::Instance;
use crate::ui::{outln, usage};
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};

/// The events recorded (`system/event`, or `system` for all of it).
const EVENTS: &[&str] = &[
    "kmem/mm_page_alloc",
    "kmem/mm_page_free",
    "kmem/mm_page_free_batched",
    "kmem/mm_page_alloc_extfrag",
    "kmem/mm_page_alloc_zone_locked",
    "kmem/mm_page_pcpu_drain",
    "migrate/mm_migrate_pages",
    "compaction",
];

/// `kcompact capture DIR`.
pub fn capture(args: CaptureArgs) -> anyhow::Result<()> {
    if !Path::new("/proc/kpageflags").exists() {
        return usage(
            "/proc/kpageflags: not there (capture needs Linux with CONFIG_PROC_PAGE_MONITOR)",
        );
    }
    if !(1..=19).contains(&args.level) {
        return usage(format!("--level {}: zstd levels 1..=19", args.level));
    }
    let label = args.label.clone().unwrap_or_else(|| {
        args.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    if let Some(secs) = args.trace {
        return capture_trace(&args.dir, secs, args.trace_buffer_mb, args.level);
    }
    let c = capture_to(&args.dir, &label, args.level)?;
    let mb = c.raw_bytes as f64 / 1e6;
    outln!(
        "captured {} in {:.2} s: kpageflags {:.1} MB in {:.3} s ({:.0} MB/s)",
        c.dir.display(),
        c.total_s,
        mb,
        c.kpageflags_s,
        mb / c.kpageflags_s.max(1e-9)
    );
    Ok(())
}

/// Records `seconds` of events into `dir` with `buffer_mb` MiB of ring buffer per CPU.
fn capture_trace(dir: &Path, seconds: u64, buffer_mb: u64, level: i32) -> anyhow::Result<()> {
    if !(1..=3600).contains(&seconds) {
        return usage(format!("--trace {seconds}: 1..=3600 seconds"));
    }
    if !(1..=4096).contains(&buffer_mb) {
        return usage(format!("--trace-buffer-mb {buffer_mb}: 1..=4096"));
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let inst = Instance::start(EVENTS, buffer_mb)?;
    let t0 = Instant::now();
    capture_to(&dir.join("start"), "start", level)?;
    let bar = crate::ui::progress_bar(seconds, "{bar:40} {pos}/{len} s tracing");
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(b) = &bar {
            b.set_position(t0.elapsed().as_secs().min(seconds));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    inst.stop()?;
    std::fs::write(
        dir.join("buddyinfo_end_immediate"),
        std::fs::read_to_string("/proc/buddyinfo")?,
    )?;
    let (dropped, stats) = inst.lost_events()?;
    std::fs::write(dir.join("ringbuffer_stats.txt"), &stats)?;
    let bytes = inst.save_text(&dir.join("trace.txt.zst"), level)?;
    // The instance goes once nothing holds its files open.
    drop(inst);
    capture_to(&dir.join("end"), "end", level)?;
    outln!(
        "traced {seconds} s into {}: {:.1} MB of trace text, {dropped} events lost{}",
        dir.display(),
        bytes as f64 / 1e6,
        if dropped > 0 {
            " (raise --trace-buffer-mb)"
        } else {
            ""
        }
    );
    Ok(())
}
