//! `kcompact replay TRACE`: a kmem/compaction trace driving the model (issue 9).

use crate::cli::ReplayArgs;
use crate::out::zones_json;
use crate::outdir::OutDir;
use crate::report::{
    free_by_order_chart, kernel_views, kv_table, map_section, write_report, Report, Section, Series,
};
use crate::settings::Settings;
use crate::snapshot_dir::load_dir;
use crate::ui::{out, outln, usage};
use kcompact::replay::parse::{parse_trace, Trace};
use kcompact::replay::{replay as run_replay, Mode, ReplayReport};
use kcompact::snapshot::text::parse_buddyinfo;
use kcompact::views::procfs::buddyinfo;
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// The bytes of trace text allowed per event of `--max-events` (the kernel's lines are
/// about 150 bytes; case0's longest is 234).
const TRACE_BYTES_PER_EVENT: u64 = 256;

/// The trace's text: zstd (by its magic number) or plain, a regular file of at most
/// [`TRACE_BYTES_PER_EVENT`] bytes per event of `max_events` once inflated.
fn read_trace(path: &Path, max_events: u64) -> anyhow::Result<String> {
    let max = max_events.saturating_mul(TRACE_BYTES_PER_EVENT);
    let why = format!("{TRACE_BYTES_PER_EVENT} bytes per event of --max-events {max_events}");
    let mut magic = [0u8; 4];
    let n = match std::io::Read::read(&mut crate::input::open_regular(path)?, &mut magic) {
        Ok(n) => n,
        Err(e) => return usage(format!("{}: {e}", path.display())),
    };
    let bytes = if magic[..n] == [0x28, 0xb5, 0x2f, 0xfd] {
        crate::input::inflate_capped(path, max, &why, true)?
    } else {
        crate::input::read_capped(path, max, &why)?
    };
    match String::from_utf8(bytes) {
        Ok(t) => Ok(t),
        Err(e) => usage(format!(
            "{}: not text (invalid UTF-8 at byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )),
    }
}

/// Free blocks per zone: `(zone name, count per order)`.
type ZoneFree = Vec<(String, Vec<u64>)>;

/// The kernel's free pages by order at the end, from `buddyinfo_end_immediate` beside
/// the trace: `(zone name, counts)`.
fn kernel_end(trace: &Path) -> anyhow::Result<Option<ZoneFree>> {
    let Some(dir) = trace.parent() else {
        return Ok(None);
    };
    let p = dir.join("buddyinfo_end_immediate");
    if !crate::input::present(&p) {
        return Ok(None);
    }
    let text = crate::input::read_text(&p)?;
    match parse_buddyinfo("buddyinfo_end_immediate", &text) {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .map(|r| (r.name.clone(), r.nr_free.to_vec()))
                .collect(),
        )),
        Err(e) => usage(format!("{}: {e}", p.display())),
    }
}

/// Each zone's per-CPU lists at the kernel's end, from `end/zoneinfo` beside the trace:
/// `(zone name, [(count, high) per CPU])`.
type ZonePcp = Vec<(String, Vec<(u64, u64)>)>;

/// Per zone, a count per CPU.
type ZoneCounts = Vec<(String, Vec<i64>)>;

/// What is known of the kernel's per-CPU lists at the end.
struct KernelPcp {
    /// From `end/zoneinfo` beside the trace (read a few seconds after the trace ended).
    end_zoneinfo: Option<ZonePcp>,
    /// At the trace's end, per zone and CPU: the start snapshot's counts plus the trace's
    /// flows.
    trace_end: Option<ZoneCounts>,
}

/// [`ZonePcp`] of the kernel's end, if `end/zoneinfo` is beside the trace.
fn kernel_end_pcp(trace: &Path) -> anyhow::Result<Option<ZonePcp>> {
    let Some(p) = trace.parent().map(|d| d.join("end").join("zoneinfo")) else {
        return Ok(None);
    };
    if !crate::input::present(&p) {
        return Ok(None);
    }
    let text = crate::input::read_text(&p)?;
    match kcompact::snapshot::text::parse_zoneinfo("end/zoneinfo", &text) {
        Ok(zones) => Ok(Some(
            zones
                .into_iter()
                .filter(|z| z.present > 0)
                .map(|z| {
                    (
                        z.name,
                        z.pagesets.iter().map(|s| (s.count, s.high)).collect(),
                    )
                })
                .collect(),
        )),
        Err(e) => usage(format!("{}: {e}", p.display())),
    }
}

