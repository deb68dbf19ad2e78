//! The explanation as text for a terminal: the request, each zone's check with its
//! arithmetic, the verdict, what would have made it succeed, and what the report does not
//! say.

use super::gfpflags::GfpSource;
use super::{size_words, Explanation, Outcome, Tri};
use std::fmt::Write as _;

/// The explanation as text.
pub fn render_text(e: &Explanation) -> String {
    let mut s = String::new();
    let r = &e.report;
    let page_kb = r.page_kb.max(1);
    let kernel = match (&r.release, e.version) {
        (Some(rel), Some(_)) => format!("Linux {rel}"),
        _ => format!("kernel not named ({})", e.range),
    };
    let _ = writeln!(
        s,
        "{}: order-{} request ({}) failed, line {}; {}; judged by the rules of {}{}",
        r.comm.as_deref().unwrap_or("(task not named)"),
        r.order,
        size_words(r.order, page_kb),
        r.failure_line,
        kernel,
        e.rules.label(),
        if e.rules_ambiguous {
            " (the other possible versions give the same verdict)"
        } else {
            ""
        }
    );
    match &e.gfp {
        Some(g) => {
            let how = match g.source {
                GfpSource::Printed => "as printed",
                GfpSource::Decoded => "decoded with this kernel's bit table",
            };
            let _ = writeln!(s, "mode:{} = {} ({how})", r.mode_text, g.names.join("|"));
        }
        None => {
            let _ = writeln!(s, "mode:{} = unknown flags", r.mode_text);
        }
    }
    if r.other_reports > 0 {
        let _ = writeln!(
            s,
            "(the input holds {} more failure report(s) after this one; explain them apart)",
            r.other_reports
        );
    }

    let q = &e.request;
    let _ = writeln!(s, "\nThe request");
    let _ = writeln!(
        s,
        "  zones:      {} and below; {}",
        q.highest_zone.map_or("unknown", |z| z.name()),
        q.nodes
    );
    let _ = writeln!(
        s,
        "  reclaim:    {} (kswapd woken: {})",
        q.can_reclaim.word(),
        q.wakes_kswapd.word()
    );
    let _ = writeln!(
        s,
        "  compaction: {}{}",
        q.can_compact.word(),
        if q.can_compact == Tri::No && q.can_reclaim == Tri::Yes && q.order > 0 {
            " (no __GFP_IO)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "  reserves:   {}", q.reserves);
    let _ = writeln!(s, "  retry:      {}", q.retry);

    let _ = writeln!(
        s,
        "\nThe zones ({page_kb} kB pages; the slow path's last attempt checks the min watermark)"
    );
    for f in &e.zones {
        let z = &r.zones[f.zone];
        let name = if z.node_printed {
            format!("Node {} {}", z.node, z.name)
        } else {
            z.name.clone()
        };
        let _ = writeln!(
            s,
            "  {name:<14} free {} kB, min {} kB, low {} kB, high {} kB (line {})",
            z.free_kb, z.min_kb, z.low_kb, z.high_kb, z.line
        );
        let pad = "                 ";
        if let Outcome::NotUsable(why) | Outcome::Unknown(why) = &f.outcome {
            if f.check.is_none() {
                let _ = writeln!(s, "{pad}not judged: {why}");
                continue;
            }
        }
        let Some(c) = &f.check else { continue };
        let mut took = format!("{} - {} (order)", c.free_pages, c.unusable_order);
        if c.unusable_highatomic > 0 {
            let _ = write!(took, " - {} (high-atomic reserve)", c.unusable_highatomic);
        }
        if c.unusable_cma > 0 {
            let _ = write!(took, " - {} (free CMA)", c.unusable_cma);
        }
        let cmp = if c.usable_free > c.effective_mark + c.lowmem_reserve as i64 {
            ">"
        } else {
            "<="
        };
        let mark = if c.effective_mark == c.mark_pages as i64 {
            format!("{}", c.mark_pages)
        } else {
            format!("{} (min {} lowered)", c.effective_mark, c.mark_pages)
        };
        let slot = c.lowmem_idx.map_or(String::new(), |i| i.to_string());
        let _ = writeln!(
            s,
            "{pad}{took} = {} {cmp} {mark} + lowmem_reserve[{slot}] {}",
            c.usable_free, c.lowmem_reserve
        );
        if let Some((o, left, min)) = c.old_step {
            let _ = writeln!(
                s,
                "{pad}without the pages in blocks below order {o}: {left} <= {min} (the mark halved {o} time(s))"
            );
        }
        let blocks = if c.blocks_at_or_above == 0 {
            match c.largest_free_order {
                Some(o) => format!(
                    "none; the largest is order {o} ({} x {})",
                    z.free_by_order[o],
                    size_words(o as u32, page_kb)
                ),
                None => "none; no free block at all".into(),
            }
        } else if c.types_at_or_above.is_empty() {
            format!("{}", c.blocks_at_or_above)
        } else {
            format!("{} ({})", c.blocks_at_or_above, c.types_at_or_above)
        };
        let _ = writeln!(s, "{pad}free blocks of order >= {}: {blocks}", r.order);
        if let Some(v) = &c.compaction {
            let _ = writeln!(
                s,
                "{pad}compaction: {} free pages against {} needed; fragmentation index {}.{:03}; {}",
                v.has,
                v.needs_above,
                v.fragindex / 1000,
                (v.fragindex % 1000).abs(),
                if v.would_run { "it would run" } else { "it would be skipped" }
            );
        }
        let _ = writeln!(s, "{pad}=> {}", outcome_words(&f.outcome, r.order));
    }

    let _ = writeln!(s, "\nVerdict ({}): {}", e.verdict_kind.keyword(), e.verdict);
    if !e.would_succeed_with.is_empty() {
        let _ = writeln!(s, "\nWould have succeeded with");
        for m in &e.would_succeed_with {
            let _ = writeln!(
                s,
                "  - {} ({}): {}",
                m.change,
                if m.sure { "the numbers show it" } else { "may" },
                m.why
            );
        }
    }
    if !e.unknown.is_empty() {
        let _ = writeln!(s, "\nNot in the report");
        for u in &e.unknown {
            let _ = writeln!(s, "  - {u}");
        }
    }
    s
}

fn outcome_words(o: &Outcome, order: u32) -> String {
    match o {
        Outcome::NotUsable(why) => format!("not usable: {why}"),
        Outcome::BelowMin => "fails: at or below the mark".into(),
        Outcome::BelowReserve => "fails: above the mark, not above mark + lowmem_reserve".into(),
        Outcome::OnlyReservedTypes(t) => {
            format!("fails: blocks of order >= {order} only on reserved lists ({t})")
        }
        Outcome::NoFreeBlock => format!("fails: no free block of order >= {order}"),
        Outcome::OldOrderCheck { at_order } => format!(
            "fails: too few free pages in blocks of order >= {at_order} (the pre-4.4 check)"
        ),
        Outcome::Passes => "passes".into(),
        Outcome::Unknown(why) => format!("cannot tell: {why}"),
    }
}
