//! The state of a node and of the daemons and lists the machine keeps beside its zones: the
//! role of include/linux/mmzone.h (with the few state types of other headers that
//! [`Machine`](crate::machine::Machine) holds).
//!
//! Types only, and the small methods that read them: the rules that change this state live
//! in the behaviour files above (`reclaim/`, `compaction/`, `hugepage.rs`, `clock/`).
//!
//! - [`PgData`] mirrors `struct pglist_data` (`pg_data_t`): one node's LRU lists, its
//!   kswapd and its kcompactd. Zones are in [`crate::zone`].
//! - [`Lruvec`], [`LruList`]: the LRU lists of a node (`struct lruvec`, `enum lru_list`).
//! - [`Kswapd`], [`Balance`]: kswapd's request and the `balance_pgdat()` in progress.
//! - [`Kcompactd`]: kcompactd's request and its sleep.
//! - [`CaptureControl`]: the current task's `struct capture_control`.
//! - [`HugetlbPool`]: the 2 MiB pool (`struct hstate`).
//! - [`ReclaimState`], [`SwapEntry`]: the machine's swap space.
//! - [`PerCpuPages`]: one CPU's free-page lists of one zone (`struct per_cpu_pages`).
//!
//! Architecture Invariant: this file imports nothing that holds behaviour, so every
//! behaviour file can use it without an import circle.

use crate::layout::ZoneType;
use crate::memmap::list::PageList;
use crate::memmap::{MigrateType, PageFlags};
use crate::owners::table::FolioId;
use crate::units::{Order, Pfn, ZoneIdx};
use std::collections::BTreeMap;

/// Mirrors `struct pglist_data`: the state of one node beyond its zones.
#[derive(Clone, Debug, Default)]
pub struct PgData {
    /// `__lruvec`: the node's LRU lists (no memory cgroups).
    pub lruvec: Lruvec,
    /// kswapd's request and run (`kswapd_order`, `kswapd_highest_zoneidx`,
    /// `kswapd_failures`, the thread).
    pub kswapd: Kswapd,
    /// kcompactd's request and sleep (`kcompactd_max_order`, ...).
    pub kcompactd: Kcompactd,
    /// kcompactd was woken (`wakeup_kcompactd()`) and has not run yet.
    pub kcompactd_pending: bool,
}

/// Mirrors `enum lru_list`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum LruList {
    /// LRU_INACTIVE_ANON.
    InactiveAnon = 0,
    /// LRU_ACTIVE_ANON.
    ActiveAnon = 1,
    /// LRU_INACTIVE_FILE.
    InactiveFile = 2,
    /// LRU_ACTIVE_FILE.
    ActiveFile = 3,
    /// LRU_UNEVICTABLE.
    Unevictable = 4,
}

/// `NR_LRU_LISTS`.
pub const NR_LRU_LISTS: usize = 5;

impl LruList {
    /// Every list, in the kernel's order.
    pub const ALL: [LruList; NR_LRU_LISTS] = [
        LruList::InactiveAnon,
        LruList::ActiveAnon,
        LruList::InactiveFile,
        LruList::ActiveFile,
        LruList::Unevictable,
    ];

    /// The array index.
    #[inline]
    pub fn idx(self) -> usize {
        self as usize
    }

    /// `is_file_lru()`.
    pub fn is_file(self) -> bool {
        matches!(self, LruList::InactiveFile | LruList::ActiveFile)
    }

    /// `is_active_lru()`.
    pub fn is_active(self) -> bool {
        matches!(self, LruList::ActiveAnon | LruList::ActiveFile)
    }

    /// The `nr_zone_*` name zoneinfo prints.
    pub fn zoneinfo_name(self) -> &'static str {
        match self {
            LruList::InactiveAnon => "nr_zone_inactive_anon",
            LruList::ActiveAnon => "nr_zone_active_anon",
            LruList::InactiveFile => "nr_zone_inactive_file",
            LruList::ActiveFile => "nr_zone_active_file",
            LruList::Unevictable => "nr_zone_unevictable",
        }
    }
}

/// Mirrors `folio_lru_list()`: the list a folio with these head flags is on, if any.
#[inline]
pub fn lru_list_of(f: PageFlags) -> Option<LruList> {
    if !f.contains(PageFlags::LRU) {
        return None;
    }
    if f.contains(PageFlags::UNEVICTABLE) {
        return Some(LruList::Unevictable);
    }
    let file = !f.contains(PageFlags::SWAPBACKED);
    let active = f.contains(PageFlags::ACTIVE);
    Some(match (file, active) {
        (false, false) => LruList::InactiveAnon,
        (false, true) => LruList::ActiveAnon,
        (true, false) => LruList::InactiveFile,
        (true, true) => LruList::ActiveFile,
    })
}

