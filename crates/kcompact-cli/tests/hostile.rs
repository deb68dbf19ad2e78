//! Hostile input, end to end (issue 22; the cases of `../shared/reference/hostile-cases.md`).
//! The contract every case asserts: exit 0 with a correct answer, or exit 2 with one line
//! on stderr naming the file, line, key or path; never a panic (exit 101), an abort, a
//! hang (every run has a watchdog that kills it and fails the test), a write into an input
//! or outside `--out`, or a partial output. The snapshot cases corrupt copies of the
//! project's own snapshot `tests/data/trace_thp/start`; the trace cases are built from its
//! trace.

mod common;

use common::BIN;
use kcompact::rng::SimRng;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any case may run before it counts as a hang (a debug build loading a
/// 25 GiB snapshot takes about 5 s on the project machine).
const WATCHDOG: Duration = Duration::from_secs(300);

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trace_thp")
}

/// A directory under the system temp dir, unique to this process and tag, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("kcompact-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exit 0, nothing on stderr.
    fn ok(&self, what: &str) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: exit {:?}\n{}",
            self.code,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{what}: {}", self.stderr);
        self
    }

    /// Exit 2, one line `kcompact: ...` on stderr naming each of `names`.
    fn refused(&self, what: &str, names: &[&str]) -> &Run {
        assert_eq!(
            self.code,
            Some(2),
            "{what}: exit {:?}, stderr:\n{}\nstdout:\n{}",
            self.code,
            self.stderr,
            &self.stdout[..self.stdout.len().min(2000)]
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "{what}: one line:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("kcompact: "),
            "{what}: {}",
            self.stderr
        );
        for n in names {
            assert!(
                self.stderr.contains(n),
                "{what}: names {n:?}: {}",
                self.stderr
            );
        }
        self
    }
}

