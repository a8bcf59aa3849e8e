"""The command line on a large simulator state: every command's wall time, and concurrent writers killed at random.

Run on demand: ``python benchmarks/bench_state.py [--flows 100000] [--writers 20]``.

1. Builds a state with ``--flows`` flows (through the library, validated, in
   one transaction), then times each command as a user runs it: a new
   ``python -m odp`` process (start-up included), best of ``--rounds``.
   ``flow list`` is timed to its first line and to its end.
2. Starts ``--writers`` processes that each add one flow, kills some with
   SIGKILL at random moments, and checks that every writer that exited 0
   has its flow in the state (a lost update is one that did not), and that
   SQLite's integrity check passes.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odp.datapath import Connection
from odp.sim.datapath import SimBackend
from odp.sim.state import SimState, new_host
from odp.sim.store import load_host, replace_store

MATCH = "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.{}.{}.{})"
PACKET = "Ether()/IP(dst='10.0.0.9')/UDP()"


def build(path: Path, flows: int) -> float:
    start = time.perf_counter()
    host = new_host()
    conn = Connection(SimBackend(host))
    g = conn.create_datapath("g")
    host.add_interface("v1")
    host.add_interface("v2")
    g.add_vport("v1")
    g.add_vport("v2")
    for i in range(flows):
        g.add_flow(MATCH.format(i >> 16, (i >> 8) & 255, i & 255), "2")
    replace_store(path, SimState(host))
    return time.perf_counter() - start


#: The commands run as installed code does: from bytecode (this machine sets
#: PYTHONDONTWRITEBYTECODE, which would make every command compile the package
#: anew), cached outside the work tree.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "odp-bench-pycache")


def run(path: Path, *args: str, first_line: bool = False) -> tuple[float, float | None]:
    """Wall seconds of one command to its end (and to its first output line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "odp", "--state", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    first = None
    if first_line:
        proc.stdout.readline()
        first = time.perf_counter() - start
    _, err = proc.communicate()
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"odp {' '.join(args)} failed: {err.decode()}")
    return total, first


def commands(n: int) -> list[tuple[str, list[str]]]:
    i = n + 1
    new = MATCH.format(200, (i >> 8) & 255, i & 255)
    return [
        ("--help", ["--help"]),
        ("datapath list", ["datapath", "list"]),
        ("datapath show", ["datapath", "show"]),
        ("vport list", ["vport", "list"]),
        ("flow add", ["flow", "add", "g", new, "1"]),
        ("flow get", ["flow", "get", "g", new]),
        ("flow mod", ["flow", "mod", "g", new, "2"]),
        ("flow delete", ["flow", "delete", "g", new]),
        ("packet inject (hit)", ["packet", "inject", "g", "v1", PACKET]),
        ("packet inject (miss)", ["packet", "inject", "g", "v1", "Ether()/IPv6()/UDP()"]),
        ("packet execute", ["packet", "execute", "g", PACKET, "1"]),
        ("datapath listen", ["datapath", "listen", "g"]),
        ("meter set", ["meter", "set", "g", "1", "--rate=1000", "--burst=10"]),
        ("vport add", ["vport", "add", "netdev", "g", "v9"]),
        ("vport delete", ["vport", "delete", "g", "v9"]),
    ]


def bench_commands(path: Path, flows: int, rounds: int) -> None:
    """Each round runs the commands in order (flow add, then get, mod, delete of that flow ...)."""
    run(path, "packet", "execute", "g", PACKET, "1")  # fills the bytecode cache
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, args in commands(flows):
            took = run(path, *args)[0]
            best[name] = min(took, best.get(name, took))
    print(f"{'command':<24} {'best of ' + str(rounds):>10}")
    for name, took in best.items():
        print(f"{name:<24} {took:>9.3f}s")
    firsts, totals = [], []
    for _ in range(rounds):
        total, first = run(path, "flow", "list", "g", first_line=True)
        assert first is not None
        firsts.append(first)
        totals.append(total)
    print(f"{'flow list: first line':<24} {min(firsts):>9.3f}s")
    print(f"{'flow list: all':<24} {min(totals):>9.3f}s ({flows} lines)")


def stress(path: Path, writers: int, seed: int) -> int:
    """Concurrent writers, some killed: the number of lost updates (0 expected)."""
    rng = random.Random(seed)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "odp", "--state", str(path), "flow", "add", "g", MATCH.format(250, 0, i), "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        for i in range(writers)
    ]
    victims = rng.sample(range(writers), writers // 3)
    for i in victims:
        time.sleep(rng.uniform(0.0, 0.3))
        procs[i].send_signal(signal.SIGKILL)
    ok: list[int] = []
    for i, p in enumerate(procs):
        _, err = p.communicate(timeout=600)
        if p.returncode == 0:
            ok.append(i)
        elif p.returncode != -signal.SIGKILL:
            raise SystemExit(f"writer {i} failed: {err.decode()}")
    matches = {str(f.match) for f in Connection(SimBackend(load_host(path))).datapath("g").flows()}
    lost = [i for i in ok if MATCH.format(250, 0, i) not in matches]
    db = sqlite3.connect(path)
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    killed = writers - len(ok)
    print(f"{writers} writers, {killed} killed, {len(ok)} succeeded, lost updates: {len(lost)}, integrity: {integrity}")
    return len(lost) + (integrity != "ok")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stress-only", action="store_true", help="skip the per-command timings")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        took = build(path, a.flows)
        print(f"state with {a.flows} flows built in {took:.1f}s ({os.path.getsize(path) / 1e6:.1f} MB)")
        if not a.stress_only:
            bench_commands(path, a.flows, a.rounds)
        return 1 if stress(path, a.writers, a.seed) else 0


if __name__ == "__main__":
    sys.exit(main())
