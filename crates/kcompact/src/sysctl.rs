//! The machine's tunables: the `/proc/sys/vm` files, the transparent-hugepage sysfs files and
//! the boot choices the model reads, and one table that names them all.
//!
//! [`TUNABLES`] is shaped like the kernel's `ctl_table` arrays (`vm_table[]` in
//! kernel/sysctl.c, `vm_compaction[]` at the end of mm/compaction.c, `page_alloc_sysctl_table[]`
//! in mm/page_alloc.c): each entry has a name, how its value is read and bounded (the
//! `proc_handler` with `extra1`/`extra2`), whether it can change on a running machine, a
//! help line, and the field it writes. Every way into the model (the command line's `--set`,
//! a scenario's machine defaults, replay and predict on a snapshot, the Python API) sets
//! tunables through [`MachineConfig::set`] or [`VmConfig::set_runtime`], so each range lives
//! here once.
//!
//! Architecture Invariant: this file holds state and parsing only; the effects of a change
//! (watermarks recomputed, daemons woken) are the behaviour files'.

use crate::layout::MAX_NR_ZONES;
use crate::size::parse_size;
use std::fmt;
use thiserror::Error;

/// Tunables of the allocator: the `/proc/sys/vm` files, the THP sysfs files and the boot
/// choices it reads. [`TUNABLES`] is how they are set by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// `vm.min_free_kbytes` as set by the user; `None` lets the kernel compute it.
    pub user_min_free_kbytes: Option<u64>,
    /// `vm.watermark_scale_factor` (1..=3000, default 10).
    pub watermark_scale_factor: u32,
    /// `vm.watermark_boost_factor` (default 15000; 0 disables boosting).
    pub watermark_boost_factor: u32,
    /// `vm.lowmem_reserve_ratio` per zone type.
    pub lowmem_reserve_ratio: [u32; MAX_NR_ZONES],
    /// THP enabled (`always` or `madvise`): khugepaged raises `min_free_kbytes` to its
    /// recommended value (`set_recommended_min_free_kbytes()`).
    pub thp_enabled: bool,
    /// CONFIG_CMA: the CMA migratetype exists and the views print it.
    pub config_cma: bool,
    /// Pages of CMA area to reserve at the top of the highest populated zone of node 0
    /// (needs `config_cma`).
    pub cma_pages: u64,
    /// `vm.defrag_mode` (Linux 6.15+, default 0): always ALLOC_NOFRAGMENT.
    pub defrag_mode: bool,
    /// `vm.extfrag_threshold` (0..=1000, default 500).
    pub extfrag_threshold: u32,
    /// `vm.compaction_proactiveness` (0..=100, default 20).
    pub compaction_proactiveness: u32,
    /// `vm.compact_unevictable_allowed` (default 1).
    pub compact_unevictable_allowed: bool,
    /// Which pinned pages the migrate scanner skips (seeds 000/001).
    pub skip_pinned: SkipPinned,
    /// CONFIG_COMPACTION (`compaction=off`: today's allocator without compaction).
    pub compaction: bool,
    /// Lumpy reclaim (`reclaim_mode=lumpy`): reclaim for a high order frees the pages
    /// around its targets, as Linux did before 3.5 (2.6.35's rules).
    pub reclaim_lumpy: bool,
    /// The slow path's retry rules of Linux 2.6.35 (`alloc_retry=2.6.35`): after direct
    /// reclaim, `should_alloc_retry()` (a costly `__GFP_RETRY_MAYFAIL` request retries until
    /// it has reclaimed `1 << order` pages) instead of today's reclaim and compaction retries.
    pub alloc_retry_2_6_35: bool,
    /// Non-LRU movable pages (`non_lru_movable=off`: before Linux 4.8, driver pages are
    /// unmovable).
    pub non_lru_movable: bool,
    /// How compaction treats large folios (seed 002).
    pub folio_compaction: FolioCompaction,
    /// `vm.swappiness` (0..=200, default 60).
    pub swappiness: u32,
    /// Swap space in pages (0: no swap, the default).
    pub swap_pages: u64,
    /// The swap device is zram (`swap_device=zram`): swapped pages are compressed into a
    /// zsmalloc pool in memory, synchronously, instead of written to a disk.
    pub zram: bool,
    /// The cost model that turns work into simulated time.
    pub costs: crate::clock::CostModel,
    /// `transparent_hugepage/defrag`.
    pub thp_defrag: ThpDefrag,
    /// `transparent_hugepage/enabled` is `madvise` rather than `always` (with `thp_enabled`).
    pub thp_madvise_only: bool,
    /// Anonymous folio orders faults may use (bit `o` for order `o`; the mTHP sizes'
    /// `enabled` files). The default is the PMD order alone.
    pub thp_orders: u16,
    /// Per-CPU page lists (`pcp=on`, Linux's): orders 0..=3 and the THP order are
    /// allocated from and freed to each CPU's lists. `off` sends every allocation and free
    /// straight to the buddy lists (the model before it had them).
    pub pcp: bool,
    /// Online CPUs (`nr_cpu_ids`), each with its own per-CPU lists.
    pub cpus: u32,
    /// `vm.percpu_pagelist_high_fraction`: 0 lets `high` auto-tune between the low
    /// watermark and managed/8 per CPU; N (at least 8) fixes it at managed/N per CPU.
    pub percpu_pagelist_high_fraction: u32,
    /// `PCPF_FREE_HIGH_BATCH`: the CPU's data cache slice holds more than three batches
    /// (true on this project's machine, whose CPUs have megabytes of cache each).
    pub pcp_free_high_batch: bool,
}

