//! One test per migration rule of `mm/migrate.c`, with the full-state checker (owners,
//! references, contents) after every step.

mod common;

use common::*;
use kcompact::event::VmEvent;
use kcompact::memmap::PageFlags;
use kcompact::migrate::{
    AllocTarget, Injection, MigrateError, MigrateMode, MigrateReason, MigrationTarget,
};
use kcompact::owners::table::FolioId;
use kcompact::units::{Order, Pfn};
use kcompact::{Machine, VmConfig};

fn machine() -> Machine {
    let mut m = small_machine(
        0,
        32,
        VmConfig {
            watermark_boost_factor: 0,
            ..VmConfig::default()
        },
    );
    m.enable_contents(true);
    m
}

fn isolate(m: &mut Machine, id: FolioId) {
    assert!(m.folio_isolate_lru(id));
    check(m);
}

fn migrate(m: &mut Machine, id: FolioId, mode: MigrateMode) -> kcompact::migrate::MigrateResult {
    isolate(m, id);
    let r = m.migrate_pages(vec![id], &mut AllocTarget, mode, MigrateReason::Compaction);
    let ret = r.ret.clone();
    m.putback_movable_pages(ret);
    check(m);
    r
}

#[test]
fn an_anonymous_folio_migrates_and_its_owner_follows() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x100, Order(0)).expect("fault");
    let before = m.owners.folio(id).pfn;
    let r = migrate(&mut m, id, MigrateMode::Async);
    assert_eq!(r.rc, Ok(0));
    assert_eq!(r.stats.nr_succeeded, 1);
    let after = m.owners.folio(id).pfn;
    assert_ne!(before, after);
    assert_eq!(m.lookup(p, 0x100), Some((0x100, id)));
    assert_eq!(m.mem.refcount(after), 1);
    assert_eq!(m.mem.mapcount(after), 1);
    assert!(m
        .mem
        .flags(after)
        .contains(PageFlags::LRU | PageFlags::ANON));
    assert_eq!(m.mem.refcount(before), 0, "the source page was freed");
    assert_eq!(
        (
            m.vmstat[VmEvent::PgmigrateSuccess],
            m.vmstat[VmEvent::PgmigrateFail]
        ),
        (1, 0)
    );
}

#[test]
fn an_anonymous_folio_with_an_extra_reference_fails_and_is_put_back() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x100, Order(0)).expect("fault");
    let tok = m.get_speculative(id);
    let pfn = m.owners.folio(id).pfn;
    let r = migrate(&mut m, id, MigrateMode::Async);
    assert_eq!(r.rc, Ok(1));
    assert_eq!(r.stats.nr_failed_pages, 1);
    assert_eq!(m.owners.folio(id).pfn, pfn, "not moved");
    assert!(m.mem.flags(pfn).contains(PageFlags::LRU), "back on the LRU");
    m.put_speculative(id, tok);
    check(&m);
    assert_eq!(
        migrate(&mut m, id, MigrateMode::Async).rc,
        Ok(0),
        "migrates once the reference is gone"
    );
}

#[test]
fn a_long_term_pinned_folio_never_migrates() {
    let mut m = machine();
    let p = m.new_process();
    for order in [0u8, 4] {
        let vpn = 0x1000 * (order as u64 + 1);
        let id = m.fault_anon(p, vpn, Order(order)).expect("fault");
        m.pin_folio(id, true);
        assert!(m.mem.maybe_dma_pinned(m.owners.folio(id).pfn));
        let pfn = m.owners.folio(id).pfn;
        for mode in [
            MigrateMode::Async,
            MigrateMode::SyncLight,
            MigrateMode::Sync,
        ] {
            let r = migrate(&mut m, id, mode);
            assert_eq!(r.rc, Ok(1), "order {order} {mode:?}");
            assert_eq!(m.owners.folio(id).pfn, pfn);
        }
    }
    assert_eq!(m.vmstat[VmEvent::PgmigrateSuccess], 0);
    assert_eq!(m.vmstat[VmEvent::PgmigrateFail], 3 * (1 + 16));
}

