//! `kcompact`: the command line around the kcompact model.
//!
//! Layers: parse (clap) → validate (settings into typed configs; bad input is a [`Usage`]
//! error, exit code 2) → run (the pure core) → print or write files. Only this crate does
//! I/O, and only this crate uses `anyhow`.

mod capture;
mod cli;
mod explain_cmd;
mod replay_cmd;
mod report;
mod run;
mod scenario_cmd;
mod settings;
mod show;
mod snapshot_cmd;
mod trace_capture;
mod validate;

use clap::Parser;
use std::process::ExitCode;

/// Bad input from the user: a message naming the flag, key, file or line. Exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Shorthand for returning a [`Usage`] error.
/// A progress bar of `len` steps drawn with `template`, on a terminal only (nothing of it
/// when stderr is piped).
pub fn progress_bar(len: u64, template: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(s) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(s);
    }
    Some(b)
}

pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(Usage(msg.into()).into())
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Run(a) => run::run(a),
        cli::Command::Scenarios => scenario_cmd::scenarios(),
        cli::Command::Ab(a) => scenario_cmd::ab(a),
        cli::Command::Show(a) => show::show(a),
        cli::Command::Predict(a) => snapshot_cmd::predict(a),
        cli::Command::Analyze(a) => snapshot_cmd::analyze(a),
        cli::Command::Capture(a) => capture::capture(a),
        cli::Command::Validate(a) => validate::validate(a),
        cli::Command::Replay(a) => replay_cmd::replay(a),
        cli::Command::Report(a) => report::report_cmd(a),
        cli::Command::Explain(a) => explain_cmd::explain_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            eprintln!("kcompact: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("kcompact: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
