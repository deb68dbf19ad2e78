//! `kcompact`: the command line around the kcompact model.
//!
//! Three layers, each importing only the ones below it and the core: the arguments
//! (`cli`, `settings`, `ui`: parsed and validated; bad input is a [`Usage`] error, exit
//! code 2), the files (`snapshot_dir`: a snapshot directory into a loaded machine; `out`,
//! `report` and `churn_out`: a machine into files and text; `capture`, `tracefs`: this
//! machine's state), and the commands (`*_cmd`, `show`, `validate`), which this file only
//! dispatches to. Only this crate does I/O, and only this crate uses `anyhow`. The layers
//! are the crate's library (`lib.rs`), which the Python package calls too.

use kcompact_cli::{
    advise_cmd, capture_cmd, census_cmd, cli, explain_cmd, replay_cmd, report_cmd, scenario_cmd,
    show, snapshot_cmd, sweep_cmd, ui, validate, watch_cmd,
};

use clap::Parser;
use std::process::ExitCode;
use ui::Usage;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        // Help and version go to stdout, errors to stderr (exit 2); a failed write to
        // stdout is handled as every command's is.
        Err(e) if e.use_stderr() => e.exit(),
        Err(e) => {
            return exit_code(
                e.print()
                    .map_err(|err| ui::StdoutError(err).into())
                    .and_then(|()| ui::flush_stdout()),
            )
        }
    };
    let result = match args.command {
        cli::Command::Run(a) => scenario_cmd::run(a),
        cli::Command::Scenarios => scenario_cmd::scenarios(),
        cli::Command::Ab(a) => scenario_cmd::ab(a),
        cli::Command::Show(a) => show::show(a),
        cli::Command::Predict(a) => snapshot_cmd::predict(a),
        cli::Command::Analyze(a) => snapshot_cmd::analyze(a),
        cli::Command::Advise(a) => advise_cmd::advise(a),
        cli::Command::Watch(a) => watch_cmd::watch(a),
        cli::Command::Capture(a) => capture_cmd::capture(a),
        cli::Command::Validate(a) => validate::validate(a),
        cli::Command::Replay(a) => replay_cmd::replay(a),
        cli::Command::Report(a) => report_cmd::report(a),
        cli::Command::Explain(a) => explain_cmd::explain_cmd(a),
        cli::Command::Sweep(a) => sweep_cmd::sweep(a),
        cli::Command::Census(a) => census_cmd::census(a),
    };
    exit_code(result.and_then(|()| ui::flush_stdout()))
}

/// The exit code of a command's result, its error printed on stderr in one line.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<ui::Help>() => {
            exit_code(ui::write_stdout(format_args!("{e}")).and_then(|()| ui::flush_stdout()))
        }
        // `kcompact ... | head`: the reader has what it wanted (ripgrep's convention).
        Err(e)
            if e.downcast_ref::<ui::StdoutError>()
                .is_some_and(|s| s.0.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) if e.is::<ui::StdoutError>() => {
            say(&format!("kcompact: {e}"));
            ExitCode::from(1)
        }
        Err(e) if e.is::<Usage>() => {
            say(&format!("kcompact: {e}"));
            ExitCode::from(2)
        }
        Err(e) => {
            say(&format!("kcompact: error: {e:#}"));
            ExitCode::from(1)
        }
    }
}

/// One line on stderr; a stderr that cannot be written to is left alone (no panic).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