#[test]
fn eagain_is_retried_up_to_the_pass_limit_then_counted_failed() {
    // A reference taken before every move attempt: ASYNC tries 10 passes, SYNC 3 + 7.
    for (mode, passes) in [
        (MigrateMode::Async, 10),
        (MigrateMode::Sync, 10),
        (MigrateMode::SyncLight, 10),
    ] {
        let mut m = machine();
        let f = m.new_file(false, true, false);
        let id = m.file_add(f, 0, Order(0), false).expect("page cache");
        isolate(&mut m, id);
        let mut attempts = 0;
        let r = m.migrate_pages_inject(
            vec![id],
            &mut AllocTarget,
            mode,
            MigrateReason::Compaction,
            &mut |_| {
                attempts += 1;
                Injection::SpeculativeRef
            },
        );
        assert_eq!(attempts, passes, "{mode:?}");
        assert_eq!(r.rc, Ok(1));
        assert_eq!(r.stats.nr_failed_pages, 1);
        m.putback_movable_pages(r.ret);
        check(&m);
        // Every injected reference is still held, and accounted for.
        assert_eq!(m.owners.speculative.len(), passes);
    }
}

#[test]
fn writeback_blocks_async_and_sync_light_but_sync_waits() {
    for (mode, migrates) in [
        (MigrateMode::Async, false),
        (MigrateMode::SyncLight, false),
        (MigrateMode::Sync, true),
    ] {
        let mut m = machine();
        let f = m.new_file(false, true, true);
        let id = m.file_add(f, 0, Order(0), true).expect("page cache");
        assert!(m.folio_start_writeback(id));
        let r = migrate(&mut m, id, mode);
        assert_eq!(r.rc == Ok(0), migrates, "{mode:?}");
        if !migrates {
            assert!(m
                .mem
                .flags(m.owners.folio(id).pfn)
                .contains(PageFlags::WRITEBACK));
        }
    }
}

#[test]
fn a_dirty_folio_without_migrate_folio_is_never_migrated() {
    for mode in [
        MigrateMode::Async,
        MigrateMode::SyncLight,
        MigrateMode::Sync,
    ] {
        let mut m = machine();
        let f = m.new_file(false, false, false);
        let dirty = m.file_add(f, 0, Order(0), true).expect("dirty");
        let clean = m.file_add(f, 1, Order(0), false).expect("clean");
        assert_eq!(migrate(&mut m, dirty, mode).rc, Ok(1), "{mode:?}");
        assert_eq!(migrate(&mut m, clean, mode).rc, Ok(0), "{mode:?}");
    }
}

#[test]
fn a_locked_folio_fails_async_only() {
    let mut m = machine();
    let f = m.new_file(true, true, false);
    let id = m.file_add(f, 0, Order(0), false).expect("shmem");
    let pfn = m.owners.folio(id).pfn;
    m.mem.set_flag(pfn, PageFlags::LOCKED);
    assert_eq!(migrate(&mut m, id, MigrateMode::Async).rc, Ok(1));
    // Direct compaction (PF_MEMALLOC) does not sleep on the lock either.
    m.pf_memalloc = true;
    assert_eq!(migrate(&mut m, id, MigrateMode::SyncLight).rc, Ok(1));
    m.pf_memalloc = false;
    assert_eq!(migrate(&mut m, id, MigrateMode::SyncLight).rc, Ok(0));
}

#[test]
fn fork_copies_a_maybe_pinned_anonymous_folio_instead_of_sharing_it() {
    let mut m = machine();
    let p = m.new_process();
    let pinned = m.fault_anon(p, 0x10, Order(0)).expect("fault");
    let plain = m.fault_anon(p, 0x20, Order(0)).expect("fault");
    m.pin_folio(pinned, true);
    let c = m.fork(p).expect("fork");
    check(&m);
    assert_eq!(
        m.lookup(c, 0x20).map(|(_, i)| i),
        Some(plain),
        "shared copy-on-write"
    );
    let (_, copy) = m.lookup(c, 0x10).expect("mapped");
    assert_ne!(
        copy, pinned,
        "the child has its own copy of the pinned folio"
    );
    assert_eq!(m.mem.mapcount(m.owners.folio(pinned).pfn), 1);
    assert_eq!(m.owners.folio(copy).stamp, m.owners.folio(pinned).stamp);
}