/// One LRU list: its entries are linked through the folio table (`reclaim/lru.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LruHead {
    /// The entry at the head (most recently added), 0 when empty.
    pub head: u32,
    /// The entry at the tail (reclaim takes from here), 0 when empty.
    pub tail: u32,
    /// Entries linked (ghost entries and folios that belong on another list included).
    pub len: u64,
}

/// Mirrors `struct lruvec`: one node's lists.
#[derive(Clone, Debug, Default)]
pub struct Lruvec {
    /// `lists[lru]`.
    pub lists: [LruHead; NR_LRU_LISTS],
    /// While a snapshot loads: the links (previous, next) of the ghost entries folios left
    /// in these lists, by ghost number.
    pub ghosts: Vec<(u32, u32)>,
}

/// One node's kswapd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kswapd {
    /// `pgdat->kswapd_order`: the order requested since it last slept.
    pub order: u8,
    /// `pgdat->kswapd_highest_zoneidx` (`None`: MAX_NR_ZONES, nothing requested).
    pub highest: Option<ZoneType>,
    /// `pgdat->kswapd_failures`: runs that reclaimed nothing.
    pub failures: u32,
    /// Awake (not on `kswapd_wait`).
    pub awake: bool,
    /// The `balance_pgdat()` in progress.
    pub run: Option<Balance>,
    /// The short nap of `kswapd_try_to_sleep()` in progress (on `kswapd_wait` until the
    /// timer fires or a wake-up comes).
    pub nap: Option<KswapdNap>,
    /// The `highest_zoneidx` of kswapd's last run (`kswapd()`'s local, the default when no
    /// wake-up names a zone).
    pub prev_highest: Option<ZoneType>,
}

/// kswapd's `schedule_timeout(HZ/10)` in `kswapd_try_to_sleep()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KswapdNap {
    /// When the timer fires, ns.
    pub until_ns: u64,
    /// The order the run ended reclaiming at (`reclaim_order`).
    pub reclaim_order: u8,
    /// The zone bound it sleeps for.
    pub highest: ZoneType,
}

/// `HZ/10`: kswapd's nap before it sleeps fully, in ns.
pub const KSWAPD_NAP_NS: u64 = 100_000_000;

/// The state of one `balance_pgdat()` between its passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    /// The order it was started for (`alloc_order`).
    pub alloc_order: u8,
    /// `sc.order`: drops to 0 once `compact_gap(order)` pages are reclaimed.
    pub order: u8,
    /// `highest_zoneidx`.
    pub highest: ZoneType,
    /// `sc.priority`.
    pub priority: i32,
    /// Boost pages still to reclaim (`nr_boost_reclaim`).
    pub nr_boost_reclaim: u64,
    /// The node's zones were boosted when it started.
    pub boosted: bool,
    /// `sc.nr_reclaimed` over the whole run.
    pub nr_reclaimed: u64,
}

/// `HPAGE_FRAG_CHECK_INTERVAL_MSEC`.
pub const HPAGE_FRAG_CHECK_INTERVAL_MSEC: u64 = 500;

/// One node's kcompactd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kcompactd {
    /// `pgdat->kcompactd_max_order`: work requested (0: none).
    pub max_order: i32,
    /// `pgdat->kcompactd_highest_zoneidx`.
    pub highest_zoneidx: ZoneType,
    /// `pgdat->proactive_compact_trigger`.
    pub proactive_trigger: bool,
    /// When the thread's current sleep times out (simulated ms).
    pub wake_at_ms: u64,
    /// The current timeout (500 ms, or 32 s after a fruitless proactive run).
    pub timeout_ms: u64,
}

impl Default for Kcompactd {
    fn default() -> Self {
        Kcompactd {
            max_order: 0,
            highest_zoneidx: ZoneType::Device,
            proactive_trigger: false,
            wake_at_ms: HPAGE_FRAG_CHECK_INTERVAL_MSEC,
            timeout_ms: HPAGE_FRAG_CHECK_INTERVAL_MSEC,
        }
    }
}

/// Mirrors `struct capture_control`: what a direct compactor waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureControl {
    /// The zone being compacted now (`None` between zones).
    pub zone: Option<ZoneIdx>,
    /// The requested migratetype.
    pub migratetype: MigrateType,
    /// The requested order.
    pub order: Order,
    /// The captured block.
    pub page: Option<Pfn>,
}

