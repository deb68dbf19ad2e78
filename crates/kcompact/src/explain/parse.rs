//! Reads the kernel's `page allocation failure` report out of log text.
//!
//! The report is what `warn_alloc()` (`warn_alloc_failed()` before 4.10) prints: the failure
//! line `COMM: page allocation failure: order:N, mode:0xMASK[(NAMES)][, nodemask=…]
//! [,cpuset=…,mems_allowed=…]`, the `dump_stack()` header and call trace, then `show_mem()`
//! (mm/show_mem.c; `show_free_areas()` of mm/page_alloc.c before 6.1): `Mem-Info:`, the
//! global counters, per zone a line `[Node N ]NAME free:…kB [boost:…kB ]min:…kB low:…kB
//! high:…kB …` and its `lowmem_reserve[]: …` (pages, one per zone of the node), then per zone
//! the buddy line `[Node N ]NAME: C*SIZEkB [(LETTERS)] … = TOTALkB`. Every field is read by
//! its name, so fields added or removed across 3.x–6.x do not matter; sizes are read in the
//! page size the buddy line shows (4 kB, 16 kB, 64 kB).
//!
//! What people paste is not always what the kernel printed: timestamps (`[  12.345678]`,
//! `dmesg -T`, caller ids), syslog and journal prefixes (`Jun 09 20:38:39 host kernel: `,
//! rsyslog's `#012` for a newline), `<4>` log levels, `> ` quoting, ANSI colours, quoted-
//! printable mail (`=3D`, soft line breaks) and lines wrapped by a mail client. These are
//! undone first; a line that cannot be what the format says is an error naming its line.

use super::kernel::{markers, Marker};

/// A report that cannot be read, with the 1-based line of the input it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ExplainError {
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ExplainError> {
    Err(ExplainError {
        line,
        msg: msg.into(),
    })
}

/// The `nodemask=` of the failure line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeMask {
    /// `nodemask=(null)`: no mask, every node the cpuset allows.
    Null,
    /// The listed nodes only.
    Nodes(Vec<u32>),
}

/// One zone as the report shows it: its `free:` line, its `lowmem_reserve[]` and its buddy
/// line. Sizes are in kB as printed; `lowmem_reserve` is in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneReport {
    /// The node (`Node N`; 0 when the kernel has no NUMA and prints no node).
    pub node: u32,
    /// Whether the line printed `Node N` (CONFIG_NUMA).
    pub node_printed: bool,
    /// The zone's name as printed (`DMA`, `DMA32`, `Normal`, `HighMem`, `Movable`, …).
    pub name: String,
    /// The `free:` line's number.
    pub line: usize,
    /// `free:` (NR_FREE_PAGES).
    pub free_kb: u64,
    /// `min:` (the MIN watermark with any boost).
    pub min_kb: u64,
    /// `low:`.
    pub low_kb: u64,
    /// `high:`.
    pub high_kb: u64,
    /// `boost:` (5.0+).
    pub boost_kb: Option<u64>,
    /// `reserved_highatomic:` (printed in KB).
    pub reserved_highatomic_kb: Option<u64>,
    /// `free_highatomic:`.
    pub free_highatomic_kb: Option<u64>,
    /// `free_cma:`.
    pub free_cma_kb: Option<u64>,
    /// `present:`.
    pub present_kb: Option<u64>,
    /// `managed:` (3.8+).
    pub managed_kb: Option<u64>,
    /// `lowmem_reserve[]`: pages kept from requests that may use each zone of the node.
    pub lowmem_reserve: Vec<u64>,
    /// The `lowmem_reserve[]` line's number.
    pub lowmem_line: usize,
    /// Free blocks per order (the buddy line's counts).
    pub free_by_order: Vec<u64>,
    /// The migratetype letters per order (`UMEHCI`, older `R`); empty where none printed.
    pub types_by_order: Vec<String>,
    /// True if the buddy line printed letters at all (3.x and later do, for orders with
    /// free blocks).
    pub letters_printed: bool,
    /// The buddy line's number.
    pub buddy_line: usize,
    /// The buddy line's `= TOTALkB`.
    pub total_kb: u64,
}

/// The report's facts, as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The failure line's number.
    pub failure_line: usize,
    /// The task (`current->comm`), if the line names one.
    pub comm: Option<String>,
    /// `order:`.
    pub order: u32,
    /// `mode:` as printed (`0xc04`).
    pub mode_text: String,
    /// `mode:` as a number.
    pub gfp_mask: u32,
    /// The `(NAMES)` after the mode, if printed.
    pub gfp_names: Option<String>,
    /// `nodemask=`, if printed.
    pub nodemask: Option<NodeMask>,
    /// `cpuset=`, if printed.
    pub cpuset: Option<String>,
    /// `mems_allowed=`, if printed.
    pub mems_allowed: Option<Vec<u32>>,
    /// The kernel release of the `CPU: … Comm: … RELEASE` (or `Pid: …, comm: …`) line.
    pub release: Option<String>,
    /// Its line number.
    pub release_line: Option<usize>,
    /// Format markers seen (each bounds the kernel version).
    pub markers: Vec<Marker>,
    /// The zones, in the order of their `free:` lines.
    pub zones: Vec<ZoneReport>,
    /// kB per page (the buddy lines' order-0 size).
    pub page_kb: u64,
    /// Further failure reports in the input, after this one.
    pub other_reports: usize,
    /// The call trace names a compaction function (`__alloc_pages_direct_compact`,
    /// `try_to_compact_pages`, …): the kernel has CONFIG_COMPACTION.
    pub trace_shows_compaction: bool,
    /// Lines of the input that were joined to the line before (wrapped lines).
    pub lines_joined: usize,
}

