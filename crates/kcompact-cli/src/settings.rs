//! `--mem` and `--set KEY=VALUE` into a [`MachineConfig`] through the core's table of
//! tunables ([`kcompact::sysctl::TUNABLES`]), with a clear error per key. The scenario's
//! own parameters are set aside for it.

use crate::cli::MachineArgs;
use crate::ui::usage;
use kcompact::boot::BootError;
use kcompact::layout::LayoutError;
use kcompact::size::parse_size;
use kcompact::sysctl::{ConfigError, MachineConfig, Scope, TUNABLES};
use kcompact::Machine;

/// The bytes a booted model machine takes per page: its memory map
/// ([`kcompact::memmap::BYTES_PER_PAGE`]); `show buddyinfo --mem 1T` peaks at 4.1 GB.
pub const MODEL_BYTES_PER_PAGE: u64 = kcompact::memmap::BYTES_PER_PAGE as u64;

/// The bytes a scenario's run takes per page at most: the machine, the workload's owners
/// and its page cache. Measured peak RSS at `--mem 4G` (1,048,576 pages), release build:
/// zram-gpu 147 MB (140 B/page), thpscale 133 MB, compaction-test 122 MB, vfio-pin 115 MB,
/// highalloc 113 MB, file-holes 99 MB, mthp 36 MB, churn 33 MB; the bound has ~15 % on
/// top of the largest.
pub const SCENARIO_BYTES_PER_PAGE: u64 = 160;

/// The machine and workload a command asked for.
pub struct Settings {
    /// `--mem` as given (or the default).
    pub mem_text: String,
    /// The machine to boot.
    pub machine: MachineConfig,
    /// The `--set KEY=VALUE` pairs of tunables given on the command line, in order (a
    /// scenario's machine defaults excluded).
    pub explicit: Vec<(String, String)>,
    /// `--set` pairs that are the scenario's own parameters.
    pub scenario_params: Vec<(String, String)>,
}

/// What `--set help=1` prints: every tunable of the table, with its scope, then the
/// scenario's own keys.
pub fn help_text(scenario_keys: &[&str]) -> String {
    let mut out = String::from("the keys --set takes (KEY=VALUE):\n");
    for t in TUNABLES {
        let when = match t.scope {
            Scope::Boot => "boot",
            Scope::Runtime => "run-time",
        };
        out.push_str(&format!(
            "  {:<30} {} [{}; {when}]\n",
            t.name,
            t.help,
            t.handler.expected()
        ));
    }
    if !scenario_keys.is_empty() {
        out.push_str(&format!(
            "and the scenario's own: {}\n",
            scenario_keys.join(", ")
        ));
    }
    out
}

impl Settings {
    /// Parses `--mem` and every `--set`.
    pub fn parse(args: &MachineArgs) -> anyhow::Result<Settings> {
        Settings::parse_for(args, &[], &[], "4G")
    }

    /// Parses `--mem` and every `--set`; keys in `scenario_keys` are kept for the
    /// scenario (`scenario_params`). `machine_defaults` are `--set` pairs applied before
    /// the command line's (a scenario's machine); `default_mem` is the size without `--mem`.
    pub fn parse_for(
        args: &MachineArgs,
        scenario_keys: &[&str],
        machine_defaults: &[(&str, &str)],
        default_mem: &str,
    ) -> anyhow::Result<Settings> {
        let mem = args.mem.clone().unwrap_or_else(|| default_mem.to_string());
        let mem_bytes = parse_size(&mem).or_else(|e| usage(format!("--mem {mem}: {e}")))?;
        let mut s = Settings {
            mem_text: mem,
            machine: MachineConfig::new(mem_bytes),
            explicit: Vec::new(),
            scenario_params: Vec::new(),
        };
        let defaults = machine_defaults
            .iter()
            .map(|(k, v)| (format!("{k}={v}"), false));
        let given = args.set.iter().map(|kv| (kv.clone(), true));
        for (kv, explicit) in defaults.chain(given) {
            let Some((key, v)) = kv.split_once('=') else {
                return usage(format!("--set {kv}: expected KEY=VALUE"));
            };
            if key == "help" {
                return Err(crate::ui::Help(help_text(scenario_keys)).into());
            }
            if scenario_keys.contains(&key) {
                s.scenario_params.push((key.to_string(), v.to_string()));
                continue;
            }
            s.machine.set(key, v).or_else(|e| match e {
                ConfigError::UnknownKey { .. } if !scenario_keys.is_empty() => usage(format!(
                    "--set {e}, {}; --set help=1 lists them",
                    scenario_keys.join(", ")
                )),
                e => usage(format!("--set {e}")),
            })?;
            if explicit {
                s.explicit.push((key.to_string(), v.to_string()));
            }
        }
        Ok(s)
    }

