//! A model machine as files and text: the kernel-format files `--out` writes, the zone and
//! counter objects of every command's JSON, and how each zone's compaction ended.

use crate::outdir::OutDir;
use kcompact::compaction::CompactEnd;
use kcompact::scenario::{Metric, Outcome};
use kcompact::views::{buddyinfo, pagetypeinfo, zoneinfo};
use kcompact::zone::Wmark;
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;

/// Stages `text` as `dir/name` (written when the output directory is committed).
pub fn write(dir: &mut OutDir, name: &str, text: impl AsRef<[u8]>) {
    dir.add(name, text.as_ref());
}

/// result.json's `zones`: every populated zone's free blocks per order (the buddy lists, as
/// buddyinfo), the free pages on its per-CPU lists (`pcp_pages`, which buddyinfo does not
/// show) and its managed pages.
pub fn zones_json(m: &Machine) -> serde_json::Value {
    json!(m
        .zones
        .iter()
        .filter(|z| z.is_populated())
        .map(|z| json!({"node": z.node.0, "name": z.name(), "free_by_order": z.free_by_order(), "pcp_pages": z.pcp_pages(), "managed_pages": z.managed_pages,
            "watermark": {"min": z.wmark_pages(Wmark::Min), "low": z.wmark_pages(Wmark::Low), "high": z.wmark_pages(Wmark::High)},
            "pcp_high_min_max": [z.pageset_sizes.0, z.pageset_sizes.1]}))
        .collect::<Vec<_>>())
}

/// result.json's `vmstat`: every counter by its name.
pub fn vmstat_json(m: &Machine) -> serde_json::Map<String, serde_json::Value> {
    m.vmstat
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// The kernel-format files of `--out`: buddyinfo, pagetypeinfo, zoneinfo, vmstat.
pub fn write_kernel_files(dir: &mut OutDir, m: &Machine) {
    write(dir, "buddyinfo", buddyinfo(m));
    write(dir, "pagetypeinfo", pagetypeinfo(m));
    write(dir, "zoneinfo", zoneinfo(m));
    write(dir, "vmstat", vmstat_text(m));
}

/// `/proc/vmstat` of the model: the free pages, then every counter by its name.
pub fn vmstat_text(m: &Machine) -> String {
    let mut vm = format!("nr_free_pages {}\n", m.nr_free_pages());
    for (k, v) in m.vmstat.pairs() {
        let _ = writeln!(vm, "{k} {v}");
    }
    vm
}

/// Each zone's compaction end as `mm_compaction_end` prints it, one line per zone.
pub fn compact_ends_text(m: &Machine, ends: &[CompactEnd]) -> String {
    let mut s = String::new();
    for e in ends {
        let z = m.zone(e.zone);
        s += &format!(
            "Node {}, zone {:>8} status={} migrate_pfn=0x{:x} free_pfn=0x{:x} migrate_scanned={} free_scanned={}\n",
            z.node.0,
            z.name(),
            e.status.name(),
            e.migrate_pfn.0,
            e.free_pfn.0,
            e.migrate_scanned,
            e.free_scanned
        );
    }
    s
}

/// The same as JSON objects.
pub fn compact_ends_json(m: &Machine, ends: &[CompactEnd]) -> serde_json::Value {
    ends.iter()
        .map(|e| {
            let z = m.zone(e.zone);
            json!({
                "node": z.node.0,
                "zone": z.name(),
                "status": e.status.name(),
                "migrate_pfn": e.migrate_pfn.0,
                "free_pfn": e.free_pfn.0,
                "migrate_scanned": e.migrate_scanned,
                "free_scanned": e.free_scanned,
            })
        })
        .collect()
}

/// result.json's `metrics`: a scenario's metrics by name.
pub fn metrics_json(out: &Outcome) -> serde_json::Map<String, serde_json::Value> {
    out.metrics
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Metric::Int(v) => json!(v),
                Metric::Float(v) => json!(v),
                Metric::List(v) => json!(v),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// A run's result.json (SPEC.md's contract: version, scenario, seed, `config`, the
/// outcome's metrics, every counter, the zones).
pub fn result_json(
    m: &Machine,
    scenario: &str,
    seed: u64,
    config: serde_json::Value,
    out: &Outcome,
) -> serde_json::Value {
    json!({
        "kcompact_version": env!("CARGO_PKG_VERSION"),
        "scenario": scenario,
        "seed": seed,
        "config": config,
        "metrics": metrics_json(out),
        "vmstat": vmstat_json(m),
        "zones": zones_json(m),
    })
}

/// Writes a run's result.json ([`result_json`]) and the kernel-format files into `dir`,
/// returns the result.
pub fn write_result(
    dir: &mut OutDir,
    m: &Machine,
    scenario: &str,
    seed: u64,
    config: serde_json::Value,
    out: &Outcome,
) -> anyhow::Result<serde_json::Value> {
    let result = result_json(m, scenario, seed, config, out);
    write(
        dir,
        "result.json",
        serde_json::to_string_pretty(&result)? + "\n",
    );
    write_kernel_files(dir, m);
    Ok(result)
}