/// How compaction treats large folios and free pages (`folio_compaction`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FolioCompaction {
    /// Before Linux 6.9: isolated free pages are split to order 0 and large folios are
    /// skipped by the migrate scanner.
    Split,
    /// Since Linux 6.9 (Zi Yan): free pages are kept per order and large folios migrate whole.
    #[default]
    PerOrder,
}

/// Which pinned pages compaction's migrate scanner leaves alone (`skip_pinned`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SkipPinned {
    /// Today's Linux: anonymous folios with more references than mappings (Rientjes 2014).
    #[default]
    AnonOnly,
    /// Khalid Aziz's 2023 patch: any folio with references beyond the expected ones and its
    /// mappings, outside ZONE_MOVABLE and CMA.
    ExtraRefs,
    /// The reviewers' suggestion: any folio `folio_maybe_dma_pinned()` says may be pinned.
    DmaPinned,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            user_min_free_kbytes: None,
            watermark_scale_factor: 10,
            watermark_boost_factor: 15000,
            lowmem_reserve_ratio: [256, 256, 32, 0, 0],
            thp_enabled: true,
            config_cma: false,
            cma_pages: 0,
            defrag_mode: false,
            extfrag_threshold: 500,
            compaction_proactiveness: 20,
            compact_unevictable_allowed: true,
            skip_pinned: SkipPinned::AnonOnly,
            compaction: true,
            reclaim_lumpy: false,
            alloc_retry_2_6_35: false,
            non_lru_movable: true,
            folio_compaction: FolioCompaction::PerOrder,
            swappiness: 60,
            swap_pages: 0,
            zram: false,
            costs: crate::clock::CostModel::default(),
            thp_defrag: ThpDefrag::Madvise,
            thp_madvise_only: false,
            thp_orders: 1 << 9,
            pcp: true,
            cpus: 2,
            percpu_pagelist_high_fraction: 0,
            pcp_free_high_batch: true,
        }
    }
}

/// `/sys/kernel/mm/transparent_hugepage/defrag`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ThpDefrag {
    /// `always`: direct reclaim and compaction; `__GFP_NORETRY` unless madvised.
    Always,
    /// `defer`: wake kswapd and kcompactd, never stall.
    Defer,
    /// `defer+madvise`: stall if madvised, otherwise wake the daemons.
    DeferMadvise,
    /// `madvise` (the default): stall if madvised, otherwise nothing.
    #[default]
    Madvise,
    /// `never`.
    Never,
}

