"""A VXLAN full mesh on a controller's scale: install rate, packets/s end to end, memory.

Run on demand: ``python benchmarks/bench_mesh.py [--hosts 64] [--flows 100000] [--packets 1000000]``.

Every host has a datapath with a veth port (1) and a VXLAN port (2).  Host j
owns the inner addresses 10.j.0.0/16.  Each host gets one ingress flow per peer
(``tunnel(tun_id, src=peer, dst=self)`` -> veth) and egress flows for single
inner destinations spread over all its peers (``ipv4(dst)`` -> ``set(tunnel)``,
output to the VXLAN port), ``--flows`` flows in all, each built as fresh
``Match`` and ``Actions`` objects through the API (a controller's installs).
Then ``--packets`` frames are injected on the hosts' veths in turn, each to one
of its host's egress destinations: encapsulated, carried over the underlay,
decapsulated and output on the peer's veth (which nobody reads: its queue is
bounded, see bench_memory.py).  Times are CPU seconds of this process; memory
is the process's RSS and the Python heap (tracemalloc, measured in a second
pass so that tracing does not slow the timed one).
"""

from __future__ import annotations

import argparse
import gc
import struct
import time
import tracemalloc

from bench_memory import rss_mb

from odp.actions import Actions, Output, Set
from odp.datapath import Connection, Datapath
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match, Tunnel
from odp.sim import Network
from odp.sim.datapath import SimBackend
from odp.sim.network import Interface


def frame(src: int, dst: int, sport: int) -> bytes:
    udp = struct.pack("!HHHH", sport, 80, 8 + 64, 0)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 28 + 64, 0, 0, 64, 17, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp + bytes(64)


def inner(host: int, n: int) -> int:
    """Inner address ``n`` of host ``host`` (10.host.0.0/16)."""
    return (10 << 24) | (host << 16) | (n & 0xFFFF)


def build(n_hosts: int) -> tuple[Network, list[Datapath], list[Interface], list[int]]:
    net = Network()
    hosts = [net.host(f"h{i}", f"172.16.{i // 250}.{i % 250 + 1}") for i in range(n_hosts)]
    dps, veths = [], []
    for h in hosts:
        dp = Connection(SimBackend(h)).create_datapath("dp")
        veths.append(h.add_interface("veth"))
        dp.add_vport("veth")
        dp.add_vport("vx", "vxlan")
        dps.append(dp)
    return net, dps, veths, [h.ip or 0 for h in hosts]


def install(dps: list[Datapath], ips: list[int], n_flows: int) -> list[list[int]]:
    """Ingress flows (one per peer) and egress flows (the rest); returns each host's egress destinations."""
    n = len(dps)
    for j, dp in enumerate(dps):
        for i in range(n):
            if i != j:
                tunnel = Tunnel(tun_id=i * n + j + 1, ipv4_src=ips[i], ipv4_dst=ips[j])
                dp.add_flow(
                    Match(tunnel, InPort(2), Ethernet(), EthType(0x0800), Ipv4()),
                    Actions.of(Output(1)),
                )
    egress = max(0, n_flows - n * (n - 1)) // n
    dests: list[list[int]] = [[] for _ in range(n)]
    for i, dp in enumerate(dps):
        for k in range(egress):
            j = (i + 1 + k % (n - 1)) % n
            dst = inner(j, k)
            dests[i].append(dst)
            dp.add_flow(
                Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst=dst)),
                Actions.of(Set(Tunnel(tun_id=i * n + j + 1, ipv4_dst=ips[j], ttl=64)), Output(2)),
            )
    return dests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=64)
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--frames", type=int, default=4096, help="distinct frames per host (inner source ports)")
    args = ap.parse_args()
    rss0 = rss_mb()
    net, dps, veths, ips = build(args.hosts)
    gc.collect()
    t0 = time.process_time_ns()
    dests = install(dps, ips, args.flows)
    t_install = (time.process_time_ns() - t0) / 1e9
    n_flows = sum(len(dp.flows()) for dp in dps)
    print(f"{args.hosts} hosts, VXLAN full mesh: {n_flows:,} flows installed at {n_flows / t_install:,.0f}/s")
    print(f"  RSS after install {rss_mb():.0f} MB ({rss_mb() - rss0:.0f} MB more than before building the mesh)")
    n = args.hosts
    # Each host's frames: its egress destinations in turn, with inner source ports varying.
    frames = [
        [frame(inner(i, 0xFFFF), dests[i][k % len(dests[i])], 1024 + k % 50_000) for k in range(args.frames)]
        for i in range(n)
    ]
    injects = [v.inject for v in veths]
    checkpoints = 5
    step = args.packets // checkpoints
    print(f"  {'packets':>10} {'packets/s':>10} {'RSS MB':>8} {'delivered':>10} {'queue drops':>12}")
    sent = 0
    for _ in range(checkpoints):
        t0 = time.process_time_ns()
        for p in range(sent, sent + step):
            host = p % n
            injects[host](frames[host][(p // n) % args.frames])
        dt = (time.process_time_ns() - t0) / 1e9
        sent += step
        delivered = sum(len(v.sent) + v.sent.dropped for v in veths)
        drops = sum(v.sent.dropped for v in veths)
        print(f"  {sent:>10,} {step / dt:>10,.0f} {rss_mb():>8.0f} {delivered:>10,} {drops:>12,}")
    misses = sum(dp.stats().missed for dp in dps)
    print(f"  datapath misses: {misses} (every packet should hit on both hosts)")
    # The Python heap, traced over a tenth of the packets once the queues are full.
    gc.collect()
    tracemalloc.start()
    for p in range(sent, sent + max(1, args.packets // 10)):
        host = p % n
        injects[host](frames[host][(p // n) % args.frames])
    gc.collect()
    heap, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  Python heap allocated while tracing {args.packets // 10:,} more packets: {heap / 1e6:.1f} MB kept, "
        f"{peak / 1e6:.1f} MB peak; RSS {rss_mb():.0f} MB"
    )
    del net


if __name__ == "__main__":
    main()