/// The hugetlb pool of 2 MiB pages.
#[derive(Clone, Debug, Default)]
pub struct HugetlbPool {
    /// The pool's pages (all free to user space: the model does not map them).
    pub pages: Vec<FolioId>,
    /// `node_alloc_noretry`: nodes where a hard try failed since the last success.
    pub noretry: Vec<bool>,
    /// `next_nid_to_alloc`.
    pub next_nid: u8,
}

/// Reclaim's machine-wide state: swap space and whether LRU lists keep ghost entries (the
/// lists and kswapd are each node's, in [`PgData`]).
#[derive(Clone, Debug, Default)]
pub struct ReclaimState {
    /// A folio leaving an LRU list leaves a ghost entry (while a snapshot loads).
    pub lru_ghosts: bool,
    /// Swap slots in use (pages).
    pub swap_used: u64,
    /// Swap entries: (process, first virtual page) → what was swapped out.
    pub swap: BTreeMap<(u32, u64), SwapEntry>,
    /// The zsmalloc pool (a driver) of the zram swap device, when swap is zram.
    pub zram: Option<u32>,
    /// zram: the zspage of each page's compressed object, per swap entry written.
    pub zram_objs: BTreeMap<(u32, u64), Vec<u32>>,
}

/// What a swap entry in a process's page table stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapEntry {
    /// The folio's order.
    pub order: Order,
    /// Its content stamp.
    pub stamp: u32,
    /// The offset of its first page in the stamp's sequence.
    pub stamp_offset: u32,
    /// The folio while it is still in the swap cache.
    pub cached: Option<FolioId>,
}

/// `NR_PCP_LISTS`: a list per PCP migratetype for orders 0..=PAGE_ALLOC_COSTLY_ORDER, and
/// two for the THP order (unmovable and reclaimable share one).
pub const NR_PCP_LISTS: usize = 14;
/// `CONFIG_PCP_BATCH_SCALE_MAX` (Kconfig default): order-0 refills grow to `batch << 5`.
pub const PCP_BATCH_SCALE_MAX: u32 = 5;
/// `PCPF_PREV_FREE_HIGH_ORDER`: the last free to this pcp was of orders 1..=3.
pub const PCPF_PREV_FREE_HIGH_ORDER: u8 = 1 << 0;
/// `PCPF_FREE_HIGH_BATCH`: the CPU's cache slice holds more than three batches, so a
/// burst of high-order frees may keep a batch on the list.
pub const PCPF_FREE_HIGH_BATCH: u8 = 1 << 1;

/// Mirrors `struct per_cpu_pages`: one CPU's cache of free pages of one zone. Pages on its
/// lists are not `PageBuddy`, not counted in NR_FREE_PAGES, buddyinfo or the watermarks,
/// and invisible to compaction's free scanner until a drain gives them back.
#[derive(Clone, Debug)]
pub struct PerCpuPages {
    /// `count`: pages on all lists (a block of order `o` counts `2^o`).
    pub count: u64,
    /// `high`: the current limit, tuned between `high_min` and `high_max`; 0 until the
    /// pcp is first used.
    pub high: u64,
    /// `high_min` (from the low watermark).
    pub high_min: u64,
    /// `high_max` (from the zone's managed pages).
    pub high_max: u64,
    /// `batch`: the refill and drain chunk.
    pub batch: u64,
    /// `flags`: [`PCPF_PREV_FREE_HIGH_ORDER`], [`PCPF_FREE_HIGH_BATCH`].
    pub flags: u8,
    /// `alloc_factor`: order-0 refills take `batch << alloc_factor` (0..=5).
    pub alloc_factor: u8,
    /// `free_count`: pages freed since the last allocations halved it.
    pub free_count: u64,
    /// `lists[NR_PCP_LISTS]`, by `order_to_pindex()`: blocks linked through the memory
    /// map, newest at the head.
    pub lists: [PageList; NR_PCP_LISTS],
}

impl Default for PerCpuPages {
    /// Mirrors `per_cpu_pages_init()`: everything zero, `batch` 1 (`BOOT_PAGESET_BATCH`).
    fn default() -> Self {
        PerCpuPages {
            count: 0,
            high: 0,
            high_min: 0,
            high_max: 0,
            batch: 1,
            flags: 0,
            alloc_factor: 0,
            free_count: 0,
            lists: [PageList::default(); NR_PCP_LISTS],
        }
    }
}