impl ThpDefrag {
    /// The sysfs spelling.
    pub fn name(self) -> &'static str {
        match self {
            ThpDefrag::Always => "always",
            ThpDefrag::Defer => "defer",
            ThpDefrag::DeferMadvise => "defer+madvise",
            ThpDefrag::Madvise => "madvise",
            ThpDefrag::Never => "never",
        }
    }

    /// Parses the sysfs spelling.
    pub fn parse(s: &str) -> Option<ThpDefrag> {
        [
            ThpDefrag::Always,
            ThpDefrag::Defer,
            ThpDefrag::DeferMadvise,
            ThpDefrag::Madvise,
            ThpDefrag::Never,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A tunable out of its kernel range.
    #[error("{key}={value}: out of range {range}")]
    OutOfRange {
        /// The tunable's name.
        key: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        range: String,
    },
    /// A value that is not of the tunable's kind.
    #[error("{key}={value}: expected {expected}")]
    BadValue {
        /// The tunable's name.
        key: String,
        /// The value given.
        value: String,
        /// What the tunable takes.
        expected: String,
    },
    /// A name no tunable has.
    #[error("{key}: unknown key (known: {known})")]
    UnknownKey {
        /// The name given.
        key: String,
        /// Every name there is, comma-separated.
        known: String,
    },
    /// A boot-time choice given for a machine that has booted (a snapshot, a live model).
    #[error("{key}: {why}")]
    NotAtRunTime {
        /// The tunable's name.
        key: &'static str,
        /// Why it cannot change now.
        why: &'static str,
    },
    /// zram without a swap size (its disksize).
    #[error("zram needs a swap size (its disksize)")]
    Zram,
    /// CMA pages without CONFIG_CMA, or more than the zone holds.
    #[error("cma: {0}")]
    Cma(String),
}

/// How a tunable's text is read: the model's `proc_handler`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `on|off` (also `1|0`, `true|false`, `yes|no`); printed `1`/`0` when `numeric` (a
    /// sysctl file), else `on`/`off`.
    Bool {
        /// Printed as a number.
        numeric: bool,
    },
    /// A whole number in `min..=max` (`proc_dointvec_minmax` with `extra1`/`extra2`).
    Int {
        /// `extra1`.
        min: u64,
        /// `extra2`.
        max: u64,
    },
    /// A size: a number with an optional unit K, M, G or T (binary).
    Size,
    /// A size, or `N%` of the machine's memory.
    SizeOrPct,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl Handler {
    /// What the handler takes, for messages and help.
    pub fn expected(&self) -> String {
        match self {
            Handler::Bool { .. } => "on or off".into(),
            Handler::Int { min, max } => format!("a whole number {min}..={max}"),
            Handler::Size => "a size such as 512M or 2G".into(),
            Handler::SizeOrPct => "a size such as 2G, or a percentage 0%..=100% of --mem".into(),
            Handler::Choice(words) => match words {
                [] => String::new(),
                [one] => (*one).to_string(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
            },
        }
    }
}

/// A tunable's value, read by its [`Handler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// From [`Handler::Bool`].
    Bool(bool),
    /// From [`Handler::Int`].
    Int(u64),
    /// From [`Handler::Size`] and [`Handler::SizeOrPct`]: bytes.
    Bytes(u64),
    /// From [`Handler::Choice`].
    Choice(&'static str),
    /// Left to the kernel to compute (`min_free_kbytes` not set).
    Auto,
}

/// When a tunable can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Before boot only: the layout, the config options, the devices.
    Boot,
    /// On a running machine too (a sysctl or sysfs write, or a switch between kernels'
    /// rules that applies to whatever state the machine is in).
    Runtime,
}

/// Mirrors one `struct ctl_table` entry.
pub struct Tunable {
    /// The key (`procname`).
    pub name: &'static str,
    /// How the value is read and bounded (`proc_handler`, `extra1`, `extra2`).
    pub handler: Handler,
    /// When it can change.
    pub scope: Scope,
    /// The file of a real machine it mirrors (`/proc/sys/vm/NAME`, or a sysfs path), so a
    /// snapshot's own value can be read; `None` for the model's own switches.
    pub file: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
    /// Writes a value that passed the handler (`data`).
    pub set: fn(&mut MachineConfig, Value),
    /// Reads it back.
    pub get: fn(&MachineConfig) -> Value,
}

impl Tunable {
    /// Reads `text` by the handler; `mem_bytes` resolves percentages.
    pub fn parse(&self, text: &str, mem_bytes: u64) -> Result<Value, ConfigError> {
        let bad = || ConfigError::BadValue {
            key: self.name.to_string(),
            value: text.to_string(),
            expected: self.handler.expected(),
        };
        match self.handler {
            Handler::Bool { .. } => match text {
                "on" | "1" | "true" | "yes" => Ok(Value::Bool(true)),
                "off" | "0" | "false" | "no" => Ok(Value::Bool(false)),
                _ => Err(bad()),
            },
            Handler::Int { min, max } => {
                let n: u64 = text.parse().map_err(|_| bad())?;
                if !(min..=max).contains(&n) {
                    return Err(ConfigError::OutOfRange {
                        key: self.name,
                        value: n,
                        range: format!("{min}..={max}"),
                    });
                }
                Ok(Value::Int(n))
            }
            Handler::Size => parse_size(text).map(Value::Bytes).map_err(|_| bad()),
            Handler::SizeOrPct => match text.strip_suffix('%') {
                Some(p) => match p.parse::<u64>() {
                    Ok(p) if p <= 100 => Ok(Value::Bytes(mem_bytes / 100 * p)),
                    _ => Err(bad()),
                },
                None => parse_size(text).map(Value::Bytes).map_err(|_| bad()),
            },
            Handler::Choice(words) => words
                .iter()
                .find(|w| **w == text)
                .map(|w| Value::Choice(w))
                .ok_or_else(bad),
        }
    }

    /// The value in `cfg` as `--set` would spell it.
    pub fn show(&self, cfg: &MachineConfig) -> String {
        match ((self.get)(cfg), self.handler) {
            (Value::Bool(b), Handler::Bool { numeric: true }) => (b as u8).to_string(),
            (Value::Bool(b), _) => if b { "on" } else { "off" }.to_string(),
            (Value::Int(n), _) => n.to_string(),
            (Value::Bytes(b), _) => crate::size::format_size(b),
            (Value::Choice(w), _) => w.to_string(),
            (Value::Auto, _) => "auto".to_string(),
        }
    }
}

impl fmt::Debug for Tunable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunable").field("name", &self.name).finish()
    }
}

