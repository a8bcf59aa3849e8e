"""The ``odp`` command line on the simulator (in-process, plus a few runs of ``python -m odp``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import odp.backends as odp_backends
from odp.cli import main, parse_packet, ufid_from_text, ufid_to_uuid, write_pcap_header, write_pcap_record
from odp.datapath import Connection
from odp.errors import ModuleNotLoaded, PermissionDenied
from odp.kernels import TESTED, Kernel
from odp.sim.store import load_host, load_state

PYTHON = sys.executable
P1 = 'Ether(src="02:00:00:00:00:01",dst="02:00:00:00:00:02")/IP(src="10.0.0.1",dst="10.0.0.2")/UDP(sport=1234,dport=80)'


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> Any:
        doc = json.loads(self.out)
        assert doc["version"] == 1 and set(doc) == {"version", "data"}
        return doc["data"]


Run = Callable[..., Result]


@pytest.fixture
def state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state.json"
    monkeypatch.setenv("ODP_SIM_STATE", str(path))
    monkeypatch.delenv("ODP_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def odp(state_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> Result:
        status = main(list(args))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


def ok(odp: Run, *args: str) -> Result:
    r = odp(*args)
    assert r.status == 0, (args, r.err)
    assert r.err == ""
    return r


def fails(odp: Run, *args: str, status: int = 1) -> str:
    """The one error line of a failing command."""
    r = odp(*args)
    assert r.status == status, (args, r.out, r.err)
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("odp: error: ")
    assert "Traceback" not in r.err
    return lines[0]


@pytest.fixture
def topo(odp: Run) -> Run:
    """g: v1 (1), vx (2, vxlan 4789), v3 (3); h: vx2 (1, vxlan 4790), v2 (2)."""
    ok(odp, "datapath", "add", "g")
    ok(odp, "datapath", "add", "h")
    ok(odp, "vport", "add", "netdev", "g", "v1")
    ok(odp, "vport", "add", "vxlan", "g", "vx")
    ok(odp, "vport", "add", "netdev", "g", "v3")
    ok(odp, "vport", "add", "vxlan", "h", "vx2", "--port=4790")
    ok(odp, "vport", "add", "netdev", "h", "v2")
    return odp


# ---------------------------------------------------------------------------
# The issue's session
# ---------------------------------------------------------------------------


def test_issue_session_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "s.json")
    base = ["--backend", "sim", "--state", state]
    assert main([*base, "datapath", "add", "g"]) == 0
    assert main([*base, "vport", "add", "netdev", "g", "v1"]) == 0
    assert main([*base, "vport", "add", "vxlan", "g", "vx", "--port=4789"]) == 0
    assert main([*base, "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800),ipv4()", "2"]) == 0
    capsys.readouterr()
    assert main([*base, "flow", "list", "g"]) == 0
    out = capsys.readouterr().out
    assert out == "in_port(1),eth(),eth_type(0x0800), packets:0, bytes:0, used:never, actions:2\n"


# ---------------------------------------------------------------------------
# datapath
# ---------------------------------------------------------------------------


def test_datapath_add_list_delete(odp: Run, state_path: Path) -> None:
    ok(odp, "datapath", "add", "b")
    ok(odp, "datapath", "add", "a")
    assert ok(odp, "datapath", "list").lines == ["a", "b"]
    assert ok(odp, "datapath").lines == ["a", "b"]  # go-odp: the bare command lists
    assert ok(odp, "dp").lines == ["a", "b"]
    assert "a" in load_host(state_path).datapaths
    ok(odp, "datapath", "delete", "a")
    assert ok(odp, "dp", "list").lines == ["b"]
    assert "already exists" in fails(odp, "datapath", "add", "b")
    assert "unknown datapath 'zz'" in fails(odp, "datapath", "delete", "zz")


def test_datapath_by_ifindex(odp: Run) -> None:
    ok(odp, "dp", "add", "g")
    ifindex = ok(odp, "--json", "dp", "list").json()[0]["ifindex"]
    ok(odp, "vport", "add", "internal", str(ifindex), "i0")
    assert ok(odp, "vport", "list", "g").lines == ["internal g i0 --port-no=1"]


def test_datapath_show_like_ovs_dpctl(topo: Run) -> None:
    r = ok(topo, "datapath", "show", "h")
    assert r.lines == [
        "system@h:",
        "  lookups: hit:0 missed:0 lost:0",
        "  flows: 0",
        "  masks: hit:0 total:0 hit/pkt:0.00",
        "  port 0: h (internal)",
        "  port 1: vx2 (vxlan: dst_port=4790)",
        "  port 2: v2",
    ]
    both = ok(topo, "dp", "show").lines
    assert both[0] == "system@g:" and "system@h:" in both
    assert "  port 2: vx (vxlan)" in both  # the default UDP port is not printed (OVS)
    stats = ok(topo, "dp", "show", "-s", "g").lines
    assert "    RX packets:0 errors:0 dropped:0 overruns:? frame:?" in stats
    assert "    RX bytes:0  TX bytes:0" in stats


def test_datapath_show_counts_lookups(topo: Run) -> None:
    ok(topo, "flow", "add", "g", "in_port(v1),eth(),eth_type(0x0800),ipv4()", "v3")
    ok(topo, "packet", "inject", "g", "v1", P1)
    ok(topo, "packet", "inject", "g", "v3", P1)
    lines = ok(topo, "dp", "show", "g").lines
    assert lines[1] == "  lookups: hit:1 missed:1 lost:0"
    assert lines[2] == "  flows: 1"
    assert lines[3].startswith("  masks: hit:") and lines[3].endswith("total:1 hit/pkt:1.00")


# ---------------------------------------------------------------------------
# vport
# ---------------------------------------------------------------------------


def test_vport_add_each_type_and_list_in_creation_syntax(odp: Run, state_path: Path) -> None:
    ok(odp, "dp", "add", "g")
    ok(odp, "vport", "add", "netdev", "g", "eth9")  # the simulated device is created on demand
    ok(odp, "vport", "add", "internal", "g", "i0")
    ok(odp, "vport", "add", "vxlan", "g", "vx")
    ok(odp, "vport", "add", "vxlan", "g", "vx8", "--port=8472")
    ok(odp, "vport", "add", "gre", "g", "gr", "--port-no=9")
    ok(odp, "vport", "add", "geneve", "g", "gn")
    ok(odp, "vport", "add", "vxlan", "g", "vxg", "--port=4790", "--gbp")
    lines = ok(odp, "vport", "list", "g").lines
    assert lines == [
        "netdev g eth9 --port-no=1",
        "internal g i0 --port-no=2",
        "vxlan g vx --port=4789 --port-no=3",
        "vxlan g vx8 --port=8472 --port-no=4",
        "geneve g gn --port=6081 --port-no=5",
        "vxlan g vxg --port=4790 --gbp --port-no=6",
        "gre g gr --port-no=9",
    ]
    assert ok(odp, "vport").lines == lines
    # Replaying the listing recreates the same ports on another datapath.
    ok(odp, "dp", "add", "k")
    ok(odp, "vport", "add", "internal", "k", "j0", "--port-no=2")
    assert ok(odp, "vport", "list", "k").lines == ["internal k j0 --port-no=2"]
    assert "eth9" in load_host(state_path).interfaces


def test_vport_add_errors(topo: Run) -> None:
    assert "already used" in fails(topo, "vport", "add", "vxlan", "h", "other", "--port=4789")
    assert "already has a port 1" in fails(topo, "vport", "add", "internal", "g", "i1", "--port-no=1")
    assert "attached" in fails(topo, "vport", "add", "netdev", "h", "v1")
    # --port is the UDP port of tunnel vports only: a usage error elsewhere
    fails(topo, "vport", "add", "netdev", "g", "v4", "--port=4789", status=2)
    fails(topo, "vport", "add", "geneve", "g", "v4", "--gbp", status=2)  # GBP is VXLAN's
    assert "unknown datapath" in fails(topo, "vport", "add", "internal", "nope", "i0")


def test_vport_delete_forms(topo: Run) -> None:
    ok(topo, "vport", "delete", "v3")  # go-odp: by name, in whichever datapath has it
    ok(topo, "vport", "delete", "h", "2")  # by datapath and number
    ok(topo, "vport", "delete", "g", "vx")
    assert ok(topo, "vport", "list").lines == ["netdev g v1 --port-no=1", "vxlan h vx2 --port=4790 --port-no=1"]
    assert "no vport named 'v3'" in fails(topo, "vport", "delete", "v3")
    assert "local port 0" in fails(topo, "vport", "delete", "g", "0")
    assert "no vport named 'a'" in fails(topo, "vport", "delete", "a", "b", "c")
    ok(topo, "vport", "add", "netdev", "g", "e1")
    ok(topo, "vport", "add", "netdev", "g", "e2")
    ok(topo, "vport", "delete", "g", "e1", "e2")  # ovs-dpctl del-if DP IFACE...
    assert ok(topo, "vport", "list", "g").lines == ["netdev g v1 --port-no=1"]


def test_vport_listen_on_the_simulator_and_set(topo: Run) -> None:
    events = ok(topo, "vport", "listen").lines
    assert events[0] == "add netdev g v1 --port-no=1" and len(events) == 5  # queued by the topology's adds
    assert ok(topo, "vport", "listen").lines == []  # taken
    ok(topo, "datapath", "set", "g", "--features=vport-pids")  # without it the kernel reports the first pid only
    ok(topo, "vport", "set", "g", "v1", "--upcall-pids=7,8")
    ok(topo, "vport", "delete", "h", "v2")
    assert ok(topo, "vport", "listen", "g").lines == ["set netdev g v1 --port-no=1"]
    assert ok(topo, "--json", "vport", "list", "g").json()[1]["upcall_pids"] == [7, 8]
    line = json.loads(ok(topo, "--json", "vport", "listen").out)
    assert line["event"] == "delete" and line["name"] == "v2" and line["version"] == 1
    assert "--upcall-pids" in fails(topo, "vport", "set", "g", "v1", status=2)


# ---------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------


def test_flow_add_list_names_get_delete_flush(topo: Run) -> None:
    ok(topo, "flow", "add", "g", "in_port(v1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)", "v3,vx")
    ok(topo, "flow", "add", "g", "in_port(3),eth(),eth_type(0x0806),arp()", "1")
    assert ok(topo, "flow", "list", "g").lines == [
        "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2), packets:0, bytes:0, used:never, actions:3,2",
        "in_port(3),eth(),eth_type(0x0806), packets:0, bytes:0, used:never, actions:1",
    ]
    assert ok(topo, "flow", "list", "g", "--names").lines[0] == (
        "in_port(v1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2), packets:0, bytes:0, used:never, actions:v3,vx"
    )
    assert ok(topo, "flow", "list", "g", "--stats").lines == ok(topo, "flow", "list", "g").lines
    got = ok(topo, "flow", "get", "g", "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)").lines
    assert got == ["in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2), packets:0, bytes:0, used:never, actions:3,2"]
    ok(topo, "flow", "delete", "g", "in_port(v3),eth(),eth_type(0x0806),arp()")
    assert len(ok(topo, "flow", "list", "g").lines) == 1
    ok(topo, "flow", "flush", "g")
    assert ok(topo, "flow", "list", "g").out == ""
    assert "no flow" in fails(topo, "flow", "get", "g", "in_port(1),eth()")


def test_flow_mod_clear_and_may_create(topo: Run) -> None:
    key = "in_port(1),eth(),eth_type(0x0800),ipv4()"
    ok(topo, "flow", "add", "g", key, "3")
    ok(topo, "packet", "inject", "g", "v1", P1)
    assert "packets:1, bytes:42" in ok(topo, "flow", "get", "g", key).out
    ok(topo, "flow", "mod", "g", key, "drop")
    assert "packets:1, bytes:42" in ok(topo, "flow", "get", "g", key).out
    assert ok(topo, "flow", "get", "g", key).out.rstrip().endswith("actions:drop")
    ok(topo, "flow", "clear", "g", key)
    assert "packets:0, bytes:0, used:never" in ok(topo, "flow", "get", "g", key).out
    ok(topo, "packet", "inject", "g", "v1", P1)
    ok(topo, "flow", "mod", "g", key, "3", "--clear")
    assert "packets:0, bytes:0" in ok(topo, "flow", "get", "g", key).out
    other = "in_port(3),eth(),eth_type(0x0800),ipv4()"
    assert "no flow" in fails(topo, "flow", "mod", "g", other, "1")
    ok(topo, "flow", "mod", "g", other, "1", "--may-create")
    assert len(ok(topo, "flow", "list", "g").lines) == 2


def test_flow_ufid(topo: Run) -> None:
    u = "c0ffee00-0000-0000-0000-000000000001"
    ok(topo, "flow", "add", "g", f"ufid:{u},in_port(v1),eth()", "3")
    ok(topo, "flow", "add", "g", "in_port(3),eth()", "1", f"--ufid={u.replace('01', '02')}")
    lines = ok(topo, "flow", "list", "g", "--ufid").lines
    assert lines[0] == f"ufid:{u}, in_port(1),eth(), packets:0, bytes:0, used:never, actions:3"
    assert ok(topo, "flow", "list", "g").lines[0].startswith("in_port(1),eth(),")  # no ufid without --ufid
    assert ok(topo, "flow", "get", "g", "--ufid", u).lines == [lines[0]]
    ok(topo, "flow", "delete", "g", f"--ufid={u}")
    assert len(ok(topo, "flow", "list", "g").lines) == 1
    fails(topo, "flow", "add", "g", "in_port(1),eth()", "3", "--ufid=nonsense")


GOODP_EQUIVALENTS = [
    (
        ["--in-port=v1", "--output=v3"],
        ("in_port(1),eth()", "3"),
    ),
    (
        ["--in-port=1", "--eth-src=02:00:00:00:00:01", "--eth-dst=02:00:00:00:00:00&ff:ff:ff:00:00:00",
         "--output=v3,vx"],
        ("in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:00/ff:ff:ff:00:00:00)", "3,2"),
    ),
    (
        ["--in-port=vx", "--tunnel-id=2a", "--tunnel-ipv4-src=172.16.0.9", "--tunnel-ipv4-dst=172.16.0.1",
         "--tunnel-tos=0", "--tunnel-ttl=64&255", "--tunnel-df=true", "--tunnel-csum=F", "--tunnel-tp-dst=4789",
         "--output=v1"],
        ("tunnel(tun_id=0x2a,src=172.16.0.9,dst=172.16.0.1,tos=0,ttl=64,tp_dst=4789,flags(+df-csum+key)),"
         "in_port(2),eth()", "1"),
    ),
    (
        ["--in-port=v3", "--set-tunnel-id=0x5", "--set-tunnel-ipv4-dst=172.16.0.1", "--set-tunnel-ttl=64",
         "--set-tunnel-tp-dst=4790", "--set-tunnel-df=1", "--output=vx"],
        ("in_port(3),eth()", "set(tunnel(tun_id=0x5,dst=172.16.0.1,ttl=64,tp_dst=4790,flags(df|key))),2"),
    ),
    (
        ["--in-port=v1"],  # go-odp: no action flags, no actions
        ("in_port(1),eth()", "drop"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "text"), GOODP_EQUIVALENTS)
def test_goodp_flags_and_odp_text_give_the_same_flow(
    topo: Run, flags: list[str], text: tuple[str, str], state_path: Path
) -> None:
    ok(topo, "flow", "add", "g", *flags)
    by_flags = ok(topo, "--json", "flow", "list", "g").json()
    ok(topo, "flow", "flush", "g")
    ok(topo, "flow", "add", "g", *text)
    by_text = ok(topo, "--json", "flow", "list", "g").json()
    assert by_flags == by_text
    assert len(by_text) == 1
    # and they delete / clear / get the same way
    key_flags = [f for f in flags if not f.startswith(("--output", "--set-tunnel"))]
    ok(topo, "flow", "clear", "g", *key_flags)
    ok(topo, "flow", "delete", "g", *key_flags)
    assert ok(topo, "flow", "list", "g").out == ""


def test_goodp_flag_errors(topo: Run) -> None:
    assert "bad MAC address" in fails(topo, "flow", "add", "g", "--eth-src=02:00:00:00:00:0g", "--output=v3")
    assert "bad MAC address" in fails(topo, "flow", "add", "g", "--eth-dst=02:00:00:00:00:00&ff:ff", "--output=v3")
    assert "no vport of that name" in fails(topo, "flow", "add", "g", "--in-port=nope", "--output=v3")
    assert "no vport of that name" in fails(topo, "flow", "add", "g", "--in-port=v1", "--output=v3,nope")
    assert "takes no mask" in fails(topo, "flow", "add", "g", "--set-tunnel-id=5&ff", "--output=vx")
    assert "not a boolean" in fails(topo, "flow", "add", "g", "--tunnel-df=maybe", "--output=vx")
    assert "not an IPv4 address" in fails(topo, "flow", "add", "g", "--tunnel-ipv4-dst=1.2.3", "--output=v1")
    assert "does not fit in 8 bits" in fails(topo, "flow", "add", "g", "--tunnel-ttl=300", "--output=v1")
    # text and flags for the same part: a usage error
    fails(topo, "flow", "add", "g", "in_port(1),eth()", "1", "--in-port=v1", status=2)
    fails(topo, "flow", "add", "g", "in_port(1),eth()", "1", "--output=v3", status=2)


def test_flow_errors_are_one_clear_line(topo: Run) -> None:
    line = fails(topo, "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800)", "2")
    assert "invalid flow" in line and "ipv4" in line and "[rule: " in line
    line = fails(topo, "flow", "add", "g", "in_port(1),eth(", "2")
    assert "invalid flow key" in line and "position" in line
    assert "invalid actions" in fails(topo, "flow", "add", "g", "in_port(1),eth()", "output(9")
    assert "not a port" in fails(topo, "flow", "add", "g", "in_port(1),eth()", "nosuchport")
    ok(topo, "flow", "add", "g", "in_port(1),eth()", "2")
    assert "already exists" in fails(topo, "flow", "add", "g", "in_port(1),eth()", "3")
    assert "unknown datapath 'x'" in fails(topo, "flow", "list", "x")
    fails(topo, "flow", "add", "g", "in_port(1),eth()", status=2)  # MATCH without ACTIONS
    fails(topo, "flow", "delete", "g", status=2)  # nothing to delete: flush is explicit
    fails(topo, "flow", "get", "g", status=2)


# ---------------------------------------------------------------------------
# Abbreviations and usage errors
# ---------------------------------------------------------------------------


def test_prefix_abbreviations(odp: Run) -> None:
    ok(odp, "dp", "a", "x")
    ok(odp, "datap", "ad", "y")
    ok(odp, "vp", "a", "int", "x", "i0")
    ok(odp, "v", "add", "n", "x", "e0")
    ok(odp, "fl", "a", "x", "in_port(1),eth()", "2")
    listed = ok(odp, "fl", "l", "x").lines
    assert listed == ["in_port(1),eth(),eth_type(0/0x0000), packets:0, bytes:0, used:never, actions:2"]
    assert ok(odp, "da", "list").lines == ["x", "y"]  # an exact name wins over longer ones (listen)
    assert "could be list, listen" in fails(odp, "da", "lis", status=2)
    assert ok(odp, "dp", "sh", "x").lines[0] == "system@x:"
    ok(odp, "fl", "fl", "x")
    ok(odp, "dp", "del", "y")
    assert ok(odp, "dp").lines == ["x"]


def test_ambiguous_and_unknown_commands_are_usage_errors(odp: Run) -> None:
    ok(odp, "dp", "add", "g")
    assert "ambiguous command 'datapath l': could be list, listen" in fails(odp, "dp", "l", status=2)
    assert "could be datapath, demo" in fails(odp, "d", status=2)
    assert "could be geneve, gre" in fails(odp, "vport", "add", "g", "g", "x", status=2)
    assert "unknown command 'frob'" in fails(odp, "frob", status=2)
    assert "unknown command 'flow zap'" in fails(odp, "flow", "zap", "g", status=2)
    assert "needs a subcommand" in fails(odp, "flow", status=2)
    assert "needs a subcommand" in fails(odp, "packet", status=2)
    assert "unrecognized arguments" in fails(odp, "dp", "list", "--bogus", status=2)
    assert "required" in fails(odp, "dp", "add", status=2)
    assert "unknown backend" in fails(odp, "--backend", "nope", "dp", "list", status=2)
    assert "invalid int value" in fails(odp, "vport", "add", "internal", "g", "i", "--port-no=x", status=2)


def test_no_command_prints_the_overview(odp: Run) -> None:
    r = odp()
    assert r.status == 2 and r.out == "" and "odp flow add" in r.err
    r = odp("--help")
    assert r.status == 0 and "odp datapath listen" in r.out
    assert ok(odp, "help").out == r.out
    r = odp("flow", "add", "--help")
    assert r.status == 0 and "--tunnel-tp-src" in r.out and "--set-tunnel-id" in r.out
    r = odp("flow", "--help")
    assert r.status == 0 and "odp flow flush" in r.out


def test_global_options_after_the_command(odp: Run, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    ok(odp, "dp", "add", "g", "--state", str(other))
    assert "g" in load_host(other).datapaths
    assert ok(odp, "dp", "list").out == ""
    assert ok(odp, "dp", "list", f"--state={other}", "--backend=sim").lines == ["g"]
    assert ok(odp, "dp", "list", "--json", "--state", str(other)).json()[0]["name"] == "g"


def test_backend_from_environment(odp: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODP_BACKEND", "sim")
    ok(odp, "dp", "add", "g")
    monkeypatch.setenv("ODP_BACKEND", "bogus")
    fails(odp, "dp", "list", status=2)
    assert ok(odp, "--backend", "sim", "dp", "list").lines == ["g"]


def _kernel_module_unavailable() -> bool:
    """True when connecting cannot load openvswitch.ko (so a real attempt has no side effect)."""
    if os.path.exists("/sys/module/openvswitch"):
        return False
    dep = Path("/lib/modules") / os.uname().release / "modules.dep"
    try:
        return "openvswitch.ko" not in dep.read_text()
    except OSError:
        return True


@pytest.mark.skipif(not _kernel_module_unavailable(), reason="the module is or could be loaded: this would touch it")
def test_kernel_backend_without_the_module_is_one_line(odp: Run) -> None:
    line = fails(odp, "--backend", "kernel", "datapath", "list")
    assert "openvswitch" in line and "modprobe" in line


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ModuleNotLoaded("the openvswitch kernel module is not loaded (modprobe openvswitch)"), "modprobe openvswitch"),
        (PermissionDenied("creating datapath 'g': permission denied, this needs CAP_NET_ADMIN"), "CAP_NET_ADMIN"),
        (PermissionError(13, "Permission denied", "/run/x"), "/run/x: Permission denied"),
    ],
)
def test_kernel_backend_errors_are_one_line(
    odp: Run, monkeypatch: pytest.MonkeyPatch, error: Exception, expected: str
) -> None:
    def connect(backend: str = "sim", **options: object) -> Connection:
        raise error

    monkeypatch.setattr(odp_backends, "connect", connect)
    line = fails(odp, "--backend", "kernel", "datapath", "add", "g")
    assert line == f"odp: error: {expected}" or expected in line


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def test_json_outputs_parse(topo: Run) -> None:
    added = ok(topo, "--json", "dp", "add", "j").json()
    assert isinstance(added, dict) and added["name"] == "j" and added["stats"]["flows"] == 0
    dps = ok(topo, "--json", "dp", "list").json()
    assert [d["name"] for d in dps] == ["g", "h", "j"]
    shown = ok(topo, "--json", "dp", "show", "h").json()
    assert [p["name"] for p in shown[0]["ports"]] == ["h", "vx2", "v2"]
    vport = ok(topo, "--json", "vport", "add", "internal", "j", "i0").json()
    assert vport == {**vport, "datapath": "j", "name": "i0", "type": "internal", "port_no": 1}
    vports = ok(topo, "vport", "list", "h", "--json").json()
    assert [(v["port_no"], v["type"], v["dst_port"]) for v in vports] == [
        (0, "internal", None),
        (1, "vxlan", 4790),
        (2, "netdev", None),
    ]
    flow = ok(topo, "--json", "flow", "add", "g", "in_port(v1),eth(),eth_type(0x0800),ipv4()", "v3").json()
    assert flow["match"] == "in_port(1),eth(),eth_type(0x0800)" and flow["actions"] == "3"
    ok(topo, "packet", "inject", "g", "v1", P1)
    flows = ok(topo, "--json", "flow", "list", "g", "--names").json()
    assert flows[0]["packets"] == 1 and flows[0]["bytes"] == 42 and flows[0]["used"] >= 0
    assert flows[0]["match"].startswith("in_port(v1)")
    trace = ok(topo, "--json", "packet", "inject", "g", "v1", P1).json()
    assert [e["event"] for e in trace][:5] == ["receive", "key", "flow", "actions", "output"]
    assert ok(topo, "--json", "vport", "delete", "j", "i0").json()["name"] == "i0"
    assert ok(topo, "--json", "flow", "flush", "g").json() == {"flushed": "g"}
    assert ok(topo, "--json", "dp", "delete", "j").json() == {"deleted": "j"}


# ---------------------------------------------------------------------------
# Packets: inject, execute, listen
# ---------------------------------------------------------------------------


def test_inject_miss_queues_for_listen(topo: Run, tmp_path: Path) -> None:
    lines = ok(topo, "packet", "inject", "g", "v1", P1).lines
    assert lines[0] == "g: port 1 (v1) received 42 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80"
    assert lines[1].startswith("  key: recirc_id(0),")
    assert "in_port(1)" in lines[1] and "udp(src=1234,dst=80)" in lines[1]
    assert lines[2:] == [
        "  miss: no flow matches",
        "  upcall: miss upcall sent to userspace ('odp datapath listen g' prints it)",
    ]
    ok(topo, "packet", "inject", "g", "v3", "020000000002020000000001 0806" + "00" * 28)  # hex, an ARP-ish frame
    listen = ok(topo, "datapath", "listen", "g", "--summary", "--pcap", "m.pcap", "--count", "1").lines
    assert listen[0].startswith("MISS upcall[1]: recirc_id(0),")
    assert "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02)" in listen[0]
    assert listen[1] == "  g: port 1 (v1), 42 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80"
    data = (tmp_path / "m.pcap").read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    _, _, incl, orig = struct.unpack_from("<IIII", data, 24)
    assert incl == orig == 42 and len(data) == 24 + 16 + 42
    rest = ok(topo, "--json", "datapath", "listen", "g").lines  # the second miss, as JSON lines
    assert len(rest) == 1 and json.loads(rest[0])["in_port"] == 3 and json.loads(rest[0])["version"] == 1
    r = topo("datapath", "listen", "g")
    assert r.status == 0 and r.out == "" and "no upcalls queued" in r.err


def test_listen_pcap_to_stdout_and_userspace_lines(topo: Run) -> None:
    ok(topo, "packet", "inject", "g", "v1", P1)
    ok(topo, "packet", "inject", "g", "v3", P1)
    r = subprocess.run(
        [PYTHON, "-m", "odp", "datapath", "listen", "g", "--pcap", "-"], capture_output=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    out, err = r.stdout, r.stderr
    magic, *_ = struct.unpack_from("<I", out)
    assert magic == 0xA1B2C3D4 and len(out) == 24 + 2 * (16 + 42)  # the pcap alone on stdout
    lines = err.decode().splitlines()
    assert lines[0].startswith("MISS upcall[1]: ") and lines[1].startswith("MISS upcall[2]: ")
    from odp.cli.datapath import _upcall_line
    from odp.records import Upcall, UpcallKind
    from odp.text import parse_match

    up = Upcall(UpcallKind.ACTION, 2, b"", parse_match("in_port(1),eth()"), userdata=b"\x0a\x0b")
    assert _upcall_line(7, up) == "USERSPACE upcall[7]: in_port(1),eth(), userdata(0a0b)"


def test_inject_through_vxlan_between_datapaths(topo: Run) -> None:
    ok(
        topo,
        "flow",
        "add",
        "g",
        "in_port(v1),eth(),eth_type(0x0800),ipv4()",
        "set(tunnel(tun_id=0x2a,dst=172.16.0.1,tp_dst=4790,ttl=64,flags(key))),vx",
    )
    tunnel = "tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.1,flags(+key))"
    ok(topo, "flow", "add", "h", f"{tunnel},in_port(vx2),eth()", "v2")
    lines = ok(topo, "packet", "inject", "g", "v1", P1 + '/"payload"').lines
    assert "  output to port 2 (vx): VXLAN to 172.16.0.1 port 4790, vni 42" in lines
    underlay = next(x for x in lines if x.startswith("    underlay: "))
    assert "> 172.16.0.1:4790: Ether / IP / UDP / VXLAN / Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80" in underlay
    assert "    h: port 1 (vx2) received 49 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80 / Raw" in lines
    assert lines[-1] == "      output to port 2 (v2): 49 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80 / Raw"
    assert "packets:1, bytes:49" in ok(topo, "flow", "list", "h").out
    assert ok(topo, "dp", "show", "h").lines[1] == "  lookups: hit:1 missed:0 lost:0"


def test_inject_errors(topo: Run) -> None:
    assert "tunnel ports receive from the underlay" in fails(topo, "packet", "inject", "g", "vx", P1)
    assert "no vport of that name" in fails(topo, "packet", "inject", "g", "nope", P1)
    assert "neither hex bytes nor a scapy expression" in fails(topo, "packet", "inject", "g", "v1", "Ether(")
    assert "neither hex" in fails(topo, "packet", "inject", "g", "v1", "__import__('os')")
    assert "odd number of hex digits" in fails(topo, "packet", "inject", "g", "v1", "0x123")
    assert "gives int, not a packet" in fails(topo, "packet", "inject", "g", "v1", "1+2")


def test_execute_traces_outputs(topo: Run) -> None:
    lines = ok(topo, "packet", "execute", "g", P1, "push_vlan(vid=10,pcp=0),v3,vx").lines
    assert lines == [
        "g: execute on 42 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80",
        "  actions: push_vlan(vid=10,pcp=0),3,2",
        "  output to port 3 (v3): 46 bytes: Ether / Dot1Q / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80",
        "  dropped: output to port 2 (vx): no tunnel metadata (set(tunnel(...)))",
    ]
    lines = ok(topo, "packet", "execute", "g", P1, "userspace(pid=77)", "--in-port=v1").lines
    assert lines[-1] == "  upcall: userspace(pid=77) upcall lost (no listener on pid 77)"
    assert "shorter than an Ethernet header" in fails(topo, "packet", "execute", "g", "0011", "1")
    fails(topo, "packet", "execute", "g", P1, "1", "--in-port=v1", "--key=in_port(3)", status=2)


def test_state_persists_counters_between_invocations(topo: Run, state_path: Path) -> None:
    ok(topo, "flow", "add", "g", "in_port(v1),eth(),eth_type(0x0800),ipv4()", "v3")
    for _ in range(3):
        ok(topo, "packet", "inject", "g", "v1", P1)
    state = load_state(state_path)
    g = state.host.datapaths["g"]
    assert (g.counters.hit, g.counters.missed) == (3, 0)
    assert g.vports[1].counters.rx_packets == 3 and g.vports[3].counters.tx_packets == 3
    assert g.vports[1].upcall_pids == (0,)  # the listener inject used is gone
    assert re.search(r"packets:3, bytes:126, used:\d+\.\d{3}s", ok(topo, "flow", "list", "g").out)


def test_demo_subcommand(odp: Run) -> None:
    r = ok(odp, "demo")
    assert "came out of host b's veth-b" in r.out


def test_corrupt_state_is_an_error(odp: Run, state_path: Path) -> None:
    state_path.write_text("{")
    assert f"{state_path}: a JSON state (the export format)" in fails(odp, "dp", "list")
    state_path.write_bytes(b"\xff\xfe garbage")
    assert fails(odp, "dp", "list") == f"odp: error: {state_path}: not an odp state database"
    state_path.write_bytes(b"")
    assert f"{state_path}: an empty file" in fails(odp, "dp", "add", "g")
    assert state_path.read_bytes() == b""


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def test_ufid_text_round_trip() -> None:
    u = uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00")
    ufid = ufid_from_text(f"ufid:{u}")
    assert len(ufid) == 16 and ufid_to_uuid(ufid) == u
    assert ufid_from_text(u.hex) == ufid
    assert ufid_to_uuid(b"\x01\x02") is None


def test_parse_packet_forms() -> None:
    assert parse_packet("0x0011 22:33") == b"\x00\x11\x22\x33"
    assert parse_packet("Ether()/IP()")[12:14] == b"\x08\x00"
    assert parse_packet('Ether(dst="ff:ff:ff:ff:ff:ff")/"x"')[:6] == b"\xff" * 6


def test_pcap_writer(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with path.open("wb") as f:
        write_pcap_header(f)
        write_pcap_record(f, b"\x01" * 20, 1700000000.9999999, orig_len=100)
    data = path.read_bytes()
    assert struct.unpack_from("<IIII", data, 24) == (1700000001, 0, 20, 100)
    from scapy.utils import rdpcap

    assert len(rdpcap(str(path))) == 1


# ---------------------------------------------------------------------------
# As a program: exit codes, no tracebacks, concurrent invocations
# ---------------------------------------------------------------------------


def _odp_process(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ODP_SIM_STATE": str(state)}
    env.pop("ODP_BACKEND", None)
    return subprocess.run([PYTHON, "-m", "odp", *args], capture_output=True, text=True, env=env, timeout=120)


def test_program_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    r = _odp_process(state, "datapath", "add", "g")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = _odp_process(state, "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800)", "2")
    assert r.returncode == 1 and r.stderr.startswith("odp: error: invalid flow") and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = _odp_process(state, "flow", "lst", "g")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = _odp_process(state, "flow", "list", "nope")
    assert r.returncode == 1 and r.stderr == "odp: error: unknown datapath 'nope' (see 'odp datapath list')\n"


def test_concurrent_invocations_lose_nothing(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    assert _odp_process(state, "datapath", "add", "g").returncode == 0
    assert _odp_process(state, "vport", "add", "netdev", "g", "v1").returncode == 0
    env = {**os.environ, "ODP_SIM_STATE": str(state)}
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "odp", "flow", "add", "g", f"in_port(v1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.{i})", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    flows = "\n".join(str(f.match) for f in load_host(state).datapaths["g"].table.flows())
    assert all(f"ipv4(dst=10.0.0.{i})" in flows for i in range(8))
    r = _odp_process(state, "flow", "list", "g")
    assert len(r.stdout.splitlines()) == 8


def test_meter_commands(odp: Run) -> None:
    assert odp("dp", "add", "d0").status == 0
    assert odp("meter", "features", "d0").lines == ["max_meters:200000 max_bands:1 band_types:drop"]
    assert odp("meter", "set", "d0", "1", "--rate=1000", "--burst=0").out == ""  # a new meter: nothing replaced
    for _ in range(2):
        assert odp("packet", "execute", "d0", P1, "meter(1),1").status == 0
    got = odp("--json", "meter", "get", "d0", "1").json()
    size = len(parse_packet(P1))
    assert (got["meter_id"], got["packets"], got["bytes"]) == (1, 2, 2 * size)
    assert got["bands"] == [{"packets": 2, "bytes": 2 * size}]  # burst 0: every packet is over the band
    replaced = odp("meter", "set", "d0", "1", "--rate=5", "--burst=5", "--kbps", "--stats=10,1000")
    assert replaced.lines[0].startswith(f"replaced meter:1 packets:2 bytes:{2 * size} used:")
    assert replaced.lines[1] == f"  band 0: packets:2 bytes:{2 * size}"
    assert odp("meter", "get", "d0", "1").lines[0].startswith("meter:1 packets:10 bytes:1000 ")
    assert odp("me", "d", "d0", "1").lines[0].startswith("meter:1 packets:10 ")  # prefixes work
    assert odp("--json", "meter", "delete", "d0", "1").json() is None  # already gone: not an error
    missing = odp("meter", "get", "d0", "1")
    assert (missing.status, missing.err) == (1, "odp: error: datapath d0 has no meter 1\n")
    assert odp("meter", "set", "d0", "1", "--rate=1").status == 2
    bad = odp("meter", "set", "d0", "1", "--rate=0", "--burst=1")
    assert bad.status == 1 and "rate 0" in bad.err
    assert odp("meter", "set", "d0", "2", "--rate=1", "--burst=1", "--type=7").status == 0
    assert odp("meter", "set", "d0", "3").status == 0  # no band
    assert odp("--json", "meter", "get", "d0", "3").json()["bands"] == []


def test_command_tree_vport_kinds_match_the_library() -> None:
    """The command tree spells the vport types out (to import no backend code): they must stay the library's."""
    from odp.cli.tree import VPORT_KINDS
    from odp.records import DEFAULT_TUNNEL_PORTS, VportKind

    assert tuple((k.value, k in DEFAULT_TUNNEL_PORTS) for k in VportKind) == VPORT_KINDS


