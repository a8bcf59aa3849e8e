"""Memory of the simulator under traffic: a VXLAN mesh stays flat.

Run on demand: ``python benchmarks/bench_memory.py [--hosts 64] [--packets 1000000]``.

Every host has a datapath with a veth port and a VXLAN port; host i sends to
host i+1 (mod N) through VXLAN, which decapsulates and outputs to its veth,
which nobody reads.  Interface queues, ``Host.underlay_sent`` and
``Network.log`` used to keep every frame (3.1 KB more per packet); now they
are bounded, so memory stops growing once they are full.  The figures are
Python heap (tracemalloc, current) and the process's RSS at each checkpoint,
after the warm-up that fills the queues and rings.
"""

from __future__ import annotations

import argparse
import gc
import resource
import struct
import tracemalloc

from odp.datapath import Connection
from odp.sim import Network
from odp.sim.datapath import SimBackend


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def frame(i: int) -> bytes:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 28 + 64, 0, 0, 64, 17, 0, 0x0A000001, 0x0A000002)
    udp = struct.pack("!HHHH", 1000 + i % 1000, 80, 8 + 64, 0)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp + bytes(64)


def mesh(n: int) -> tuple[Network, list[object]]:
    net = Network()
    hosts = [net.host(f"h{i}", f"172.16.{i // 250}.{i % 250 + 1}") for i in range(n)]
    for i, h in enumerate(hosts):
        dp = Connection(SimBackend(h)).create_datapath("dp")
        h.add_interface("veth")
        dp.add_vport("veth")
        dp.add_vport("vx", "vxlan")
        peer, prev = hosts[(i + 1) % n], hosts[(i - 1) % n]
        dp.add_flow(
            "in_port(1),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x{i + 1:x},dst={_ip(peer.ip)},ttl=64,flags(key))),2",
        )
        dp.add_flow(
            f"tunnel(tun_id=0x{(i - 1) % n + 1:x},src={_ip(prev.ip)},dst={_ip(h.ip)},flags(+key)),in_port(2),"
            "eth(),eth_type(0x0800),ipv4()",
            "1",
        )
    return net, [h.interface("veth") for h in hosts]


def _ip(v: int | None) -> str:
    assert v is not None
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=64)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--checkpoints", type=int, default=5)
    args = ap.parse_args()
    net, ifaces = mesh(args.hosts)
    frames = [frame(i) for i in range(1000)]
    tracemalloc.start()
    step = args.packets // args.checkpoints
    print(f"{args.hosts} hosts in a VXLAN ring; {args.packets:,} packets, none read")
    print(f"{'packets':>10} {'heap MB':>9} {'RSS MB':>8} {'underlay frames':>16} {'queued':>8} {'queue drops':>12}")
    n = 0
    for _ in range(args.checkpoints):
        for _ in range(step):
            ifaces[n % args.hosts].inject(frames[n % 1000])  # type: ignore[attr-defined]
            n += 1
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] / 1e6
        queued = sum(len(i.sent) for i in ifaces)  # type: ignore[attr-defined]
        drops = sum(i.sent.dropped for i in ifaces)  # type: ignore[attr-defined]
        print(f"{n:>10,} {heap:>9.1f} {rss_mb():>8.1f} {net.log.total:>16,} {queued:>8,} {drops:>12,}")


if __name__ == "__main__":
    main()
