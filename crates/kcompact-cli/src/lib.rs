//! The command line's library: everything `kcompact` does, for the binary (`main.rs`, the
//! dispatch and the exit codes) and for the Python package (`crates/kcompact-py`), so both
//! call the same functions.
//!
//! Three layers, each importing only the ones below it and the core: the arguments
//! (`cli`, `settings`, `ui`: parsed and validated; bad input is a [`ui::Usage`] error),
//! the files (`snapshot_dir`: a snapshot directory into a loaded machine; `out`, `report`
//! and `churn_out`: a machine into files and text; `table`: rows into Parquet and back;
//! `capture`, `tracefs`: this machine's state), and the commands (`*_cmd`, `show`,
//! `validate`). Only this crate does I/O, and only this crate uses `anyhow`.

pub mod advise_cmd;
pub mod capture;
pub mod capture_cmd;
pub mod census_cmd;
pub mod churn_out;
pub mod cli;
pub mod explain_cmd;
pub mod input;
pub mod live;
pub mod out;
pub mod outdir;
pub mod replay_cmd;
pub mod report;
pub mod report_cmd;
pub mod scenario_cmd;
pub mod settings;
pub mod show;
pub mod snapshot_cmd;
pub mod snapshot_dir;
pub mod snapshot_out;
pub mod sweep_cmd;
pub mod table;
pub mod tracefs;
pub mod ui;
pub mod validate;
pub mod watch_cmd;