#[test]
fn a_mapped_shared_file_folio_migrates_and_every_mapper_follows() {
    let mut m = machine();
    let f = m.new_file(false, true, true);
    let id = m.file_add(f, 8, Order(2), false).expect("folio");
    let (a, b) = (m.new_process(), m.new_process());
    m.file_mmap(a, 0x40, f, 8).expect("map a");
    m.file_mmap(b, 0x80, f, 9).expect("map b");
    check(&m);
    assert_eq!(m.mem.mapcount(m.owners.folio(id).pfn), 8);
    assert_eq!(migrate(&mut m, id, MigrateMode::Async).rc, Ok(0));
    let pfn = m.owners.folio(id).pfn;
    assert_eq!(m.mem.mapcount(pfn), 8);
    assert_eq!(m.mem.refcount(pfn), 8 + 4 + 1, "mappings + cache + buffers");
    assert_eq!(m.lookup(b, 0x81), Some((0x80, id)));
}

#[test]
fn an_owner_freeing_the_folio_while_isolated_counts_as_success() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x200, Order(0)).expect("fault");
    isolate(&mut m, id);
    m.munmap(p, 0x200, 1);
    check(&m);
    let pfn = m.owners.folio(id).pfn;
    let r = m.migrate_pages(
        vec![id],
        &mut AllocTarget,
        MigrateMode::Async,
        MigrateReason::Compaction,
    );
    assert_eq!((r.rc, r.stats.nr_succeeded), (Ok(0), 1));
    assert!(m.owners.get(id).is_none(), "freed");
    assert_eq!(m.mem.refcount(pfn), 0);
    check(&m);
}

#[test]
fn a_large_folio_migrates_whole() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x400, Order(9)).expect("thp");
    let r = migrate(&mut m, id, MigrateMode::Sync);
    assert_eq!(r.rc, Ok(0));
    assert_eq!((r.stats.nr_succeeded, r.stats.nr_thp_succeeded), (512, 1));
    assert_eq!(m.owners.folio(id).order, Order(9));
    assert_eq!(m.vmstat[VmEvent::ThpMigrationSuccess], 1);
}

/// A target with no large free blocks, as compaction's free lists often are.
struct SmallOnly;

impl MigrationTarget for SmallOnly {
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn> {
        if order.0 > 0 {
            return None;
        }
        AllocTarget.get_new_folio(m, src, order)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        AllocTarget.put_new_folio(m, dst, order);
    }
}

#[test]
fn a_large_folio_is_split_on_enomem_and_its_pieces_migrate() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x400, Order(9)).expect("thp");
    let child = m.fork(p).expect("fork");
    isolate(&mut m, id);
    let r = m.migrate_pages(
        vec![id],
        &mut SmallOnly,
        MigrateMode::Async,
        MigrateReason::Compaction,
    );
    // The split counts as one failure, but every piece migrated and nothing is left to put
    // back, so migrate_pages() returns 0.
    assert_eq!(r.rc, Ok(0));
    assert_eq!(
        (r.stats.nr_thp_split, r.stats.nr_split, r.stats.nr_succeeded),
        (1, 1, 512)
    );
    assert!(r.ret.is_empty());
    assert_eq!(
        (
            m.vmstat[VmEvent::ThpMigrationSplit],
            m.vmstat[VmEvent::ThpMigrationFail]
        ),
        (1, 1)
    );
    check(&m);
    for (pid, vpn) in [(p, 0x400), (child, 0x5ff)] {
        let (base, piece) = m.lookup(pid, vpn).expect("still mapped");
        assert_eq!(base, vpn);
        assert_eq!(m.owners.folio(piece).order, Order(0));
        assert_eq!(
            m.mem.mapcount(m.owners.folio(piece).pfn),
            2,
            "both processes map every piece"
        );
    }
    // NUMA-misplaced migration never splits.
    let id = m.fault_anon(p, 0x800, Order(9)).expect("thp");
    isolate(&mut m, id);
    let r = m.migrate_pages(
        vec![id],
        &mut SmallOnly,
        MigrateMode::Async,
        MigrateReason::NumaMisplaced,
    );
    assert_eq!(r.rc, Err(MigrateError::NoMemory));
    m.putback_movable_pages(r.ret);
    check(&m);
    assert_eq!(m.owners.folio(id).order, Order(9));
}