/// The kernel's per-CPU lists at the trace's end, per zone: the start snapshot's `count:`
/// lines plus what the trace's events did to them ([`ReplayReport::kernel_pcp_flow`]).
fn kernel_trace_end_pcp(
    args: &ReplayArgs,
    m: &Machine,
    r: &ReplayReport,
) -> anyhow::Result<Option<ZoneCounts>> {
    let Some(p) = args.snapshot.as_ref().map(|d| d.join("zoneinfo")) else {
        return Ok(None);
    };
    let text = crate::input::read_text(&p)?;
    let zones = match kcompact::snapshot::text::parse_zoneinfo("zoneinfo", &text) {
        Ok(z) => z,
        Err(e) => return usage(format!("{}: {e}", p.display())),
    };
    Ok(Some(
        m.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.is_populated())
            .filter_map(|(i, z)| {
                let rec = zones
                    .iter()
                    .find(|q| q.name == z.name() && q.node == z.node.0 as u32)?;
                let flow = r.kernel_pcp_flow.get(i)?;
                let counts = rec
                    .pagesets
                    .iter()
                    .zip(flow)
                    .map(|(s, f)| s.count as i64 + f)
                    .collect();
                Some((z.name().to_string(), counts))
            })
            .collect(),
    ))
}

/// The model's free blocks per zone and order.
fn model_free(m: &Machine) -> ZoneFree {
    m.zones
        .iter()
        .filter(|z| z.is_populated())
        .map(|z| (z.name().to_string(), z.free_by_order().to_vec()))
        .collect()
}

/// The text report's head: the command, the events read, skipped and malformed.
fn trace_text(args: &ReplayArgs, trace: &Trace, r: &ReplayReport) -> String {
    let mut o = String::new();
    let from = match &args.snapshot {
        Some(s) => format!("snapshot {}", s.display()),
        None => "an empty model".to_string(),
    };
    let _ = writeln!(
        o,
        "kcompact {} — replay {} ({} mode, from {from})",
        env!("CARGO_PKG_VERSION"),
        args.trace.display(),
        r.mode.name()
    );
    let known: Vec<String> = trace
        .known
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(o, "events {}: {}", r.events, known.join(", "));
    let unknown: Vec<String> = trace
        .unknown
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "skipped unknown events: {}",
        if unknown.is_empty() {
            "none".to_string()
        } else {
            unknown.join(", ")
        }
    );
    let _ = writeln!(o, "malformed lines {}", trace.nr_malformed);
    for e in trace.malformed.iter().take(5) {
        let _ = writeln!(o, "  {e}");
    }
    o
}

/// `kcompact replay`'s text: the events, what was applied and what did not fit, the
/// compaction runs, the free blocks at the end against the kernel's.
fn text_report(
    args: &ReplayArgs,
    trace: &Trace,
    r: &ReplayReport,
    m: &Machine,
    kernel: &Option<ZoneFree>,
    kernel_pcp: &KernelPcp,
) -> String {
    let mut o = trace_text(args, trace, r);
    let _ = writeln!(o, "applied {} allocations and frees", r.applied);
    if m.contents.enabled() {
        let c = m.check_contents();
        let _ = writeln!(
            o,
            "integrity_checked_pages {}\nintegrity_errors {}",
            c.checked_pages, c.errors
        );
    }
    let kinds: Vec<String> = r
        .inconsistencies
        .pairs()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "inconsistencies {}{}",
        r.inconsistencies.total(),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    );
    let _ = writeln!(
        o,
        "pages the snapshot left out of the allocator, adopted when the trace used them {}; compaction sources freed in a kernel compaction window {}; blocks the model had reclaimed first {}; kernel fallbacks (mm_page_alloc_extfrag) {}",
        r.adopted, r.compaction_sources, r.freed_by_model_first, r.kernel_extfrag
    );
    if r.before_snapshot > 0 {
        let _ = writeln!(
            o,
            "events on a pfn before the snapshot read its flags (already in it), skipped {}",
            r.before_snapshot
        );
    }
    let _ = writeln!(
        o,
        "per-CPU lists: refills {} ({} blocks from the buddy lists); drains {} (and {} blocks the model had drained first)",
        r.pcp_refills.0, r.pcp_refills.1, r.pcp_drains.0, r.pcp_drains.1
    );
    if r.blocks_retyped > 0 {
        let _ = writeln!(
            o,
            "pageblocks set to the type the trace showed (a free list it took from, a fallback claim) {}",
            r.blocks_retyped
        );
    }
    if !r.unknown_gfp.is_empty() {
        let u: Vec<String> = r
            .unknown_gfp
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(o, "gfp flags the model ignores: {}", u.join(", "));
    }
    o += &compactions_text(r);
    o += &end_text(m, kernel, kernel_pcp);
    o
}

