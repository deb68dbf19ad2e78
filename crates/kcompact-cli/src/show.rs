//! `kcompact show VIEW`.

use crate::cli::ShowArgs;
use crate::settings::Settings;
use crate::ui::{out, usage};
use kcompact::views::View;

pub fn show(args: ShowArgs) -> anyhow::Result<()> {
    let Some(view) = View::from_name(&args.view) else {
        let names: Vec<&str> = View::ALL.iter().map(|(_, n)| *n).collect();
        return usage(format!(
            "unknown view '{}' (views: {})",
            args.view,
            names.join(", ")
        ));
    };
    let settings = Settings::parse(&args.machine)?;
    settings.refuse_unused(
        "integrity",
        "show runs no workload, so there is no data to check (run and replay --mem check it)",
    )?;
    let m = settings.boot()?;
    out!("{}", view.render(&m));
    Ok(())
}
