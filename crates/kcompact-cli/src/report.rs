//! `report.html`: one self-contained file (no network) with the physical memory map, the
//! plots and the kernel-format tables of a run, an A/B comparison, a replay or a
//! snapshot. The report is data first (`report.json`, [`Report`]), rendered by
//! [`render`] (`kcompact report DIR`, in `report_cmd.rs`, renders a directory's
//! `report.json` again).
//!
//! Maps are drawn by a small script (`report.js`) on a canvas from the cells' data (one
//! cell per pageblock, or per group of them on large machines, said above the map); plots
//! are inline SVG. The script reports its own errors in the page (`#errors`) and marks each
//! map with the number of cells it drew (`data-cells`), which the browser test reads.

use kcompact::views::mapdata::MemoryMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;

/// Cells a map holds at most before pageblocks are grouped.
pub const MAX_CELLS: usize = 65_536;

/// A line of a plot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

/// One A/B row: metric, mean and sd under A, under B.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AbRow {
    /// The metric.
    pub metric: String,
    /// Mean under A.
    pub a: f64,
    /// Sample sd under A.
    pub a_sd: f64,
    /// Mean under B.
    pub b: f64,
    /// Sample sd under B.
    pub b_sd: f64,
}

/// One part of a report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Section {
    /// A memory map (the cells as JSON columns).
    Map {
        /// Heading.
        title: String,
        /// The map's data.
        map: serde_json::Value,
    },
    /// A line plot.
    Chart {
        /// Heading.
        title: String,
        /// The x axis.
        x_label: String,
        /// The y axis.
        y_label: String,
        /// Its lines.
        series: Vec<Series>,
    },
    /// A/B bars, one pair per metric.
    Bars {
        /// Heading.
        title: String,
        /// A's label.
        a_label: String,
        /// B's label.
        b_label: String,
        /// The metrics.
        rows: Vec<AbRow>,
    },
    /// A table.
    Table {
        /// Heading.
        title: String,
        /// Column heads.
        headers: Vec<String>,
        /// Rows.
        rows: Vec<Vec<String>>,
    },
    /// Preformatted text (kernel-format files).
    Pre {
        /// Heading.
        title: String,
        /// The text.
        text: String,
    },
}

/// A report: title, what it is of, and its sections.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// One line on what it is of (scenario, seed, snapshot…).
    pub subtitle: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

/// The map's data as the page's script reads it.
pub fn map_json(map: &MemoryMap) -> serde_json::Value {
    json!({
        "pageblock_pages": map.pageblock_pages,
        "group": map.group,
        "pfn": map.pfn, "mt": map.mt, "free": map.free, "anon": map.anon,
        "file": map.file, "kernel": map.kernel, "driver": map.driver,
        "hugetlb": map.hugetlb, "reserved": map.reserved, "pinned": map.pinned,
        "hole": map.hole, "marks": map.marks,
        "zones": map.zones.iter().map(|z| json!({
            "name": z.name, "start_pfn": z.start_pfn, "end_pfn": z.end_pfn,
            "first_cell": z.first_cell, "cells": z.cells,
            "migrate_scanned": z.migrate_scanned, "free_scanned": z.free_scanned,
        })).collect::<Vec<_>>(),
    })
}

/// A map section of `m`.
pub fn map_section(title: &str, m: &kcompact::Machine) -> Section {
    let map = kcompact::views::mapdata::memory_map(m, MAX_CELLS);
    Section::Map {
        title: title.to_string(),
        map: map_json(&map),
    }
}

/// A JSON object's members as `(key, value)` text pairs (strings without quotes).
pub fn flat_json(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A table of `(key, value)` rows.
pub fn kv_table(title: &str, rows: Vec<(String, String)>) -> Section {
    Section::Table {
        title: title.to_string(),
        headers: vec!["key".into(), "value".into()],
        rows: rows.into_iter().map(|(k, v)| vec![k, v]).collect(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: [&str; 11] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#000000",
];

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn chart_svg(x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, l, r, t, b) = (760.0, 300.0, 70.0, 170.0, 12.0, 40.0);
    let pts: Vec<&(f64, f64)> = series.iter().flat_map(|s| s.points.iter()).collect();
    let n = pts.len();
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if n == 0 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= 0.0 {
        y1 = 1.0;
    }
    let sx = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let sy = |y: f64| t + (1.0 - y / y1) * (h - t - b);
    let mut o = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" data-points=\"{n}\" role=\"img\">"
    );
    let _ = write!(
        o,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/><line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"#333\"/>",
        h - b,
        w - r,
        h - b,
        h - b
    );
    for i in 0..=4 {
        let y = y1 * i as f64 / 4.0;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text><line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eee\"/>",
            l - 4.0,
            sy(y) + 4.0,
            fmt_num(y),
            sy(y),
            w - r,
            sy(y)
        );
    }
    let _ = write!(
        o,
        "<text x=\"{l}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        h - b + 14.0,
        fmt_num(x0),
        w - r,
        h - b + 14.0,
        fmt_num(x1)
    );
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text><text x=\"14\" y=\"{}\" font-size=\"12\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>",
        (l + w - r) / 2.0,
        h - 6.0,
        esc(x_label),
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let p: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            o,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            p.join(" "),
            esc(&s.name)
        );
        let ly = t + 14.0 * i as f64 + 8.0;
        let _ = write!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
            w - r + 10.0,
            ly - 8.0,
            w - r + 24.0,
            ly + 1.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>");
    o
}

