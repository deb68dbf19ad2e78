//! The kernel's own views of memory, printed from the model byte for byte in the kernel's
//! formats, so they diff against a real machine's files.
//!
//! - [`buddyinfo`]: `/proc/buddyinfo` (`frag_show_print()`).
//! - [`pagetypeinfo`]: `/proc/pagetypeinfo` (`pagetypeinfo_showfree_print()`,
//!   `pagetypeinfo_showblockcount_print()`).
//! - [`zoneinfo`]: `/proc/zoneinfo` (`zoneinfo_show_print()`, Linux 6.18 layout).
//! - [`extfrag`]: debugfs `extfrag/unusable_index` and `extfrag/extfrag_index`, and the
//!   fragmentation formulas behind them (`fill_contig_page_info()`).

pub mod extfrag;
pub mod map;
pub mod mapdata;
pub mod procfs;

/// Cells the terminal map holds at most before pageblocks are grouped.
pub const TERMINAL_MAP_CELLS: usize = 8192;

pub use extfrag::{
    extfrag_index, fragmentation_index, unusable_free_index, unusable_index, ContigPageInfo,
};
pub use procfs::{buddyinfo, pagetypeinfo, zoneinfo};

/// A view `kcompact show` can print.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum View {
    /// /proc/buddyinfo.
    Buddyinfo,
    /// /proc/pagetypeinfo.
    Pagetypeinfo,
    /// /proc/zoneinfo.
    Zoneinfo,
    /// extfrag/unusable_index followed by extfrag/extfrag_index.
    Extfrag,
    /// The pageblock map ([`mapdata::pageblock_map`]), not a kernel file.
    Map,
}

impl View {
    /// Every view with its name.
    pub const ALL: [(View, &'static str); 5] = [
        (View::Buddyinfo, "buddyinfo"),
        (View::Pagetypeinfo, "pagetypeinfo"),
        (View::Zoneinfo, "zoneinfo"),
        (View::Extfrag, "extfrag"),
        (View::Map, "map"),
    ];

    /// The view named `name`.
    pub fn from_name(name: &str) -> Option<View> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    /// The view's text for `m`.
    pub fn render(self, m: &crate::Machine) -> String {
        match self {
            View::Buddyinfo => buddyinfo(m),
            View::Pagetypeinfo => pagetypeinfo(m),
            View::Zoneinfo => zoneinfo(m),
            View::Extfrag => format!(
                "unusable_index:\n{}extfrag_index:\n{}",
                unusable_index(m),
                extfrag_index(m)
            ),
            View::Map => mapdata::pageblock_map(&mapdata::memory_map(m, TERMINAL_MAP_CELLS)),
        }
    }
}
