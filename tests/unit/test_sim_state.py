"""odp.sim.state: a simulated host saved to JSON and loaded back behaves the same."""

from __future__ import annotations

import json
import struct
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odp.datapath import Connection
from odp.records import MeterBand, Upcall, UpcallKind
from odp.sim.datapath import SimBackend
from odp.sim.network import Host
from odp.sim.state import (
    DEFAULT_HOST_IP,
    FORMAT,
    MAX_QUEUED_UPCALLS,
    SimState,
    StateError,
    match_text,
    new_host,
    save_host,
    save_state,
    state_to_json,
)
from odp.sim.store import load_host, load_state, open_state
from odp.text import parse_match


def udp_frame(dst_ip: str = "10.0.0.2", src_ip: str = "10.0.0.1", dport: int = 80, vlan: int | None = None) -> bytes:
    """Ethernet/IPv4/UDP built with struct (checksum left zero: the simulator does not check it)."""

    def ip(text: str) -> bytes:
        return bytes(int(x) for x in text.split("."))

    udp = struct.pack("!HHHH", 1234, dport, 8, 0)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip(src_ip), ip(dst_ip))
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    return bytes.fromhex("020000000002020000000001") + tag + b"\x08\x00" + header + udp


FLOWS_G = [
    ("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)",
     "set(tunnel(tun_id=0x2a,dst=172.16.0.1,ttl=64,tp_dst=4790,flags(key))),2"),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.255.0)", "3"),
    ("in_port(1),eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4())", "pop_vlan,3"),
    ("in_port(3),eth(src=02:00:00:00:00:00/ff:ff:ff:00:00:00),eth_type(0x86dd),ipv6(dst=2001:db8::1,proto=17),"
     "udp(dst=53)", "drop"),
    ("in_port(3),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst=80),tcp_flags(+syn-ack)",
     "userspace(pid=7,userdata(0102)),1"),
    ("in_port(3),eth()", "1"),
]  # fmt: skip


def build_host() -> tuple[Host, SimState]:
    host = new_host()
    conn = Connection(SimBackend(host))
    g = conn.create_datapath("g")
    h = conn.create_datapath("h", features=2)
    host.add_interface("v1")
    host.add_interface("v3")
    host.add_interface("v2")
    g.add_vport("v1")
    g.add_vport("vx", "vxlan")
    g.add_vport("v3", port_no=3)
    g.add_vport("i0", "internal", port_no=7, upcall_pids=(5, 6))
    h.add_vport("vx2", "vxlan", dst_port=4790, extensions=["gbp"])
    h.add_vport("v2")
    h.add_vport("gn", "geneve")
    for match, actions in FLOWS_G:
        g.add_flow(match, actions)
    g.add_flow("in_port(2),eth(),eth_type(0x0806),arp()", "1", ufid=bytes(range(16)))
    h.add_flow(
        "tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.1,flags(+key)),in_port(1),eth(),eth_type(0x0800),ipv4()", "2"
    )
    # Traffic: hits (through VXLAN into h), a miss, a vlan hit, then stats everywhere.
    state = SimState(host)
    with h.listen() as listener:
        host.interface("v1").inject(udp_frame())
        host.interface("v1").inject(udp_frame())
        host.interface("v1").inject(udp_frame(dst_ip="10.0.0.7"))
        host.interface("v1").inject(udp_frame(vlan=5))
        host.interface("v1").inject(udp_frame(dst_ip="192.168.1.1"))
        g.modify_flow(FLOWS_G[0][0], FLOWS_G[0][1].replace("0x2a", "0x7"))
        host.interface("v1").inject(udp_frame())
        for up in listener.receive():
            state.queue_upcall("h", up, when=1700000000.25)
    # Deleted objects must not come back, and their numbers must not be reused.
    host.add_interface("gone")
    host.remove_interface("gone")
    return host, state


def snapshot(host: Host, *, lookup_costs: bool = True) -> dict[str, object]:
    """Everything the shared API reports about the host's datapaths.

    ``lookup_costs=False`` leaves out the megaflow mask/cache hit counters:
    the exact-match cache is not saved, so after a reload the first lookups
    probe the masks where the saved process would have hit its cache.
    """
    conn = Connection(SimBackend(host))
    out: dict[str, object] = {}
    for dp in sorted(conn.datapaths(), key=lambda d: d.name):
        flows = [(str(f.match), str(f.actions), f.ufid, f.stats, f.tcp_flags, f.used is None) for f in dp.flows()]
        info = dp.info()
        if not lookup_costs:
            info = replace(info, megaflow=replace(info.megaflow, mask_hit=0, cache_hit=0))
        out[dp.name] = (info, dp.vports(), flows)
    return out