/// Each kernel compaction run beside the model's, one line per zone and run.
fn compactions_text(r: &ReplayReport) -> String {
    let mut o = String::new();
    if !r.compactions.is_empty() {
        let _ = writeln!(
            o,
            "\ncompaction (kernel | model): migrate_scanned free_scanned isolated migrated failed, scanners met at"
        );
        for c in &r.compactions {
            let k = &c.kernel;
            let md = &c.model;
            let _ = writeln!(
                o,
                "  zone {:#x}-{:#x} {} {}: {} {} {} {} {} at {:#x} | {} {} {} {} {} at {:#x}",
                c.zone_start,
                c.zone_end,
                c.mode,
                c.status,
                k.migrate_scanned,
                k.free_scanned,
                k.isolated,
                k.migrated,
                k.failed,
                k.end_migrate_pfn,
                md.migrate_scanned,
                md.free_scanned,
                md.isolated,
                md.migrated,
                md.failed,
                md.end_migrate_pfn,
            );
        }
    }
    o
}

/// The model's buddyinfo at the end and, with the kernel's, the difference per zone and
/// order.
fn end_text(m: &Machine, kernel: &Option<ZoneFree>, kernel_pcp: &KernelPcp) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\nthe model's free pages by order at the end:");
    o.push_str(&buddyinfo(m));
    let _ = writeln!(
        o,
        "\nper-CPU lists at the end, pages (per CPU: count/high; the kernel at the trace's end: \
         the start snapshot's count plus the trace's refills, frees, allocations and drains; \
         in end/zoneinfo, read after the trace):"
    );
    let join = |v: Vec<String>| v.join(" ");
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let model = join(
            z.pageset
                .iter()
                .map(|p| format!("{}/{}", p.count, p.high))
                .collect(),
        );
        let _ = writeln!(o, "  {:<8} model {} ({model})", z.name(), z.pcp_pages());
        if let Some((_, v)) = kernel_pcp
            .trace_end
            .as_ref()
            .and_then(|k| k.iter().find(|(n, _)| n == z.name()))
        {
            let total: i64 = v.iter().sum();
            let _ = writeln!(
                o,
                "  {:<8} kernel at the trace's end {total} ({})",
                "",
                join(v.iter().map(|c| c.to_string()).collect())
            );
        }
        if let Some((_, v)) = kernel_pcp
            .end_zoneinfo
            .as_ref()
            .and_then(|k| k.iter().find(|(n, _)| n == z.name()))
        {
            let total: u64 = v.iter().map(|(c, _)| c).sum();
            let _ = writeln!(
                o,
                "  {:<8} kernel in end/zoneinfo {total} ({})",
                "",
                join(v.iter().map(|(c, h)| format!("{c}/{h}")).collect())
            );
        }
    }
    if let Some(k) = kernel {
        let _ = writeln!(
            o,
            "\nkernel's buddyinfo_end_immediate minus the model, per zone and order:"
        );
        let model = model_free(m);
        for (zone, kc) in k {
            let Some((_, mc)) = model.iter().find(|(z, _)| z == zone) else {
                continue;
            };
            let d: Vec<String> = kc
                .iter()
                .zip(mc)
                .map(|(a, b)| format!("{:>6}", *a as i64 - *b as i64))
                .collect();
            let _ = writeln!(o, "  {zone:<8}{}", d.join(" "));
        }
    }
    o
}