/// Largest number any field may hold (2^50 kB is an exabyte): beyond it the input is
/// taken as corrupt, which also keeps every later sum far from overflow.
pub const MAX_FIELD: u64 = 1 << 50;
/// Most buddy columns any kernel prints (MAX_PAGE_ORDER is at most 15 in any config).
pub const MAX_COLUMNS: usize = 20;
/// Most zones a report may list (nodes × zones).
pub const MAX_ZONES: usize = 4096;

/// One logical line: the input line it starts on and its text with prefixes removed.
#[derive(Clone, Debug)]
struct LLine {
    no: usize,
    text: String,
    stamped: bool,
    raw_len: usize,
    raw_trailing_space: bool,
}

/// Parses a report out of raw bytes (a file or stdin).
pub fn parse_report(bytes: &[u8]) -> Result<Report, ExplainError> {
    let text = decode_text(bytes)?;
    let (lines, joined) = logical_lines(&text);
    let mut report = parse_lines(&lines)?;
    report.lines_joined = joined;
    Ok(report)
}

/// The input as text: refuses binary data (a NUL or control byte other than tab, newline,
/// carriage return, form feed and the escape of colour sequences; or more than 1% of the
/// bytes not UTF-8). A few stray non-UTF-8 bytes (a Latin-1 name in a mail) are replaced.
fn decode_text(bytes: &[u8]) -> Result<String, ExplainError> {
    let line_of = |off: usize| bytes[..off].iter().filter(|&&b| b == b'\n').count() + 1;
    if let Some(off) = bytes
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b) || b == 0x7f)
    {
        return err(
            line_of(off),
            format!(
                "binary data (control byte {:#04x} at offset {off}): not a kernel log",
                bytes[off]
            ),
        );
    }
    let text = String::from_utf8_lossy(bytes);
    if let std::borrow::Cow::Owned(_) = &text {
        let bad = text.matches('\u{fffd}').count();
        if bad * 100 > bytes.len() {
            let off = std::str::from_utf8(bytes)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return err(
                line_of(off),
                format!(
                    "binary data ({bad} bytes are not UTF-8 text, the first at offset {off}): \
                     not a kernel log"
                ),
            );
        }
    }
    if text.trim().is_empty() {
        return err(1, "empty input: no kernel log text");
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    Ok(if looks_quoted_printable(&text) {
        decode_quoted_printable(&text)
    } else {
        text
    })
}

/// Mail bodies in quoted-printable carry `=3D` for every `=`; a kernel log never does.
fn looks_quoted_printable(text: &str) -> bool {
    text.contains("=3D")
}

/// Undoes quoted-printable: `=XX` bytes and `=` soft line breaks. The line count is kept by
/// leaving an empty line where a soft break joined two.
fn decode_quoted_printable(text: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut pending_newlines = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 1 < b.len() && b[i + 1] == b'\n' {
            pending_newlines += 1;
            i += 2;
            continue;
        }
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        if b[i] == b'\n' {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b'\n', pending_newlines));
            pending_newlines = 0;
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes ANSI colour sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `[  123.456789]` (a printk timestamp) at the start of `s`: the rest after it.
fn strip_printk_time(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    let t = inner[..end].trim();
    let (a, b) = t.split_once('.')?;
    if a.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(&inner[end + 1..])
}

/// `[Mon Apr 20 15:08:07 2020]` (`dmesg -T`) at the start of `s`.
fn strip_dmesg_human_time(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    let head = &inner[..end];
    if DAYS.iter().any(|d| head.starts_with(d)) && head.contains(':') {
        Some(&inner[end + 1..])
    } else {
        None
    }
}

/// `[ T1234]` / `[  C3]` (CONFIG_PRINTK_CALLER) at the start of `s`.
fn strip_caller_id(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    let t = inner[..end].trim();
    let digits = t.strip_prefix('T').or_else(|| t.strip_prefix('C'))?;
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        Some(&inner[end + 1..])
    } else {
        None
    }
}

/// A syslog or journal prefix ending in `kernel: `: `Jun 09 20:38:39 host kernel: `,
/// `2024-01-02T03:04:05.678+00:00 host kernel: `, `host kernel: ` (after a timestamp),
/// `kernel: `. What comes before `kernel:` must be a few words without `: ` (a date, a
/// time, a host name), so a message that merely mentions the word is left alone.
fn strip_syslog(s: &str) -> Option<&str> {
    let k = s.find("kernel:")?;
    let head = &s[..k];
    if k > 80
        || (!head.is_empty() && !head.ends_with(' '))
        || head.contains(": ")
        || head.starts_with('[')
    {
        return None;
    }
    if head.split_whitespace().count() > 6 {
        return None;
    }
    Some(&s[k + "kernel:".len()..])
}

/// `kern  :warn  : ` (`dmesg -x`).
fn strip_facility(s: &str) -> Option<&str> {
    let (fac, rest) = s.split_once(':')?;
    let (lvl, rest) = rest.split_once(':')?;
    let word = |w: &str| {
        let w = w.trim();
        !w.is_empty() && w.len() <= 8 && w.bytes().all(|b| b.is_ascii_lowercase())
    };
    (word(fac) && word(lvl) && rest.starts_with(' ')).then_some(rest)
}