fn int(v: Value) -> u64 {
    match v {
        Value::Int(n) | Value::Bytes(n) => n,
        Value::Bool(b) => b as u64,
        Value::Choice(_) | Value::Auto => unreachable!("a number's handler gives a number"),
    }
}

fn flag(v: Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn word(v: Value) -> &'static str {
    match v {
        Value::Choice(w) => w,
        _ => unreachable!("a choice's handler gives a word"),
    }
}

/// `INT_MAX`, the bound of the kernel's int sysctls.
const INT_MAX: u64 = i32::MAX as u64;

/// Every tunable, in the order `--set help=1` lists them.
pub static TUNABLES: &[Tunable] = &[
    Tunable {
        name: "nodes",
        handler: Handler::Int { min: 1, max: crate::layout::MAX_NODES as u64 },
        scope: Scope::Boot,
        file: None,
        help: "NUMA nodes (at most 50: five zones each, 250 zones), memory above 4 GiB split evenly in 4 MiB blocks, nodes without memory when there is none",
        set: |c, v| c.nodes = int(v) as u32,
        get: |c| Value::Int(c.nodes as u64),
    },
    Tunable {
        name: "movable",
        handler: Handler::Size,
        scope: Scope::Boot,
        file: None,
        help: "ZONE_MOVABLE size per node (like movablecore=), e.g. 1G",
        set: |c, v| c.movable_bytes = int(v),
        get: |c| Value::Bytes(c.movable_bytes),
    },
    Tunable {
        name: "min_free_kbytes",
        handler: Handler::Int { min: 0, max: INT_MAX },
        scope: Scope::Runtime,
        file: Some("min_free_kbytes"),
        help: "vm.min_free_kbytes (default: computed, then raised by khugepaged if thp=on)",
        set: |c, v| c.vm.user_min_free_kbytes = Some(int(v)),
        get: |c| c.vm.user_min_free_kbytes.map_or(Value::Auto, Value::Int),
    },
    Tunable {
        name: "watermark_scale_factor",
        handler: Handler::Int { min: 1, max: 3000 },
        scope: Scope::Runtime,
        file: Some("watermark_scale_factor"),
        help: "vm.watermark_scale_factor (default 10)",
        set: |c, v| c.vm.watermark_scale_factor = int(v) as u32,
        get: |c| Value::Int(c.vm.watermark_scale_factor as u64),
    },
    Tunable {
        name: "watermark_boost_factor",
        handler: Handler::Int { min: 0, max: INT_MAX },
        scope: Scope::Runtime,
        file: Some("watermark_boost_factor"),
        help: "vm.watermark_boost_factor (default 15000, 0 = off)",
        set: |c, v| c.vm.watermark_boost_factor = int(v) as u32,
        get: |c| Value::Int(c.vm.watermark_boost_factor as u64),
    },
    Tunable {
        name: "thp",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Boot,
        file: None,
        help: "THP enabled (khugepaged's recommended min_free_kbytes), default on",
        set: |c, v| c.vm.thp_enabled = flag(v),
        get: |c| Value::Bool(c.vm.thp_enabled),
    },
    Tunable {
        name: "cma",
        handler: Handler::SizeOrPct,
        scope: Scope::Boot,
        file: None,
        help: "size of a CMA area, or N% of --mem (enables CONFIG_CMA in the views), default 0",
        set: |c, v| {
            c.vm.config_cma = int(v) > 0;
            c.vm.cma_pages = int(v) >> 12;
        },
        get: |c| Value::Bytes(c.vm.cma_pages << 12),
    },
    Tunable {
        name: "defrag_mode",
        handler: Handler::Bool { numeric: true },
        scope: Scope::Runtime,
        file: Some("defrag_mode"),
        help: "vm.defrag_mode (Linux 6.15+), default 0",
        set: |c, v| c.vm.defrag_mode = flag(v),
        get: |c| Value::Bool(c.vm.defrag_mode),
    },
    Tunable {
        name: "compaction",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Runtime,
        file: None,
        help: "CONFIG_COMPACTION (off: the 2010 baseline, reclaim only)",
        set: |c, v| c.vm.compaction = flag(v),
        get: |c| Value::Bool(c.vm.compaction),
    },
    Tunable {
        name: "reclaim_mode",
        handler: Handler::Choice(&["default", "lumpy"]),
        scope: Scope::Runtime,
        file: None,
        help: "reclaim for high orders: default (today's) or lumpy (before Linux 3.5: the pages around each target in its block, 2.6.35's rules)",
        set: |c, v| c.vm.reclaim_lumpy = word(v) == "lumpy",
        get: |c| Value::Choice(if c.vm.reclaim_lumpy { "lumpy" } else { "default" }),
    },
    Tunable {
        name: "alloc_retry",
        handler: Handler::Choice(&["default", "2.6.35"]),
        scope: Scope::Runtime,
        file: None,
        help: "the slow path's retry rules after direct reclaim: default (today's) or 2.6.35 (should_alloc_retry(): a costly __GFP_RETRY_MAYFAIL request retries until it has reclaimed 1 << order pages)",
        set: |c, v| c.vm.alloc_retry_2_6_35 = word(v) == "2.6.35",
        get: |c| Value::Choice(if c.vm.alloc_retry_2_6_35 { "2.6.35" } else { "default" }),
    },
    Tunable {
        name: "kernel",
        handler: Handler::Choice(&["default", "2.6.35"]),
        scope: Scope::Boot,
        file: None,
        help: "a kernel's switches at once: 2.6.35 (seed 003's vanilla: compaction=off reclaim_mode=lumpy alloc_retry=2.6.35 thp=off watermark_boost_factor=0 non_lru_movable=off folio_compaction=split defrag_mode=0) or default (today's)",
        set: |c, v| c.vm.set_kernel(word(v) == "2.6.35"),
        get: |c| Value::Choice(if c.vm.is_kernel_2_6_35() { "2.6.35" } else { "default" }),
    },
    Tunable {
        name: "non_lru_movable",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Boot,
        file: None,
        help: "driver pages (zsmalloc, balloon, GPU) are movable (off: before Linux 4.8)",
        set: |c, v| c.vm.non_lru_movable = flag(v),
        get: |c| Value::Bool(c.vm.non_lru_movable),
    },
    Tunable {
        name: "skip_pinned",
        handler: Handler::Choice(&["anon-only", "extra-refs", "dma-pinned"]),
        scope: Scope::Runtime,
        file: None,
        help: "which pinned pages compaction skips (default anon-only, today's Linux)",
        set: |c, v| c.vm.skip_pinned = SkipPinned::from_name(word(v)),
        get: |c| Value::Choice(c.vm.skip_pinned.name()),
    },
    Tunable {
        name: "folio_compaction",
        handler: Handler::Choice(&["split", "per-order"]),
        scope: Scope::Runtime,
        file: None,
        help: "free pages split to order 0 and large folios skipped (before 6.9) or kept per order (default)",
        set: |c, v| c.vm.folio_compaction = FolioCompaction::from_name(word(v)),
        get: |c| Value::Choice(c.vm.folio_compaction.name()),
    },
    Tunable {
        name: "compaction_proactiveness",
        handler: Handler::Int { min: 0, max: 100 },
        scope: Scope::Runtime,
        file: Some("compaction_proactiveness"),
        help: "vm.compaction_proactiveness (default 20)",
        set: |c, v| c.vm.compaction_proactiveness = int(v) as u32,
        get: |c| Value::Int(c.vm.compaction_proactiveness as u64),
    },
    Tunable {
        name: "extfrag_threshold",
        handler: Handler::Int { min: 0, max: 1000 },
        scope: Scope::Runtime,
        file: Some("extfrag_threshold"),
        help: "vm.extfrag_threshold (default 500)",
        set: |c, v| c.vm.extfrag_threshold = int(v) as u32,
        get: |c| Value::Int(c.vm.extfrag_threshold as u64),
    },
    Tunable {
        name: "compact_unevictable_allowed",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Runtime,
        file: Some("compact_unevictable_allowed"),
        help: "vm.compact_unevictable_allowed (default on)",
        set: |c, v| c.vm.compact_unevictable_allowed = flag(v),
        get: |c| Value::Bool(c.vm.compact_unevictable_allowed),
    },
    Tunable {
        name: "swap",
        handler: Handler::SizeOrPct,
        scope: Scope::Boot,
        file: None,
        help: "swap space, e.g. 2G or 50% of --mem (default 0: no swap)",
        set: |c, v| c.vm.swap_pages = int(v) >> 12,
        get: |c| Value::Bytes(c.vm.swap_pages << 12),
    },
    Tunable {
        name: "zram",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Boot,
        file: None,
        help: "the swap device is zram, a zsmalloc pool in memory (default off: a disk)",
        set: |c, v| c.vm.zram = flag(v),
        get: |c| Value::Bool(c.vm.zram),
    },
    Tunable {
        name: "swappiness",
        handler: Handler::Int { min: 0, max: 200 },
        scope: Scope::Runtime,
        file: Some("swappiness"),
        help: "vm.swappiness (default 60)",
        set: |c, v| c.vm.swappiness = int(v) as u32,
        get: |c| Value::Int(c.vm.swappiness as u64),
    },
    Tunable {
        name: "thp_defrag",
        handler: Handler::Choice(&["always", "defer", "defer+madvise", "madvise", "never"]),
        scope: Scope::Runtime,
        file: Some("/sys/kernel/mm/transparent_hugepage/defrag"),
        help: "transparent_hugepage/defrag (default madvise)",
        set: |c, v| c.vm.thp_defrag = ThpDefrag::parse(word(v)).unwrap_or_default(),
        get: |c| Value::Choice(c.vm.thp_defrag.name()),
    },
    Tunable {
        name: "pcp",
        handler: Handler::Bool { numeric: false },
        scope: Scope::Boot,
        file: None,
        help: "per-CPU page lists (default on, Linux's; off: every free goes straight to the buddy lists)",
        set: |c, v| c.vm.pcp = flag(v),
        get: |c| Value::Bool(c.vm.pcp),
    },
    Tunable {
        name: "cpus",
        handler: Handler::Int { min: 1, max: 256 },
        scope: Scope::Boot,
        file: None,
        help: "online CPUs, each with its own per-CPU page lists (default 2)",
        set: |c, v| c.vm.cpus = int(v) as u32,
        get: |c| Value::Int(c.vm.cpus as u64),
    },
    Tunable {
        name: "percpu_pagelist_high_fraction",
        handler: Handler::Int { min: 0, max: INT_MAX },
        scope: Scope::Runtime,
        file: Some("percpu_pagelist_high_fraction"),
        help: "vm.percpu_pagelist_high_fraction (0 = auto-tuned, default; else at least 8)",
        set: |c, v| c.vm.percpu_pagelist_high_fraction = int(v) as u32,
        get: |c| Value::Int(c.vm.percpu_pagelist_high_fraction as u64),
    },
    Tunable {
        name: "integrity",
        handler: Handler::Choice(&["off", "stamps", "bytes"]),
        scope: Scope::Boot,
        file: None,
        help: "track page contents, check every owner's data at the end (bytes: real 4 KiB pages, up to --mem 8G)",
        set: |c, v| c.integrity = Integrity::from_name(word(v)),
        get: |c| Value::Choice(c.integrity.name()),
    },
];

