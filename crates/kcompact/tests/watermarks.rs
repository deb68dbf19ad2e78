//! The model's watermarks, lowmem reserves and `min_free_kbytes` against a real kernel's.
//!
//! A machine is rebuilt from a `/proc/zoneinfo` (each zone's start, span, present and
//! managed pages) and booted with the kernel's `min_free_kbytes`; every zone's
//! min/low/high/promo and protection must then equal what the kernel printed. The
//! fixture `A_g8_r1_zoneinfo` is a captured 24 GiB Linux 6.18 guest with THP on; the live
//! test reads this machine's own `/proc` files, when there are any.

use kcompact::layout::{Layout, PfnRange, ZoneSpec, ZoneType, MAX_NR_ZONES};
use kcompact::units::{NodeId, Order, Pfn, DEFAULT_PAGEBLOCK_ORDER};
use kcompact::zone::Wmark;
use kcompact::{Machine, VmConfig};

const FIXTURE_ZONEINFO: &str = include_str!("fixtures/A_g8_r1_zoneinfo");
const FIXTURE_SYSCTL_VM: &str = include_str!("fixtures/A_g8_r1_sysctl_vm.txt");

/// One "Node N, zone NAME" section of `/proc/zoneinfo`, the fields these tests read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ZoneInfo {
    node: u8,
    name: String,
    spanned: u64,
    present: u64,
    managed: u64,
    cma: u64,
    /// 0 when the kernel does not print it (empty zones).
    start_pfn: u64,
    boost: u64,
    min: u64,
    low: u64,
    high: u64,
    promo: u64,
    protection: Vec<u64>,
}

fn num(line: &str, what: &str) -> u64 {
    line.split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("zoneinfo: no number for {what} in {line:?}"))
}

/// A small zoneinfo parser: the zone fields, not the per-node, per-zone or per-CPU stats.
fn parse_zoneinfo(text: &str) -> Vec<ZoneInfo> {
    let mut zones: Vec<ZoneInfo> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Node ") {
            let (node, zone) = rest
                .split_once(", zone")
                .unwrap_or_else(|| panic!("zoneinfo: bad zone header {line:?}"));
            zones.push(ZoneInfo {
                node: node
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("zoneinfo: bad node in {line:?}")),
                name: zone.trim().to_string(),
                ..Default::default()
            });
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let t = line.trim_start();
        let key = t.split_whitespace().next().unwrap_or("");
        match key {
            "pages" if t.starts_with("pages free") => {}
            "boost" => z.boost = num(line, key),
            "min" => z.min = num(line, key),
            "low" => z.low = num(line, key),
            "high" => z.high = num(line, key),
            "promo" => z.promo = num(line, key),
            "spanned" => z.spanned = num(line, key),
            "present" => z.present = num(line, key),
            "managed" => z.managed = num(line, key),
            "cma" => z.cma = num(line, key),
            "start_pfn:" => z.start_pfn = num(line, key),
            "protection:" => {
                let inner = t
                    .strip_prefix("protection: (")
                    .and_then(|s| s.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("zoneinfo: bad protection line {line:?}"));
                z.protection = inner
                    .split(',')
                    .map(|v| {
                        v.trim().parse().unwrap_or_else(|_| {
                            panic!("zoneinfo: bad protection value in {line:?}")
                        })
                    })
                    .collect();
            }
            _ => {}
        }
    }
    zones
}

