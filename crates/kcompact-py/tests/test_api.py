"""The package's functions against the command line: the same result.json and `--json`
contents, the same error messages (bad input as ValueError), and the GIL released."""

import json
import threading

import pytest

import kcompact
from conftest import realkernel


def test_run_returns_the_cli_result_json(cli, tmp_path):
    r = kcompact.run("file-holes", mem="64M", seed=2, settings={"compaction": False})
    cli("run", "file-holes", "--mem", "64M", "--seed", "2", "--set", "compaction=off",
        "--out", tmp_path)
    want = json.loads((tmp_path / "result.json").read_text())
    assert r == want
    assert r["scenario"] == "file-holes" and r["seed"] == 2
    assert r["config"]["mem_bytes"] == 64 << 20
    assert r["vmstat"]["compact_stall"] == 0  # compaction off
    assert 0 <= r["metrics"]["success_pct"] <= 100


def test_run_is_deterministic_and_the_seed_matters():
    a = kcompact.run("highalloc", mem="64M", seed=1, settings={"warmup_ops": 2000})
    b = kcompact.run("highalloc", mem="64M", seed=1, settings={"warmup_ops": 2000})
    c = kcompact.run("highalloc", mem="64M", seed=2, settings={"warmup_ops": 2000})
    assert a == b
    assert a["vmstat"] != c["vmstat"]


def test_churn_runs_in_its_own_config():
    r = kcompact.run("churn", mem="64M", settings={"steps": 2000})
    assert r["scenario"] == "churn"
    assert r["config"]["steps"] == 2000


@pytest.mark.parametrize(
    "call,args",
    [
        (lambda: kcompact.run("nope"), ["run", "nope"]),
        (lambda: kcompact.run("highalloc", mem="1Q"), ["run", "--mem", "1Q"]),
        (lambda: kcompact.run("highalloc", settings={"bogus": 1}),
         ["run", "--set", "bogus=1"]),
        (lambda: kcompact.run("highalloc", settings={"compaction": "maybe"}),
         ["run", "--set", "compaction=maybe"]),
        (lambda: kcompact.ab("highalloc", "compaction"),
         ["ab", "highalloc", "--toggle", "compaction"]),
    ],
)
def test_bad_input_is_value_error_with_the_cli_message(cli, call, args):
    with pytest.raises(ValueError) as e:
        call()
    p = cli(*args, check=False)
    assert p.returncode == 2
    assert p.stderr.strip() == f"kcompact: {e.value}"


def test_ab_returns_the_cli_json(cli_json):
    r = kcompact.ab("file-holes", "compaction=on,off", seeds=2, mem="128M")
    want = cli_json("ab", "file-holes", "--toggle", "compaction=on,off", "--seeds", "2",
                    "--mem", "128M", "--json")
    assert r == want
    m = {x["name"]: x for x in r["metrics"]}
    assert m["success_pct"]["a"]["mean"] > m["success_pct"]["b"]["mean"]


def test_predict_and_analyze_return_the_cli_json(cli_json):
    snap = realkernel("A2_g4_r1")
    p = kcompact.predict(snap, "compact", settings={"compaction_proactiveness": 0})
    assert p == cli_json("predict", snap, "--action", "compact", "--set",
                         "compaction_proactiveness=0", "--json")
    assert p["after"]["hugepages"] > p["before"]["hugepages"]
    a = kcompact.analyze(str(snap))
    assert a == cli_json("analyze", snap, "--json")
    assert a["hugepages_after_compaction"] >= a["hugepages_now"]


def test_advise_returns_the_cli_json(cli_json):
    snap = realkernel("A2_g4_r1")
    a = kcompact.advise(snap, order=9)
    assert a == cli_json("advise", snap, "--order", "9", "--json")
    names = [o["option"] for o in a["options"]]
    assert "compact_memory" in names and "drop_caches=3" in names
    gots = [o["got"] for o in a["options"]]
    assert gots == sorted(gots, reverse=True)


def test_snapshot_errors_are_value_errors(cli, tmp_path):
    with pytest.raises(ValueError) as e:
        kcompact.analyze(tmp_path)
    assert cli("analyze", tmp_path, check=False).stderr.strip() == f"kcompact: {e.value}"
    snap = realkernel("A2_g4_r1")
    with pytest.raises(ValueError, match="--set nodes: a boot-time choice"):
        kcompact.predict(snap, "compact", settings={"nodes": 2})
    with pytest.raises(ValueError, match="--action"):
        kcompact.predict(snap, "defragment")


def test_replay_returns_the_cli_json(cli_json, trace_thp):
    trace, start = trace_thp / "trace.txt.zst", trace_thp / "start"
    r = kcompact.replay(trace, snapshot=start, settings={"compaction_proactiveness": 90})
    want = cli_json("replay", trace, "--snapshot", start, "--set",
                    "compaction_proactiveness=90", "--json")
    assert r == want
    assert r["events"] > 0


def test_replay_of_a_missing_trace_is_a_value_error(tmp_path):
    with pytest.raises((ValueError, RuntimeError)) as e:
        kcompact.replay(tmp_path / "none.txt")
    assert "none.txt" in str(e.value)


def test_scenarios_and_settings_help_list_what_run_takes():
    names = [s["name"] for s in kcompact.scenarios()]
    assert "highalloc" in names and "churn" in names
    assert "compaction_proactiveness" in kcompact.settings_help()


def test_long_runs_release_the_gil():
    # While a run is in Rust on another thread, this thread keeps running Python: with the
    # GIL held for the whole run it could not take a turn until the run returned.
    started, done = threading.Event(), threading.Event()
    out = {}

    def work():
        started.set()
        out["r"] = kcompact.run("highalloc", mem="1G")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    turns = 0
    while not done.wait(0.002):
        turns += 1
    t.join()
    assert out["r"]["metrics"]["success_pct"] > 0
    assert turns >= 10, f"{turns} turns during the run"