    /// Refuses `key` given with `--set` on the command line to a command that does not
    /// use it: exit 2 naming the key and `why`.
    pub fn refuse_unused(&self, key: &str, why: &str) -> anyhow::Result<()> {
        match self.explicit.iter().find(|(k, _)| k == key) {
            Some((k, v)) => usage(format!("--set {k}={v}: {why}")),
            None => Ok(()),
        }
    }

    /// Applies the run-time tunables given on the command line to a machine that has
    /// booted (a snapshot); a boot-time key is refused with the reason. Returns each key
    /// whose value the command line changed, with the machine's value before
    /// (`machine_files`: the snapshot had its `sysctl_vm.txt` and `thp.txt`, so a value
    /// without one is the model's default).
    pub fn apply_runtime(
        &self,
        m: &mut Machine,
        machine_files: bool,
    ) -> anyhow::Result<Vec<SettingChange>> {
        let mut changes: Vec<SettingChange> = Vec::new();
        for (k, v) in &self.explicit {
            let was = shown(m, k);
            m.sysctl_write(k, v)
                .or_else(|e| usage(format!("--set {e}")))?;
            let now = shown(m, k);
            let source = match kcompact::sysctl::tunable(k).and_then(|t| t.file) {
                Some(_) if machine_files => "the machine's",
                Some(_) => "the model's default; the snapshot lacks its settings files",
                None => "the model's default; a switch of the model's own",
            };
            // A key given twice: the machine's value is the one before the first.
            let machine = match changes.iter().position(|c| c.key == *k) {
                Some(i) => changes.remove(i).machine,
                None => was,
            };
            if machine != now {
                changes.push(SettingChange {
                    key: k.clone(),
                    machine,
                    given: now,
                    source,
                });
            }
        }
        Ok(changes)
    }

    /// Refuses settings whose `copies` models at once need more memory than this machine
    /// has available, at `per_page` bytes for each page ([`MODEL_BYTES_PER_PAGE`] for a
    /// machine alone, [`SCENARIO_BYTES_PER_PAGE`] for a scenario's run), and 4 KiB more
    /// with `integrity=bytes`.
    pub fn check_memory(&self, copies: u64, per_page: u64) -> anyhow::Result<()> {
        let mut per_page = per_page;
        if self.machine.integrity.name() == "bytes" {
            per_page += 4096;
        }
        let bytes = (self.machine.mem_bytes / 4096)
            .saturating_mul(per_page)
            .saturating_mul(copies);
        crate::ui::check_fits(&format!("--mem {}", self.mem_text), bytes, per_page)
    }

    /// Boots the machine these settings describe, once [`Settings::check_memory`] has let
    /// it.
    pub fn boot(&self) -> anyhow::Result<Machine> {
        self.check_memory(1, MODEL_BYTES_PER_PAGE)?;
        self.machine.boot().or_else(|e| match e {
            BootError::Layout(e @ LayoutError::SizeOutOfRange { .. }) => {
                usage(format!("--mem {}: {e}", self.mem_text))
            }
            BootError::Layout(e @ LayoutError::Nodes(_)) => usage(format!("--set nodes: {e}")),
            BootError::Layout(e) => usage(format!("machine layout: {e}")),
            BootError::IntegrityTooLarge { max_gib } => usage(format!(
                "--set integrity=bytes keeps every page's 4 KiB: at most {max_gib}G of model memory, not --mem {}",
                self.mem_text
            )),
            e => usage(format!("machine: {e}")),
        })
    }
}

/// A run-time tunable the command line set to another value than the machine had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingChange {
    /// The `--set` key.
    pub key: String,
    /// The machine's value (as `--set` spells it).
    pub machine: String,
    /// The value the prediction used.
    pub given: String,
    /// Where the machine's value came from.
    pub source: &'static str,
}

impl SettingChange {
    /// One line of text: `KEY MACHINE -> GIVEN (SOURCE)`.
    pub fn line(&self) -> String {
        format!(
            "{} {} -> {}  ({})",
            self.key, self.machine, self.given, self.source
        )
    }

    /// The JSON object of one change.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"key": self.key, "machine": self.machine, "given": self.given, "source": self.source})
    }
}

/// Tunable `key`'s value on `m` as `--set` spells it; min_free_kbytes's automatic value
/// is the machine's own figure.
fn shown(m: &Machine, key: &str) -> String {
    match m.config.show(key) {
        Some(v) if v == "auto" && key == "min_free_kbytes" => m.min_free_kbytes.to_string(),
        Some(v) => v,
        None => String::new(),
    }
}