def test_round_trip_keeps_datapaths_vports_flows_and_stats(tmp_path: Path) -> None:
    host, state = build_host()
    path = tmp_path / "state.json"
    save_state(state, path)
    loaded = load_state(path)
    assert snapshot(loaded.host) == snapshot(host)
    assert loaded.host.ip == host.ip and loaded.host.mac == host.mac
    assert {n: i.ifindex for n, i in loaded.host.interfaces.items()} == {
        n: i.ifindex for n, i in host.interfaces.items()
    }
    # used survives (as a time since), within the time the test takes
    for a, b in zip(
        Connection(SimBackend(host)).datapath("g").flows(), Connection(SimBackend(loaded.host)).datapath("g").flows()
    ):
        assert (a.used is None) == (b.used is None)
        if a.used is not None and b.used is not None:
            assert abs(a.used - b.used) <= 50
    # and saving again gives the same document (up to the used rounding)
    first, second = state_to_json(state), state_to_json(loaded)
    for doc in (first, second):
        for d in doc["datapaths"]:
            for f in d["flows"]:
                f["used"] = f["used"] is not None
    assert first == second


def test_loaded_host_behaves_the_same(tmp_path: Path) -> None:
    host, _ = build_host()
    save_host(host, tmp_path / "s.json")
    loaded = load_host(tmp_path / "s.json")
    for h in (host, loaded):
        for iface in h.interfaces.values():
            iface.sent.clear()
    frames = [udp_frame(), udp_frame(dst_ip="10.0.0.9"), udp_frame(vlan=5), udp_frame(dst_ip="8.8.8.8")]
    for h in (host, loaded):
        for frame in frames:
            h.interface("v1").inject(frame)
    for name in ("v1", "v2", "v3"):
        assert loaded.interface(name).receive() == host.interface(name).receive()
    assert snapshot(loaded, lookup_costs=False) == snapshot(host, lookup_costs=False)


def test_numbers_are_not_reused_after_reload(tmp_path: Path) -> None:
    host, _ = build_host()
    save_host(host, tmp_path / "s.json")
    loaded = load_host(tmp_path / "s.json")
    assert loaded.add_interface("new").ifindex == host.add_interface("new").ifindex
    assert loaded.new_pid() == host.new_pid()


def test_upcall_queue_round_trip(tmp_path: Path) -> None:
    _, state = build_host()
    assert state.upcalls["h"], "the tun_id 0x7 packet missed on h"
    save_state(state, tmp_path / "s.json")
    loaded = load_state(tmp_path / "s.json")
    assert [(q.time, q.upcall) for q in loaded.upcalls["h"]] == [(q.time, q.upcall) for q in state.upcalls["h"]]
    assert loaded.take_upcalls("h") and not loaded.take_upcalls("h")


def test_upcall_queue_is_bounded() -> None:
    state = SimState(new_host())
    up = Upcall(UpcallKind.MISS, 2, b"\x00" * 14, parse_match("in_port(1),eth()"))
    for i in range(MAX_QUEUED_UPCALLS + 10):
        state.queue_upcall("g", up, when=float(i))
    queue = state.upcalls["g"]
    assert len(queue) == MAX_QUEUED_UPCALLS and queue[0].time == 10.0


def test_missing_file_is_a_fresh_host_and_an_empty_one_an_error(tmp_path: Path) -> None:
    host = load_host(tmp_path / "none.json")
    assert not host.datapaths and host.ip is not None
    assert str(__import__("ipaddress").IPv4Address(host.ip)) == DEFAULT_HOST_IP
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(StateError, match=r"empty\.json: an empty file"):
        load_host(tmp_path / "empty.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
        ('{"format": "something else"}', "not an odp simulator state file"),
        (json.dumps({"format": FORMAT, "version": 99}), "version 99"),
        (json.dumps({"format": FORMAT, "version": 1, "host": {}}), "inconsistent state"),
    ],
)
def test_bad_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(StateError, match=message):
        load_host(path)


def test_bad_flow_in_file_names_the_problem(tmp_path: Path) -> None:
    _, state = build_host()
    doc = state_to_json(state)
    doc["datapaths"][0]["flows"][0]["match"] = "in_port(1),eth(),eth_type(0x0800)"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="needs an ipv4"):
        load_host(path)


