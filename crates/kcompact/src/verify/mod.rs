//! The full-state checker: every free list recounted, every page in exactly one state.
//!
//! [`verify`] walks the whole machine and returns every violated invariant it finds. Tests
//! run it after every operation; it is too slow for production paths (O(pages)).
//!
//! Invariants checked, each by its own function:
//! 1. Every free list entry is a `BUDDY` head of that list's order, aligned, inside its zone,
//!    in pageblocks whose type is the list's type; no page is on two lists
//!    ([`buddy::check_free_lists`]).
//! 2. `nr_free` per order equals the list lengths; NR_FREE_PAGES, NR_FREE_CMA_PAGES,
//!    NR_FREE_PAGES_BLOCKS and `nr_free_highatomic` equal their recounts (same function).
//! 3. Every present page is in exactly one state: reserved, inside a free block, or
//!    allocated (a head with a reference, a tail of a head, or a page of a non-compound
//!    high-order block); free + allocated = managed per zone ([`buddy::check_page_states`]).
//! 4. No two free buddies are left unmerged below pageblock order (at and above it, types
//!    may legitimately keep them apart) ([`buddy::check_free_lists`]).
//! 5. Watermarks are ordered min ≤ low ≤ high ≤ promo; the highatomic reserve equals the
//!    pages of HIGHATOMIC pageblocks (isolated ones included: isolation keeps the type
//!    underneath) ([`buddy::check_zones`]).
//! 6. Owners and pages agree: every folio record's head carries its id, flags and order;
//!    refcount = mappings + page-cache references + private + a kernel owner's reference +
//!    isolation + pins + speculative references; mapcount = the reverse map's mappings;
//!    the reverse map, page tables, page caches and slab lists name each other; every LRU
//!    folio is on exactly one LRU list (or isolated); tracked contents are intact
//!    ([`owners::check_owners`]).
//! 7. Reclaim: each zone's LRU page counts equal the recount of its LRU folios by list,
//!    and each list holds exactly one live entry per folio on it; swap slots in use equal
//!    the pages of the swap entries, and an entry's cached folio is the process's
//!    anonymous folio in the swap cache ([`reclaim::check_reclaim`]).
//! 8. Every per-CPU list entry is a block of the list's order in its zone, on that one list
//!    and in no free block; each pcp's `count` equals its lists' pages; `high` stays within
//!    its bounds once used ([`buddy::check_pcp_lists`]).

mod buddy;
mod owners;
mod reclaim;

use crate::machine::Machine;

/// What the checker counted, for tests that want the figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Free pages (isolated included), on the buddy lists and the per-CPU lists.
    pub free_pages: u64,
    /// Of these, pages on the per-CPU lists.
    pub pcp_pages: u64,
    /// Allocated pages.
    pub allocated_pages: u64,
    /// Reserved pages.
    pub reserved_pages: u64,
}

/// Checks every invariant of the module documentation; `Err` lists the violations (at most
/// 20, then a count).
pub fn verify(m: &Machine) -> Result<VerifyCounts, String> {
    let mut errs: Vec<String> = Vec::new();
    let mut free_page = buddy::check_free_lists(m, &mut errs);
    let pcp_pages = buddy::check_pcp_lists(m, &mut free_page, &mut errs);
    let mut counts = buddy::check_page_states(m, &free_page, &mut errs);
    counts.pcp_pages = pcp_pages;
    buddy::check_zones(m, &mut errs);
    owners::check_owners(m, &mut errs);
    reclaim::check_reclaim(m, &mut errs);
    if errs.is_empty() {
        Ok(counts)
    } else {
        let n = errs.len();
        errs.truncate(20);
        if n > 20 {
            errs.push(format!("... and {} more", n - 20));
        }
        Err(errs.join("\n"))
    }
}
