"""The ``odp`` command line on the simulator (in-process, plus a few runs of ``python -m odp``)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import odp.datapath as odp_datapath
from odp.cli import main, parse_packet, ufid_from_text, ufid_to_uuid, write_pcap_header, write_pcap_record
from odp.datapath import Connection
from odp.errors import ModuleNotLoaded, PermissionDenied
from odp.sim.state import load_host, load_state

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
        return json.loads(self.out)


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
    fails(topo, "vport", "delete", "a", "b", "c", status=2)


def test_vport_listen_is_kernel_only(topo: Run) -> None:
    assert "not available on the sim backend" in fails(topo, "vport", "listen")


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

    monkeypatch.setattr(odp_datapath, "connect", connect)
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
    listen = ok(topo, "datapath", "listen", "g", "--keys", "--pcap", "m.pcap", "--count", "1").lines
    assert listen[0] == "g: miss on port 1 (v1), 42 bytes: Ether / IP / UDP 10.0.0.1:1234 > 10.0.0.2:80"
    assert listen[1].startswith("  key: ") and "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02)" in listen[1]
    data = (tmp_path / "m.pcap").read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    _, _, incl, orig = struct.unpack_from("<IIII", data, 24)
    assert incl == orig == 42 and len(data) == 24 + 16 + 42
    rest = ok(topo, "--json", "datapath", "listen", "g").lines  # the second miss, as JSON lines
    assert len(rest) == 1 and json.loads(rest[0])["in_port"] == 3
    r = topo("datapath", "listen", "g")
    assert r.status == 0 and r.out == "" and "no upcalls queued" in r.err


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
    assert "not valid JSON" in fails(odp, "dp", "list")


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
    flows = Path(state).read_text()
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
