//! Scenarios: the seeds' experiments as workloads on the model, each reporting the
//! metrics its source reported.
//!
//! A scenario drives a booted machine through phases — filling memory the way its source
//! did, then asking for huge pages the way its source did — on the simulated clock, with
//! kswapd, kcompactd and the disk running between its steps. Parameters come as
//! `key=value` strings (`--set` on the command line), checked against the scenario's
//! own list; the machine's tunables (compaction on or off, swap, …) are the caller's.
//!
//! - [`churn`]: the project's own allocate/free churn, printed in the format it had
//!   before the seeds' scenarios existed.
//! - [`file_holes`]: seed 003's first test.
//! - [`highalloc`]: seed 003's third test (mmtests stress-highalloc).
//! - [`compaction_test`]: the kernel selftest `tools/testing/selftests/mm/compaction_test.c`.
//! - [`thpscale`]: mmtests thpscale.
//! - [`vfio_pin`]: seeds 000/001, pinned guest memory.
//! - [`mthp`]: seed 002, compacting large folios.
//! - [`zram_gpu`]: seed 004, driver pages made movable.

pub mod churn;
pub mod compaction_test;
pub mod file_holes;
pub mod highalloc;
pub mod mthp;
pub mod thpscale;
pub mod vfio_pin;
pub mod zram_gpu;

use crate::event::VmEvent;
use crate::machine::Machine;
use crate::rng::SimRng;
use std::collections::BTreeMap;
use thiserror::Error;

/// A scenario's workload: runs it on the machine with the parameters and the generator,
/// calling `progress(done, total)` now and then.
pub type RunFn = fn(
    &mut Machine,
    &Params,
    &mut SimRng,
    &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError>;

/// One scenario: its name, where it comes from, what it does, its A/B switch, its
/// parameters `(key, default, meaning)`, and its workload.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// The name `kcompact run` takes.
    pub name: &'static str,
    /// The source: seed or test.
    pub source: &'static str,
    /// One line on the workload.
    pub summary: &'static str,
    /// The machine switch the source compared (`--toggle` of `kcompact ab`).
    pub ab_key: &'static str,
    /// `(key, default, meaning)` for every parameter.
    pub params: &'static [(&'static str, &'static str, &'static str)],
    /// Machine settings (`--set` keys of the command line) the scenario's source ran
    /// with; the caller applies them before its own.
    pub machine: &'static [(&'static str, &'static str)],
    /// The model's memory when the caller gives none (`--mem`): 1G for the seeds'
    /// scenarios, small enough that the default `kcompact run` finishes in about a second.
    pub mem: &'static str,
    /// The workload.
    pub run: RunFn,
}

