//! A private tracefs instance: chosen events, a bounded ring buffer that drops (and counts)
//! what does not fit, removed on every exit path. `kcompact capture --trace` records
//! through it, and `validate` traces the kernel's compaction with it.

use crate::ui::usage;
use anyhow::Context;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const TRACEFS: &str = "/sys/kernel/tracing";

/// A private tracefs instance with some events enabled, removed when dropped.
pub struct Instance {
    dir: PathBuf,
    events: Vec<String>,
}

impl Instance {
    /// Creates the instance (mounting tracefs if needed) with `buffer_mb` MiB of ring
    /// buffer per CPU, overwrite off (a full buffer drops new events, counted), and
    /// `events` (`system/event` or `system`) enabled; tracing starts at once.
    pub fn start(events: &[&str], buffer_mb: u64) -> anyhow::Result<Instance> {
        let root = Path::new(TRACEFS);
        if !root.join("instances").is_dir() {
            // Mount tracefs where the kernel expects it.
            let _ = std::process::Command::new("mount")
                .args(["-t", "tracefs", "nodev", TRACEFS])
                .status();
        }
        if !root.join("instances").is_dir() {
            return usage(format!(
                "{TRACEFS}/instances: no tracefs (needs root and CONFIG_TRACING)"
            ));
        }
        let dir = root
            .join("instances")
            .join(format!("kcompact-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let inst = Instance {
            dir,
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        inst.write("tracing_on", "0")?;
        inst.write("buffer_size_kb", &(buffer_mb * 1024).to_string())?;
        inst.write("options/overwrite", "0")?;
        for e in events {
            inst.write(&format!("events/{e}/enable"), "1")?;
        }
        inst.write("tracing_on", "1")?;
        Ok(inst)
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let p = self.dir.join(file);
        std::fs::write(&p, value).with_context(|| format!("writing {value} to {}", p.display()))
    }

    /// Stops recording (the buffer keeps what it has).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.write("tracing_on", "0")
    }

    /// Events lost to a full buffer, summed over CPUs, and the per-CPU stats text.
    pub fn lost_events(&self) -> anyhow::Result<(u64, String)> {
        let mut stats = String::new();
        let per_cpu = self.dir.join("per_cpu");
        let mut cpus: Vec<PathBuf> = std::fs::read_dir(&per_cpu)
            .with_context(|| per_cpu.display().to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        cpus.sort();
        let mut dropped = 0u64;
        for c in cpus {
            if let Ok(t) = std::fs::read_to_string(c.join("stats")) {
                for l in t.lines() {
                    if let Some(n) = l.strip_prefix("dropped events:") {
                        dropped += n.trim().parse::<u64>().unwrap_or(0);
                    }
                    if let Some(n) = l.strip_prefix("overrun:") {
                        dropped += n.trim().parse::<u64>().unwrap_or(0);
                    }
                }
                stats.push_str(&t);
            }
        }
        Ok((dropped, stats))
    }

    /// Writes the buffer's text to `dst`, zstd-compressed as it is read; returns its size.
    pub fn save_text(&self, dst: &Path, level: i32) -> anyhow::Result<u64> {
        let src = self.dir.join("trace");
        let mut input = std::fs::File::open(&src).with_context(|| src.display().to_string())?;
        let out = std::fs::File::create(dst).with_context(|| dst.display().to_string())?;
        let mut enc = zstd::Encoder::new(out, level)?;
        let n = std::io::copy(&mut input, &mut enc).with_context(|| src.display().to_string())?;
        enc.finish()?.flush()?;
        Ok(n)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("tracing_on"), "0");
        for e in &self.events {
            let _ = std::fs::write(self.dir.join("events").join(e).join("enable"), "0");
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