/// The table entry named `key`.
pub fn tunable(key: &str) -> Option<&'static Tunable> {
    TUNABLES.iter().find(|t| t.name == key)
}

fn unknown(key: &str, extra: &[&str]) -> ConfigError {
    let mut known: Vec<&str> = TUNABLES.iter().map(|t| t.name).collect();
    known.extend(extra);
    ConfigError::UnknownKey {
        key: key.to_string(),
        known: known.join(", "),
    }
}

/// Content tracking (`integrity`): whether and how the model keeps what owners wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Integrity {
    /// Nothing tracked.
    #[default]
    Off,
    /// One stamp per page.
    Stamps,
    /// Real 4 KiB contents per page.
    Bytes,
}

impl Integrity {
    /// The `--set integrity=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Integrity::Off => "off",
            Integrity::Stamps => "stamps",
            Integrity::Bytes => "bytes",
        }
    }

    fn from_name(w: &str) -> Integrity {
        match w {
            "stamps" => Integrity::Stamps,
            "bytes" => Integrity::Bytes,
            _ => Integrity::Off,
        }
    }
}

/// Everything a machine is booted from: its size and shape and its tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Memory in bytes.
    pub mem_bytes: u64,
    /// NUMA nodes.
    pub nodes: u32,
    /// ZONE_MOVABLE bytes per node.
    pub movable_bytes: u64,
    /// Content tracking.
    pub integrity: Integrity,
    /// The tunables.
    pub vm: VmConfig,
}

