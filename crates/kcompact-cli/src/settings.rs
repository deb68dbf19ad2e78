//! `--mem` and `--set KEY=VALUE` into typed configurations, with a clear error per key.

use crate::cli::MachineArgs;
use crate::ui::usage;
use kcompact::layout::Layout;
use kcompact::size::parse_size;
use kcompact::{Machine, VmConfig};

/// Every key `--set` takes, with what it means.
pub const KEYS: &[(&str, &str)] = &[
    (
        "nodes",
        "NUMA nodes (1..=32), memory split evenly above 4 GiB",
    ),
    (
        "movable",
        "ZONE_MOVABLE size per node (like movablecore=), e.g. 1G",
    ),
    (
        "min_free_kbytes",
        "vm.min_free_kbytes (default: computed, then raised by khugepaged if thp=on)",
    ),
    (
        "watermark_scale_factor",
        "vm.watermark_scale_factor (1..=3000, default 10)",
    ),
    (
        "watermark_boost_factor",
        "vm.watermark_boost_factor (default 15000, 0 = off)",
    ),
    (
        "thp",
        "on|off: THP enabled (khugepaged's recommended min_free_kbytes), default on",
    ),
    (
        "cma",
        "size of a CMA area, or N% of --mem (enables CONFIG_CMA in the views), default 0",
    ),
    (
        "defrag_mode",
        "0|1: vm.defrag_mode (Linux 6.15+), default 0",
    ),
    ("compaction", "on|off: CONFIG_COMPACTION (off: the 2010 baseline, reclaim only)"),
    ("non_lru_movable", "on|off: driver pages (zsmalloc, balloon, GPU) are movable (off: before Linux 4.8)"),
    ("skip_pinned", "anon-only|extra-refs|dma-pinned: which pinned pages compaction skips (default anon-only, today's Linux)"),
    ("folio_compaction", "split|per-order: free pages split to order 0 and large folios skipped (before 6.9) or kept per order (default)"),
    ("compaction_proactiveness", "vm.compaction_proactiveness (0..=100, default 20)"),
    ("extfrag_threshold", "vm.extfrag_threshold (0..=1000, default 500)"),
    ("compact_unevictable_allowed", "on|off: vm.compact_unevictable_allowed (default on)"),
    ("swap", "swap space, e.g. 2G or 50% of --mem (default 0: no swap)"),
    ("zram", "on|off: the swap device is zram, a zsmalloc pool in memory (default off: a disk)"),
    ("swappiness", "vm.swappiness (0..=200, default 60)"),
    ("thp_defrag", "always|defer|defer+madvise|madvise|never: transparent_hugepage/defrag (default madvise)"),
    ("integrity", "off|stamps|bytes: track page contents, check every owner's data at the end (bytes: real 4 KiB pages, up to --mem 8G)"),
];

/// The machine and workload a command asked for.
pub struct Settings {
    pub mem_text: String,
    pub mem_bytes: u64,
    pub nodes: u32,
    pub movable_bytes: u64,
    pub vm: VmConfig,
    pub integrity: Integrity,
    /// `--set` pairs that are the scenario's own parameters.
    pub scenario_params: Vec<(String, String)>,
}

/// Content tracking asked for with `--set integrity=`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Integrity {
    Off,
    Stamps,
    Bytes,
}

fn num(key: &str, v: &str) -> anyhow::Result<u64> {
    v.parse::<u64>()
        .or_else(|_| usage(format!("--set {key}={v}: expected a whole number")))
}

fn size(key: &str, v: &str) -> anyhow::Result<u64> {
    parse_size(v).or_else(|e| usage(format!("--set {key}={v}: {e}")))
}

/// A size, or `N%` of the machine's memory.
fn size_or_pct(key: &str, v: &str, mem: u64) -> anyhow::Result<u64> {
    match v.strip_suffix('%') {
        Some(p) => match p.parse::<u64>() {
            Ok(p) if p <= 100 => Ok(mem / 100 * p),
            _ => usage(format!(
                "--set {key}={v}: expected a size or a percentage 0%..=100%"
            )),
        },
        None => size(key, v),
    }
}

fn onoff(key: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        _ => usage(format!("--set {key}={v}: expected on or off")),
    }
}

impl Settings {
    /// Parses `--mem` and every `--set`.
    pub fn parse(args: &MachineArgs) -> anyhow::Result<Settings> {
        Settings::parse_for(args, &[], &[], "4G")
    }