fn report_json(
    args: &ReplayArgs,
    trace: &Trace,
    r: &ReplayReport,
    m: &Machine,
    kernel: &Option<ZoneFree>,
    kernel_pcp: &KernelPcp,
) -> serde_json::Value {
    let inc: serde_json::Map<String, serde_json::Value> = r
        .inconsistencies
        .pairs()
        .iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    let work = |w: &kcompact::replay::CompactWork| {
        json!({"migrate_scanned": w.migrate_scanned, "free_scanned": w.free_scanned,
               "isolated": w.isolated, "migrated": w.migrated, "failed": w.failed,
               "end_migrate_pfn": w.end_migrate_pfn})
    };
    let mut j = json!({
        "kcompact_version": env!("CARGO_PKG_VERSION"),
        "trace": args.trace.display().to_string(),
        "snapshot": args.snapshot.as_ref().map(|s| s.display().to_string()),
        "mode": r.mode.name(),
        "events": r.events,
        "known": trace.known,
        "unknown": trace.unknown,
        "malformed": trace.nr_malformed,
        "applied": r.applied,
        "inconsistencies": r.inconsistencies.total(),
        "inconsistency_kinds": inc,
        "compaction_sources": r.compaction_sources,
        "adopted": r.adopted,
        "freed_by_model_first": r.freed_by_model_first,
        "kernel_extfrag": r.kernel_extfrag,
        "before_snapshot": r.before_snapshot,
        "blocks_retyped": r.blocks_retyped,
        "pcp_refills": {"runs": r.pcp_refills.0, "blocks": r.pcp_refills.1},
        "pcp_drains": {"blocks": r.pcp_drains.0, "drained_by_model_first": r.pcp_drains.1},
        "kernel_trace_end_pcp": kernel_pcp.trace_end.as_ref().map(|k| k.iter().map(|(z, v)| json!({
            "zone": z, "pages": v.iter().sum::<i64>(), "cpus": v})).collect::<Vec<_>>()),
        "kernel_end_pcp": kernel_pcp.end_zoneinfo.as_ref().map(|k| k.iter().map(|(z, v)| json!({
            "zone": z, "pages": v.iter().map(|(c, _)| c).sum::<u64>(),
            "cpus": v.iter().map(|(c, h)| json!({"count": c, "high": h})).collect::<Vec<_>>()})).collect::<Vec<_>>()),
        "compactions": r.compactions.iter().map(|c| json!({
            "zone_start": c.zone_start, "zone_end": c.zone_end, "mode": c.mode,
            "status": c.status, "kernel": work(&c.kernel), "model": work(&c.model)})).collect::<Vec<_>>(),
        "zones": zones_json(m),
        "kernel_end": kernel.as_ref().map(|k| k.iter().map(|(z, f)| json!({"zone": z, "free_by_order": f})).collect::<Vec<_>>()),
        "timeline": r.timeline.iter().map(|t| json!({
            "events": t.events, "time_ns": t.time_ns, "free_pages": t.free_pages,
            "free_order9_blocks": t.free_order9_blocks, "free_by_order": t.free_by_order})).collect::<Vec<_>>(),
    });
    if m.contents.enabled() {
        let c = m.check_contents();
        j["integrity_checked_pages"] = json!(c.checked_pages);
        j["integrity_errors"] = json!(c.errors);
    }
    j
}

fn timeline_csv(r: &ReplayReport) -> String {
    let mut o = String::from("events,time_ns,free_pages,free_order9_blocks");
    for i in 0..11 {
        let _ = write!(o, ",free_o{i}");
    }
    o.push('\n');
    for t in &r.timeline {
        let _ = write!(
            o,
            "{},{},{},{}",
            t.events, t.time_ns, t.free_pages, t.free_order9_blocks
        );
        for n in t.free_by_order {
            let _ = write!(o, ",{n}");
        }
        o.push('\n');
    }
    o
}

