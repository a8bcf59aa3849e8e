"""odp.sim.store: the simulator's state database: incremental, transactional, careful with the path it is given."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import odp.sim.store as store
from odp.cli import main
from odp.datapath import Connection
from odp.errors import OdpError
from odp.sim.datapath import SimBackend
from odp.sim.state import SimState, StateError, new_host, state_to_json
from odp.sim.store import export_store, load_host, load_state, open_state, replace_store

PYTHON = sys.executable
MATCH = "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.{}.{}.{})"


def odp(*args: str) -> tuple[int, str, str]:
    r = subprocess.run([PYTHON, "-m", "odp", *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def host_with_flows(n: int) -> SimState:
    host = new_host()
    conn = Connection(SimBackend(host))
    g = conn.create_datapath("g")
    host.add_interface("v1")
    g.add_vport("v1")
    for i in range(n):
        g.add_flow(MATCH.format(i >> 16, (i >> 8) & 255, i & 255), "1")
    return SimState(host)


def test_a_command_reads_only_the_flows_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    replace_store(path, host_with_flows(300))
    parsed: list[object] = []
    real = store.flow_from_json

    def counting(*args: object) -> object:
        parsed.append(args[0])
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "flow_from_json", counting)
    base = ["--state", str(path)]
    assert main([*base, "flow", "add", "g", MATCH.format(1, 2, 3), "1"]) == 0
    assert main([*base, "flow", "get", "g", MATCH.format(0, 0, 7)]) == 0
    assert main([*base, "flow", "delete", "g", MATCH.format(0, 0, 8)]) == 0
    assert main([*base, "dp", "show"]) == 0
    assert main([*base, "packet", "inject", "g", "v1", "Ether()/IP(dst='10.0.0.9')/UDP()"]) == 0
    assert len(parsed) <= 4, parsed
    host = load_host(path)
    assert len(host.datapaths["g"].table) == 300
    g = Connection(SimBackend(host)).datapath("g")
    stats = {str(f.match): f.stats.packets for f in g.flows()}
    assert stats["in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.9)"] == 1
    assert "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.8)" not in stats


@settings(max_examples=20, deadline=None)
@given(
    rules=st.lists(st.tuples(st.integers(0, 255), st.sampled_from([8, 16, 24, 32])), min_size=1, max_size=8),
    packets=st.lists(st.integers(0, 255), min_size=1, max_size=5),
)
def test_stored_tables_find_what_memory_finds(
    tmp_path_factory: pytest.TempPathFactory, rules: list[tuple[int, int]], packets: list[int]
) -> None:
    """Same flows, same packets: the stored table hits the same flows and counts the same probes."""
    host = new_host()
    g = Connection(SimBackend(host)).create_datapath("g")
    host.add_interface("v1")
    g.add_vport("v1")
    for octet, plen in rules:
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        dst = f"10.0.{octet}.{octet}"
        mask_text = ".".join(str((mask >> s) & 255) for s in (24, 16, 8, 0))
        with contextlib.suppress(OdpError):  # an overlapping flow: refused
            g.add_flow(f"in_port(1),eth(),eth_type(0x0800),ipv4(dst={dst}/{mask_text})", "1")
    path = tmp_path_factory.mktemp("s") / "s.db"
    replace_store(path, SimState(host))
    frames = [f"Ether()/IP(dst='10.0.{p}.{p}')/UDP()" for p in packets]
    from odp.cli.output import parse_packet

    for text in frames:
        host.interface("v1").inject(parse_packet(text))
    for text in frames:
        with open_state(path) as state:
            state.host.interface("v1").inject(parse_packet(text))
    mem = Connection(SimBackend(host)).datapath("g")
    stored = Connection(SimBackend(load_host(path))).datapath("g")
    assert [(str(f.match), f.stats) for f in stored.flows()] == [(str(f.match), f.stats) for f in mem.flows()]
    assert stored.info().stats == mem.info().stats
    # one process per packet starts with an empty exact-match cache: compare probes without cache hits
    assert stored.info().megaflow.masks == mem.info().megaflow.masks


def test_a_failed_command_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_state(path) as state:
        Connection(SimBackend(state.host)).create_datapath("g")
    before = export_store(path)
    with pytest.raises(RuntimeError), open_state(path) as state:
        dp = Connection(SimBackend(state.host)).datapath("g")
        dp.add_flow("eth(),eth_type(0x0806),arp()", "drop")
        raise RuntimeError("the command failed after adding a flow")
    assert export_store(path) == before


def test_export_import_round_trip(tmp_path: Path) -> None:
    state = host_with_flows(5)
    path = tmp_path / "s.db"
    replace_store(path, state)
    doc = export_store(path)
    assert [f["match"] for f in doc["datapaths"][0]["flows"]] == [
        f["match"] for f in state_to_json(state)["datapaths"][0]["flows"]
    ]
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert main(["--state", str(tmp_path / "t.db"), "state", "import", str(tmp_path / "s.json")]) == 0
    assert export_store(tmp_path / "t.db") == doc
    assert len(load_state(tmp_path / "t.db").host.datapaths["g"].table) == 5


def test_a_symlink_is_followed_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(target)
    assert main(["--state", str(link), "dp", "add", "g"]) == 0
    assert main(["--state", str(link), "dp", "add", "h"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert set(load_host(target).datapaths) == {"g", "h"}


def test_devices_and_directories_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = os.stat("/dev/null")
    assert main(["--state", "/dev/null", "dp", "add", "g"]) == 1
    err = capsys.readouterr().err
    assert err == "odp: error: /dev/null: a character device, not a state file (give --state the path of a file)\n"
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert not Path("/dev/null-journal").exists()
    assert main(["--state", str(tmp_path), "dp", "list"]) == 1
    assert (
        capsys.readouterr().err
        == f"odp: error: {tmp_path}: a directory, not a state file (give --state the path of a file)\n"
    )


def test_corrupt_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    assert main(["--state", str(path), "dp", "add", "g"]) == 0
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)
    path.write_bytes(bytes(data))
    assert main(["--state", str(path), "dp", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"odp: error: {path}: ") and err.count("\n") == 1
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    assert main(["--state", str(other), "dp", "list"]) == 1
    assert capsys.readouterr().err == f"odp: error: {other}: an SQLite database, but not an odp state\n"


def test_reading_commands_need_no_write_access() -> None:
    """As a user who may read the state but not write it (nor its directory): reads work, writes fail in one line."""
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not system_python.exists():
        pytest.skip("needs root (to run a command as nobody) and a system python3")
    package = Path(__file__).resolve().parents[2] / "odp"
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        where.chmod(0o755)
        # A copy of the package nobody can read (the work tree may be under a private directory).
        code = where / "code"
        shutil.copytree(package, code / "odp", ignore=shutil.ignore_patterns("__pycache__"))
        for d in [code, *code.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
        state_dir = where / "state"
        state_dir.mkdir()
        state_dir.chmod(0o755)
        path = state_dir / "s.db"
        replace_store(path, host_with_flows(3))
        path.chmod(0o644)

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(system_python), "-m", "odp", "--state", str(path), *args],
                capture_output=True,
                text=True,
                timeout=120,
                user="nobody",
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": str(code)},
            )

        r = as_nobody("flow", "list", "g")
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 3, r.stderr
        assert as_nobody("dp", "show").returncode == 0
        r = as_nobody("dp", "add", "h")
        assert r.returncode == 1 and r.stderr.startswith(f"odp: error: {path}: read-only"), r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert sorted(p.name for p in state_dir.iterdir()) == ["s.db"]


def test_killed_writers_lose_no_committed_update(tmp_path: Path) -> None:
    """Writers run concurrently and some are killed (SIGKILL) mid-way: every one that reported success is kept."""
    path = tmp_path / "s.db"
    assert odp("--state", str(path), "dp", "add", "g")[0] == 0
    assert odp("--state", str(path), "vport", "add", "netdev", "g", "v1")[0] == 0
    rng = random.Random(7)
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "odp", "--state", str(path), "flow", "add", "g", MATCH.format(1, 1, i), "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    time.sleep(rng.uniform(0.2, 0.6))
    for p in rng.sample(procs, 2):
        p.send_signal(signal.SIGKILL)
    added = []
    for i, p in enumerate(procs):
        _, err = p.communicate(timeout=120)
        if p.returncode == 0:
            added.append(MATCH.format(1, 1, i))
        else:
            assert p.returncode == -signal.SIGKILL, err
    flows = {str(f.match) for f in Connection(SimBackend(load_host(path))).datapath("g").flows()}
    assert set(added) <= flows
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_a_dangling_symlink_gets_its_target_created(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling.db"
    dangling.symlink_to(tmp_path / "x.db")
    assert main(["--state", str(dangling), "dp", "list"]) == 0  # reading: an empty host, nothing created
    assert not (tmp_path / "x.db").exists()
    assert main(["--state", str(dangling), "dp", "add", "g"]) == 0
    assert dangling.is_symlink() and "g" in load_host(tmp_path / "x.db").datapaths
    (tmp_path / "x.db").write_bytes(b"")
    with pytest.raises(StateError, match=r"dangling\.db: an empty file"), open_state(dangling, write=False):
        pass