def test_help_imports_no_backend_code() -> None:
    """``odp --help`` (and ``import odp``) stay cheap: no flow codec, simulator or scapy is imported."""
    code = (
        "import sys; from odp.cli import main; main(['--help']);"
        " print(sorted(m for m in sys.modules if m.startswith(('odp.', 'scapy'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = r.stdout.strip().splitlines()[-1]
    for heavy in ("odp.keys", "odp.actions", "odp.datapath", "odp.text", "odp.sim", "scapy"):
        assert f"'{heavy}" not in loaded, loaded


# ---------------------------------------------------------------------------
# Flows in bulk
# ---------------------------------------------------------------------------

FLOWS_FILE = """\
# ovs-dpctl add-flows format: [add|modify|delete] FLOW [ACTIONS]
in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1) 3
a in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2) \\
    drop

ufid:11223344-5566-7788-99aa-bbccddeeff00,in_port(3),eth(),eth_type(0x0806),arp() 1
"""


def test_add_mod_del_flows_from_a_file_and_stdin(topo: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flows.txt"
    path.write_text(FLOWS_FILE)
    ok(topo, "flow", "add-flows", "g", str(path))
    lines = ok(topo, "flow", "list", "g", "--ufid").lines
    assert len(lines) == 3 and "ipv4(dst=10.0.0.2), packets:0, bytes:0, used:never, actions:drop" in lines[1]
    assert lines[2].startswith("ufid:11223344-5566-7788-99aa-bbccddeeff00, ")
    path.write_text(
        "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1) 2\n"
        "del in_port(v1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)\n"
    )
    ok(topo, "flow", "mod-flows", "g", str(path))
    lines = ok(topo, "flow", "list", "g").lines
    assert len(lines) == 2 and lines[0].endswith("actions:2")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("ufid:11223344-5566-7788-99aa-bbccddeeff00\n"))
    ok(topo, "flow", "del-flows", "g", "-")
    assert len(ok(topo, "flow", "list", "g").lines) == 1
    path.write_text("in_port(3),eth() 1\nmodify in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1) 3\n")
    counts = ok(topo, "flow", "add-flows", "g", str(path), "--json").json()
    assert counts == {"datapath": "g", "added": 1, "modified": 1, "deleted": 0}


def test_flows_file_errors_name_the_line_and_change_nothing(topo: Run, tmp_path: Path) -> None:
    path = tmp_path / "flows.txt"
    path.write_text(
        "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1) 3\n"
        "\n"
        "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2) bogus_action(1)\n"
    )
    err = fails(topo, "flow", "add-flows", "g", str(path))
    assert err.startswith(f"odp: error: {path}:3: ") and "bogus_action" in err
    assert ok(topo, "flow", "list", "g").lines == []  # one transaction: the first line is not kept either
    path.write_text("in_port(1),eth() 3\nin_port(2),eth() 1\nin_port(1),eth() 2\n")  # refused by the datapath
    assert fails(topo, "flow", "add-flows", "g", str(path)).startswith(f"odp: error: {path}:3: a flow matching")
    assert ok(topo, "flow", "list", "g").lines == []
    path.write_text("add in_port(1),eth()\n")
    assert f"{path}:1: add needs actions" in fails(topo, "flow", "add-flows", "g", str(path))
    path.write_text("in_port(1),eth() 1\n")
    assert f"{path}:1: delete takes a flow and no actions" in fails(topo, "flow", "del-flows", "g", str(path))
    assert "nope.txt: No such file or directory" in fails(topo, "flow", "add-flows", "g", str(tmp_path / "nope.txt"))
    assert "give the datapath: there is not exactly one (datapaths: g, h)" in fails(
        topo, "flow", "add-flows", str(path), status=2
    )


def test_flows_file_datapath_is_optional_with_one_datapath(odp: Run, tmp_path: Path) -> None:
    ok(odp, "dp", "add", "only")
    path = tmp_path / "flows.txt"
    path.write_text("in_port(0),eth(src=02:00:00:00:00:01) drop\n")
    ok(odp, "flow", "add-flows", str(path))
    assert ok(odp, "fl", "a", "only", "in_port(0),eth(src=02:00:00:00:00:02)", "0").err == ""
    assert len(ok(odp, "flow", "list", "only").lines) == 2


def test_flows_file_line_format() -> None:
    from odp.cli.flow_file import logical_lines, parse_flow_line

    text = "  # comment\nmod a,b(1) 1,2 # trailing\nx \\\n y\n\n"
    lines = list(logical_lines(__import__("io").StringIO(text)))
    assert lines == [(2, "mod a,b(1) 1,2"), (3, "x  y")]
    line = parse_flow_line(2, lines[0][1], "add", "f")
    assert (line.command, line.flow, line.actions) == ("modify", "a,b(1)", "1,2")
    assert parse_flow_line(1, "address(1) 2", "add", "f").flow == "address(1)"  # not the command "add"
    assert parse_flow_line(1, "d in_port(1)", "add", "f").command == "delete"


def test_flow_list_filter_more_and_default_datapath(topo: Run) -> None:
    ok(topo, "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1)", "3")
    ok(topo, "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)", "3")
    ok(topo, "flow", "add", "g", "in_port(3),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst=80),tcp_flags(0/0)", "1")
    ok(topo, "flow", "add", "g", "in_port(3),eth(),eth_type(0x0806),arp()", "1")

    def listed(*args: str) -> list[str]:
        return [line.split(", packets:")[0] for line in ok(topo, "flow", "list", "g", *args).lines]

    assert listed("filter=in_port=1,ip,nw_dst=10.0.0.1") == ["in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1)"]
    assert len(listed("nw_dst=10.0.0.0/8")) == 2  # both in_port(1) flows; the TCP flow's dst is wildcarded: zero
    assert listed("in_port=v3,tcp,tp_dst=80") == ["in_port(3),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst=80)"]
    assert listed("arp") == ["in_port(3),eth(),eth_type(0x0806)"]
    assert listed("tp_dst=443") == []
    assert "unknown field 'nope'" in fails(topo, "flow", "list", "g", "nope=1")
    assert "not an IPv4 address" in fails(topo, "flow", "list", "g", "nw_dst=1.2.3")
    more = ok(topo, "flow", "list", "g", "-m", "arp").lines
    assert more[0].startswith("recirc_id(0") and "eth_type(0x0806),arp()" in more[0]
    assert "give the datapath" in fails(topo, "flow", "list", status=2)
    ok(topo, "dp", "delete", "h")
    assert len(ok(topo, "flow", "list").lines) == 4
    assert len(ok(topo, "flow", "list", "filter=in_port=1").lines) == 2
    assert ok(topo, "flow", "list", "--stats").lines == ok(topo, "flow", "list", "g").lines


def test_inject_saves_what_came_out_as_pcap(topo: Run, tmp_path: Path) -> None:
    ok(topo, "flow", "add", "g", "in_port(v1),eth(),eth_type(0x0800),ipv4()", "v3,0")
    ok(topo, "packet", "inject", "g", "v1", P1, "--pcap", "out.pcap")
    data = (tmp_path / "out.pcap").read_bytes()
    assert len(data) == 24 + 2 * (16 + 42)
    ok(topo, "packet", "inject", "g", "v1", P1, "--pcap", "out-{port}.pcap")
    assert sorted(p.name for p in tmp_path.glob("out-*.pcap")) == ["out-g.pcap", "out-v3.pcap"]
    assert len((tmp_path / "out-v3.pcap").read_bytes()) == 24 + 16 + 42
    r = subprocess.run([PYTHON, "-m", "odp", "packet", "inject", "g", "v1", P1, "--pcap", "-"], capture_output=True)
    assert r.returncode == 0 and len(r.stdout) == 24 + 2 * (16 + 42) and b"received 42 bytes" in r.stderr


def test_json_errors_are_json_on_stderr(topo: Run) -> None:
    r = topo("--json", "flow", "add", "g", "in_port(1),eth(),eth_type(0x0800)", "2")
    assert r.status == 1 and r.out == ""
    err = json.loads(r.err)
    assert err["version"] == 1 and err["kind"] == "InvalidFlow" and err["rule"] == "missing-l3"
    assert err["error"].startswith("invalid flow:") and "field" in err
    r = topo("--json", "flow", "lst")
    assert r.status == 2 and json.loads(r.err)["kind"] == "usage"
    r = topo("dp", "show", "nope", "--json")
    assert json.loads(r.err)["kind"] == "NotFoundError"


def test_help_at_every_level(odp: Run) -> None:
    dp_help = ok(odp, "dp", "help").out
    assert dp_help.startswith("usage: odp datapath COMMAND") and "odp datapath listen" in dp_help
    assert ok(odp, "datapath", "--help").out == dp_help
    assert ok(odp, "help", "dp").out == dp_help
    add_help = ok(odp, "flow", "add", "--help").out
    assert ok(odp, "help", "flow", "add").out == add_help == ok(odp, "flow", "help", "add").out
    for flag in ("--in-port", "--eth-dst", "--tunnel-id", "--set-tunnel-ipv4-dst", "--output"):
        assert flag in add_help
    assert "ipv4()" in add_help and "tunnel()" in add_help and "userspace" in add_help and "check_pkt_len" in add_help
    assert ok(odp, "help").out == ok(odp, "--help").out
    assert "unknown command 'flow nope'" in fails(odp, "help", "flow", "nope", status=2)


def test_shell_completion(topo: Run, state_path: Path) -> None:
    assert "complete -F _odp odp" in ok(topo, "completion", "bash").out
    assert ok(topo, "completion", "zsh").out.startswith("#compdef odp")
    assert ok(topo, "__complete").lines[:2] == ["datapath", "vport"]
    assert "add-flows" in ok(topo, "__complete", "fl").lines
    names = ok(topo, "__complete", "--state", str(state_path), "vport", "delete").lines
    assert {"g", "h", "v1", "vx", "v3", "vx2", "v2"} <= set(names) and "--json" in names
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    env = {**os.environ, "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}"}
    script = 'eval "$(odp completion bash)"; COMP_WORDS=(odp fl ad); COMP_CWORD=2; _odp; echo "${COMPREPLY[*]}"'
    r = subprocess.run([bash, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.split() == ["add", "add-flows"], r.stderr
    script = 'eval "$(odp completion bash)"; COMP_WORDS=(odp dp show ""); COMP_CWORD=3; _odp; echo "${COMPREPLY[*]}"'
    r = subprocess.run([bash, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert {"g", "h"} <= set(r.stdout.split()), r.stderr


def test_datapath_options_and_add_dp_with_interfaces(odp: Run) -> None:
    ok(odp, "dp", "add", "x", "e1", "e2,port_no=7", "t0,type=vxlan,dst_port=4799", "--features=unaligned,vport-pids")
    assert ok(odp, "vport", "list", "x").lines == [
        "netdev x e1 --port-no=1",
        "vxlan x t0 --port=4799 --port-no=2",
        "netdev x e2 --port-no=7",
    ]
    shown = ok(odp, "dp", "show", "-f", "x").lines
    assert shown[1] == "  features: unaligned,vport-pids  masks cache size: 256"
    ok(odp, "dp", "set", "x", "--features=per-cpu", "--masks-cache-size=64")
    assert ok(odp, "dp", "show", "-f", "x").lines[1] == "  features: per-cpu  masks cache size: 64"
    assert ok(odp, "--json", "dp", "list").json()[0]["features"] == 8
    assert "is neither a number nor one of" in fails(odp, "dp", "set", "x", "--features=fast")
    assert "power of two" in fails(odp, "dp", "set", "x", "--masks-cache-size=3")
    assert "NAME[,type=TYPE]" in fails(odp, "dp", "add", "y", "e3,colour=red")
    assert ok(odp, "dp", "list").lines == ["x"]  # a refused add-dp leaves nothing behind (one transaction)


def test_flows_file_progress_bar_on_a_terminal(topo: Run, tmp_path: Path) -> None:
    """Long files show a progress bar when stderr is a terminal (and nothing when it is not)."""
    import fcntl
    import pty
    import termios

    path = tmp_path / "many.txt"
    path.write_text(
        "".join(f"in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.{i >> 8}.{i & 255}) 3\n" for i in range(1200))
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([PYTHON, "-m", "odp", "flow", "add-flows", "g", str(path)], stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0
    assert b"add-flows:" in seen and b"/1200" in seen
    assert len(ok(topo, "flow", "list", "g").lines) == 1200


# ---------------------------------------------------------------------------
# --kernel: the version the simulator behaves as
# ---------------------------------------------------------------------------


def test_kernel_option_is_saved_in_the_state(odp: Run, state_path: Path) -> None:
    flow = ("in_port(1),eth(),eth_type(0x0800),ipv4()", "drop(0)")
    ok(odp, "datapath", "add", "g")
    assert load_state(state_path).host.kernel == TESTED  # the default: 6.12
    ok(odp, "datapath", "delete", "g")
    # 6.1 has no explicit drop action ...
    ok(odp, "--kernel", "6.1", "datapath", "add", "g")
    assert "needs Linux 6.6" in fails(odp, "flow", "add", "g", *flow)
    ok(odp, "datapath", "delete", "g")
    # ... 6.6 has; the version stays with the state.
    ok(odp, "--kernel", "6.6", "datapath", "add", "g")
    assert json.loads(odp("state", "export", "-").out)["host"]["kernel"] == "6.6"
    ok(odp, "flow", "add", "g", *flow)
    assert load_state(state_path).host.kernel == Kernel(6, 6)
    # A host does not change kernels under its datapaths.
    assert "runs Linux 6.6 and has datapaths" in fails(odp, "--kernel", "6.1", "datapath", "list")
    assert "'6.x'" in fails(odp, "--kernel", "6.x", "datapath", "list")
    assert "--kernel is for the simulator" in fails(odp, "--backend", "kernel", "--kernel", "6.1", "datapath", "list")