impl MachineConfig {
    /// A machine of `mem_bytes` with the defaults.
    pub fn new(mem_bytes: u64) -> MachineConfig {
        MachineConfig {
            mem_bytes,
            nodes: 1,
            movable_bytes: 0,
            integrity: Integrity::Off,
            vm: VmConfig::default(),
        }
    }

    /// Sets tunable `key` from its text (`--set key=value`).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let t = tunable(key).ok_or_else(|| unknown(key, &[]))?;
        let v = t.parse(value, self.mem_bytes)?;
        let before = self.clone();
        (t.set)(self, v);
        // Ranges that depend on more than the handler (percpu_pagelist_high_fraction).
        if let Err(e @ ConfigError::OutOfRange { .. }) = self.vm.validate() {
            *self = before;
            return Err(e);
        }
        Ok(())
    }

    /// The text of tunable `key`'s value, if there is such a key.
    pub fn get(&self, key: &str) -> Option<String> {
        tunable(key).map(|t| t.show(self))
    }
}

impl VmConfig {
    /// The text of tunable `key`'s value in this configuration (as [`Tunable::show`]
    /// prints it), if there is such a key.
    pub fn show(&self, key: &str) -> Option<String> {
        let c = MachineConfig {
            vm: self.clone(),
            ..MachineConfig::new(0)
        };
        c.get(key)
    }

