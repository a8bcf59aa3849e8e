"""Simulator conntrack throughput: packets/s through ``ct(zone=1),recirc(1)`` and
then an established-flow output, with N connections in the table.

Run on demand: ``python benchmarks/bench_conntrack.py [--connections 100000] [--proto udp|tcp]``.

The table is filled through the datapath itself (each connection's first packet
through ``ct(zone=1,commit)``, then its reply), then every connection's packets
are sent again through ``ct(zone=1),recirc(1)`` + ``recirc_id(1),ct_state(+est)``
-> output.  Times are CPU seconds of this process (``time.process_time``), best
of ``--rounds``, as in bench_sim.py.
"""

from __future__ import annotations

import argparse
import struct
import time

from odp.datapath import Connection
from odp.sim.datapath import SimBackend
from odp.sim.network import Host


def frame(src: int, dst: int, proto: int, sport: int, dport: int) -> bytes:
    """An Ethernet/IPv4 UDP datagram or TCP ACK segment (checksums are not looked at)."""
    l4 = (
        struct.pack("!HHHH", sport, dport, 8, 0)
        if proto == 17
        else struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x10, 8192, 0, 0)
    )
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + l4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=100_000)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--proto", choices=("udp", "tcp"), default="udp")
    args = ap.parse_args()
    proto = 17 if args.proto == "udp" else 6
    host = Host("bench")
    host.add_interface("in")
    host.add_interface("out")
    dp = Connection(SimBackend(host)).create_datapath("bench")
    dp.add_vport("in")
    dp.add_vport("out")
    # Fill: commit every connection (port 1) and answer it (port 2), so that it is established.
    dp.add_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(zone=1,commit),2")
    dp.add_flow("recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4()", "ct(zone=1,commit),1")
    fwd, rev = [], []
    for i in range(args.connections):
        src = 0x0A000000 | (i >> 8 & 0xFF) << 8 | (i & 0xFF)
        sport = 1024 + (i >> 16)
        fwd.append(frame(src, 0x0B000001, proto, sport, 80))
        rev.append(frame(0x0B000001, src, proto, 80, sport))
    into, back = host.interface("in"), host.interface("out")
    t0 = time.process_time()
    # TCP: ACK segments, each connection picked up mid-stream (nf_conntrack_tcp_loose) and answered.
    for f, r in zip(fwd, rev):
        into.inject(f)
        back.inject(r)
    fill = time.process_time() - t0
    assert host.conntrack.count == args.connections, host.conntrack.count
    into.sent.clear()
    back.sent.clear()
    # Measure: ct(zone=1),recirc(1), then the established flow outputs.
    dp.modify_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4()", "ct(zone=1),recirc(0x1)")
    dp.add_flow("recirc_id(0x1),ct_state(+trk+est),in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    n = args.packets
    stream = [fwd[i % len(fwd)] for i in range(0, n * 7919, 7919)]  # spread over the table
    best = float("inf")
    for _ in range(args.rounds):
        back.sent.clear()
        t0 = time.process_time()
        inject = into.inject
        for f in stream:
            inject(f)
        best = min(best, time.process_time() - t0)
        assert len(back.sent) == n, len(back.sent)
    print(f"{args.connections:,} {args.proto.upper()} connections (filled in {fill:.1f} s, 2 packets each)")
    print(f"ct(zone=1),recirc(1) + established output: {n / best:>12,.0f} packets/s")


if __name__ == "__main__":
    main()