/// Issue 7 (A_g4_r1): splitting a page cache folio first releases its buffers
/// (`filemap_release_folio()`), which `try_to_free_buffers()` refuses while a buffer is
/// dirty; so a dirty ext4 large folio with no destination of its order is not split, the
/// batch ends with -ENOMEM and compaction ends COMPACT_CONTENDED. A clean one splits.
#[test]
fn issue7_a_dirty_page_cache_folio_with_buffers_is_not_split_on_enomem() {
    for dirty in [true, false] {
        let mut m = machine();
        let f = m.new_file(false, true, true);
        let id = m.file_add(f, 0, Order(3), dirty).expect("folio");
        let pfn = m.owners.folio(id).pfn;
        assert!(m.mem.flags(pfn).contains(PageFlags::PRIVATE));
        isolate(&mut m, id);
        let r = m.migrate_pages(
            vec![id],
            &mut SmallOnly,
            MigrateMode::Sync,
            MigrateReason::Compaction,
        );
        if dirty {
            assert_eq!(r.rc, Err(MigrateError::NoMemory), "no order-3 destination");
            assert_eq!((r.stats.nr_split, r.stats.nr_succeeded), (0, 0));
            m.putback_movable_pages(r.ret);
            check(&m);
            assert_eq!(m.owners.folio(id).order, Order(3), "still one folio");
            assert_eq!(m.owners.folio(id).pfn, pfn, "not moved");
            assert!(m
                .mem
                .flags(pfn)
                .contains(PageFlags::PRIVATE | PageFlags::DIRTY));
        } else {
            assert_eq!(r.rc, Ok(0));
            assert_eq!((r.stats.nr_split, r.stats.nr_succeeded), (1, 8));
            m.putback_movable_pages(r.ret);
            check(&m);
            let (_, piece) = m.file_lookup(f, 5).expect("cached");
            assert_eq!(m.owners.folio(piece).order, Order(0));
        }
    }
    // The rule itself: buffers go unless dirty or under writeback.
    let mut m = machine();
    let f = m.new_file(false, true, true);
    let id = m.file_add(f, 0, Order(0), true).expect("folio");
    let pfn = m.owners.folio(id).pfn;
    assert!(!m.filemap_release_folio(pfn), "dirty buffers");
    assert!(m.folio_start_writeback(id));
    assert!(!m.filemap_release_folio(pfn), "under writeback");
    m.folio_end_writeback(id);
    let rc = m.mem.refcount(pfn);
    assert!(m.filemap_release_folio(pfn));
    assert!(!m.mem.flags(pfn).contains(PageFlags::PRIVATE));
    assert_eq!(m.mem.refcount(pfn), rc - 1, "the buffers' reference");
    check(&m);
}

#[test]
fn a_pinned_large_folio_cannot_be_split() {
    let mut m = machine();
    let p = m.new_process();
    let id = m.fault_anon(p, 0x400, Order(4)).expect("mthp");
    let pin = m.pin_folio(id, false);
    isolate(&mut m, id);
    let mut pieces = Vec::new();
    assert!(!m.split_folio(id, &mut pieces));
    m.folio_putback_lru(id);
    m.unpin_folio(pin);
    check(&m);
}

#[test]
fn slab_page_tables_and_kernel_memory_are_not_on_the_lru() {
    let mut m = machine();
    let c = m.kmem_cache_create(192, true);
    let slab = m.kmem_cache_alloc(c).expect("object");
    let again = m.kmem_cache_alloc(c).expect("object");
    assert_eq!(slab, again, "objects pack into one slab");
    assert!(!m.folio_isolate_lru(slab));
    let k = m.alloc_kernel(Order(2), 7).expect("stack");
    assert!(!m.folio_isolate_lru(k));
    check(&m);
    m.kmem_cache_free(c, slab);
    assert!(
        m.owners.get(slab).is_some(),
        "one object left keeps the slab"
    );
    m.kmem_cache_free(c, slab);
    assert!(m.owners.get(slab).is_none());
    m.free_kernel(k);
    check(&m);
}