    /// Sets a run-time tunable `key` on a machine that has booted (a snapshot, a live
    /// model); boot-time keys are refused with the reason.
    pub fn set_runtime(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let t = tunable(key).ok_or_else(|| unknown(key, &[]))?;
        if t.scope == Scope::Boot {
            return Err(ConfigError::NotAtRunTime {
                key: t.name,
                why: "a boot-time choice: it cannot change on a machine that has booted",
            });
        }
        let mut c = MachineConfig {
            vm: std::mem::take(self),
            ..MachineConfig::new(0)
        };
        let before = c.vm.clone();
        let r = t.parse(value, 0).map(|v| (t.set)(&mut c, v));
        *self = c.vm;
        if r.is_ok() {
            if let Err(e) = self.validate() {
                *self = before;
                return Err(e);
            }
        }
        r
    }

    /// Checks every number against the range its handler accepts (the kernel's sysctl
    /// bounds), and the choices that go together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = MachineConfig {
            vm: self.clone(),
            ..MachineConfig::new(0)
        };
        for t in TUNABLES {
            if let (Handler::Int { min, max }, Value::Int(n)) = (t.handler, (t.get)(&c)) {
                if !(min..=max).contains(&n) {
                    return Err(ConfigError::OutOfRange {
                        key: t.name,
                        value: n,
                        range: format!("{min}..={max}"),
                    });
                }
            }
        }
        if self.zram && self.swap_pages == 0 {
            return Err(ConfigError::Zram);
        }
        // percpu_pagelist_high_fraction_sysctl_handler(): 0, or at least
        // MIN_PERCPU_PAGELIST_HIGH_FRACTION.
        if (1..8).contains(&self.percpu_pagelist_high_fraction) {
            return Err(ConfigError::OutOfRange {
                key: "percpu_pagelist_high_fraction",
                value: self.percpu_pagelist_high_fraction as u64,
                range: "0 or 8..=2147483647".into(),
            });
        }
        if self.cma_pages > 0 && !self.config_cma {
            return Err(ConfigError::Cma("cma_pages needs config_cma".into()));
        }
        Ok(())
    }
}

impl VmConfig {
    /// `kernel=2.6.35` (true) or `kernel=default`: the switches that differ between
    /// Linux 2.6.35 — seed 003's "vanilla" kernel — and today's, set together.
    /// 2.6.35 had no compaction but lumpy reclaim and `should_alloc_retry()`, no THP (so khugepaged does not raise
    /// `min_free_kbytes`), no watermark boosting (5.0), no movable driver pages (4.8),
    /// no `vm.defrag_mode` (6.15), and split free pages to order 0 where it isolated them.
    ///
    /// DEVIATION(linux): the rest of 2.6.35 is today's kernel; what still differs is
    /// listed in docs/linux-map.md (DEVIATION 3).
    pub fn set_kernel(&mut self, v2_6_35: bool) {
        let today = VmConfig::default();
        self.compaction = !v2_6_35;
        self.reclaim_lumpy = v2_6_35;
        self.alloc_retry_2_6_35 = v2_6_35;
        self.thp_enabled = !v2_6_35;
        self.watermark_boost_factor = if v2_6_35 {
            0
        } else {
            today.watermark_boost_factor
        };
        self.non_lru_movable = !v2_6_35;
        self.folio_compaction = if v2_6_35 {
            FolioCompaction::Split
        } else {
            today.folio_compaction
        };
        self.defrag_mode = false;
    }

    /// Whether every switch `kernel=2.6.35` sets is as it sets it.
    pub fn is_kernel_2_6_35(&self) -> bool {
        let mut k = self.clone();
        k.set_kernel(true);
        k == *self
    }
}

impl SkipPinned {
    /// The `--set skip_pinned=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            SkipPinned::AnonOnly => "anon-only",
            SkipPinned::ExtraRefs => "extra-refs",
            SkipPinned::DmaPinned => "dma-pinned",
        }
    }

    fn from_name(w: &str) -> SkipPinned {
        match w {
            "extra-refs" => SkipPinned::ExtraRefs,
            "dma-pinned" => SkipPinned::DmaPinned,
            _ => SkipPinned::AnonOnly,
        }
    }
}

