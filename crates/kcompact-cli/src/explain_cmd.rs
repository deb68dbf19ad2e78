//! `kcompact explain DUMP`: why a real `page allocation failure` failed (file or stdin).

use crate::cli::ExplainArgs;
use crate::ui::{out, outln, usage};
use kcompact::explain::render::render_text;
use kcompact::explain::{explain, parse_report, Explanation, Outcome};
use serde_json::{json, Value};
use std::io::Read;

/// Reads the dump, explains it, prints text or JSON. Unreadable dumps are [`crate::Usage`]
/// errors naming the input and line.
pub fn explain_cmd(args: ExplainArgs) -> anyhow::Result<()> {
    let (name, bytes) = if args.dump.as_os_str() == "-" {
        let mut b = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut b) {
            return usage(format!("<stdin>: {e}"));
        }
        ("<stdin>".to_string(), b)
    } else {
        let b = crate::input::read_capped(
            &args.dump,
            crate::input::TEXT_MAX,
            "bytes kcompact reads of a kernel log",
        )?;
        (args.dump.display().to_string(), b)
    };
    let report = match parse_report(&bytes) {
        Ok(r) => r,
        Err(e) => return usage(format!("{name}: {e}")),
    };
    let e = explain(report);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&to_json(&e))?);
    } else {
        out!("{}", render_text(&e));
    }
    Ok(())
}

/// The `--json` object (SPEC.md: order, gfp_mask, gfp_flags, zones, verdict,
/// would_succeed_with, unknown; the rest added).
fn to_json(e: &Explanation) -> Value {
    let r = &e.report;
    let zones: Vec<Value> = e
        .zones
        .iter()
        .map(|f| {
            let z = &r.zones[f.zone];
            let check = f.check.as_ref().map(|c| {
                json!({
                    "free_pages": c.free_pages,
                    "mark_pages": c.mark_pages,
                    "effective_mark_pages": c.effective_mark,
                    "lowmem_reserve_index": c.lowmem_idx,
                    "lowmem_reserve_pages": c.lowmem_reserve,
                    "unusable_pages": {
                        "order": c.unusable_order,
                        "highatomic": c.unusable_highatomic,
                        "cma": c.unusable_cma,
                    },
                    "usable_free_pages": c.usable_free,
                    "old_rule_step": c.old_step.map(|(o, left, min)| json!({
                        "order": o, "pages_left": left, "mark": min,
                    })),
                    "blocks_at_or_above_order": c.blocks_at_or_above,
                    "types_at_or_above_order": c.types_at_or_above,
                    "largest_free_order": c.largest_free_order,
                    "compaction": c.compaction.as_ref().map(|v| json!({
                        "free_pages": v.has,
                        "needs_above": v.needs_above,
                        "fragmentation_index": v.fragindex,
                        "would_run": v.would_run,
                    })),
                })
            });
            let why = match &f.outcome {
                Outcome::NotUsable(w) | Outcome::Unknown(w) => Some(w.clone()),
                Outcome::OnlyReservedTypes(t) => Some(t.clone()),
                _ => None,
            };
            json!({
                "node": z.node,
                "name": z.name,
                "line": z.line,
                "free_kb": z.free_kb,
                "min_kb": z.min_kb,
                "low_kb": z.low_kb,
                "high_kb": z.high_kb,
                "boost_kb": z.boost_kb,
                "reserved_highatomic_kb": z.reserved_highatomic_kb,
                "free_highatomic_kb": z.free_highatomic_kb,
                "free_cma_kb": z.free_cma_kb,
                "managed_kb": z.managed_kb,
                "lowmem_reserve": z.lowmem_reserve,
                "free_by_order": z.free_by_order,
                "types_by_order": z.types_by_order,
                "zone_index": f.zone_idx,
                "outcome": f.outcome.keyword(),
                "outcome_detail": why,
                "check": check,
            })
        })
        .collect();
    let q = &e.request;
    json!({
        "comm": r.comm,
        "line": r.failure_line,
        "order": r.order,
        "gfp_mask": r.mode_text,
        "gfp_flags": e.gfp.as_ref().map(|g| g.names.clone()),
        "gfp_flags_source": e.gfp.as_ref().map(|g| match g.source {
            kcompact::explain::gfpflags::GfpSource::Printed => "printed",
            kcompact::explain::gfpflags::GfpSource::Decoded => "decoded",
        }),
        "kernel": r.release,
        "kernel_versions": e.range.to_string(),
        "rules": e.rules.label(),
        "page_kb": r.page_kb,
        "request": {
            "size_kb": q.size_kb,
            "highest_zone": q.highest_zone.map(|z| z.name()),
            "can_reclaim": q.can_reclaim.word(),
            "wakes_kswapd": q.wakes_kswapd.word(),
            "can_compact": q.can_compact.word(),
            "costly_order": q.costly,
            "reserves": q.reserves,
            "retry": q.retry,
            "nodes": q.nodes,
        },
        "zones": zones,
        "verdict": e.verdict,
        "verdict_kind": e.verdict_kind.keyword(),
        "would_succeed_with": e.would_succeed_with.iter().map(|m| json!({
            "change": m.change,
            "sure": m.sure,
            "why": m.why,
        })).collect::<Vec<_>>(),
        "unknown": e.unknown,
        "other_reports": r.other_reports,
    })
}