#[test]
fn contents_survive_migration_in_bytes_mode_and_corruption_is_caught() {
    let mut m = machine();
    let p = m.new_process();
    let ids: Vec<FolioId> = (0..8)
        .map(|i| m.fault_anon(p, 0x10 * i, Order(0)).expect("fault"))
        .collect();
    for id in &ids {
        isolate(&mut m, *id);
    }
    let r = m.migrate_pages(
        ids.clone(),
        &mut AllocTarget,
        MigrateMode::Sync,
        MigrateReason::Compaction,
    );
    assert_eq!(r.rc, Ok(0));
    check(&m);
    // Overwrite one page's contents behind its owner's back: the checker must notice.
    let victim = m.owners.folio(ids[3]).pfn;
    let other = m.owners.folio(ids[4]).pfn;
    m.contents.copy(other, victim, 1);
    assert!(kcompact::verify::verify(&m)
        .unwrap_err()
        .contains("contents lost or corrupted"));
}

mod movable_ops {
    use super::*;
    use kcompact::owners::table::{DriverKind, DriverMigrate};

    fn migrate_driver_page(m: &mut Machine, id: FolioId) -> kcompact::migrate::MigrateResult {
        let r = m.migrate_pages(
            vec![id],
            &mut AllocTarget,
            MigrateMode::Async,
            MigrateReason::Compaction,
        );
        let ret = r.ret.clone();
        m.putback_movable_pages(ret);
        check(m);
        r
    }

    #[test]
    fn isolate_migrate_done_for_zsmalloc_and_balloon() {
        let mut m = machine();
        let zs = m.driver_new(DriverKind::Zsmalloc, true);
        let balloon = m.driver_new(DriverKind::Balloon, true);
        let z = m.zs_malloc(zs, 3000).expect("object");
        let zpage = m.owners.drivers[zs as usize].zspages[&z].pages[1];
        let bpage = m.balloon_inflate(balloon).expect("inflate");
        check(&m);
        for id in [zpage, bpage] {
            let before = m.owners.folio(id).pfn;
            assert!(m.mem.flags(before).contains(PageFlags::MOVABLE_OPS));
            assert!(m.isolate_movable_ops_page(id));
            assert!(!m.isolate_movable_ops_page(id), "already isolated");
            check(&m);
            let r = migrate_driver_page(&mut m, id);
            assert_eq!((r.rc, r.stats.nr_succeeded), (Ok(0), 1));
            let after = m.owners.folio(id).pfn;
            assert_ne!(before, after);
            assert!(!m.mem.flags(after).contains(PageFlags::ISOLATED));
            assert_eq!(m.mem.refcount(after), 1, "the driver's reference");
        }
        // The zspage still holds its object, across three pages, one of them moved.
        assert_eq!(m.owners.drivers[zs as usize].zspages[&z].used, 1);
    }

    #[test]
    fn isolate_migrate_fail_putback() {
        let mut m = machine();
        let gpu = m.driver_new(DriverKind::Gpu, true);
        let buf = m.gpu_alloc(gpu, Order(2)).expect("buffer");
        let pfn = m.owners.folio(buf).pfn;
        m.owners.drivers[gpu as usize].faults.migrate = Some(DriverMigrate::Fail);
        assert!(m.isolate_movable_ops_page(buf));
        let r = migrate_driver_page(&mut m, buf);
        assert_eq!((r.rc, r.stats.nr_failed_pages), (Ok(1), 4));
        assert_eq!(m.owners.folio(buf).pfn, pfn, "put back where it was");
        assert!(m.owners.drivers[gpu as usize].isolated.is_empty());
        // -EAGAIN is retried for every pass and then counted failed.
        m.owners.drivers[gpu as usize].faults.migrate = Some(DriverMigrate::Again);
        assert!(m.isolate_movable_ops_page(buf));
        let r = migrate_driver_page(&mut m, buf);
        assert_eq!(r.rc, Ok(1));
        m.owners.drivers[gpu as usize].faults.migrate = None;
        assert!(m.isolate_movable_ops_page(buf));
        assert_eq!(migrate_driver_page(&mut m, buf).rc, Ok(0));
    }

