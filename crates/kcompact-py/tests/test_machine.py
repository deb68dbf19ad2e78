"""kcompact.Machine: a live model in a notebook session."""

import re

import pytest

import kcompact


def free_blocks(buddyinfo, order):
    """Free blocks of `order` over every zone of /proc/buddyinfo's text."""
    return sum(int(line.split()[4 + order]) for line in buddyinfo.splitlines())


def test_a_booted_machine_shows_the_kernel_views():
    m = kcompact.Machine(mem="256M")
    b = m.buddyinfo()
    assert re.match(r"Node 0, zone +DMA ", b)
    assert "DMA32" in b
    assert "Free pages count per migrate type at order" in m.pagetypeinfo()
    assert "pages free" in m.zoneinfo()
    v = m.vmstat()
    assert v["compact_stall"] == 0 and v["pgalloc"] >= 0
    zones = m.zones()
    assert [z["name"] for z in zones] == ["DMA", "DMA32"]
    mm = m.memory_map()
    # A cell per pageblock: 256 MiB is 128 blocks of 2 MiB; all free after boot.
    assert mm["group"] == 1
    assert len(mm["mt"]) == 128
    free = sum(c << o for z in zones for o, c in enumerate(z["free_by_order"]))
    assert sum(mm["free"]) == free
    m.verify()


def test_alloc_and_free_move_the_free_lists():
    m = kcompact.Machine(mem="256M")
    before = free_blocks(m.buddyinfo(), 10)
    h = m.alloc_pages(10)
    assert isinstance(h, int)
    assert free_blocks(m.buddyinfo(), 10) == before - 1
    m.free_pages(h)
    assert free_blocks(m.buddyinfo(), 10) == before
    with pytest.raises(ValueError, match="no such allocation"):
        m.free_pages(h)
    m.verify()


def test_allocations_fail_with_none_when_memory_runs_out():
    m = kcompact.Machine(mem="64M")
    got = []
    while (h := m.alloc_pages(10, gfp="GFP_KERNEL|__GFP_NORETRY")) is not None:
        got.append(h)
        assert len(got) < 64
    assert 0 < len(got) < 32
    for h in got:
        m.free_pages(h)
    m.verify()


def fragment(m, n=6000):
    """Fills memory with movable pages and frees every other one: many free pages,
    few free huge pages; the handles kept."""
    hs = [m.alloc_pages(0, gfp="GFP_HIGHUSER_MOVABLE") for _ in range(n)]
    assert None not in hs
    for h in hs[::2]:
        m.free_pages(h)
    return hs[1::2]


def test_compaction_moves_movable_pages_and_handles_stay_valid():
    m = kcompact.Machine(mem="64M")
    kept = fragment(m)
    before = free_blocks(m.buddyinfo(), 9) + 2 * free_blocks(m.buddyinfo(), 10)
    ends = m.compact_memory()
    assert {e["zone"] for e in ends} == {"DMA", "DMA32"}
    assert all("status" in e for e in ends)
    after = free_blocks(m.buddyinfo(), 9) + 2 * free_blocks(m.buddyinfo(), 10)
    assert after > before
    assert m.vmstat()["pgmigrate_success"] > 0
    for h in kept:
        m.free_pages(h)
    m.verify()


def test_the_same_session_gives_the_same_state():
    def session():
        m = kcompact.Machine(mem="64M", settings={"watermark_scale_factor": 100}, seed=7)
        fragment(m, 3000)
        m.compact_memory()
        m.drop_caches()
        m.settle()
        return m.buddyinfo(), m.vmstat(), m.memory_map(cells=256)

    assert session() == session()


def test_settings_and_sysctl_reach_the_model():
    m = kcompact.Machine(mem="64M", settings={"compaction": False})
    fragment(m, 3000)
    m.compact_memory()
    assert m.vmstat()["compact_migrate_scanned"] == 0
    m.sysctl("compaction_proactiveness", 0)
    with pytest.raises(ValueError, match="boot-time"):
        m.sysctl("nodes", 2)


def test_drop_caches_takes_a_level():
    m = kcompact.Machine(mem="64M")
    assert m.drop_caches() >= 0
    with pytest.raises(ValueError, match="1, 2 or 3"):
        m.drop_caches(4)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: kcompact.Machine(mem="1Q"), "--mem"),
        (lambda: kcompact.Machine(mem="64M", settings={"bogus": 1}), "--set bogus"),
        (lambda: kcompact.Machine(mem="64M").alloc_pages(11), "at most 10"),
        (lambda: kcompact.Machine(mem="64M").alloc_pages(0, gfp="GFP_BOGUS"), "unknown flags"),
        (lambda: kcompact.Machine(mem="64M").memory_map(cells=0), "at least 1"),
    ],
)
def test_bad_input_is_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_types_are_type_errors_not_crashes():
    m = kcompact.Machine(mem="64M")
    with pytest.raises(TypeError):
        m.alloc_pages("nine")
    with pytest.raises(OverflowError):
        m.alloc_pages(-1)
    with pytest.raises(OverflowError):
        m.free_pages(-1)
    assert "Machine(mem=\"64M\"" in repr(m)
