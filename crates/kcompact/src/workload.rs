//! Building blocks of workloads: the page-cache fragmentation of seed 003's experiments
//! and of the real-kernel cases (`scripts/fragment.sh` in ../shared/data).
//!
//! [`fragment_with_files`] writes files page by page with several files open at once, so
//! consecutive pfns belong to different files, then deletes every second file: free
//! memory is plentiful but in order-0 holes between clean page-cache pages, which
//! reclaim can free and compaction can move. Optionally a slab object is allocated every
//! so many pages (the unmovable pipe pages and dentries of the real `A_g4mix` case).

use crate::machine::Machine;
use crate::owners::table::MapError;
use crate::units::Order;

/// What [`fragment_with_files`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHoles {
    /// Pages to write in all.
    pub pages: u64,
    /// Files open (written round-robin, a page at a time) at once.
    pub open_files: u64,
    /// Pages per file.
    pub file_pages: u64,
    /// A slab object of an unmovable cache every this many pages (0: none).
    pub slab_every: u64,
    /// Pages left dirty (not yet written back), out of every 100.
    pub dirty_pct: u64,
}

impl Default for FileHoles {
    fn default() -> Self {
        FileHoles {
            pages: 0,
            open_files: 16,
            file_pages: 128,
            slab_every: 0,
            dirty_pct: 0,
        }
    }
}

/// What [`fragment_with_files`] left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileHolesResult {
    /// Pages written before the target or the first failed write.
    pub written: u64,
    /// Files kept (the odd ones were deleted).
    pub files_kept: Vec<u32>,
    /// Pages freed by the deletes.
    pub deleted: u64,
}

/// Writes `cfg.pages` pages of page cache interleaved over `cfg.open_files` files, then
/// deletes every second file; see the module documentation.
pub fn fragment_with_files(m: &mut Machine, cfg: &FileHoles) -> FileHolesResult {
    fragment_with_files_rng(m, cfg, None)
}

/// [`fragment_with_files`] where, with `rng`, the writers' order changes every round, as
/// parallel writers race.
pub fn fragment_with_files_rng(
    m: &mut Machine,
    cfg: &FileHoles,
    mut rng: Option<&mut crate::rng::SimRng>,
) -> FileHolesResult {
    assert!(
        cfg.open_files > 0 && cfg.file_pages > 0,
        "empty file pattern"
    );
    let cache = (cfg.slab_every > 0).then(|| m.kmem_cache_create(4096, false));
    let mut res = FileHolesResult::default();
    let mut files: Vec<u32> = Vec::new();
    let mut batch: Vec<u32> = Vec::new();
    let mut index = 0u64;
    'write: while res.written < cfg.pages {
        if batch.is_empty() || index == cfg.file_pages {
            batch = (0..cfg.open_files)
                .map(|_| m.new_file(false, true, true))
                .collect();
            files.extend(&batch);
            index = 0;
        }
        let mut order = batch.clone();
        if let Some(r) = rng.as_deref_mut() {
            r.shuffle(&mut order);
        }
        for &f in &order {
            if res.written >= cfg.pages {
                break 'write;
            }
            let dirty = res.written % 100 < cfg.dirty_pct;
            match m.file_add(f, index, Order(0), dirty) {
                Ok(_) => res.written += 1,
                Err(MapError::NoMemory) | Err(MapError::Invalid) => break 'write,
            }
            if let Some(c) = cache {
                if res.written.is_multiple_of(cfg.slab_every) && m.kmem_cache_alloc(c).is_none() {
                    break 'write;
                }
            }
        }
        index += 1;
    }
    let before = m.nr_free_pages();
    for (i, f) in files.iter().enumerate() {
        if i % 2 == 1 {
            m.delete_file(*f);
        } else {
            res.files_kept.push(*f);
        }
    }
    res.deleted = m.nr_free_pages() - before;
    res
}