def test_match_text_keeps_wildcarded_attributes() -> None:
    text = "in_port(1),eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4())"
    assert match_text(parse_match(text)) == text
    assert match_text(parse_match("eth(),eth_type(0/0xffff)")) == "eth(),eth_type(0/0xffff)"


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    host, _ = build_host()
    path = tmp_path / "dir" / "s.json"
    save_host(host, path)
    save_host(host, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.json"]
    assert json.loads(path.read_text())["format"] == FORMAT


def test_open_state_saves_only_on_success(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with open_state(path) as state:
        Connection(SimBackend(state.host)).create_datapath("g")
    assert "g" in load_host(path).datapaths
    with pytest.raises(RuntimeError), open_state(path) as state:
        Connection(SimBackend(state.host)).create_datapath("h")
        raise RuntimeError("command failed")
    assert "h" not in load_host(path).datapaths
    with open_state(path, write=False) as state:
        Connection(SimBackend(state.host)).create_datapath("k")
    assert "k" not in load_host(path).datapaths
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # no lock or journal file left behind


def test_open_state_serializes_concurrent_updates(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with open_state(path) as state:
        conn = Connection(SimBackend(state.host))
        conn.create_datapath("g")
        state.host.add_interface("v1")
        conn.datapath("g").add_vport("v1")
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            with open_state(path) as st:
                dp = Connection(SimBackend(st.host)).datapath("g")
                dp.add_flow(f"in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.1.{i})", "drop")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    flows = Connection(SimBackend(load_host(path))).datapath("g").flows()
    assert len(flows) == 12


@settings(max_examples=25, deadline=None)
@given(
    rules=st.lists(
        st.tuples(st.integers(0, 255), st.sampled_from([8, 16, 24, 32]), st.integers(1, 3)), min_size=1, max_size=8
    ),
    packets=st.lists(st.integers(0, 255), min_size=1, max_size=6),
)
def test_lookups_are_the_same_after_reload(
    tmp_path_factory: pytest.TempPathFactory, rules: list[tuple[int, int, int]], packets: list[int]
) -> None:
    """Overlapping flows with several masks: table order survives, so every packet finds the same flow."""
    host = new_host()
    conn = Connection(SimBackend(host))
    dp = conn.create_datapath("g")
    for name in ("p1", "p2", "p3"):
        host.add_interface(name)
        dp.add_vport(name)
    for octet, prefix, out in rules:
        mask = ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF).to_bytes(4, "big")
        mask_text = ".".join(str(b) for b in mask)
        match = f"in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.{octet}.0.0/{mask_text})"
        try:
            dp.add_flow(match, str(out))
        except Exception:  # overlapping with an earlier rule: the kernel refuses it too
            continue
    path = tmp_path_factory.mktemp("s") / "s.json"
    save_host(host, path)
    loaded = load_host(path)
    for h in (host, loaded):
        for octet in packets:
            h.interface("p1").inject(udp_frame(dst_ip=f"10.{octet}.0.0"))
    for name in ("p2", "p3"):
        assert loaded.interface(name).receive() == host.interface(name).receive()
    assert snapshot(loaded, lookup_costs=False) == snapshot(host, lookup_costs=False)


def test_meters_round_trip_with_slots_buckets_and_stats(tmp_path: Path) -> None:
    host = new_host()
    dp = Connection(SimBackend(host)).create_datapath("m")
    dp.set_meter(1500, MeterBand(rate=1000, burst=0))  # slot 476, burst 0: the bucket stays empty
    dp.set_meter(3, MeterBand(rate=8, burst=1, type=9), kbps=True, clear=True)
    dp.set_meter(7, [])
    frame = udp_frame()
    for meter_id in (1500, 3, 7):
        dp.execute(frame, f"meter({meter_id})")
    save_host(host, tmp_path / "s.json")
    loaded = Connection(SimBackend(load_host(tmp_path / "s.json"))).datapath("m")
    for meter_id in (1500, 3, 7):
        a, b = dp.get_meter(meter_id), loaded.get_meter(meter_id)
        assert (a.packets, a.bytes, a.bands) == (b.packets, b.bytes, b.bands)
        assert abs(a.used - b.used) <= 50
    # The loaded meters keep their configuration.
    m3 = load_host(tmp_path / "s.json").datapaths["m"].meters.lookup(3)
    assert m3 is not None and (m3.kbps, m3.keep_stats, m3.bands[0].type, m3.max_delta_t) == (True, False, 9, 125)
    assert loaded.set_meter(3, []) is None  # created with clear: no stats in the reply
    loaded.execute(frame, "meter(1500)")
    assert loaded.get_meter(1500).bands[0].packets == 2  # still dropping: the empty bucket was kept


def test_bad_meter_in_file_is_refused(tmp_path: Path) -> None:
    host = new_host()
    Connection(SimBackend(host)).create_datapath("m").set_meter(1, MeterBand(1, 1))
    doc = state_to_json(SimState(host))
    doc["datapaths"][0]["meters"]["meters"][0]["slot"] = 5000
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError, match=r"meter 1: slot 5000 is out of range"):
        load_state(path)


def test_round_trip_keeps_the_ipv6_underlay(tmp_path: Path) -> None:
    from odp.sim.network import Network
    from odp.sim.state import SimState

    net = Network()
    host = net.host("a", "172.16.0.1", ip6="2001:db8::a")
    net.host("b", "172.16.0.2", ip6="2001:db8::b")
    path = tmp_path / "state.json"
    save_state(SimState(host), path)
    loaded = load_state(path).host
    assert (loaded.ip6, loaded.neighbors6) == (host.ip6, host.neighbors6)