/// The report of a replay: its fragmentation timeline, the map at the end, the
/// compaction runs, the inconsistencies and the kernel-format tables.
fn replay_report(
    args: &ReplayArgs,
    r: &ReplayReport,
    m: &Machine,
    j: &serde_json::Value,
) -> Report {
    let mut sections = vec![
        kv_table(
            "Replay",
            vec![
                ("mode".into(), r.mode.name().into()),
                ("events".into(), r.events.to_string()),
                ("applied".into(), r.applied.to_string()),
                (
                    "inconsistencies".into(),
                    r.inconsistencies.total().to_string(),
                ),
                ("adopted".into(), r.adopted.to_string()),
                (
                    "compaction_sources".into(),
                    r.compaction_sources.to_string(),
                ),
                ("kernel_extfrag".into(), r.kernel_extfrag.to_string()),
            ],
        ),
        kv_table(
            "Inconsistencies by kind",
            r.inconsistencies
                .pairs()
                .iter()
                .map(|(k, n)| (k.to_string(), n.to_string()))
                .collect(),
        ),
    ];
    sections.extend(timeline_charts(r));
    sections.push(compactions_table(r));
    sections.push(map_section("Physical memory at the end of the replay", m));
    sections.extend(kernel_views(m));
    if let Some(k) = j["kernel_end"].as_array() {
        sections.push(Section::Pre {
            title: "The kernel's buddyinfo_end_immediate".into(),
            text: k
                .iter()
                .map(|z| {
                    format!(
                        "{} {}",
                        z["zone"].as_str().unwrap_or(""),
                        z["free_by_order"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Report {
        title: format!("kcompact replay {}", args.trace.display()),
        subtitle: format!(
            "{} mode, from {}",
            r.mode.name(),
            args.snapshot
                .as_ref()
                .map_or("an empty model".to_string(), |s| format!(
                    "snapshot {}",
                    s.display()
                ))
        ),
        sections,
    }
}

/// The fragmentation over the trace: free pages by order, and free order-9 blocks.
fn timeline_charts(r: &ReplayReport) -> [Section; 2] {
    let secs = |t: &kcompact::replay::Row| t.time_ns as f64 / 1e9;
    [
        free_by_order_chart(
            "Fragmentation over the trace: free pages by order",
            "trace time (s)",
            &r.timeline
                .iter()
                .map(|t| (secs(t), t.free_by_order))
                .collect::<Vec<_>>(),
        ),
        Section::Chart {
            title: "Free order-9 blocks over the trace".into(),
            x_label: "trace time (s)".into(),
            y_label: "blocks".into(),
            series: vec![Series {
                name: "free order >= 9 blocks".into(),
                points: r
                    .timeline
                    .iter()
                    .map(|t| (secs(t), t.free_order9_blocks as f64))
                    .collect(),
            }],
        },
    ]
}

/// The compaction runs: a row for the kernel's (from its events) and one for the model's.
fn compactions_table(r: &ReplayReport) -> Section {
    Section::Table {
        title: "Compaction runs: the kernel's (from its events) and the model's".into(),
        headers: [
            "zone",
            "mode",
            "status",
            "side",
            "migrate_scanned",
            "free_scanned",
            "isolated",
            "migrated",
            "failed",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect(),
        rows: r
            .compactions
            .iter()
            .flat_map(|c| {
                [("kernel", &c.kernel), ("model", &c.model)].map(|(side, w)| {
                    vec![
                        format!("{:#x}-{:#x}", c.zone_start, c.zone_end),
                        c.mode.clone(),
                        c.status.clone(),
                        side.to_string(),
                        w.migrate_scanned.to_string(),
                        w.free_scanned.to_string(),
                        w.isolated.to_string(),
                        w.migrated.to_string(),
                        w.failed.to_string(),
                    ]
                })
            })
            .collect(),
    }
}

/// Refuses a trace longer than `--max-events`, or one that is mostly not a trace: more
/// malformed lines than events, or any malformed line with `--strict`.
fn check_trace(args: &ReplayArgs, trace: &Trace) -> anyhow::Result<()> {
    let events = trace.records.len() as u64;
    let name = args.trace.display();
    let first = || {
        trace
            .malformed
            .first()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default()
    };
    if events > args.max_events {
        return usage(format!(
            "{name}: {events} events, more than --max-events {}; raise it or cut the trace",
            args.max_events
        ));
    }
    if args.strict && trace.nr_malformed > 0 {
        return usage(format!(
            "{name}: {} malformed lines (--strict){}",
            trace.nr_malformed,
            first()
        ));
    }
    if events > 0 && trace.nr_malformed > events {
        return usage(format!(
            "{name}: {} malformed lines against {events} events: not a kmem trace{}",
            trace.nr_malformed,
            first()
        ));
    }
    Ok(())
}

/// A replay done: the trace read, the report, the model at the end, and what is known of
/// the kernel's end beside the trace.
struct Replayed {
    trace: Trace,
    r: ReplayReport,
    m: Machine,
    kernel: Option<ZoneFree>,
    kernel_pcp: KernelPcp,
}

/// `replay --json`'s content without printing it: what the Python package's
/// `kcompact.replay` returns.
pub fn replay_result(args: &ReplayArgs) -> anyhow::Result<serde_json::Value> {
    let (x, _) = replayed(args)?;
    integrity_result(&x.m)?;
    Ok(report_json(
        args,
        &x.trace,
        &x.r,
        &x.m,
        &x.kernel,
        &x.kernel_pcp,
    ))
}

/// Checks the arguments and prepares `--out`, reads the trace, loads the start snapshot
/// or boots `--mem`, replays and checks the model's state.
fn replayed(args: &ReplayArgs) -> anyhow::Result<(Replayed, Option<OutDir>)> {
    let Some(mode) = Mode::parse(&args.mode) else {
        return usage(format!("--mode {}: expected exact or policy", args.mode));
    };
    // Everything the trace does not decide is checked before it is read.
    let settings = Settings::parse(&args.machine)?;
    if let Some(s) = args.snapshot.as_ref().filter(|s| !s.is_dir()) {
        return usage(format!("{}: no such snapshot directory", s.display()));
    }
    let out_dir = args
        .out
        .as_deref()
        .map(|d| OutDir::prepare(d, args.force))
        .transpose()?;
    let text = read_trace(&args.trace, args.max_events)?;
    let trace = parse_trace(&text);
    drop(text);
    check_trace(args, &trace)?;
    if trace.records.is_empty() {
        return usage(format!(
            "{}: no kmem or compaction events ({} malformed lines{})",
            args.trace.display(),
            trace.nr_malformed,
            trace
                .malformed
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        ));
    }
    let kernel = kernel_end(&args.trace)?;
    let end_zoneinfo = kernel_end_pcp(&args.trace)?;
    let mut m = match &args.snapshot {
        Some(dir) => {
            // A snapshot brings its own memory; the run-time tunables of `--set` apply.
            let mut m = load_dir(dir)?.machine;
            settings.apply_runtime(&mut m, true)?;
            m
        }
        None => settings.boot()?,
    };
    let bar = crate::ui::progress_bar(
        trace.records.len() as u64,
        "{bar:40} {percent}% {elapsed} replay",
    );
    let read = args
        .snapshot
        .as_deref()
        .and_then(crate::snapshot_dir::snapshot_read_window);
    if args.out.is_some() {
        // The model's own tracepoints (compaction, reclaim) go to model-trace.txt, to set
        // beside the kernel's block by block.
        m.trace = Some(Vec::new());
    }
    let r = run_replay(&mut m, &trace, mode, read, &mut |done, _| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    kcompact::verify::verify(&m)
        .map_err(|e| anyhow::anyhow!("the model's state is inconsistent after the replay:\n{e}"))?;
    let kernel_pcp = KernelPcp {
        end_zoneinfo,
        trace_end: kernel_trace_end_pcp(args, &m, &r)?,
    };
    let x = Replayed {
        trace,
        r,
        m,
        kernel,
        kernel_pcp,
    };
    Ok((x, out_dir))
}

/// `kcompact replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let (
        Replayed {
            trace,
            r,
            mut m,
            kernel,
            kernel_pcp,
        },
        mut out_dir,
    ) = replayed(&args)?;
    let j = report_json(&args, &trace, &r, &m, &kernel, &kernel_pcp);
    // The files first: a report on stdout means they are there.
    let wrote = match out_dir.take() {
        Some(mut dir) => {
            let path = dir.path().to_path_buf();
            let d = &mut dir;
            crate::out::write(d, "result.json", serde_json::to_string_pretty(&j)? + "\n");
            crate::out::write(d, "buddyinfo", buddyinfo(&m));
            crate::out::write(d, "timeline.csv", timeline_csv(&r));
            let mut model_trace = m.take_trace_text().join("\n");
            model_trace.push('\n');
            crate::out::write(d, "model-trace.txt", model_trace);
            write_report(d, &replay_report(&args, &r, &m, &j))?;
            if args.end_snapshot {
                let img = crate::snapshot_out::image(
                    &m,
                    &format!("replay {} end", args.trace.display()),
                    args.snapshot.is_some(),
                )?;
                crate::snapshot_out::stage(d, "snapshot", img);
            }
            dir.commit("replay", "result.json")?;
            Some(path)
        }
        None => None,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        out!(
            "{}",
            text_report(&args, &trace, &r, &m, &kernel, &kernel_pcp)
        );
    }
    if let (Some(dir), false) = (wrote, args.json) {
        outln!("\nwrote {}", dir.display());
    }
    integrity_result(&m)
}

/// With contents tracked (`--set integrity=stamps|bytes` on `--mem`), a replay whose
/// owners' data was found wrong fails (exit 1) once its report is out.
fn integrity_result(m: &Machine) -> anyhow::Result<()> {
    match m.check_contents().errors {
        0 => Ok(()),
        n => anyhow::bail!("{n} folios lost or corrupted their data"),
    }
}