    #[test]
    fn the_driver_may_refuse_isolation() {
        let mut m = machine();
        let gpu = m.driver_new(DriverKind::Gpu, true);
        let buf = m.gpu_alloc(gpu, Order(0)).expect("buffer");
        m.gpu_set_busy(gpu, buf, true);
        assert!(!m.isolate_movable_ops_page(buf), "busy buffers stay");
        m.gpu_set_busy(gpu, buf, false);
        m.owners.drivers[gpu as usize].faults.refuse_isolate = true;
        assert!(!m.isolate_movable_ops_page(buf));
        m.owners.drivers[gpu as usize].faults.refuse_isolate = false;
        assert!(m.isolate_movable_ops_page(buf));
        m.putback_movable_pages(vec![buf]);
        check(&m);
    }

    #[test]
    fn a_page_released_while_isolated_counts_as_migrated_and_is_freed() {
        let mut m = machine();
        let zs = m.driver_new(DriverKind::Zsmalloc, true);
        let z = m.zs_malloc(zs, 100).expect("object");
        let page = m.owners.drivers[zs as usize].zspages[&z].pages[0];
        let pfn = m.owners.folio(page).pfn;
        assert!(m.isolate_movable_ops_page(page));
        m.zs_free(zs, z);
        check(&m);
        assert!(
            m.owners.get(page).is_some(),
            "the isolation reference keeps it"
        );
        let free_before = free_all(&m);
        let r = m.migrate_pages(
            vec![page],
            &mut AllocTarget,
            MigrateMode::Async,
            MigrateReason::Compaction,
        );
        assert_eq!((r.rc, r.stats.nr_succeeded), (Ok(0), 1));
        assert!(m.owners.get(page).is_none());
        assert_eq!(m.mem.refcount(pfn), 0);
        assert_eq!(
            free_all(&m),
            free_before + 1,
            "source freed, destination given back"
        );
        check(&m);
    }

    #[test]
    fn without_non_lru_movable_driver_pages_are_unmovable() {
        let mut m = machine();
        let zs = m.driver_new(DriverKind::Zsmalloc, false);
        let z = m.zs_malloc(zs, 100).expect("object");
        let page = m.owners.drivers[zs as usize].zspages[&z].pages[0];
        let pfn = m.owners.folio(page).pfn;
        assert!(!m.mem.flags(pfn).contains(PageFlags::MOVABLE_OPS));
        assert_eq!(m.migratetype(pfn), kcompact::memmap::MigrateType::Unmovable);
        assert!(!m.isolate_movable_ops_page(page));
        assert!(!m.folio_isolate_lru(page));
        check(&m);
    }
}

#[test]
fn compaction_free_keeps_a_destination_someone_else_referenced() {
    let mut m = machine();
    let mut pool = FreePagesTarget::default();
    assert_eq!(pool.fill(&mut m, Order(3), 1), 1);
    check(&m);
    // compaction_alloc() splits the order-3 block for an order-0 source.
    let src = m.owners.iter().count();
    assert_eq!(src, 0);
    let dst = pool
        .get_new_folio(&mut m, Pfn(0), Order(0))
        .expect("a page");
    assert_eq!(
        (
            pool.lists[0].len(),
            pool.lists[1].len(),
            pool.lists[2].len()
        ),
        (1, 1, 1)
    );
    // Handed back untouched: it returns to the pool.
    pool.put_new_folio(&mut m, dst, Order(0));
    assert_eq!(pool.lists[0].len(), 2);
    // Handed back while a scanner holds a reference: not re-listed; it reaches the buddy
    // allocator when the scanner lets go.
    let dst = pool
        .get_new_folio(&mut m, Pfn(0), Order(0))
        .expect("a page");
    assert!(m.get_page_unless_zero(dst));
    pool.put_new_folio(&mut m, dst, Order(0));
    assert_eq!(pool.lost, vec![(dst, Order(0))]);
    assert_eq!(m.mem.refcount(dst), 1);
    let free = free_all(&m);
    m.put_page(dst, Order(0));
    assert_eq!(free_all(&m), free + 1);
    pool.release(&mut m);
    check(&m);
    assert_eq!(free_all(&m), m.managed_pages());
}