/// A line's text with every known prefix removed, and whether it carried a timestamp.
fn strip_prefixes(line: &str) -> (String, bool) {
    let mut s = line.trim_start();
    // Mail quoting.
    while let Some(r) = s.strip_prefix('>') {
        s = r.trim_start();
    }
    let mut stamped = false;
    for _ in 0..4 {
        let before = s.len();
        if let Some(r) = strip_syslog(s) {
            s = r.trim_start();
        }
        if let Some(r) = strip_facility(s) {
            s = r.trim_start();
        }
        if let Some(r) = s.strip_prefix('<') {
            if let Some(end) = r.find('>') {
                if end <= 2 && r[..end].bytes().all(|c| c.is_ascii_digit()) && end > 0 {
                    s = &r[end + 1..];
                }
            }
        }
        if let Some(r) = strip_printk_time(s).or_else(|| strip_dmesg_human_time(s)) {
            stamped = true;
            s = r;
            if let Some(r) = strip_caller_id(s.trim_start()) {
                s = r;
            }
        }
        if s.len() == before {
            break;
        }
    }
    (s.trim().to_string(), stamped)
}

/// What kind of line a logical line is, for joining wrapped lines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Failure,
    Zone,
    Lowmem,
    Buddy,
    Other,
}

fn kind_of(text: &str) -> Kind {
    if text.contains("page allocation failure") {
        Kind::Failure
    } else if text.starts_with("lowmem_reserve[]") {
        Kind::Lowmem
    } else if zone_head(text).is_some() {
        Kind::Zone
    } else if buddy_head(text).is_some() {
        Kind::Buddy
    } else {
        Kind::Other
    }
}

/// `Node N NAME free:` / `NAME free:`: the node (if printed), the name, the rest from `free:`.
fn zone_head(text: &str) -> Option<(Option<u32>, &str, &str)> {
    let (node, rest) = split_node(text);
    let (name, after) = rest.split_once(' ')?;
    if !is_zone_name(name) {
        return None;
    }
    let after = after.trim_start();
    after.starts_with("free:").then_some((node, name, after))
}

/// `Node N NAME: C*SkB …` / `NAME: C*SkB …`: the node, the name, the terms.
fn buddy_head(text: &str) -> Option<(Option<u32>, &str, &str)> {
    let (node, rest) = split_node(text);
    let (name, after) = rest.split_once(": ")?;
    if !is_zone_name(name) {
        return None;
    }
    let first = after.split_whitespace().next()?;
    is_buddy_term(first).then_some((node, name, after))
}

fn split_node(text: &str) -> (Option<u32>, &str) {
    if let Some(r) = text.strip_prefix("Node ") {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && digits < 6 && r[digits..].starts_with(' ') {
            if let Ok(n) = r[..digits].parse() {
                return (Some(n), r[digits..].trim_start());
            }
        }
    }
    (None, text)
}

fn is_zone_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 16
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && name != "Node"
}

/// `C*SIZEkB`.
fn is_buddy_term(t: &str) -> bool {
    let Some((c, s)) = t.split_once('*') else {
        return false;
    };
    let Some(size) = s.strip_suffix("kB") else {
        return false;
    };
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_digit())
        && !size.is_empty()
        && size.bytes().all(|b| b.is_ascii_digit())
}

/// True if a buddy line's text ends with its `= TOTALkB`.
fn buddy_complete(text: &str) -> bool {
    let t = text.trim_end();
    let Some(body) = t.strip_suffix("kB") else {
        return false;
    };
    let digits = body.bytes().rev().take_while(u8::is_ascii_digit).count();
    digits > 0 && body[..body.len() - digits].trim_end().ends_with('=')
}

/// Whether a token can end a field of a `kind` line (so a wrap after it was at a space).
fn ends_field(kind: Kind, tok: &str) -> bool {
    match kind {
        Kind::Zone => {
            tok.ends_with("kB")
                || tok.ends_with("KB")
                || tok == "yes"
                || tok == "no"
                || tok.ends_with('?')
                || (tok.contains(':') && tok.ends_with(|c: char| c.is_ascii_digit()))
        }
        Kind::Buddy => tok.ends_with("kB") || tok.ends_with(')') || tok == "=",
        Kind::Lowmem => tok.bytes().all(|b| b.is_ascii_digit()) || tok.ends_with(':'),
        Kind::Failure => tok.ends_with(',') || tok.ends_with(')'),
        Kind::Other => false,
    }
}

