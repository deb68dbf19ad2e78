//! Invariant 7: the LRU lists and their counts, swap space and zram.

use crate::machine::Machine;
use crate::memmap::PageFlags;

/// Invariant 7: LRU counts and lists, swap entries.
pub(super) fn check_reclaim(m: &Machine, errs: &mut Vec<String>) {
    use crate::mmzone::{lru_list_of, LruList, NR_LRU_LISTS};
    let mut counts = vec![[0u64; NR_LRU_LISTS]; m.zones.len()];
    let mut folios = vec![[0u64; NR_LRU_LISTS]; m.nr_nodes()];
    for (_, rec) in m.owners.iter() {
        if let Some(l) = lru_list_of(m.mem.flags(rec.pfn)) {
            let Some(zi) = m.page_zone(rec.pfn) else {
                errs.push(format!("LRU folio at {:?} outside every zone", rec.pfn));
                continue;
            };
            counts[zi.idx()][l.idx()] += rec.order.nr_pages();
            folios[m.zone(zi).node.0 as usize][l.idx()] += 1;
        }
    }
    for (i, z) in m.zones.iter().enumerate() {
        if z.nr_lru != counts[i] {
            errs.push(format!(
                "zone {} of node {}: LRU counts {:?} but {:?} pages are on the lists",
                z.name(),
                z.node.0,
                z.nr_lru,
                counts[i]
            ));
        }
    }
    for (node, want) in folios.iter().enumerate() {
        let nid = crate::units::NodeId(node as u8);
        for l in LruList::ALL {
            let entries: Vec<_> = m.lru_entries(nid, l).collect();
            if entries.len() as u64 != m.node_data(nid).lruvec.lists[l.idx()].len {
                errs.push(format!(
                    "node {node} {l:?}: {} entries linked but the list counts {}",
                    entries.len(),
                    m.node_data(nid).lruvec.lists[l.idx()].len
                ));
            }
            for id in entries.iter().flatten() {
                let code = (node * NR_LRU_LISTS + l.idx()) as u8;
                if m.owners.lru_on(*id) != Some(code) {
                    errs.push(format!(
                        "node {node} {l:?}: {id:?} is linked but says it is not"
                    ));
                }
            }
            let live = entries
                .iter()
                .flatten()
                .filter(|id| m.lru_entry_live(l, **id))
                .count() as u64;
            if live != want[l.idx()] {
                errs.push(format!(
                    "node {node} {l:?}: {live} live entries for {} folios",
                    want[l.idx()]
                ));
            }
        }
    }
    let used: u64 = m.reclaim.swap.values().map(|e| e.order.nr_pages()).sum();
    if used != m.reclaim.swap_used {
        errs.push(format!(
            "swap slots in use {} but entries hold {used}",
            m.reclaim.swap_used
        ));
    }
    if let Some(drv) = m.reclaim.zram {
        let objs: u64 = m.reclaim.zram_objs.values().map(|v| v.len() as u64).sum();
        let stored: u64 = m.owners.drivers[drv as usize]
            .zspages
            .values()
            .map(|z| u64::from(z.used))
            .sum();
        if objs != stored {
            errs.push(format!(
                "zram: swap entries hold {objs} objects but the pool stores {stored}"
            ));
        }
        for (key, v) in &m.reclaim.zram_objs {
            let pages = m.reclaim.swap.get(key).map(|e| e.order.nr_pages());
            if pages != Some(v.len() as u64) {
                errs.push(format!(
                    "zram: objects of {key:?} ({}) do not match its swap entry ({pages:?} pages)",
                    v.len()
                ));
            }
        }
    } else if !m.reclaim.zram_objs.is_empty() {
        errs.push("zram objects without a zram device".into());
    }
    for ((pid, vpn), e) in &m.reclaim.swap {
        if let Some(id) = e.cached {
            let ok = m.owners.get(id).is_some_and(|r| {
                r.kind == crate::owners::table::FolioKind::Anon
                    && r.owner == *pid
                    && r.index == *vpn
                    && m.mem.flags(r.pfn).contains(PageFlags::SWAPCACHE)
            });
            if !ok {
                errs.push(format!(
                    "swap entry ({pid}, {vpn:#x}) names {id:?}, which is not its cached folio"
                ));
            }
        }
        if m.owners.processes[*pid as usize].table.load(*vpn).is_some() {
            errs.push(format!("({pid}, {vpn:#x}) is both mapped and swapped out"));
        }
    }
}