impl FolioCompaction {
    /// The `--set folio_compaction=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            FolioCompaction::Split => "split",
            FolioCompaction::PerOrder => "per-order",
        }
    }

    fn from_name(w: &str) -> FolioCompaction {
        match w {
            "split" => FolioCompaction::Split,
            _ => FolioCompaction::PerOrder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tunable_reads_back_what_was_set() {
        let samples = |t: &Tunable| -> Vec<&'static str> {
            match t.handler {
                Handler::Bool { .. } => vec!["on", "off"],
                // 8: the least percpu_pagelist_high_fraction other than 0.
                // 50: within every range (nodes: at most 50).
                Handler::Int { .. } => vec!["8", "50"],
                Handler::Size => vec!["1G", "0"],
                Handler::SizeOrPct => vec!["2G", "25%"],
                Handler::Choice(w) => w.to_vec(),
            }
        };
        for t in TUNABLES {
            for text in samples(t) {
                let mut c = MachineConfig::new(8 << 30);
                c.set(t.name, text).unwrap();
                let shown = c.get(t.name).unwrap();
                let mut again = MachineConfig::new(8 << 30);
                again.set(t.name, &shown).unwrap();
                assert_eq!(again, c, "{}={text} shows as {shown}", t.name);
            }
        }
        let mut c = MachineConfig::new(8 << 30);
        c.set("swap", "25%").unwrap();
        assert_eq!(c.vm.swap_pages, ((8u64 << 30) / 100 * 25) >> 12);
        c.set("cma", "0").unwrap();
        assert!(!c.vm.config_cma);
    }

    #[test]
    fn values_outside_the_kernel_ranges_are_refused() {
        let mut c = MachineConfig::new(1 << 30);
        for (k, v) in [
            ("watermark_scale_factor", "0"),
            ("watermark_scale_factor", "3001"),
            ("swappiness", "201"),
            ("compaction_proactiveness", "101"),
            ("extfrag_threshold", "1001"),
            ("min_free_kbytes", "2147483648"),
            ("nodes", "0"),
        ] {
            assert!(
                matches!(c.set(k, v), Err(ConfigError::OutOfRange { .. })),
                "{k}={v}"
            );
        }
        for (k, v) in [
            ("compaction", "maybe"),
            ("swap", "101%"),
            ("movable", "lots"),
            ("skip_pinned", "all"),
            ("swappiness", "-1"),
        ] {
            assert!(
                matches!(c.set(k, v), Err(ConfigError::BadValue { .. })),
                "{k}={v}"
            );
        }
        assert!(matches!(
            c.set("no_such_key", "1"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert_eq!(
            c,
            MachineConfig::new(1 << 30),
            "refused values change nothing"
        );
    }

    #[test]
    fn validate_checks_every_range_of_the_table() {
        for (i, t) in TUNABLES.iter().enumerate() {
            let Handler::Int { max, .. } = t.handler else {
                continue;
            };
            if max == INT_MAX || t.name == "nodes" {
                continue; // the field holds no more than the range
            }
            let mut c = MachineConfig::new(1 << 30);
            (t.set)(&mut c, Value::Int(max + 1));
            assert!(
                matches!(c.vm.validate(), Err(ConfigError::OutOfRange { key, .. }) if key == TUNABLES[i].name),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn kernel_2_6_35_sets_the_2010_switches_and_default_sets_them_back() {
        let mut c = MachineConfig::new(1 << 30);
        c.set("kernel", "2.6.35").unwrap();
        let vm = &c.vm;
        assert!(!vm.compaction && vm.reclaim_lumpy && vm.alloc_retry_2_6_35);
        assert!(!vm.thp_enabled && !vm.non_lru_movable && !vm.defrag_mode);
        assert_eq!(vm.watermark_boost_factor, 0);
        assert_eq!(vm.folio_compaction, FolioCompaction::Split);
        assert_eq!(c.get("kernel").unwrap(), "2.6.35");
        assert_eq!(c.get("reclaim_mode").unwrap(), "lumpy");
        c.set("kernel", "default").unwrap();
        assert_eq!(c, MachineConfig::new(1 << 30));
        // One switch changed after the preset: no longer the 2010 kernel.
        c.set("kernel", "2.6.35").unwrap();
        c.set("compaction", "on").unwrap();
        assert_eq!(c.get("kernel").unwrap(), "default");
    }

    #[test]
    fn boot_time_keys_are_refused_on_a_booted_machine() {
        let mut vm = VmConfig::default();
        vm.set_runtime("extfrag_threshold", "700").unwrap();
        assert_eq!(vm.extfrag_threshold, 700);
        for t in TUNABLES.iter().filter(|t| t.scope == Scope::Boot) {
            assert!(
                matches!(
                    vm.set_runtime(t.name, "1"),
                    Err(ConfigError::NotAtRunTime { .. })
                ),
                "{}",
                t.name
            );
        }
        assert_eq!(vm.extfrag_threshold, 700);
    }
}
