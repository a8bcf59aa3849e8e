"""README's first command, ``python3 -m odp demo``, does what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_without_third_party_packages() -> None:
    # -S: no site-packages, so neither scapy nor pyroute2 can be imported.
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "odp", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 frame(s) came out of host b's veth-b; identical to what was sent: True" in out
    assert "actions:set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64,flags(key))),2" in out
    assert "MISS on port 2: " in out and "tunnel(tun_id=0x7,src=172.16.0.1,dst=172.16.0.2" in out
    assert "dp-b: lookups: hit:2 missed:1 lost:0  flows: 1" in out