/// Every scenario there is.
pub const SCENARIOS: &[ScenarioInfo] = &[
    churn::INFO,
    highalloc::INFO,
    file_holes::INFO,
    compaction_test::INFO,
    thpscale::INFO,
    vfio_pin::INFO,
    mthp::INFO,
    zram_gpu::INFO,
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static ScenarioInfo> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Why a scenario could not run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScenarioError {
    /// No scenario of that name.
    #[error("unknown scenario '{0}' (scenarios: {list})", list = names())]
    Unknown(String),
    /// A parameter the scenario does not take.
    #[error("{scenario}: unknown parameter '{key}' (parameters: {known})")]
    UnknownParam {
        /// The scenario.
        scenario: &'static str,
        /// The key given.
        key: String,
        /// The keys it takes.
        known: String,
    },
    /// A parameter value that does not parse or is out of range.
    #[error("{scenario}: {key}={value}: {why}")]
    BadValue {
        /// The scenario.
        scenario: &'static str,
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

fn names() -> String {
    SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scenario's parameters with their defaults filled in. A parameter is a whole number;
/// when its default is a comma-separated list, a list of as many whole numbers; when its
/// default is words separated by `|`, one of those words (the first is the default).
#[derive(Clone, Debug)]
pub struct Params {
    info: &'static ScenarioInfo,
    values: BTreeMap<&'static str, String>,
}

impl Params {
    /// The defaults of `scenario`, overridden by `given` (`key`, `value`) pairs.
    pub fn new(scenario: &str, given: &[(String, String)]) -> Result<Params, ScenarioError> {
        let info = find(scenario).ok_or_else(|| ScenarioError::Unknown(scenario.to_string()))?;
        let mut values: BTreeMap<&'static str, String> = info
            .params
            .iter()
            .map(|(k, d, _)| (*k, d.split('|').next().unwrap_or(d).to_string()))
            .collect();
        for (k, v) in given {
            let Some((key, _, _)) = info.params.iter().find(|(p, _, _)| p == k) else {
                return Err(ScenarioError::UnknownParam {
                    scenario: info.name,
                    key: k.clone(),
                    known: info
                        .params
                        .iter()
                        .map(|(k, _, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            values.insert(key, v.clone());
        }
        let p = Params { info, values };
        for (k, default, _) in info.params {
            if default.contains('|') {
                p.choice(k)?;
            } else if default.contains(',') {
                p.nums(k)?;
            } else {
                p.num(k)?;
            }
        }
        Ok(p)
    }

    /// The scenario these are for.
    pub fn info(&self) -> &'static ScenarioInfo {
        self.info
    }

    /// Every parameter with its value, in key order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Parameter `key` as a whole number.
    pub fn num(&self, key: &str) -> Result<u64, ScenarioError> {
        let v = self.values.get(key).expect("a declared parameter");
        v.parse::<u64>().map_err(|_| ScenarioError::BadValue {
            scenario: self.info.name,
            key: key.to_string(),
            value: v.clone(),
            why: "expected a whole number".into(),
        })
    }

    /// Parameter `key`'s value and its declared default.
    fn declared(&self, key: &str) -> (&String, &'static str) {
        let v = self.values.get(key).expect("a declared parameter");
        let default = self
            .info
            .params
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, d, _)| *d);
        (v, default)
    }

    /// Choice parameter `key`: one of the words of its default.
    pub fn choice(&self, key: &str) -> Result<&str, ScenarioError> {
        let (v, words) = self.declared(key);
        if words.split('|').any(|w| w == v) {
            return Ok(v);
        }
        Err(ScenarioError::BadValue {
            scenario: self.info.name,
            key: key.to_string(),
            value: v.clone(),
            why: format!("expected one of {}", words.replace('|', ", ")),
        })
    }

    /// List parameter `key` as whole numbers, as many as its default has.
    pub fn nums(&self, key: &str) -> Result<Vec<u64>, ScenarioError> {
        let (v, default) = self.declared(key);
        let len = default.split(',').count();
        let bad = |why: String| ScenarioError::BadValue {
            scenario: self.info.name,
            key: key.to_string(),
            value: v.clone(),
            why,
        };
        let n: Vec<u64> = v
            .split(',')
            .map(|x| x.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("expected whole numbers separated by commas".into()))?;
        if n.len() != len {
            return Err(bad(format!("expected {len} numbers, e.g. {default}")));
        }
        Ok(n)
    }

    /// Parameter `key` as a whole number in `lo..=hi`.
    pub fn num_in(&self, key: &str, lo: u64, hi: u64) -> Result<u64, ScenarioError> {
        let n = self.num(key)?;
        if !(lo..=hi).contains(&n) {
            return Err(ScenarioError::BadValue {
                scenario: self.info.name,
                key: key.to_string(),
                value: n.to_string(),
                why: format!("out of range {lo}..={hi}"),
            });
        }
        Ok(n)
    }
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// A count.
    Int(u64),
    /// A rate or mean.
    Float(f64),
    /// A series (per step).
    List(Vec<u64>),
}

/// One timeline row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Simulated time, ns.
    pub time_ns: u64,
    /// The scenario's phase.
    pub phase: &'static str,
    /// Free pages over all zones.
    pub free_pages: u64,
    /// Free blocks of order ≥ 9 (an order-10 block counts twice).
    pub free_order9_blocks: u64,
    /// Huge pages the scenario holds.
    pub hugepages: u64,
    /// Pages reclaimed so far.
    pub pages_reclaimed: u64,
    /// Free blocks of each order over all zones.
    pub free_by_order: [u64; crate::units::NR_PAGE_ORDERS],
}

/// What a scenario measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The metrics, named in snake_case with the unit last, in report order.
    pub metrics: Vec<(&'static str, Metric)>,
    /// The timeline.
    pub timeline: Vec<Tick>,
    /// The churn's own record (attempts per order, samples per step), which the command
    /// line prints in the churn's format; `None` for every other scenario.
    pub churn: Option<churn::ChurnReport>,
}

impl Outcome {
    /// The metric called `name`.
    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
    }
}

/// Pages reclaimed so far (kswapd and direct).
pub fn pages_reclaimed(m: &Machine) -> u64 {
    m.vmstat[VmEvent::PgstealKswapd] + m.vmstat[VmEvent::PgstealDirect]
}

/// Free order ≥ 9 blocks over all zones (order 10 counts twice).
pub fn free_order9_blocks(m: &Machine) -> u64 {
    let f = m.free_by_order();
    f[9] + 2 * f[10]
}

/// A timeline row now.
pub fn tick(m: &Machine, phase: &'static str, hugepages: u64) -> Tick {
    Tick {
        time_ns: m.clock.now_ns,
        phase,
        free_pages: m.nr_free_pages(),
        free_order9_blocks: free_order9_blocks(m),
        hugepages,
        pages_reclaimed: pages_reclaimed(m),
        free_by_order: m.free_by_order(),
    }
}

/// Runs scenario `p.info()` on `m` with `rng`, calling `progress(done, total)` now and
/// then. With contents tracked (`integrity=stamps|bytes`) every owner's data is checked
/// at the end: the metrics `integrity_checked_pages` and `integrity_errors` come last.
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let mut out = (p.info().run)(m, p, rng, progress)?;
    if out.get("integrity_checked_pages").is_none() {
        out.metrics.extend(integrity_metrics(m));
    }
    Ok(out)
}

/// Every owner's data checked now ([`Machine::check_contents`]) as the metrics
/// `integrity_checked_pages` and `integrity_errors`; none when contents are not tracked.
/// A scenario that gives its memory back at the end checks before it does.
pub fn integrity_metrics(m: &Machine) -> Vec<(&'static str, Metric)> {
    if !m.contents.enabled() {
        return Vec::new();
    }
    let c = m.check_contents();
    vec![
        ("integrity_checked_pages", Metric::Int(c.checked_pages)),
        ("integrity_errors", Metric::Int(c.errors)),
    ]
}

/// `allocated / requested` in percent, two decimals.
pub fn pct(allocated: u64, requested: u64) -> f64 {
    if requested == 0 {
        return 100.0;
    }
    (10_000.0 * allocated as f64 / requested as f64).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::units::Order;

    #[test]
    fn a_choice_parameter_takes_one_of_its_words_the_first_by_default() {
        let given = |v: &str| vec![("guest_backing".to_string(), v.to_string())];
        let p = Params::new("vfio-pin", &[]).unwrap();
        assert_eq!(p.choice("guest_backing").unwrap(), "memfd");
        let p = Params::new("vfio-pin", &given("anon")).unwrap();
        assert_eq!(p.choice("guest_backing").unwrap(), "anon");
        for bad in ["1", "0", "shmem", "memfd|anon", ""] {
            let e = Params::new("vfio-pin", &given(bad)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("vfio-pin: guest_backing={bad}: expected one of memfd, anon")
            );
        }
    }

    #[test]
    fn integrity_metrics_count_every_owned_page_and_each_folio_found_wrong() {
        let layout = Layout::x86_64(256 << 20, 1, 0).unwrap();
        let mut m = Machine::boot(&layout, crate::VmConfig::default()).unwrap();
        assert!(integrity_metrics(&m).is_empty(), "contents not tracked");
        m.enable_contents(false);
        let pid = m.new_process();
        let ids: Vec<_> = (0..4)
            .map(|i| m.fault_anon(pid, i * 512, Order(2)).unwrap())
            .collect();
        let c = m.check_contents();
        // Four order-2 folios and the page tables of their four windows.
        assert_eq!(c.checked_pages, 4 * 4 + 4);
        assert_eq!(c.errors, 0);
        let pfn = m.owners.folio(ids[1]).pfn;
        m.contents.fill(pfn.plus(3), 1, 0x1234_5679, 0);
        assert_eq!(
            integrity_metrics(&m),
            vec![
                ("integrity_checked_pages", Metric::Int(20)),
                ("integrity_errors", Metric::Int(1)),
            ]
        );
    }
}
