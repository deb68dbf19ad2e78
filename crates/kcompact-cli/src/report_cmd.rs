//! `kcompact report DIR`: renders a directory's `report.json` again, or builds and renders
//! the report of a snapshot directory (`analyze`'s results, the map before and after
//! `compact_memory`). It writes the one HTML file (and the report's data only to
//! `--data FILE`), into a snapshot nothing but its `report.html`
//! ([`crate::outdir::OutFile`]).

use crate::cli::ReportArgs;
use crate::input;
use crate::outdir::{OutFile, REPORT_SIGNATURE};
use crate::report::{render, Report};
use crate::snapshot_cmd::snapshot_report;
use crate::ui::{outln, usage};

/// `kcompact report DIR [--out FILE] [--data FILE]`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    let data_file = dir.join("report.json");
    // A snapshot is analyzed afresh (a report.json beside its files would be stale).
    let snapshot = input::present(&dir.join("meta.txt"));
    if !snapshot && !input::present(&data_file) {
        return usage(format!(
            "{}: neither an --out directory (report.json) nor a snapshot (meta.txt)",
            dir.display()
        ));
    }
    let out_path = args.out.clone().unwrap_or_else(|| dir.join("report.html"));
    // Both targets are checked before the work.
    let out = OutFile::prepare(&out_path, Some(REPORT_SIGNATURE), args.force)?;
    let data = args
        .data
        .as_deref()
        .map(|p| OutFile::prepare_beside(p, Some("\"sections\""), args.force, &out))
        .transpose()?;
    let report = if !snapshot {
        let text = input::read_text(&data_file)?;
        match serde_json::from_str::<Report>(&text) {
            Ok(r) => r,
            Err(e) => return usage(format!("{}: not a report: {e}", data_file.display())),
        }
    } else {
        snapshot_report(dir)?
    };
    let html = render(&report);
    if let Some(d) = data {
        d.write((serde_json::to_string(&report)? + "\n").as_bytes())?;
    }
    out.write(html.as_bytes())?;
    outln!("wrote {} ({} bytes)", out_path.display(), html.len());
    Ok(())
}
