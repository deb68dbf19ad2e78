//! The modes and reasons of migration (the role of include/linux/migrate_mode.h): types
//! only, so the compaction control and the tracepoints can name them from below.

/// Mirrors `enum migrate_mode`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum MigrateMode {
    /// MIGRATE_ASYNC: never block.
    Async,
    /// MIGRATE_SYNC_LIGHT: may block on locks, not on writeback.
    SyncLight,
    /// MIGRATE_SYNC: may block on locks and wait for writeback.
    Sync,
}

impl MigrateMode {
    /// The name trace output uses.
    pub fn name(self) -> &'static str {
        match self {
            MigrateMode::Async => "MIGRATE_ASYNC",
            MigrateMode::SyncLight => "MIGRATE_SYNC_LIGHT",
            MigrateMode::Sync => "MIGRATE_SYNC",
        }
    }
}

/// Mirrors `enum migrate_reason` (the reasons the model uses).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MigrateReason {
    /// MR_COMPACTION.
    Compaction,
    /// MR_SYSCALL (move_pages, migrate_pages).
    Syscall,
    /// MR_NUMA_MISPLACED: large folios are not split on -ENOMEM.
    NumaMisplaced,
    /// MR_CONTIG_RANGE (alloc_contig_range, CMA).
    ContigRange,
}