/// Runs kcompact with `args`, stdout to `stdout` (a file of the scratch directory when
/// None), stderr captured; kills it and fails at [`WATCHDOG`].
fn kc_to(dir: &Scratch, args: &[&str], stdout: Option<Stdio>) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_p, err_p) = (dir.join(&format!(".out{n}")), dir.join(&format!(".err{n}")));
    let captured = stdout.is_none();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout.unwrap_or_else(|| File::create(&out_p).unwrap().into()))
        .stderr(File::create(&err_p).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    // The reading end of a pipe, closed before the command writes: `| true`.
    drop(child.stdout.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kcompact {args:?}: no end after {WATCHDOG:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let r = Run {
        code: status.code(),
        stdout: if captured {
            read(&out_p)
        } else {
            String::new()
        },
        stderr: read(&err_p),
    };
    let _ = std::fs::remove_file(&out_p);
    let _ = std::fs::remove_file(&err_p);
    assert!(
        !r.stderr.contains("panicked"),
        "kcompact {args:?} panicked:\n{}",
        r.stderr
    );
    assert_ne!(r.code, Some(101), "kcompact {args:?}: exit 101");
    r
}

fn kc(dir: &Scratch, args: &[&str]) -> Run {
    kc_to(dir, args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` (recursively) with its bytes: what an input must still hold.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                v.push((p.clone(), std::fs::read(&p).unwrap()));
            } else {
                v.push((p, Vec::new()));
            }
        }
    }
    v.sort();
    v
}

/// A copy of the project's snapshot in `dir/name`, changed by `edit`.
fn snapshot(dir: &Scratch, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let src = data().join("start");
    let dst = dir.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    edit(&dst);
    dst
}

fn edit_text(dir: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let p = dir.join(file);
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(t)).unwrap();
}

/// Replaces the first line of `text` that starts with `prefix` (after spaces) in the
/// section of zone `zone` (zoneinfo) with `line`.
fn zone_line(text: String, zone: &str, prefix: &str, line: &str) -> String {
    let mut in_zone = false;
    let mut done = false;
    text.lines()
        .map(|l| {
            if l.starts_with("Node ") {
                in_zone = l.trim_end().ends_with(&format!(" {zone}"));
            }
            if in_zone && !done && l.trim_start().starts_with(prefix) {
                done = true;
                return format!("{line}\n");
            }
            format!("{l}\n")
        })
        .collect()
}

/// The page array `name` of `dir` (zstd), every word replaced by `word`.
fn fill_array(dir: &Path, name: &str, word: u64) {
    let p = dir.join(format!("{name}.zst"));
    let n = zstd::decode_all(File::open(&p).unwrap()).unwrap().len() / 8;
    let raw: Vec<u8> = std::iter::repeat_n(word.to_le_bytes(), n)
        .flatten()
        .collect();
    std::fs::write(&p, zstd::encode_all(&raw[..], 1).unwrap()).unwrap();
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo {}", p.display());
}

fn symlink(target: &str, p: &Path) {
    let _ = std::fs::remove_file(p);
    std::os::unix::fs::symlink(target, p).unwrap();
}

/// The first `n` lines of the project's trace, as a plain file `dir/name`.
fn trace_head(dir: &Scratch, name: &str, n: usize) -> PathBuf {
    let text = zstd::decode_all(File::open(data().join("trace.txt.zst")).unwrap()).unwrap();
    let text = String::from_utf8(text).unwrap();
    let head: String = text.lines().take(n).flat_map(|l| [l, "\n"]).collect();
    let p = dir.join(name);
    std::fs::write(&p, head).unwrap();
    p
}

/// One event line of the project's trace.
fn an_event() -> String {
    let text = zstd::decode_all(File::open(data().join("trace.txt.zst")).unwrap()).unwrap();
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find(|l| l.contains("mm_page_alloc:"))
        .unwrap()
        .to_string()
}

/// `kcompact ab` of highalloc on `mem` over one seed, with `more` arguments.
fn ab<'a>(mem: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "ab",
        "highalloc",
        "--toggle",
        "compaction=on,off",
        "--seeds",
        "1",
        "--mem",
        mem,
    ];
    v.extend_from_slice(more);
    v
}

/// MemAvailable of this machine, in bytes.
fn mem_available() -> u64 {
    let t = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = t
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kb * 1024
}

/// Issue 22: every printing command, its reader gone (`| true`), ends quietly with exit 0;
/// stdout on a full disk (`> /dev/full`) is one line naming stdout, exit 1. Never 101.
#[test]
fn closed_or_full_stdout_never_panics() {
    let d = Scratch::new("stdout");
    let snap = snapshot(&d, "snap", |_| {});
    let trace = trace_head(&d, "head.txt", 3000);
    let run_dir = d.join("run");
    kc(&d, &["run", "--mem", "64M", "--out", s(&run_dir)]).ok("run --out");
    let dump = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kcompact/tests/fixtures/explain/rhel6-2.6.32-atomic.txt");
    let html = d.join("again.html");
    let cases: Vec<Vec<&str>> = vec![
        vec!["scenarios"],
        vec!["run", "--mem", "64M"],
        vec!["run", "churn", "--mem", "256M", "--set", "steps=50000"],
        vec!["run", "--help"],
        vec!["run", "--set", "help=1"],
        vec!["show", "map", "--mem", "4G"],
        vec!["show", "buddyinfo", "--mem", "4G"],
        vec!["show", "zoneinfo", "--mem", "4G"],
        vec!["show", "pagetypeinfo", "--mem", "4G"],
        ab("64M", &[]),
        ab("64M", &["--json"]),
        vec!["analyze", s(&snap)],
        vec!["analyze", s(&snap), "--json"],
        vec!["analyze", s(&snap), "--map"],
        vec!["predict", s(&snap), "--action", "compact"],
        vec!["predict", s(&snap), "--action", "hugepages=100", "--json"],
        vec!["replay", s(&trace)],
        vec!["replay", s(&trace), "--json"],
        vec!["explain", s(&dump)],
        vec!["report", s(&run_dir), "--out", s(&html), "--force"],
        vec!["advise", s(&snap)],
        vec!["advise", s(&snap), "--target", "hugepages=10", "--json"],
        vec![
            "watch",
            "--count",
            "2",
            "--interval",
            "100ms",
            "--predict-every",
            "off",
        ],
    ];
    for args in &cases {
        let r = kc_to(&d, args, Some(Stdio::piped()));
        assert_eq!(
            r.code,
            Some(0),
            "{args:?} | true: exit {:?}: {}",
            r.code,
            r.stderr
        );
        assert_eq!(r.stderr, "", "{args:?} | true: quiet");
        if Path::new("/dev/full").exists() {
            let full = File::options().write(true).open("/dev/full").unwrap();
            let r = kc_to(&d, args, Some(full.into()));
            assert_eq!(r.code, Some(1), "{args:?} > /dev/full: {}", r.stderr);
            assert_eq!(
                r.stderr.lines().count(),
                1,
                "{args:?} > /dev/full: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains("stdout"),
                "{args:?} > /dev/full: {}",
                r.stderr
            );
        }
    }
    // `| head -1`: one line read, then the pipe closes.
    let mut child = Command::new(BIN)
        .args(["analyze", s(&snap), "--map"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stderr.is_empty());
}

/// Issue 22: a bad `--out` (an existing file, a path under a file, a device, a FIFO, a
/// place that cannot be written) is exit 2 naming the path, before any work.
#[test]
fn bad_out_targets_exit_2_naming_the_path() {
    let d = Scratch::new("badout");
    let afile = d.join("afile");
    std::fs::write(&afile, "mine").unwrap();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let under = afile.join("sub");
    let trace = trace_head(&d, "head.txt", 500);
    let targets: Vec<&str> = vec![
        s(&afile),
        s(&under),
        "/dev/null",
        "/dev/full",
        s(&fifo),
        "/proc/self/fd/kcompact",
        "/proc/kcompact-out",
    ];
    for t in &targets {
        kc(&d, &["run", "--mem", "64M", "--out", t]).refused("run --out", &[t]);
        kc(&d, &ab("64M", &["--out", t])).refused("ab --out", &[t]);
        kc(&d, &["replay", s(&trace), "--out", t]).refused("replay --out", &[t]);
    }
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "mine");
    // A full disk while writing: nothing half-written is left (see outdir's unit tests for
    // the failed write itself); no temporary file stays after a good run.
    let good = d.join("good");
    kc(&d, &["run", "--mem", "64M", "--out", s(&good)]).ok("run --out good");
    let names: Vec<String> = std::fs::read_dir(&good)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    assert!(names.contains(&"result.json".to_string()));
}

/// Issue 22: `--out` never writes into a snapshot or over files kcompact did not write;
/// an earlier output of its own is replaced only with `--force`.
#[test]
fn out_never_overwrites_a_snapshot_or_foreign_files() {
    let d = Scratch::new("overwrite");
    let snap = snapshot(&d, "snap", |_| {});
    let before = contents(&snap);
    let trace = trace_head(&d, "head.txt", 2000);
    kc(&d, &["run", "--mem", "64M", "--out", s(&snap)])
        .refused("run into a snapshot", &[s(&snap), "snapshot"]);
    kc(
        &d,
        &[
            "replay",
            s(&trace),
            "--snapshot",
            s(&snap),
            "--out",
            s(&snap),
        ],
    )
    .refused("replay --out its snapshot", &[s(&snap), "snapshot"]);
    kc(&d, &ab("64M", &["--out", s(&snap)])).refused("ab into a snapshot", &[s(&snap)]);
    kc(&d, &["report", s(&snap), "--out", s(&snap.join("r.html"))])
        .refused("report into the snapshot", &["snapshot"]);
    kc(
        &d,
        &[
            "report",
            s(&snap),
            "--out",
            s(&snap.join("zoneinfo")),
            "--force",
        ],
    )
    .refused("report over a snapshot's file", &["snapshot"]);
    assert!(contents(&snap) == before, "the snapshot is as it was");
    // `report SNAP`: its report.html and nothing else; a stale report.json beside the
    // snapshot's files is not what is rendered.
    std::fs::write(snap.join("report.json"), "{\"stale\": true}").unwrap();
    kc(&d, &["report", s(&snap)]).ok("report of a snapshot");
    let html = std::fs::read_to_string(snap.join("report.html")).unwrap();
    assert!(
        html.contains("hugepages_after_compaction"),
        "the snapshot analyzed"
    );
    std::fs::remove_file(snap.join("report.html")).unwrap();
    std::fs::remove_file(snap.join("report.json")).unwrap();
    assert!(
        contents(&snap) == before,
        "nothing else written into the snapshot"
    );

    let mine = d.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    kc(&d, &["run", "--mem", "64M", "--out", s(&mine)])
        .refused("a directory of other files", &["notes.txt"]);
    kc(&d, &["run", "--mem", "64M", "--out", s(&mine), "--force"])
        .refused("--force is for kcompact's own", &["notes.txt"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );

    let run = d.join("run");
    kc(
        &d,
        &["run", "--mem", "64M", "--seed", "1", "--out", s(&run)],
    )
    .ok("first run");
    let first = std::fs::read(run.join("result.json")).unwrap();
    kc(
        &d,
        &["run", "--mem", "64M", "--seed", "2", "--out", s(&run)],
    )
    .refused("an earlier output", &[s(&run), "--force"]);
    assert_eq!(std::fs::read(run.join("result.json")).unwrap(), first);
    kc(
        &d,
        &[
            "run",
            "--mem",
            "64M",
            "--seed",
            "2",
            "--out",
            s(&run),
            "--force",
        ],
    )
    .ok("--force");
    assert_ne!(std::fs::read(run.join("result.json")).unwrap(), first);

    // `report SNAP --out RUN/y.html` writes only y.html: the run's report data stays.
    let data_before = std::fs::read(run.join("report.json")).unwrap();
    kc(
        &d,
        &["report", s(&snap), "--out", s(&run.join("snapshot.html"))],
    )
    .ok("report into a run directory");
    assert_eq!(std::fs::read(run.join("report.json")).unwrap(), data_before);
    assert!(run.join("snapshot.html").is_file());
    // `--out /dev/null`: refused, and nothing beside it.
    let dev_json = Path::new("/dev/report.json");
    let existed = dev_json.exists();
    kc(&d, &["report", s(&snap), "--out", "/dev/null"])
        .refused("report --out /dev/null", &["/dev/null"]);
    assert_eq!(dev_json.exists(), existed, "nothing written beside --out");
    // A file that is not a report of kcompact's is replaced only with --force.
    let other = d.join("other.html");
    std::fs::write(&other, "<p>mine</p>").unwrap();
    kc(&d, &["report", s(&run), "--out", s(&other)])
        .refused("report over a foreign file", &[s(&other), "--force"]);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "<p>mine</p>");
}

/// Issue 22: two runs on one `--out` at once never mix their files: one waits its turn
/// or is refused, and the directory holds one run's files.
#[test]
fn concurrent_runs_on_one_out_never_mix() {
    let d = Scratch::new("concurrent");
    let reference = |seed: &str| {
        let p = d.join(&format!("ref{seed}"));
        kc(&d, &["run", "--mem", "64M", "--seed", seed, "--out", s(&p)]).ok("reference");
        contents(&p)
            .into_iter()
            .map(|(f, b)| (f.file_name().unwrap().to_owned(), b))
            .collect::<Vec<_>>()
    };
    let refs = [reference("1"), reference("2")];
    let out = d.join("shared");
    for round in 0..8 {
        let spawn = |seed: &str| {
            Command::new(BIN)
                .args([
                    "run",
                    "--mem",
                    "64M",
                    "--seed",
                    seed,
                    "--force",
                    "--out",
                    s(&out),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("1"), spawn("2"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for o in [&a, &b] {
            let code = o.status.code();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                code == Some(0) || code == Some(2),
                "round {round}: exit {code:?}: {err}"
            );
            if code == Some(2) {
                assert!(err.contains("another kcompact"), "round {round}: {err}");
            }
        }
        assert!(
            a.status.success() || b.status.success(),
            "round {round}: one of them wrote"
        );
        let got: Vec<_> = contents(&out)
            .into_iter()
            .map(|(f, b)| (f.file_name().unwrap().to_owned(), b))
            .collect();
        assert!(
            refs.contains(&got),
            "round {round}: the directory is exactly one run's output"
        );
    }
}

/// Issue 22: snapshots whose files disagree, are cut, or are not regular files: exit 2
/// naming the file, never a confident wrong answer, a hang or an unbounded read.
#[test]
fn broken_snapshots_are_refused_naming_the_file() {
    let d = Scratch::new("snapshots");
    type Edit = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "zoneinfo cut mid-line",
            Box::new(|p| edit_text(p, "zoneinfo", |t| t[..t.len() / 2].to_string())),
            &["zoneinfo"],
        ),
        (
            "Normal spanned 0",
            Box::new(|p| {
                edit_text(p, "zoneinfo", |t| {
                    zone_line(t, "Normal", "spanned", "        spanned  0")
                })
            }),
            &["zoneinfo", "Normal"],
        ),
        (
            "Normal section removed",
            Box::new(|p| {
                edit_text(p, "zoneinfo", |t| {
                    let a = t.find("Node 0, zone   Normal").unwrap();
                    let b = t.find("Node 0, zone  Movable").unwrap();
                    format!("{}{}", &t[..a], &t[b..])
                })
            }),
            &["zoneinfo"],
        ),
        (
            "zoneinfo of a smaller machine",
            Box::new(|p| {
                edit_text(p, "zoneinfo", |t| {
                    let t = zone_line(t, "Normal", "spanned", "        spanned  1048576");
                    let t = zone_line(t, "Normal", "present", "        present  1048576");
                    zone_line(t, "Normal", "managed", "        managed  1000000")
                })
            }),
            &["zoneinfo", "leave out"],
        ),
        (
            "managed > present",
            Box::new(|p| {
                edit_text(p, "zoneinfo", |t| {
                    zone_line(t, "Normal", "managed", "        managed  99999999")
                })
            }),
            &["zoneinfo", "managed"],
        ),
        (
            "zoneinfo only a header",
            Box::new(|p| std::fs::write(p.join("zoneinfo"), "Node 0, zone      DMA\n").unwrap()),
            &["zoneinfo"],
        ),
        (
            "page_size 8192",
            Box::new(|p| {
                edit_text(p, "meta.txt", |t| {
                    t.replace("page_size=4096", "page_size=8192")
                })
            }),
            &["meta.txt", "page_size"],
        ),
        (
            "page_size abc",
            Box::new(|p| {
                edit_text(p, "meta.txt", |t| {
                    t.replace("page_size=4096", "page_size=abc")
                })
            }),
            &["meta.txt", "page_size"],
        ),
        (
            "pfn_end abc",
            Box::new(|p| {
                edit_text(p, "meta.txt", |t| {
                    t.replace("pfn_end=6553600", "pfn_end=abc")
                })
            }),
            &["meta.txt", "pfn_end"],
        ),
        (
            "a second pfn_start",
            Box::new(|p| edit_text(p, "meta.txt", |t| t + "pfn_start=999\n")),
            &["meta.txt", "pfn_start"],
        ),
        (
            "pageblock order 3",
            Box::new(|p| {
                edit_text(p, "pagetypeinfo", |t| {
                    t.replace(
                        "Page block order: 9\nPages per block:  512",
                        "Page block order: 3\nPages per block:  8",
                    )
                })
            }),
            &["pagetypeinfo", "order 3"],
        ),
        (
            "pageblock order 99",
            Box::new(|p| {
                edit_text(p, "pagetypeinfo", |t| {
                    t.replace("Page block order: 9", "Page block order: 99")
                })
            }),
            &["pagetypeinfo"],
        ),
        (
            "pagetypeinfo block count huge",
            Box::new(|p| {
                edit_text(p, "pagetypeinfo", |t| {
                    let i = t.find("Number of blocks type").unwrap();
                    let (a, b) = t.split_at(i);
                    let b = b.replacen("Normal           99 ", "Normal    999999999 ", 1);
                    format!("{a}{b}")
                })
            }),
            &["pagetypeinfo", "pageblocks"],
        ),
        (
            "buddyinfo count 2^64-1",
            Box::new(|p| {
                edit_text(p, "buddyinfo", |t| {
                    t.replacen("   2755 ", " 18446744073709551615 ", 1)
                })
            }),
            &["buddyinfo"],
        ),
        (
            "buddyinfo unknown zone",
            Box::new(|p| {
                edit_text(p, "buddyinfo", |t| {
                    t + "Node 0, zone  Movable 1 0 0 0 0 0 0 0 0 0 0\n"
                })
            }),
            &["buddyinfo", "Movable"],
        ),
        (
            "buddyinfo far from the page flags",
            Box::new(|p| {
                for f in ["buddyinfo", "buddyinfo.post"] {
                    edit_text(p, f, |t| t.replacen("    921 ", "   9921 ", 1));
                }
            }),
            &["buddyinfo"],
        ),
        (
            "kpageflags every bit set",
            Box::new(|p| fill_array(p, "kpageflags", u64::MAX)),
            &["kpageflags"],
        ),
        (
            "kpageflags all zero",
            Box::new(|p| fill_array(p, "kpageflags", 0)),
            &["kpageflags", "buddyinfo"],
        ),
        (
            "kpagecount 2^64-1",
            Box::new(|p| fill_array(p, "kpagecount", u64::MAX)),
            &["kpagecount"],
        ),
        (
            "kpageflags.zst inflates past the pfn range",
            Box::new(|p| {
                let zeros = vec![0u8; 6_553_599 * 8 + (1 << 20)];
                std::fs::write(
                    p.join("kpageflags.zst"),
                    zstd::encode_all(&zeros[..], 1).unwrap(),
                )
                .unwrap();
            }),
            &["kpageflags.zst", "inflates past"],
        ),
        (
            "kpagecount.zst a directory",
            Box::new(|p| {
                std::fs::remove_file(p.join("kpagecount.zst")).unwrap();
                std::fs::create_dir(p.join("kpagecount.zst")).unwrap();
            }),
            &["kpagecount.zst"],
        ),
        (
            "buddyinfo a FIFO",
            Box::new(|p| mkfifo(&p.join("buddyinfo"))),
            &["buddyinfo", "FIFO"],
        ),
        (
            "pagetypeinfo -> /dev/zero",
            Box::new(|p| symlink("/dev/zero", &p.join("pagetypeinfo"))),
            &["pagetypeinfo", "not a regular file"],
        ),
        (
            "meta.txt a FIFO",
            Box::new(|p| mkfifo(&p.join("meta.txt"))),
            &["meta.txt", "FIFO"],
        ),
        (
            "zoneinfo a FIFO",
            Box::new(|p| mkfifo(&p.join("zoneinfo"))),
            &["zoneinfo", "FIFO"],
        ),
        (
            "meta.txt -> /dev/urandom",
            Box::new(|p| symlink("/dev/urandom", &p.join("meta.txt"))),
            &["meta.txt", "not a regular file"],
        ),
        (
            "zoneinfo -> /dev/zero",
            Box::new(|p| symlink("/dev/zero", &p.join("zoneinfo"))),
            &["zoneinfo", "not a regular file"],
        ),
        (
            "kpageflags (plain) -> /dev/zero",
            Box::new(|p| {
                std::fs::remove_file(p.join("kpageflags.zst")).unwrap();
                symlink("/dev/zero", &p.join("kpageflags"));
            }),
            &["kpageflags", "not a regular file"],
        ),
        (
            "meta.txt missing",
            Box::new(|p| std::fs::remove_file(p.join("meta.txt")).unwrap()),
            &["meta.txt"],
        ),
    ];
    for (i, (what, edit, names)) in cases.iter().enumerate() {
        let snap = snapshot(&d, &format!("s{i}"), edit);
        let before = contents(&snap);
        kc(&d, &["analyze", s(&snap)]).refused(what, names);
        // predict reads the same files the same way.
        kc(&d, &["predict", s(&snap), "--action", "compact"]).refused(what, names);
        assert!(
            contents(&snap) == before,
            "{what}: nothing written into the snapshot"
        );
        let _ = std::fs::remove_dir_all(&snap);
    }
}

/// Issue 22: a missing optional file is named in the output (never skipped silently), and
/// the drift the checks accepted is printed.
#[test]
fn missing_optional_files_are_named_and_the_drift_printed() {
    let d = Scratch::new("optional");
    let snap = snapshot(&d, "snap", |p| {
        std::fs::remove_file(p.join("kpagecount.zst")).unwrap()
    });
    let r = kc(&d, &["analyze", s(&snap)]);
    r.ok("analyze without kpagecount");
    assert!(
        r.stdout.contains("missing optional files: kpagecount"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("snapshot checks: files agree"),
        "{}",
        r.stdout
    );
    let full = snapshot(&d, "full", |_| {});
    let r = kc(&d, &["analyze", s(&full), "--json"]);
    r.ok("analyze --json");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let zones = v["snapshot_check"]["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 3, "DMA, DMA32, Normal");
    for z in zones {
        assert!(z["free_drift"].as_u64().unwrap() <= z["allowed"].as_u64().unwrap());
    }
    // The shared snapshots predate dentry-state and inode-state; nothing else is missing.
    let missing: Vec<&str> = v["snapshot_check"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing
            .iter()
            .all(|m| m.starts_with("dentry-state") || m.starts_with("inode-state")),
        "{missing:?}"
    );
}

/// Issue 22: traces that are mostly junk, too long, bombs or not regular files: exit 2
/// naming the file (and the first bad line), never an unbounded read.
#[test]
fn hostile_traces_are_refused() {
    let d = Scratch::new("traces");
    let ev = an_event();
    let junk = d.join("mostly-junk.txt");
    let mut t = String::new();
    for i in 0..200_000 {
        t += &format!("junk line {i} with no event\n");
    }
    t += &ev;
    t.push('\n');
    std::fs::write(&junk, t).unwrap();
    for mode in ["exact", "policy"] {
        kc(&d, &["replay", s(&junk), "--mode", mode]).refused(
            "200,000 junk lines, one event",
            &[s(&junk), "malformed", "line 1"],
        );
    }
    let head = trace_head(&d, "head.txt", 3000);
    kc(&d, &["replay", s(&head)]).ok("a clean head of the trace");
    let one_bad = d.join("one-bad.txt");
    std::fs::write(
        &one_bad,
        std::fs::read_to_string(&head).unwrap() + "garbage here\n",
    )
    .unwrap();
    kc(&d, &["replay", s(&one_bad)]).ok("one bad line among thousands");
    kc(&d, &["replay", s(&one_bad), "--strict"])
        .refused("--strict", &[s(&one_bad), "--strict", "line 3001"]);
    kc(&d, &["replay", s(&head), "--max-events", "100"])
        .refused("--max-events", &[s(&head), "--max-events"]);
    let zbomb = d.join("zbomb.zst");
    std::fs::write(
        &zbomb,
        zstd::encode_all(&vec![0u8; 64 << 20][..], 3).unwrap(),
    )
    .unwrap();
    kc(&d, &["replay", s(&zbomb)]).refused("a zstd bomb of NULs", &[s(&zbomb)]);
    let tbomb = d.join("textbomb.zst");
    let text = ev.clone() + "\n";
    let big: String = std::iter::repeat_n(text.as_str(), 20_000).collect();
    std::fs::write(&tbomb, zstd::encode_all(big.as_bytes(), 3).unwrap()).unwrap();
    kc(&d, &["replay", s(&tbomb), "--max-events", "1000"])
        .refused("a stream past the cap", &[s(&tbomb), "inflates past"]);
    let fifo = d.join("trace.fifo");
    mkfifo(&fifo);
    kc(&d, &["replay", s(&fifo)]).refused("a FIFO", &[s(&fifo), "FIFO"]);
    kc(&d, &["replay", "/dev/zero"]).refused("a device", &["/dev/zero", "not a regular file"]);
    // Arguments are checked before the trace is read (a FIFO would block).
    kc(&d, &["replay", s(&fifo), "--mem", "3X"]).refused("bad --mem first", &["--mem 3X"]);
    kc(&d, &["replay", s(&fifo), "--snapshot", "/nonexistent"])
        .refused("bad --snapshot first", &["/nonexistent"]);
}

/// Issue 22: `--mem` sizes whose model cannot fit this machine's available memory are
/// refused up front (exit 2 naming --mem), not killed by the OOM killer.
#[test]
fn mem_that_cannot_fit_is_refused_up_front() {
    let d = Scratch::new("mem");
    let avail = mem_available();
    let trace = trace_head(&d, "head.txt", 100);
    // (args, bytes the model needs: 16 per page booted, 160 per page for a scenario's run)
    let cases: Vec<(Vec<&str>, u64)> = vec![
        (
            vec!["show", "buddyinfo", "--mem", "8T"],
            (8u64 << 40) / 4096 * 16,
        ),
        (
            vec!["show", "buddyinfo", "--mem", "4T"],
            (4u64 << 40) / 4096 * 16,
        ),
        (vec!["run", "--mem", "8T"], (8u64 << 40) / 4096 * 160),
        (vec!["run", "--mem", "1T"], (1u64 << 40) / 4096 * 160),
        (
            vec!["replay", s(&trace), "--mem", "8T"],
            (8u64 << 40) / 4096 * 16,
        ),
        (ab("2T", &[]), (2u64 << 40) / 4096 * 160),
    ];
    let mut tried = 0;
    for (args, need) in cases {
        if need <= avail {
            eprintln!("skipped {args:?}: this machine has {avail} bytes available");
            continue;
        }
        kc(&d, &args).refused(
            "a --mem too large for this machine",
            &["--mem", "MemAvailable"],
        );
        tried += 1;
    }
    assert!(
        tried > 0 || avail > (8u64 << 40) / 4096 * 160,
        "at least one case ran"
    );
}

/// Issue 22: help is no error (`--set help=1` on stdout, exit 0), and every command's
/// `--help` carries an example.
#[test]
fn help_exits_0_on_stdout_with_examples() {
    let d = Scratch::new("help");
    for args in [
        vec!["run", "--set", "help=1"],
        vec!["run", "--set", "help=0", "--mem", "64M"],
        vec!["show", "buddyinfo", "--set", "help=1"],
    ] {
        let r = kc(&d, &args);
        r.ok("--set help");
        assert!(
            r.stdout.contains("the keys --set takes"),
            "{args:?}: {}",
            r.stdout
        );
    }
    for cmd in [
        "run",
        "scenarios",
        "ab",
        "show",
        "predict",
        "analyze",
        "replay",
        "capture",
        "validate",
        "report",
        "explain",
    ] {
        let r = kc(&d, &[cmd, "--help"]);
        r.ok("--help");
        assert!(
            r.stdout.contains("Example"),
            "kcompact {cmd} --help has no example:\n{}",
            r.stdout
        );
    }
}

/// How many corrupted snapshots the seeded generator tries.
const SEEDED_CASES: usize = 48;

/// Issue 22: a seeded generator of corrupted snapshot text files. Each corrupted snapshot
/// gives exit 0 with the clean snapshot's answer (within the drift the checks allow) or
/// exit 2 with one line naming a file; never a panic, a hang, or a write into it.
#[test]
fn seeded_corrupted_snapshots_keep_the_contract() {
    let d = Scratch::new("seeded");
    let clean = snapshot(&d, "clean", |_| {});
    let hp = |r: &Run| -> u64 {
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["before"]["hugepages"].as_u64().unwrap()
    };
    let base = hp(kc(
        &d,
        &["predict", s(&clean), "--action", "hugepages=0", "--json"],
    )
    .ok("clean"));
    let files = [
        "meta.txt",
        "zoneinfo",
        "buddyinfo",
        "buddyinfo.post",
        "pagetypeinfo",
    ];
    let mut rng = SimRng::new(0x22);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..SEEDED_CASES {
        let file = files[rng.below(files.len() as u64) as usize];
        let kind = rng.below(4);
        let n = rng.next_u64();
        let snap = snapshot(&d, &format!("m{i}"), |p| {
            edit_text(p, file, |t| {
                let lines: Vec<&str> = t.lines().collect();
                let at = (n % lines.len() as u64) as usize;
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                match kind {
                    // A number of a line replaced by a huge, zero or other number.
                    0 => {
                        let words: Vec<&str> = lines[at].split(' ').collect();
                        if let Some(w) = words.iter().position(|w| w.parse::<u64>().is_ok()) {
                            let mut ws: Vec<String> = words.iter().map(|x| x.to_string()).collect();
                            ws[w] = ["0", "18446744073709551615", "4097", "99999"]
                                [(n % 4) as usize]
                                .to_string();
                            out[at] = ws.join(" ");
                        }
                    }
                    // A line removed.
                    1 => {
                        out.remove(at);
                    }
                    // A line twice.
                    2 => out.insert(at, lines[at].to_string()),
                    // The file cut at that line.
                    _ => out.truncate(at),
                }
                out.join("\n") + "\n"
            })
        });
        let before = contents(&snap);
        let r = kc(
            &d,
            &["predict", s(&snap), "--action", "hugepages=0", "--json"],
        );
        match r.code {
            Some(0) => {
                let h = hp(&r);
                assert!(
                    h.abs_diff(base) * 100 <= base * 2,
                    "case {i} ({file}, kind {kind}): {h} huge pages, clean {base}"
                );
                ok += 1;
            }
            _ => {
                r.refused(&format!("case {i} ({file}, kind {kind})"), &[]);
                assert!(
                    files.iter().any(|f| r.stderr.contains(f)),
                    "case {i}: names a file: {}",
                    r.stderr
                );
                refused += 1;
            }
        }
        assert!(
            contents(&snap) == before,
            "case {i}: nothing written into the snapshot"
        );
        let _ = std::fs::remove_dir_all(&snap);
    }
    eprintln!("seeded corruptions: {ok} answered as the clean snapshot, {refused} refused");
    assert_eq!(ok + refused, SEEDED_CASES);
}
