"""Fixtures of the Python package's tests: the repository, the command line built from
it (to check the package returns what the command line prints or writes), the real
snapshots of ../shared/data, and the project's own THP trace."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"


def _cli():
    env = os.environ.get("KCOMPACT_BIN")
    if env:
        return pathlib.Path(env)
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "kcompact"
        if p.exists():
            return p
    return None


@pytest.fixture(scope="session")
def cli():
    """Runs the `kcompact` binary with the given arguments; returns the finished process.
    Skips (with the reason) where the binary is not built; `KCOMPACT_BIN` names it."""
    exe = _cli()
    if exe is None or not exe.exists():
        pytest.skip("no kcompact binary: cargo build -p kcompact-cli, or set KCOMPACT_BIN")

    def run(*args, check=True):
        p = subprocess.run(
            [str(exe), *map(str, args)], capture_output=True, text=True, check=False
        )
        if check:
            assert p.returncode == 0, p.stderr
        return p

    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    """Runs `kcompact ARGS` and parses its stdout as JSON."""
    return lambda *args: json.loads(cli(*args).stdout)


def realkernel(name):
    """A real snapshot's `before/` directory, or a skip with the reason."""
    d = SHARED / "realkernel" / name / "before"
    if not d.is_dir():
        pytest.skip(f"{d} is not here (the shared data lies beside the repository)")
    return d


@pytest.fixture
def trace_thp():
    return ROOT / "crates" / "kcompact-cli" / "tests" / "data" / "trace_thp"