fn bars_svg(a_label: &str, b_label: &str, rows: &[AbRow]) -> String {
    let row_h = 34.0;
    let (w, l) = (760.0, 240.0);
    let h = 30.0 + row_h * rows.len() as f64;
    let mut o = format!(
        "<svg class=\"chart bars\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" data-points=\"{}\" role=\"img\">",
        2 * rows.len()
    );
    let _ = write!(
        o,
        "<rect x=\"{l}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"13\" font-size=\"11\">{}</text><rect x=\"{}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"13\" font-size=\"11\">{}</text>",
        PALETTE[0],
        l + 14.0,
        esc(a_label),
        l + 214.0,
        PALETTE[1],
        l + 228.0,
        esc(b_label)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 24.0 + row_h * i as f64;
        let top = (r.a.abs() + r.a_sd).max(r.b.abs() + r.b_sd).max(1e-12);
        let span = w - l - 90.0;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            l - 8.0,
            y + 17.0,
            esc(&r.metric)
        );
        for (k, (v, sd)) in [(r.a, r.a_sd), (r.b, r.b_sd)].into_iter().enumerate() {
            let bw = v.abs() / top * span;
            let by = y + 2.0 + 14.0 * k as f64;
            let _ = write!(
                o,
                "<rect x=\"{l}\" y=\"{by}\" width=\"{bw:.1}\" height=\"12\" fill=\"{}\"><title>{} {} ± {}</title></rect><line x1=\"{:.1}\" y1=\"{}\" x2=\"{:.1}\" y2=\"{}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                PALETTE[k],
                esc(&r.metric),
                fmt_num(v),
                fmt_num(sd),
                l + ((v.abs() - sd).max(0.0) / top * span),
                by + 6.0,
                l + ((v.abs() + sd) / top * span),
                by + 6.0,
                l + bw + 6.0,
                by + 10.0,
                fmt_num(v)
            );
        }
    }
    o.push_str("</svg>");
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:20px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}pre{font-size:11px;background:#f6f6f6;padding:8px;overflow-x:auto}
.note{font-size:12px;color:#555}.legend span{display:inline-block;margin-right:12px;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px;border:1px solid #999}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #888;padding:4px 8px;font-size:12px;display:none;white-space:pre}
#errors{color:#b00}canvas{border:1px solid #ccc}";

/// The page's script: draws the maps on their canvases from the cells' data, with a
/// tooltip per cell, and reports its own errors in the page (`#errors`).
const SCRIPT: &str = include_str!("report.js");

/// A map section: its heading, what a cell is, the legend, the canvas and its data (the
/// `n`th map of the page).
fn render_map(o: &mut String, n: usize, title: &str, map: &serde_json::Value) {
    let cells = map["pfn"].as_array().map_or(0, |a| a.len());
    let group = map["group"].as_u64().unwrap_or(1);
    let pb = map["pageblock_pages"].as_u64().unwrap_or(512);
    let id = format!("map{n}");
    let _ = write!(
        o,
        "<h2>{}</h2><p class=\"note\">{cells} cells, each {} ({} pages{}). Colour: migratetype; shade: pages in use; marks: black dot unmovable pages in a movable block, red pinned pages, grey reserved; blue and orange bars under a row: the pfns the last compaction's migrate and free scanners covered. Hover a cell for its counts.</p>",
        esc(title),
        if group == 1 { "one pageblock".to_string() } else { format!("a group of {group} pageblocks") },
        pb * group,
        if group == 1 { String::new() } else { format!("; groups of {group} keep large machines responsive") }
    );
    o.push_str("<div class=\"legend\">");
    for (name, hue) in [
        ("Unmovable", 0),
        ("Movable", 120),
        ("Reclaimable", 45),
        ("HighAtomic", 280),
        ("CMA", 200),
        ("Isolate", 300),
    ] {
        let _ = write!(
            o,
            "<span><i class=\"sw\" style=\"background:hsl({hue},60%,50%)\"></i>{name}</span>"
        );
    }
    o.push_str("<span><i class=\"sw\" style=\"background:#f4f4f4\"></i>free</span></div>");
    let data = serde_json::to_string(map)
        .unwrap_or_else(|_| "{}".into())
        .replace("</", "<\\/");
    let _ = write!(
        o,
        "<canvas class=\"map\" id=\"{id}\" data-expected-cells=\"{cells}\"></canvas><script type=\"application/json\" id=\"{id}-data\">{data}</script>"
    );
}

/// The report as one HTML file.
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(1 << 16);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{}<title>{}</title><style>{STYLE}</style></head><body>",
        crate::outdir::REPORT_SIGNATURE,
        esc(&r.title)
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"note\">{}</p><div id=\"errors\"></div><div id=\"tip\"></div>",
        esc(&r.title),
        esc(&r.subtitle)
    );
    let mut maps = 0;
    for s in &r.sections {
        match s {
            Section::Map { title, map } => {
                render_map(&mut o, maps, title, map);
                maps += 1;
            }
            Section::Chart {
                title,
                x_label,
                y_label,
                series,
            } => {
                let _ = write!(
                    o,
                    "<h2>{}</h2>{}",
                    esc(title),
                    chart_svg(x_label, y_label, series)
                );
            }
            Section::Bars {
                title,
                a_label,
                b_label,
                rows,
            } => {
                let _ = write!(
                    o,
                    "<h2>{}</h2>{}",
                    esc(title),
                    bars_svg(a_label, b_label, rows)
                );
            }
            Section::Table {
                title,
                headers,
                rows,
            } => {
                let _ = write!(o, "<h2>{}</h2><table><tr>", esc(title));
                for h in headers {
                    let _ = write!(o, "<th>{}</th>", esc(h));
                }
                o.push_str("</tr>");
                for r in rows {
                    o.push_str("<tr>");
                    for c in r {
                        let _ = write!(o, "<td>{}</td>", esc(c));
                    }
                    o.push_str("</tr>");
                }
                o.push_str("</table>");
            }
            Section::Pre { title, text } => {
                let _ = write!(o, "<h2>{}</h2><pre>{}</pre>", esc(title), esc(text));
            }
        }
    }
    let _ = writeln!(
        o,
        "<p class=\"note\">kcompact {} — a deterministic model of Linux memory compaction.</p><script>\n{SCRIPT}</script></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    o
}

/// Stages `report.json` and `report.html` for `dir`.
pub fn write_report(dir: &mut crate::outdir::OutDir, r: &Report) -> anyhow::Result<()> {
    crate::out::write(dir, "report.json", serde_json::to_string(r)? + "\n");
    crate::out::write(dir, "report.html", render(r));
    Ok(())
}

/// The first sections of a run's report: its metrics, its configuration and seed (from
/// its result.json) and the memory map at the end of the run.
pub fn run_sections(m: &kcompact::Machine, seed: u64, result: &serde_json::Value) -> Vec<Section> {
    let mut config = vec![("seed".to_string(), seed.to_string())];
    config.extend(flat_json(&result["config"]));
    vec![
        kv_table("Metrics", flat_json(&result["metrics"])),
        kv_table("Configuration and seed", config),
        map_section("Physical memory at the end of the run", m),
    ]
}

/// The non-zero counters of `m`'s vmstat as a table.
pub fn vmstat_table(title: &str, m: &kcompact::Machine) -> Section {
    kv_table(
        title,
        m.vmstat
            .pairs()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The kernel-format files of `m`: buddyinfo and pagetypeinfo.
pub fn kernel_views(m: &kcompact::Machine) -> Vec<Section> {
    vec![
        Section::Pre {
            title: "/proc/buddyinfo".into(),
            text: kcompact::views::procfs::buddyinfo(m),
        },
        Section::Pre {
            title: "/proc/pagetypeinfo".into(),
            text: kcompact::views::procfs::pagetypeinfo(m),
        },
    ]
}

/// A chart of free pages per order (blocks × 2^order) against `x`, one line per order
/// that ever held a block.
pub fn free_by_order_chart(title: &str, x_label: &str, rows: &[(f64, [u64; 11])]) -> Section {
    let series = (0..11)
        .filter(|o| rows.iter().any(|(_, f)| f[*o] > 0))
        .map(|o| Series {
            name: format!("order {o}"),
            points: rows.iter().map(|(x, f)| (*x, (f[o] << o) as f64)).collect(),
        })
        .collect();
    Section::Chart {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: "free pages".to_string(),
        series,
    }
}