/// Whether a token can start a field of a `kind` line.
fn starts_field(kind: Kind, tok: &str) -> bool {
    match kind {
        Kind::Zone => {
            tok.contains(':') && tok.starts_with(|c: char| c.is_ascii_alphabetic())
                || tok == "yes"
                || tok == "no"
        }
        Kind::Buddy => {
            tok.starts_with('(')
                || tok == "="
                || tok
                    .split_once('*')
                    .is_some_and(|(c, _)| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
                || tok.ends_with("kB") && tok.starts_with(|c: char| c.is_ascii_digit())
        }
        Kind::Lowmem => tok.bytes().all(|b| b.is_ascii_digit()),
        Kind::Failure => {
            tok.starts_with("mode:")
                || tok.starts_with("nodemask=")
                || tok.starts_with("cpuset=")
                || tok.starts_with(",cpuset=")
                || tok.starts_with("order:")
        }
        Kind::Other => false,
    }
}

/// Joins a wrapped continuation to its line: directly where the wrap split a word, with a
/// space where it fell between two fields of the line's kind.
fn join(prev: &mut String, kind: Kind, cont: &str) {
    let cont_t = cont.trim();
    if prev.ends_with(char::is_whitespace) || cont.starts_with(char::is_whitespace) {
        prev.push_str(cont_t);
        return;
    }
    let last = prev.split_whitespace().last().unwrap_or("");
    let first = cont_t.split_whitespace().next().unwrap_or("");
    if ends_field(kind, last) && starts_field(kind, first) {
        prev.push(' ');
    }
    prev.push_str(cont_t);
}

/// Whether `cont` can be the wrapped rest of a `kind` line `prev` (so words typed after a
/// pasted report do not end up inside its last line).
fn continues(kind: Kind, prev: &str, cont: &str) -> bool {
    let first = cont.split_whitespace().next().unwrap_or("");
    match kind {
        Kind::Buddy => !buddy_complete(prev),
        Kind::Lowmem => cont
            .split_whitespace()
            .all(|t| t.bytes().all(|b| b.is_ascii_digit())),
        Kind::Zone => {
            starts_field(Kind::Zone, first)
                || ["min:", "low:", "high:"].iter().any(|k| !prev.contains(k))
        }
        Kind::Failure => {
            starts_field(Kind::Failure, first)
                || prev.trim_end().ends_with(',')
                || !prev.contains("mode:")
        }
        Kind::Other => true,
    }
}

/// Splits the text into logical lines: prefixes stripped, rsyslog's `#012` expanded, and
/// lines wrapped by mail clients joined back.
fn logical_lines(text: &str) -> (Vec<LLine>, usize) {
    let mut raw: Vec<LLine> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = strip_ansi(line);
        let line = line.replace("#011", "\t");
        let raw_len = line.trim_end().len();
        let raw_trailing_space = line.ends_with(' ');
        for (j, part) in line.split("#012").enumerate() {
            let (t, stamped) = strip_prefixes(part);
            raw.push(LLine {
                no: i + 1,
                text: t,
                // A #012 piece shares its record's stamp.
                stamped: stamped || j > 0,
                raw_len,
                raw_trailing_space,
            });
        }
    }
    let nonempty = raw.iter().filter(|l| !l.text.is_empty()).count();
    let stamped = raw
        .iter()
        .filter(|l| l.stamped && !l.text.is_empty())
        .count();
    let stamped_mode = stamped >= 3 && stamped * 2 >= nonempty;

    // Pass 1: in a timestamped log, an unstamped line after a long or space-ended line is
    // that line's continuation.
    let mut out: Vec<LLine> = Vec::new();
    let mut joined = 0;
    for l in raw {
        if stamped_mode && !l.stamped && !l.text.is_empty() {
            if let Some(prev) = out.last_mut() {
                let kind = kind_of(&prev.text);
                if prev.stamped
                    && (prev.raw_trailing_space || prev.raw_len >= 60)
                    && continues(kind, &prev.text, &l.text)
                {
                    join(&mut prev.text, kind, &l.text);
                    prev.raw_trailing_space = l.raw_trailing_space;
                    prev.raw_len = l.raw_len;
                    joined += 1;
                    continue;
                }
            }
        }
        if l.text.is_empty() {
            continue;
        }
        out.push(l);
    }

    // Pass 2: the report's own structure, for logs without timestamps.
    let mut res: Vec<LLine> = Vec::with_capacity(out.len());
    let mut iter = out.into_iter().peekable();
    while let Some(mut l) = iter.next() {
        let kind = kind_of(&l.text);
        while let Some(next) = iter.peek() {
            let nk = kind_of(&next.text);
            let first = next.text.split_whitespace().next().unwrap_or("");
            let take = match kind {
                Kind::Zone => nk == Kind::Other && starts_field(Kind::Zone, first),
                Kind::Buddy => {
                    !buddy_complete(&l.text)
                        && nk == Kind::Other
                        && starts_field(Kind::Buddy, first)
                }
                Kind::Lowmem => {
                    nk == Kind::Other
                        && next
                            .text
                            .split_whitespace()
                            .all(|t| t.bytes().all(|b| b.is_ascii_digit()))
                }
                Kind::Failure => nk == Kind::Other && starts_field(Kind::Failure, first),
                Kind::Other => false,
            };
            if !take {
                break;
            }
            let next = iter.next().expect("peeked");
            join(&mut l.text, kind, &next.text);
            joined += 1;
        }
        res.push(l);
    }
    (res, joined)
}

/// Other kernel messages people take for allocation failures, by a phrase that marks them.
const OTHER_MESSAGES: &[(&str, &str)] = &[
    (
        "invoked oom-killer",
        "an OOM-killer report (`invoked oom-killer`)",
    ),
    ("vmalloc: allocation failure", "a vmalloc failure"),
    ("vmalloc error:", "a vmalloc failure"),
    ("page allocation stalls for", "an allocation stall warning"),
    ("Out of memory:", "an OOM-killer report (`Out of memory:`)"),
    ("BUG: ", "a kernel BUG/oops report"),
    ("Oops:", "a kernel oops"),
    (
        "general protection fault",
        "a kernel oops (general protection fault)",
    ),
    ("Unable to handle kernel", "a kernel oops"),
    ("Kernel panic", "a kernel panic"),
    ("WARNING: ", "a kernel warning"),
];

/// Messages that carry a Mem-Info of their own.
const INTERRUPTING: &[&str] = &[
    "invoked oom-killer",
    "vmalloc: allocation failure",
    "vmalloc error:",
    "page allocation stalls for",
];

