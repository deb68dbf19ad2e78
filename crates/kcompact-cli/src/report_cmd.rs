//! `kcompact report DIR`: renders a directory's `report.json` again, or builds and renders
//! the report of a snapshot directory (`analyze`'s results, the map before and after
//! `compact_memory`).

use crate::cli::ReportArgs;
use crate::report::{render, Report};
use crate::snapshot_cmd::snapshot_report;
use crate::ui::usage;
use anyhow::Context;

/// `kcompact report DIR [--out FILE]`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    let out = args.out.clone().unwrap_or_else(|| dir.join("report.html"));
    let report = if dir.join("report.json").is_file() {
        let p = dir.join("report.json");
        let text = std::fs::read_to_string(&p).with_context(|| p.display().to_string())?;
        match serde_json::from_str::<Report>(&text) {
            Ok(r) => r,
            Err(e) => return usage(format!("{}: not a report: {e}", p.display())),
        }
    } else if dir.join("meta.txt").is_file() {
        snapshot_report(dir)?
    } else {
        return usage(format!(
            "{}: neither an --out directory (report.json) nor a snapshot (meta.txt)",
            dir.display()
        ));
    };
    let html = render(&report);
    if let Err(e) = std::fs::write(&out, &html) {
        return usage(format!(
            "{}: {e} (choose another file with --out)",
            out.display()
        ));
    }
    if !dir.join("report.json").is_file() {
        // A snapshot's report: its data beside the page, as `--out` directories have it.
        let j = out.with_file_name("report.json");
        std::fs::write(&j, serde_json::to_string(&report)? + "\n")
            .with_context(|| format!("writing {}", j.display()))?;
    }
    println!("wrote {} ({} bytes)", out.display(), html.len());
    Ok(())
}