/// `key=value` from a `sysctl vm` dump (values may have trailing spaces).
fn sysctl<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// The layout the zoneinfo describes: each populated zone with one present range at its
/// start and, at the end of that range, (present − managed) reserved pages.
fn layout_from(zones: &[ZoneInfo]) -> Layout {
    let specs = zones
        .iter()
        .filter(|z| z.present > 0)
        .map(|z| {
            let zone_type =
                ZoneType::from_name(&z.name).unwrap_or_else(|| panic!("unknown zone {}", z.name));
            assert!(
                z.managed <= z.present && z.present <= z.spanned,
                "zone {}: managed/present/spanned out of order",
                z.name
            );
            let end = z.start_pfn + z.present;
            let reserved = z.present - z.managed;
            ZoneSpec {
                node: NodeId(z.node),
                zone_type,
                start_pfn: Pfn(z.start_pfn),
                spanned: z.spanned,
                present: vec![PfnRange::new(z.start_pfn, end)],
                reserved: if reserved > 0 {
                    vec![PfnRange::new(end - reserved, end)]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    Layout::from_zones(specs, Order(DEFAULT_PAGEBLOCK_ORDER)).expect("layout from zoneinfo")
}

/// The tunables a sysctl dump sets, over the defaults.
fn vm_config(min_free_kbytes: Option<u64>, wsf: Option<&str>, ratio: Option<&str>) -> VmConfig {
    let mut cfg = VmConfig {
        user_min_free_kbytes: min_free_kbytes,
        ..Default::default()
    };
    if let Some(w) = wsf {
        cfg.watermark_scale_factor = w.parse().expect("watermark_scale_factor");
    }
    if let Some(r) = ratio {
        let v: Vec<u32> = r
            .split_whitespace()
            .map(|x| x.parse().expect("lowmem_reserve_ratio"))
            .collect();
        assert_eq!(
            v.len(),
            MAX_NR_ZONES,
            "lowmem_reserve_ratio {r:?} has not {MAX_NR_ZONES} entries"
        );
        cfg.lowmem_reserve_ratio.copy_from_slice(&v);
    }
    cfg
}

/// Every mismatch between the kernel's zones and the model's: watermarks (minus the
/// kernel's current boost, as the model boots unboosted), protection, pages.
fn mismatches(kernel: &[ZoneInfo], m: &Machine) -> Vec<String> {
    let mut errs = Vec::new();
    for k in kernel {
        let zt = ZoneType::from_name(&k.name).unwrap_or_else(|| panic!("unknown zone {}", k.name));
        let z = m.zone(m.zone_of(NodeId(k.node), zt));
        let at = format!("node {} zone {}", k.node, k.name);
        if k.boost > 0 {
            eprintln!("note: {at}: the kernel's watermark boost is {}; comparing its marks minus the boost", k.boost);
        }
        let b = k.boost;
        let pairs: [(&str, u64, u64); 9] = [
            ("min", k.min - b, z.wmark_pages(Wmark::Min)),
            ("low", k.low - b, z.wmark_pages(Wmark::Low)),
            ("high", k.high - b, z.wmark_pages(Wmark::High)),
            ("promo", k.promo - b, z.wmark_pages(Wmark::Promo)),
            ("spanned", k.spanned, z.spanned_pages),
            ("present", k.present, z.present_pages),
            ("managed", k.managed, z.managed_pages),
            ("cma", k.cma, z.cma_pages),
            ("boost (model)", 0, z.watermark_boost),
        ];
        for (what, expected, got) in pairs {
            if expected != got {
                errs.push(format!("{at}: {what}: kernel {expected}, model {got}"));
            }
        }
        if k.present > 0 && k.start_pfn != z.zone_start_pfn.0 {
            errs.push(format!(
                "{at}: start_pfn: kernel {}, model {}",
                k.start_pfn, z.zone_start_pfn.0
            ));
        }
        if k.protection != z.lowmem_reserve {
            errs.push(format!(
                "{at}: protection: kernel {:?}, model {:?}",
                k.protection, z.lowmem_reserve
            ));
        }
    }
    let listed = kernel.len();
    if listed != m.zones.len() {
        errs.push(format!(
            "the kernel lists {listed} zones, the model has {}",
            m.zones.len()
        ));
    }
    errs
}

fn assert_matches(what: &str, kernel: &[ZoneInfo], m: &Machine) {
    let errs = mismatches(kernel, m);
    assert!(
        errs.is_empty(),
        "{what}: the model's zones differ from the kernel's (MODEL MISMATCH):\n{}",
        errs.join("\n")
    );
}

fn fixture_zones() -> Vec<ZoneInfo> {
    let zones = parse_zoneinfo(FIXTURE_ZONEINFO);
    let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, ["DMA", "DMA32", "Normal", "Movable", "Device"]);
    zones
}

fn fixture_config(min_free_kbytes: Option<u64>) -> VmConfig {
    vm_config(
        min_free_kbytes,
        sysctl(FIXTURE_SYSCTL_VM, "watermark_scale_factor"),
        sysctl(FIXTURE_SYSCTL_VM, "lowmem_reserve_ratio"),
    )
}

fn fixture_min_free_kbytes() -> u64 {
    sysctl(FIXTURE_SYSCTL_VM, "min_free_kbytes")
        .expect("min_free_kbytes in the fixture")
        .parse()
        .expect("a number")
}

#[test]
fn parser_reads_the_fixture() {
    let zones = fixture_zones();
    let dma = &zones[0];
    assert_eq!(
        (
            dma.node,
            dma.start_pfn,
            dma.spanned,
            dma.present,
            dma.managed
        ),
        (0, 1, 4095, 3998, 3840)
    );
    assert_eq!(
        (dma.boost, dma.min, dma.low, dma.high, dma.promo),
        (0, 17, 21, 25, 29)
    );
    assert_eq!(dma.protection, [0, 3019, 14795, 14795, 14795]);
    let normal = &zones[2];
    assert_eq!(
        (
            normal.start_pfn,
            normal.spanned,
            normal.present,
            normal.managed
        ),
        (1048576, 5505024, 5505024, 3014656)
    );
    let movable = &zones[3];
    assert_eq!(
        (
            movable.start_pfn,
            movable.present,
            movable.min,
            movable.promo
        ),
        (0, 0, 32, 32)
    );
    assert_eq!(fixture_min_free_kbytes(), 67584);
    assert_eq!(
        sysctl(FIXTURE_SYSCTL_VM, "lowmem_reserve_ratio"),
        Some("256 256 32 0 0")
    );
    // The rebuilt layout has the file's page counts.
    let layout = layout_from(&zones);
    for k in zones.iter().filter(|z| z.present > 0) {
        let s = layout
            .zones
            .iter()
            .find(|s| s.zone_type.name() == k.name)
            .unwrap();
        assert_eq!(
            (s.spanned, s.present_pages(), s.managed_pages()),
            (k.spanned, k.present, k.managed),
            "{}",
            k.name
        );
    }
}

/// Booted with the kernel's `min_free_kbytes`, every zone's marks and protection match.
#[test]
fn fixture_a_g8_r1_watermarks_and_protection_match_the_kernel() {
    let zones = fixture_zones();
    let m = Machine::boot(
        &layout_from(&zones),
        fixture_config(Some(fixture_min_free_kbytes())),
    )
    .expect("boot");
    assert_eq!(m.min_free_kbytes, fixture_min_free_kbytes());
    assert_matches("A_g8_r1 with min_free_kbytes from sysctl", &zones, &m);
    // The comparison is not vacuous: another min_free_kbytes moves the marks of the
    // lowmem zones, and another reserve ratio the protection.
    let other = Machine::boot(&layout_from(&zones), fixture_config(Some(80000))).expect("boot");
    let errs = mismatches(&zones, &other);
    assert!(
        errs.iter().any(|e| e.contains("zone DMA32: min:")),
        "{errs:?}"
    );
    let cfg = VmConfig {
        lowmem_reserve_ratio: [128, 256, 32, 0, 0],
        ..fixture_config(Some(fixture_min_free_kbytes()))
    };
    let other = Machine::boot(&layout_from(&zones), cfg).expect("boot");
    let errs = mismatches(&zones, &other);
    assert!(
        errs.len() == 1 && errs[0].contains("zone DMA: protection"),
        "{errs:?}"
    );
}

/// From scratch with THP on, the model arrives at khugepaged's recommended 67584 KiB
/// (16896 pages: 512 × 3 zones × (2 + 3²)), the value the fixture shows, and so at the
/// same marks.
#[test]
fn fixture_a_g8_r1_min_free_kbytes_is_khugepaged_recommended() {
    let zones = fixture_zones();
    let cfg = VmConfig {
        thp_enabled: true,
        ..fixture_config(None)
    };
    let m = Machine::boot(&layout_from(&zones), cfg).expect("boot");
    assert_eq!(
        m.min_free_kbytes, 67584,
        "min_free_kbytes computed from scratch"
    );
    assert_eq!(m.min_free_kbytes, fixture_min_free_kbytes());
    assert_matches("A_g8_r1 with min_free_kbytes computed", &zones, &m);
}

/// This machine's own `/proc/zoneinfo` and `/proc/sys/vm` tunables.
#[test]
fn live_proc_zoneinfo_watermarks_and_protection_match_the_kernel() {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
    let (zoneinfo, mfk) = match (read("/proc/zoneinfo"), read("/proc/sys/vm/min_free_kbytes")) {
        (Ok(z), Ok(m)) if !z.trim().is_empty() => (z, m),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipped: {e}");
            return;
        }
        _ => {
            eprintln!("skipped: /proc/zoneinfo is empty");
            return;
        }
    };
    let min_free_kbytes: u64 = mfk.trim().parse().expect("min_free_kbytes is a number");
    // This VM initialises memory lazily: a zone's managed pages (and with them the
    // watermarks) can change between two reads. Take a reading that two reads in a row agree on.
    let mut zones = parse_zoneinfo(&zoneinfo);
    for _ in 0..20 {
        let again = parse_zoneinfo(&read("/proc/zoneinfo").unwrap_or_default());
        if again == zones {
            break;
        }
        zones = again;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Some(z) = zones
        .iter()
        .find(|z| ZoneType::from_name(&z.name).is_none())
    {
        eprintln!(
            "skipped: /proc/zoneinfo has zone {:?}, which the model does not know",
            z.name
        );
        return;
    }
    let wsf = read("/proc/sys/vm/watermark_scale_factor").ok();
    let ratio = read("/proc/sys/vm/lowmem_reserve_ratio").ok();
    let cfg = vm_config(
        Some(min_free_kbytes),
        wsf.as_deref().map(str::trim),
        ratio.as_deref().map(str::trim),
    );
    let mut m = Machine::boot(&layout_from(&zones), cfg).expect("boot");
    if m.min_free_kbytes != min_free_kbytes {
        // A user value below the computed one: the kernel's sysctl handler takes it as is.
        eprintln!("note: boot gave min_free_kbytes {}, the kernel has {min_free_kbytes}; setting it as the sysctl does", m.min_free_kbytes);
        m.set_min_free_kbytes(min_free_kbytes);
    }
    assert_matches("live /proc/zoneinfo", &zones, &m);
}