fn parse_lines(lines: &[LLine]) -> Result<Report, ExplainError> {
    let failures: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.text.contains("page allocation failure"))
        .map(|(i, _)| i)
        .collect();
    let Some(&start) = failures.first() else {
        for (phrase, what) in OTHER_MESSAGES {
            if let Some(l) = lines.iter().find(|l| l.text.contains(phrase)) {
                return err(
                    l.no,
                    format!("{what}, not a `page allocation failure` report"),
                );
            }
        }
        let no = lines.first().map_or(1, |l| l.no);
        return err(
            no,
            "no `page allocation failure: order:N, mode:0x…` line: not an allocation failure report",
        );
    };
    let end = failures.get(1).copied().unwrap_or(lines.len());
    let seg = &lines[start..end];
    let mut report = parse_failure_line(&seg[0])?;
    report.other_reports = failures.len() - 1;
    scan_header(seg, &mut report)?;
    // Another report starting before this one's Mem-Info would lend it its memory state.
    let other = seg
        .iter()
        .skip(1)
        .position(|l| INTERRUPTING.iter().any(|p| l.text.contains(p)));
    let mem = seg
        .iter()
        .take(other.map_or(seg.len(), |o| o + 1))
        .position(|l| l.text == "Mem-Info:" || l.text == "Mem-info:")
        .ok_or_else(|| ExplainError {
            line: seg.last().map_or(seg[0].no, |l| l.no),
            msg: "the report ends before `Mem-Info:` (cut short, or the kernel left the \
                  memory state out): nothing to explain from"
                .into(),
        })?;
    parse_mem_info(&seg[mem..], &mut report)?;
    Ok(report)
}

/// The failure line: task, order, mode, names, nodemask, cpuset.
fn parse_failure_line(l: &LLine) -> Result<Report, ExplainError> {
    let t = &l.text;
    let at = t.find("page allocation failure").expect("caller found it");
    let comm = t[..at]
        .trim_end()
        .strip_suffix(':')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let rest = &t[at + "page allocation failure".len()..];
    let mut marks = Vec::new();
    let rest = if let Some(r) = rest.strip_prefix('.') {
        marks.push(markers::FAILURE_DOT);
        r
    } else if let Some(r) = rest.strip_prefix(':') {
        marks.push(markers::FAILURE_COLON);
        r
    } else {
        return err(
            l.no,
            "`page allocation failure` not followed by `:` or `.` and the order",
        );
    };
    let rest = rest.trim_start();
    let Some(r) = rest.strip_prefix("order:") else {
        return err(l.no, "`page allocation failure` without `order:`");
    };
    let digits = r.bytes().take_while(u8::is_ascii_digit).count();
    let order: u32 = match r[..digits].parse() {
        Ok(o) if (o as usize) < MAX_COLUMNS => o,
        _ => {
            let shown: String = r.chars().take(12).collect();
            return err(
                l.no,
                format!(
                    "order {shown:?} is not a number below {MAX_COLUMNS} (no kernel keeps larger blocks)"
                ),
            );
        }
    };
    let r = r[digits..]
        .trim_start()
        .trim_start_matches(',')
        .trim_start();
    let Some(r) = r.strip_prefix("mode:") else {
        return err(l.no, "the failure line has no `mode:` after the order");
    };
    let hex_len = r
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() || *b == b'x')
        .count();
    let mode_text = r[..hex_len].to_string();
    let digits_part = mode_text.strip_prefix("0x").unwrap_or(&mode_text);
    let gfp_mask = match u32::from_str_radix(digits_part, 16) {
        Ok(m) if !digits_part.is_empty() => m,
        _ => return err(l.no, format!("mode {mode_text:?} is not a hex gfp mask")),
    };
    let mut r = &r[hex_len..];
    let mut gfp_names = None;
    if let Some(inner) = r.strip_prefix('(') {
        let Some(close) = inner.find(')') else {
            return err(
                l.no,
                "the gfp names after mode: have no closing `)` (cut short?)",
            );
        };
        gfp_names = Some(inner[..close].to_string());
        marks.push(markers::MODE_NAMES);
        r = &inner[close + 1..];
    }
    if gfp_names.is_none() {
        marks.push(markers::MODE_HEX_ONLY);
    }
    let mut nodemask = None;
    let mut cpuset = None;
    let mut mems_allowed = None;
    // `nodemask=LIST[,cpuset=NAME,mems_allowed=LIST]`; the lists hold commas of their own.
    if let Some(i) = r.find("nodemask=") {
        let v = &r[i + "nodemask=".len()..];
        let v = v.split(",cpuset=").next().unwrap_or(v).trim();
        let v = v.split_whitespace().next().unwrap_or("");
        nodemask = Some(if v == "(null)" {
            NodeMask::Null
        } else {
            NodeMask::Nodes(node_list(v).ok_or_else(|| ExplainError {
                line: l.no,
                msg: format!("nodemask {v:?} is not a node list"),
            })?)
        });
    }
    if let Some(i) = r.find("cpuset=") {
        let v = &r[i + "cpuset=".len()..];
        cpuset = v.split(',').next().map(|c| c.trim().to_string());
    }
    if let Some(i) = r.find("mems_allowed=") {
        mems_allowed = node_list(r[i + "mems_allowed=".len()..].trim());
    }
    Ok(Report {
        failure_line: l.no,
        comm,
        order,
        mode_text,
        gfp_mask,
        gfp_names,
        nodemask,
        cpuset,
        mems_allowed,
        release: None,
        release_line: None,
        markers: marks,
        zones: Vec::new(),
        page_kb: 0,
        other_reports: 0,
        trace_shows_compaction: false,
        lines_joined: 0,
    })
}

/// A `%*pbl` node list (`0`, `0-3`, `0,2-3`).
fn node_list(s: &str) -> Option<Vec<u32>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                v.extend(a..=b);
            }
            None => v.push(part.parse().ok()?),
        }
    }
    (!v.is_empty()).then_some(v)
}