    /// Parses `--mem` and every `--set`; keys in `scenario_keys` are kept for the
    /// scenario (`scenario_params`).
    /// `machine_defaults` are `--set` pairs applied before the command line's (a
    /// scenario's machine); `default_mem` is the size without `--mem`.
    pub fn parse_for(
        args: &MachineArgs,
        scenario_keys: &[&str],
        machine_defaults: &[(&str, &str)],
        default_mem: &str,
    ) -> anyhow::Result<Settings> {
        let mem = args.mem.clone().unwrap_or_else(|| default_mem.to_string());
        let mem_bytes = parse_size(&mem).or_else(|e| usage(format!("--mem {mem}: {e}")))?;
        let mut s = Settings {
            mem_text: mem,
            mem_bytes,
            nodes: 1,
            movable_bytes: 0,
            vm: VmConfig::default(),
            integrity: Integrity::Off,
            scenario_params: Vec::new(),
        };
        let defaults = machine_defaults.iter().map(|(k, v)| format!("{k}={v}"));
        for kv in defaults.chain(args.set.iter().cloned()) {
            let kv = kv.as_str();
            let Some((key, v)) = kv.split_once('=') else {
                return usage(format!("--set {kv}: expected KEY=VALUE"));
            };
            if scenario_keys.contains(&key) {
                s.scenario_params.push((key.to_string(), v.to_string()));
                continue;
            }
            match key {
                "swap" => s.vm.swap_pages = size_or_pct(key, v, mem_bytes)? >> 12,
                "zram" => s.vm.zram = onoff(key, v)?,
                "swappiness" => {
                    let n = num(key, v)?;
                    if n > 200 {
                        return usage(format!("--set swappiness={v}: out of range 0..=200"));
                    }
                    s.vm.swappiness = n as u32;
                }
                "thp_defrag" => {
                    s.vm.thp_defrag = kcompact::sysctl::ThpDefrag::parse(v).ok_or_else(|| {
                        crate::ui::Usage(format!(
                            "--set thp_defrag={v}: expected always, defer, defer+madvise, madvise or never"
                        ))
                    })?
                }
                "help" => {
                    let list: Vec<String> =
                        KEYS.iter().map(|(k, d)| format!("  {k:<24} {d}")).collect();
                    return usage(format!("the keys --set takes:\n{}", list.join("\n")));
                }
                "nodes" => s.nodes = num(key, v)? as u32,
                "movable" => s.movable_bytes = size(key, v)?,
                "min_free_kbytes" => s.vm.user_min_free_kbytes = Some(num(key, v)?),
                "watermark_scale_factor" => {
                    s.vm.watermark_scale_factor = num(key, v)?.min(u32::MAX as u64) as u32
                }
                "watermark_boost_factor" => {
                    s.vm.watermark_boost_factor = num(key, v)?.min(u32::MAX as u64) as u32
                }
                "thp" => s.vm.thp_enabled = onoff(key, v)?,
                "cma" => {
                    let b = size_or_pct(key, v, mem_bytes)?;
                    s.vm.config_cma = b > 0;
                    s.vm.cma_pages = b >> 12;
                }
                "defrag_mode" => s.vm.defrag_mode = onoff(key, v)?,
                "compaction" => s.vm.compaction = onoff(key, v)?,
                "non_lru_movable" => s.vm.non_lru_movable = onoff(key, v)?,
                "compact_unevictable_allowed" => s.vm.compact_unevictable_allowed = onoff(key, v)?,
                "skip_pinned" => {
                    use kcompact::sysctl::SkipPinned;
                    s.vm.skip_pinned = match v {
                        "anon-only" => SkipPinned::AnonOnly,
                        "extra-refs" => SkipPinned::ExtraRefs,
                        "dma-pinned" => SkipPinned::DmaPinned,
                        _ => {
                            return usage(format!(
                            "--set skip_pinned={v}: expected anon-only, extra-refs or dma-pinned"
                        ))
                        }
                    }
                }
                "folio_compaction" => {
                    use kcompact::sysctl::FolioCompaction;
                    s.vm.folio_compaction = match v {
                        "split" => FolioCompaction::Split,
                        "per-order" => FolioCompaction::PerOrder,
                        _ => {
                            return usage(format!(
                                "--set folio_compaction={v}: expected split or per-order"
                            ))
                        }
                    }
                }
                "compaction_proactiveness" => {
                    let p = num(key, v)?;
                    if p > 100 {
                        return usage(format!(
                            "--set compaction_proactiveness={v}: out of range 0..=100"
                        ));
                    }
                    s.vm.compaction_proactiveness = p as u32;
                }
                "extfrag_threshold" => {
                    let t = num(key, v)?;
                    if t > 1000 {
                        return usage(format!(
                            "--set extfrag_threshold={v}: out of range 0..=1000"
                        ));
                    }
                    s.vm.extfrag_threshold = t as u32;
                }
                "integrity" => {
                    s.integrity = match v {
                        "off" => Integrity::Off,
                        "stamps" => Integrity::Stamps,
                        "bytes" => Integrity::Bytes,
                        _ => {
                            return usage(format!(
                                "--set integrity={v}: expected off, stamps or bytes"
                            ))
                        }
                    }
                }
                _ => {
                    let mut known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                    known.extend(scenario_keys);
                    return usage(format!(
                        "--set {key}: unknown key (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(s)
    }

    /// Boots the machine these settings describe.
    pub fn boot(&self) -> anyhow::Result<Machine> {
        use kcompact::layout::LayoutError;
        let layout = match Layout::x86_64(self.mem_bytes, self.nodes, self.movable_bytes) {
            Ok(l) => l,
            Err(e @ LayoutError::SizeOutOfRange { .. }) => {
                return usage(format!("--mem {}: {e}", self.mem_text))
            }
            Err(e @ LayoutError::Nodes(_)) => return usage(format!("--set nodes: {e}")),
            Err(e) => return usage(format!("machine layout: {e}")),
        };
        let mut m =
            Machine::boot(&layout, self.vm.clone()).or_else(|e| usage(format!("machine: {e}")))?;
        match self.integrity {
            Integrity::Off => {}
            Integrity::Stamps => m.enable_contents(false),
            Integrity::Bytes if self.mem_bytes > 8 << 30 => {
                return usage(format!("--set integrity=bytes keeps every page's 4 KiB: at most 8G of model memory, not --mem {}", self.mem_text))
            }
            Integrity::Bytes => m.enable_contents(true),
        }
        Ok(m)
    }
}
