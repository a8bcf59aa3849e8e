"""The main job on the simulator, end to end: two hosts joined by VXLAN.

Run with ``python3 -m odp demo``.  It needs nothing but Python: no root, no
kernel module, no third-party package.
"""

from __future__ import annotations

import struct

from odp.datapath import Connection
from odp.sim import Network
from odp.sim.datapath import SimBackend


def udp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A small Ethernet/IPv4/UDP frame built with struct (the demo avoids scapy)."""

    def mac(text: str) -> bytes:
        return bytes(int(b, 16) for b in text.split(":"))

    def ip(text: str) -> bytes:
        return bytes(int(b) for b in text.split("."))

    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip(src_ip), ip(dst_ip))
    csum = sum(struct.unpack("!10H", header))
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    header = header[:10] + struct.pack("!H", ~csum & 0xFFFF) + header[12:]
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + header + udp


def main() -> int:
    net = Network()
    host_a = net.host("a", "172.16.0.1")
    host_b = net.host("b", "172.16.0.2")
    dp_a = Connection(SimBackend(host_a)).create_datapath("dp-a")
    dp_b = Connection(SimBackend(host_b)).create_datapath("dp-b")
    host_a.add_interface("veth-a")
    host_b.add_interface("veth-b")
    port_a = dp_a.add_vport("veth-a").port_no
    vx_a = dp_a.add_vport("vx", "vxlan").port_no
    port_b = dp_b.add_vport("veth-b").port_no
    vx_b = dp_b.add_vport("vx", "vxlan").port_no

    print("# host a: packets from veth-a go into VXLAN VNI 42 towards host b")
    dp_a.add_flow(
        f"in_port({port_a}),eth(),eth_type(0x0800),ipv4()",
        f"set(tunnel(tun_id=0x2a,dst=172.16.0.2,ttl=64,flags(key))),{vx_a}",
    )
    print("# host b: VNI 42 from host a goes out of veth-b")
    dp_b.add_flow(
        f"tunnel(tun_id=0x2a,src=172.16.0.1,dst=172.16.0.2,flags(+key)),in_port({vx_b}),eth(),eth_type(0x0800),ipv4()",
        f"{port_b}",
    )

    frame = udp_frame("02:00:00:00:00:0a", "02:00:00:00:00:0b", "10.0.0.1", "10.0.0.2", 1234, 80, b"hello")
    with dp_b.listen() as misses:
        host_a.interface("veth-a").inject(frame)
        host_a.interface("veth-a").inject(frame)
        delivered = host_b.interface("veth-b").receive()
        print(
            f"\n{len(delivered)} frame(s) came out of host b's veth-b; identical to what was sent: "
            f"{all(f == frame for f in delivered)}"
        )
        print(f"the underlay carried {net.log.total} VXLAN packet(s) of {len(net.log[0])} bytes each")

        print("\n$ dump-flows dp-a")
        for flow in dp_a.flows():
            print(flow)
        print("$ dump-flows dp-b")
        for flow in dp_b.flows():
            print(flow)

        print("\n# a packet with another VNI misses on host b; the miss carries the tunnel metadata")
        dp_a.modify_flow(
            f"in_port({port_a}),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x7,dst=172.16.0.2,ttl=64,flags(key))),{vx_a}",
        )
        host_a.interface("veth-a").inject(frame)
        for upcall in misses.receive():
            print(f"MISS on port {upcall.in_port}: {upcall.key}")
    stats = dp_b.stats()
    print(f"\ndp-b: lookups: hit:{stats.hit} missed:{stats.missed} lost:{stats.lost}  flows: {stats.flows}")
    return 0