/// The lines between the failure line and `Mem-Info:`: the release, the older cpuset
/// line, and what the header and call trace say about the kernel.
fn scan_header(seg: &[LLine], report: &mut Report) -> Result<(), ExplainError> {
    for l in seg.iter().skip(1) {
        let t = &l.text;
        if t == "Mem-Info:" || t == "Mem-info:" {
            break;
        }
        if let Some(i) = t.find("Comm: ").filter(|_| t.starts_with("CPU: ")) {
            report.markers.push(markers::CPU_PID_COMM);
            set_release(report, &t[i + "Comm: ".len()..], l.no);
        } else if t.starts_with("Pid: ") && t.contains(", comm: ") {
            report.markers.push(markers::PID_COMM_HEADER);
            if let Some(i) = t.find(", comm: ") {
                set_release(report, &t[i + ", comm: ".len()..], l.no);
            }
        } else if t.contains(" cpuset=") && t.contains("mems_allowed=") {
            // 4.x printed the cpuset on a line of its own.
            if let Some(i) = t.find(" cpuset=") {
                let v = &t[i + " cpuset=".len()..];
                report.cpuset = v.split_whitespace().next().map(str::to_string);
            }
            if let Some(i) = t.find("mems_allowed=") {
                report.mems_allowed = node_list(t[i + "mems_allowed=".len()..].trim());
            }
        }
        if t.contains("warn_alloc_failed") {
            report.markers.push(markers::TRACE_WARN_ALLOC_FAILED);
        } else if t.contains("warn_alloc+") || t.contains("warn_alloc.") {
            report.markers.push(markers::TRACE_WARN_ALLOC);
        }
        if t.contains("direct_compact") || t.contains("try_to_compact_pages") {
            report.trace_shows_compaction = true;
        }
    }
    Ok(())
}

/// The release after `Comm: NAME`: the first word that reads as a version (the comm itself
/// is at most 16 characters and may hold spaces, so every word is tried).
fn set_release(report: &mut Report, after_comm: &str, no: usize) {
    if report.release.is_some() {
        return;
    }
    for w in after_comm.split_whitespace().skip(1) {
        if super::kernel::KernelVersion::parse(w).is_some() && w.contains('.') {
            report.release = Some(w.to_string());
            report.release_line = Some(no);
            return;
        }
    }
}

/// A `key:value` field of a zone line, in kB (or plain for `pages_scanned:`-like fields).
fn kb_field(line: usize, key: &str, v: &str) -> Result<u64, ExplainError> {
    let num = v
        .strip_suffix("kB")
        .or_else(|| v.strip_suffix("KB"))
        .ok_or_else(|| ExplainError {
            line,
            msg: format!("`{key}:{v}` is not a size in kB"),
        })?;
    match num.parse::<u64>() {
        Ok(n) if n <= MAX_FIELD => Ok(n),
        _ => err(
            line,
            format!("`{key}:{v}` is not a number of kB (or implausibly large)"),
        ),
    }
}

/// The zone lines, their `lowmem_reserve[]` lines and the buddy lines of `Mem-Info:`.
fn parse_mem_info(seg: &[LLine], report: &mut Report) -> Result<(), ExplainError> {
    let mut zones: Vec<ZoneReport> = Vec::new();
    let mut buddy_seen = 0usize;
    for l in seg.iter().skip(1) {
        let t = &l.text;
        if t.starts_with("Node ") && t.contains(" active_anon:") {
            report.markers.push(markers::NODE_LRU);
        }
        if let Some((node, name, fields)) = zone_head(t) {
            if buddy_seen > 0 {
                return err(
                    l.no,
                    format!("zone line for {name} after the free-list lines (two reports mixed?)"),
                );
            }
            if zones.len() >= MAX_ZONES {
                return err(l.no, "more zones than any machine has");
            }
            zones.push(parse_zone_line(l.no, node, name, fields)?);
            continue;
        }
        if let Some(rest) = t.strip_prefix("lowmem_reserve[]:") {
            let Some(z) = zones.last_mut() else {
                return err(l.no, "`lowmem_reserve[]` before any zone line");
            };
            if z.lowmem_line != 0 {
                return err(l.no, format!("a second `lowmem_reserve[]` for {}", z.name));
            }
            let mut v = Vec::new();
            for w in rest.split_whitespace() {
                match w.parse::<u64>() {
                    Ok(n) if n <= MAX_FIELD => v.push(n),
                    _ => {
                        return err(
                            l.no,
                            format!("`lowmem_reserve[]` entry {w:?} is not a page count"),
                        )
                    }
                }
            }
            if v.is_empty() || v.len() > 8 {
                return err(
                    l.no,
                    format!(
                        "`lowmem_reserve[]` has {} entries (1 to 8 zones per node)",
                        v.len()
                    ),
                );
            }
            z.lowmem_reserve = v;
            z.lowmem_line = l.no;
            continue;
        }
        if let Some((node, name, terms)) = buddy_head(t) {
            buddy_seen += 1;
            parse_buddy_line(l.no, node, name, terms, &mut zones, report)?;
        }
    }
    let last = seg.last().map_or(0, |l| l.no);
    if zones.is_empty() {
        return err(
            last,
            "no zone lines (`NAME free:…kB min:…kB …`) after `Mem-Info:` (cut short?)",
        );
    }
    let nr_reserve = zones[0].lowmem_reserve.len();
    for z in &zones {
        if z.lowmem_line == 0 {
            return err(
                z.line,
                format!(
                    "zone {} has no `lowmem_reserve[]` line after it (cut short?)",
                    z.name
                ),
            );
        }
        if z.lowmem_reserve.len() != nr_reserve {
            return err(
                z.lowmem_line,
                format!(
                    "`lowmem_reserve[]` of {} has {} entries, the first zone's has {nr_reserve}",
                    z.name,
                    z.lowmem_reserve.len()
                ),
            );
        }
        if z.buddy_line == 0 {
            return err(
                last,
                format!(
                    "the report ends without the free-list line of {}{} (cut short?)",
                    if z.node_printed {
                        format!("Node {} ", z.node)
                    } else {
                        String::new()
                    },
                    z.name
                ),
            );
        }
    }
    report.zones = zones;
    Ok(())
}

