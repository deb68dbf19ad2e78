//! Flags and commands.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A deterministic model of Linux memory anti-fragmentation and compaction.
#[derive(Parser, Debug)]
#[command(name = "kcompact", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a workload on a model machine and print its figures and the kernel's views.
    ///
    /// Example: kcompact run --mem 4G --seed 7 --set steps=200000 --out /tmp/run1
    Run(RunArgs),
    /// List the scenarios, one line each with its source.
    ///
    /// Example: kcompact scenarios
    Scenarios,
    /// Run a scenario under two settings over several seeds and compare every metric.
    ///
    /// Example: kcompact ab file-holes --toggle compaction=on,off --seeds 5 --mem 1G
    Ab(AbArgs),
    /// Print a view of a freshly booted model machine in the kernel's format.
    ///
    /// Views: buddyinfo, pagetypeinfo, zoneinfo, extfrag.
    /// Example: kcompact show pagetypeinfo --mem 24G
    Show(ShowArgs),
    /// Predict what an action does to a real machine captured in a snapshot directory.
    ///
    /// Example: kcompact predict ../shared/data/realkernel/A2_g8_r1/before --action hugepages=4000
    Predict(PredictArgs),
    /// Capture this machine's memory state into a snapshot directory (Linux, root).
    ///
    /// Example: sudo kcompact capture /var/tmp/snap1
    Capture(CaptureArgs),
    /// Validate the model against this machine's kernel: fragment, capture, compact,
    /// capture, predict, compare; then drop caches and compare again (Linux, root; cleans
    /// up after itself).
    ///
    /// Example: sudo kcompact validate --gib 4
    Validate(ValidateArgs),
    /// Huge pages obtainable now and after compaction, and what blocks the rest.
    ///
    /// Example: kcompact analyze ../shared/data/realkernel/A2_g8_r1/before
    Analyze(AnalyzeArgs),
    /// Rank the operator's options (compact_memory, drop_caches, nr_hugepages, proactive
    /// compaction, defrag_mode, min_free_kbytes) by what a target gets against what each
    /// costs, each predicted on a snapshot or this machine.
    ///
    /// Example: kcompact advise ../shared/data/realkernel/A2_g8_r1/before --target hugepages=5000
    Advise(AdviseArgs),
    /// This machine's zones refreshed in the terminal: free pages by order, per-CPU pages,
    /// watermarks, compaction and migration per second, huge pages now and (root) after
    /// compaction. `q` quits; plain blocks when not a terminal.
    ///
    /// Example: kcompact watch --interval 1s
    Watch(WatchArgs),
    /// Replay a kmem/compaction trace (ftrace, trace-cmd or perf script text; .zst or
    /// plain) on the model: at the recorded pfns (exact) or where the model's allocator
    /// puts them (policy).
    ///
    /// Example: kcompact replay ../shared/data/trace/case0/trace.txt.zst --snapshot ../shared/data/trace/case0/start
    Replay(ReplayArgs),
    /// Write report.html: a self-contained page with the memory map, plots and the
    /// kernel-format tables of an --out directory or of a snapshot.
    ///
    /// Example: kcompact report ../shared/data/realkernel/A_g8_r1/before --out /tmp/a.html
    Report(ReportArgs),
    /// Why a real `page allocation failure` failed, and what would have made it succeed.
    ///
    /// Reads the kernel's report (dmesg, syslog or mail text of Linux 3.x-6.x, any
    /// architecture; DUMP `-` reads stdin) and shows the zones the request could use, each
    /// zone's watermark check on the report's numbers, the verdict, the changes that would
    /// have made it succeed and what the report does not say.
    ///
    /// Example: kcompact explain ../shared/data/dmesg/08-linux-fsdevel-steamdeck-dma32.txt
    ///
    /// Example: dmesg | kcompact explain - --json
    Explain(ExplainArgs),
    /// Run a grid of runs (scenarios × sizes × settings × seeds) on every core, one
    /// Parquet row per run; rows already in the output are kept and not run again.
    ///
    /// GRID.toml: `scenario = ["highalloc", "file-holes"]`, `mem = ["1G", "2G"]` (optional),
    /// `seeds = 5` (1..=5) or a list, and a `[settings]` table of `--set` keys, each a value
    /// or a list (`compaction = ["on", "off"]`).
    ///
    /// Example: kcompact sweep grid.toml --out results.parquet
    Sweep(SweepArgs),
    /// One Parquet row per snapshot: the machine, huge pages now / after compaction /
    /// after dropping caches, what blocks the rest, the unusable index at order 9; a
    /// snapshot that fails to load gets a row with its error.
    ///
    /// Example: kcompact census ../shared/data/realkernel/*/before --out fleet.parquet
    Census(CensusArgs),
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The grid file (TOML).
    pub grid: PathBuf,
    /// The Parquet file to write (kept rows and new ones).
    #[arg(long)]
    pub out: PathBuf,
    /// Runs at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct CensusArgs {
    /// Snapshot directories (the layout of `kcompact capture`).
    #[arg(required = true)]
    pub snapshots: Vec<PathBuf>,
    /// The Parquet file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Snapshots loaded at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The kernel log text holding the report (dmesg, syslog, a mail), or `-` for stdin.
    pub dump: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The trace file (`trace.txt`, `trace.txt.zst`, `perf script` output).
    pub trace: PathBuf,
    /// Start from this snapshot's state (default: an empty model of `--mem`).
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// exact: allocations at the recorded pfns; policy: the model chooses.
    #[arg(long, default_value = "exact")]
    pub mode: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write result.json, buddyinfo, timeline.csv, the report and the model's own tracepoints
    /// (model-trace.txt) into this new or empty directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an earlier output of kcompact in --out (never a snapshot or other files).
    #[arg(long)]
    pub force: bool,
    /// Also write the model's state at the end of the trace as a snapshot directory,
    /// --out's `snapshot/` (the layout of `kcompact capture`; `--snapshot` names the start).
    #[arg(long, requires = "out")]
    pub end_snapshot: bool,
    /// The most events the trace may hold (a longer trace is refused, not cut).
    #[arg(long, value_name = "N", default_value_t = 50_000_000)]
    pub max_events: u64,
    /// Refuse a trace with any malformed line (by default only one with more malformed
    /// lines than events).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// The machine every command builds.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Memory size: a number with an optional unit K, M, G or T (binary), e.g. 24G
    /// (default 4G; 1G for the scenarios of `run` and `ab`).
    #[arg(long)]
    pub mem: Option<String>,
    /// A setting as KEY=VALUE (repeatable); `kcompact run --set help=1` lists the keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario (`kcompact scenarios` lists them); default `highalloc`.
    pub scenario: Option<String>,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Seed of the run's random generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// New or empty directory to write result.json and the kernel-format files into.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an earlier output of kcompact in --out (never a snapshot or other files).
    #[arg(long)]
    pub force: bool,
    /// Also write the model's state at the end as a snapshot directory, --out's
    /// `snapshot/` (the layout of `kcompact capture`: predict and analyze load it).
    #[arg(long, requires = "out")]
    pub snapshot: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The view: buddyinfo, pagetypeinfo, zoneinfo, extfrag or map (one glyph per
    /// pageblock).
    pub view: String,
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// Where a command's machine comes from: a snapshot directory, or this machine now.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// The snapshot directory (zoneinfo, kpageflags[.zst], meta.txt, ...).
    #[arg(required_unless_present = "live", conflicts_with = "live")]
    pub snapshot: Option<PathBuf>,
    /// Read this machine's /proc now instead of a snapshot (Linux, root): what `capture`
    /// reads, loaded at once and not kept, the tool's own pages given back.
    #[arg(long)]
    pub live: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The action: `compact` (writing /proc/sys/vm/compact_memory), `drop-caches`
    /// (`echo 3 > /proc/sys/vm/drop_caches`) or `hugepages=N` (`echo N >
    /// /proc/sys/vm/nr_hugepages`).
    #[arg(long)]
    pub action: String,
    /// The CPU the task writing the file runs on (its per-CPU lists take the pages the
    /// action frees); 0 by default.
    #[arg(long, default_value_t = 0)]
    pub cpu: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A run-time tunable as KEY=VALUE for the loaded machine (repeatable; what-if, e.g.
    /// `--set compaction_proactiveness=0`); `kcompact run --set help=1` lists the keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also draw the memory map, one glyph per pageblock, as loaded and after compaction.
    #[arg(long)]
    pub map: bool,
    /// A run-time tunable as KEY=VALUE for the loaded machine (repeatable; what-if, e.g.
    /// `--set compaction_proactiveness=0`); `kcompact run --set help=1` lists the keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// What the operator wants: `hugepages=N`, a hugetlb pool of N huge pages (each option
    /// is followed by `echo N > /proc/sys/vm/nr_hugepages`).
    #[arg(long, conflicts_with = "order")]
    pub target: Option<String>,
    /// What the operator wants: free blocks of order K (9 when neither this nor --target
    /// is given).
    #[arg(long, value_name = "K")]
    pub order: Option<u8>,
    /// With --order: the number of order-K blocks that is enough (options that reach it
    /// rank by their cost alone).
    #[arg(long, value_name = "N", requires = "order")]
    pub count: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A run-time tunable as KEY=VALUE for the loaded machine before every option
    /// (repeatable); `kcompact run --set help=1` lists the keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// How often to refresh: 1s, 500ms, 2 (seconds); 100ms to 3600s.
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Stop after this many refreshes (default: until q).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// How often to capture the machine and predict compaction on it (root): a time as
    /// --interval takes, or `off`; 30s by default.
    #[arg(long, value_name = "TIME")]
    pub predict_every: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A directory `--out` wrote (its report.json is rendered again) or a snapshot
    /// directory (analyzed, with the map before and after `compact_memory`).
    pub dir: PathBuf,
    /// The HTML file to write (default: DIR/report.html; into a snapshot kcompact writes
    /// nothing else).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the report's data (report.json's content) to this file.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Replace an existing file that is not a report of kcompact's.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// The directory to write (created).
    pub dir: PathBuf,
    /// A label for meta.txt (default: the directory's name).
    #[arg(long)]
    pub label: Option<String>,
    /// zstd compression level (1..=19).
    #[arg(long, default_value_t = 3)]
    pub level: i32,
    /// Record the kmem and compaction tracepoints for this many seconds, with snapshots
    /// in DIR/start and DIR/end (the layout of ../shared/data/trace/case0).
    #[arg(long, value_name = "SECONDS")]
    pub trace: Option<u64>,
    /// Ring buffer per CPU for --trace, MiB (a full buffer drops and counts events).
    #[arg(long, default_value_t = 64)]
    pub trace_buffer_mb: u64,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// GiB of files to write (1..=8); half of them are deleted again.
    #[arg(long, default_value_t = 4)]
    pub gib: u64,
    /// Where to write the files (a disk-backed file system).
    #[arg(long, default_value = "/var/tmp")]
    pub dir: PathBuf,
    /// Keep the snapshots and the comparison in this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fail (exit 1) if the model's gain in free order >= 9 blocks is off the kernel's by
    /// more than this many percent: off the interval between the kernel's reading right
    /// after `compact_memory` and its settled reading (0 inside it), relative to the
    /// nearer end.
    #[arg(long, value_name = "PCT")]
    pub check: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// What to validate: `compact` (`compact_memory`, then `drop_caches`) or
    /// `hugepages=N` (`echo N > nr_hugepages`, the pool given back after; with --check the
    /// pool's error bounds).
    #[arg(long, default_value = "compact")]
    pub action: String,
}

#[derive(Args, Debug)]
pub struct AbArgs {
    /// The scenario.
    pub scenario: String,
    /// The setting to compare, as KEY=A,B (e.g. compaction=on,off).
    #[arg(long)]
    pub toggle: String,
    /// Seeds per side (1..=1000).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write ab.json and report.html (the A/B charts) into this new or empty directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an earlier output of kcompact in --out (never a snapshot or other files).
    #[arg(long)]
    pub force: bool,
    /// Also write each side's model at the end of its first seed as a snapshot directory,
    /// --out's `snapshot-a/` and `snapshot-b/` (the layout of `kcompact capture`).
    #[arg(long, requires = "out")]
    pub snapshot: bool,
}