fn parse_zone_line(
    no: usize,
    node: Option<u32>,
    name: &str,
    fields: &str,
) -> Result<ZoneReport, ExplainError> {
    let mut z = ZoneReport {
        node: node.unwrap_or(0),
        node_printed: node.is_some(),
        name: name.to_string(),
        line: no,
        free_kb: 0,
        min_kb: 0,
        low_kb: 0,
        high_kb: 0,
        boost_kb: None,
        reserved_highatomic_kb: None,
        free_highatomic_kb: None,
        free_cma_kb: None,
        present_kb: None,
        managed_kb: None,
        lowmem_reserve: Vec::new(),
        lowmem_line: 0,
        free_by_order: Vec::new(),
        types_by_order: Vec::new(),
        letters_printed: false,
        buddy_line: 0,
        total_kb: 0,
    };
    let mut seen = [false; 4];
    for tok in fields.split_whitespace() {
        let Some((key, v)) = tok.split_once(':') else {
            continue;
        };
        let slot = match key {
            "free" => Some(0),
            "min" => Some(1),
            "low" => Some(2),
            "high" => Some(3),
            _ => None,
        };
        if let Some(i) = slot {
            if seen[i] {
                return err(no, format!("`{key}:` twice in the zone line of {name}"));
            }
            seen[i] = true;
            let n = kb_field(no, key, v)?;
            match i {
                0 => z.free_kb = n,
                1 => z.min_kb = n,
                2 => z.low_kb = n,
                _ => z.high_kb = n,
            }
            continue;
        }
        let target = match key {
            "boost" => &mut z.boost_kb,
            "reserved_highatomic" => &mut z.reserved_highatomic_kb,
            "free_highatomic" => &mut z.free_highatomic_kb,
            "free_cma" => &mut z.free_cma_kb,
            "present" => &mut z.present_kb,
            "managed" => &mut z.managed_kb,
            _ => continue,
        };
        *target = Some(kb_field(no, key, v)?);
    }
    for (i, key) in ["free", "min", "low", "high"].iter().enumerate() {
        if !seen[i] {
            return err(
                no,
                format!("the zone line of {name} has no `{key}:` (cut short?)"),
            );
        }
    }
    Ok(z)
}

/// `C*SIZEkB [(LETTERS)] … = TOTALkB` into the zone of the same node and name.
fn parse_buddy_line(
    no: usize,
    node: Option<u32>,
    name: &str,
    terms: &str,
    zones: &mut [ZoneReport],
    report: &mut Report,
) -> Result<(), ExplainError> {
    let node_n = node.unwrap_or(0);
    let Some(z) = zones
        .iter_mut()
        .find(|z| z.node == node_n && z.name == name)
    else {
        return err(
            no,
            format!("free-list line for {name} with no zone line before it"),
        );
    };
    if z.buddy_line != 0 {
        return err(no, format!("a second free-list line for {name}"));
    }
    let Some((body, total)) = terms.rsplit_once('=') else {
        return err(
            no,
            format!("the free-list line of {name} ends before its `= TOTALkB` (cut short?)"),
        );
    };
    let total = total.trim();
    let total_kb = match total.strip_suffix("kB").map(str::parse::<u64>) {
        Some(Ok(n)) if n <= MAX_FIELD => n,
        _ => {
            return err(
                no,
                format!("the free-list line of {name} ends in {total:?}, not `= TOTALkB`"),
            )
        }
    };
    let mut counts = Vec::new();
    let mut letters: Vec<String> = Vec::new();
    let mut any_letters = false;
    let mut page_kb = 0u64;
    for tok in body.split_whitespace() {
        if let Some(inner) = tok.strip_prefix('(') {
            let Some(l) = inner.strip_suffix(')') else {
                return err(
                    no,
                    format!("migratetype letters {tok:?} are not `(LETTERS)`"),
                );
            };
            let Some(slot) = letters.last_mut() else {
                return err(no, "migratetype letters before any count");
            };
            if !slot.is_empty() {
                return err(
                    no,
                    format!("two sets of migratetype letters after one count ({tok})"),
                );
            }
            if !l.chars().all(|c| c.is_ascii_uppercase()) || l.len() > 8 {
                return err(
                    no,
                    format!("migratetype letters {tok:?} are not capital letters"),
                );
            }
            if counts.last() == Some(&0) {
                return err(no, format!("migratetype letters {tok} after a count of 0"));
            }
            *slot = l.to_string();
            any_letters = true;
            continue;
        }
        if !is_buddy_term(tok) {
            return err(
                no,
                format!("{tok:?} in the free-list line of {name} is not `COUNT*SIZEkB`"),
            );
        }
        let (c, s) = tok.split_once('*').expect("checked");
        let (count, size): (u64, u64) = match (c.parse(), s.trim_end_matches("kB").parse()) {
            (Ok(c), Ok(s)) if c <= MAX_FIELD && s <= MAX_FIELD => (c, s),
            _ => return err(no, format!("{tok:?} holds an implausibly large number")),
        };
        let order = counts.len();
        if order >= MAX_COLUMNS {
            return err(
                no,
                format!("more than {MAX_COLUMNS} orders in the free-list line"),
            );
        }
        if order == 0 {
            if size == 0 || !size.is_power_of_two() {
                return err(no, format!("order-0 size {size}kB is not a page size"));
            }
            page_kb = size;
        } else if size != page_kb << order {
            return err(
                no,
                format!(
                    "{tok}: an order-{order} block of {page_kb}kB pages is {}kB",
                    page_kb << order
                ),
            );
        }
        counts.push(count);
        letters.push(String::new());
    }
    if counts.is_empty() {
        return err(no, format!("the free-list line of {name} has no counts"));
    }
    let sum = counts.iter().enumerate().try_fold(0u64, |acc, (o, &c)| {
        c.checked_mul(page_kb << o).and_then(|v| acc.checked_add(v))
    });
    if sum != Some(total_kb) {
        return err(
            no,
            format!(
                "the free-list terms of {name} add up to {}kB, the line says {total_kb}kB (corrupt or cut)",
                sum.map_or("more than 2^64 ".to_string(), |s| s.to_string())
            ),
        );
    }
    if report.page_kb != 0 && report.page_kb != page_kb {
        return err(
            no,
            format!(
                "{name} shows {page_kb}kB pages, an earlier zone {}kB",
                report.page_kb
            ),
        );
    }
    report.page_kb = page_kb;
    if letters.iter().any(|l| l.contains('R')) {
        report.markers.push(markers::LETTER_R);
    }
    if letters.iter().any(|l| l.contains('H')) {
        report.markers.push(markers::LETTER_H);
    }
    z.free_by_order = counts;
    z.types_by_order = letters;
    z.letters_printed = any_letters;
    z.buddy_line = no;
    z.total_kb = total_kb;
    Ok(())
}

/// The markers the zone lines show (called once the zones are read).
pub(crate) fn zone_markers(zones: &[ZoneReport], marks: &mut Vec<Marker>) {
    if zones.iter().any(|z| z.managed_kb.is_none()) {
        marks.push(markers::NO_MANAGED);
    }
    if zones.iter().any(|z| z.reserved_highatomic_kb.is_some()) {
        marks.push(markers::RESERVED_HIGHATOMIC);
    }
    if zones.iter().any(|z| z.boost_kb.is_some()) {
        marks.push(markers::BOOST);
    }
    if zones.iter().any(|z| z.free_highatomic_kb.is_some()) {
        marks.push(markers::FREE_HIGHATOMIC);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_come_off() {
        assert_eq!(
            strip_prefixes("[106595.212781] java: page allocation failure: order:4"),
            ("java: page allocation failure: order:4".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("Feb  9 08:09:39 prod-server kernel: Mem-Info:"),
            ("Mem-Info:".to_string(), false)
        );
        assert_eq!(
            strip_prefixes("> > [  223.8] [ T1644] bash: x"),
            ("bash: x".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("<4>[    1.5] Node 0 DMA: 1*4kB = 4kB"),
            ("Node 0 DMA: 1*4kB = 4kB".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("[Mon Apr 20 15:08:07 2020]  dump_stack+0x66/0x90"),
            ("dump_stack+0x66/0x90".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("[  123.456789] myhost kernel: Mem-Info:"),
            ("Mem-Info:".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("kern  :warn  : [  1.2] Mem-Info:"),
            ("Mem-Info:".to_string(), true)
        );
        assert_eq!(
            strip_prefixes("Mar 29 23:11:07 kernel: swapper: x"),
            ("swapper: x".to_string(), false)
        );
        // A message that mentions the word keeps it.
        assert_eq!(
            strip_prefixes("foo: the kernel: bar"),
            ("foo: the kernel: bar".to_string(), false)
        );
    }

    #[test]
    fn node_lists_keep_their_commas() {
        let l = LLine {
            no: 1,
            text: "t: page allocation failure: order:2, mode:0xcc0(GFP_KERNEL), \
                   nodemask=0-1,3,cpuset=/box,mems_allowed=0-3"
                .into(),
            stamped: false,
            raw_len: 0,
            raw_trailing_space: false,
        };
        let r = parse_failure_line(&l).expect("parses");
        assert_eq!(r.nodemask, Some(NodeMask::Nodes(vec![0, 1, 3])));
        assert_eq!(r.cpuset.as_deref(), Some("/box"));
        assert_eq!(r.mems_allowed, Some(vec![0, 1, 2, 3]));
        assert_eq!(r.gfp_names.as_deref(), Some("GFP_KERNEL"));
    }

    #[test]
    fn stray_latin1_bytes_pass_and_binary_does_not() {
        let mut t = b"Hi J\xfcrgen,\n".to_vec();
        t.extend_from_slice(&[b'x'; 200]);
        assert!(decode_text(&t).is_ok());
        let bin: Vec<u8> = (0..400u32).map(|i| 0x80 + (i % 64) as u8).collect();
        let e = decode_text(&bin).unwrap_err();
        assert!(e.msg.contains("binary"), "{}", e.msg);
        let e = decode_text(b"abc\ndef\0ghi").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn quoted_printable_is_undone() {
        let t = decode_quoted_printable(
            "mode:0x1004000(GFP_=\nNOWAIT|__GFP_COMP), nodemask=3D(null)\nx\n",
        );
        assert!(t.starts_with("mode:0x1004000(GFP_NOWAIT|__GFP_COMP), nodemask=(null)\n\nx"));
    }

    #[test]
    fn wrapped_zone_and_buddy_lines_join() {
        let text = "x: page allocation failure: order:1, \nmode:0x20\nMem-Info:\n\
                    Normal free:100kB min:10kB low:12kB\nhigh:14kB present:400kB\n\
                    lowmem_reserve[]: 0\n0\nNormal: 1*4kB (U) 0*8kB\n= 4kB\n";
        let r = parse_report(text.as_bytes()).expect("parses");
        assert_eq!(r.order, 1);
        assert_eq!(r.zones[0].high_kb, 14);
        assert_eq!(r.zones[0].lowmem_reserve, [0, 0]);
        assert_eq!(r.zones[0].free_by_order, [1, 0]);
        assert_eq!(r.zones[0].types_by_order, ["U", ""]);
    }
}
