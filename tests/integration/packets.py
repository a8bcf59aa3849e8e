"""Packets the conformance suite sends (scapy, built once per call)."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"
IP1 = "10.0.0.1"
IP2 = "10.0.0.2"


def eth(**kw: Any) -> Any:
    return Ether(src=kw.pop("src", MAC1), dst=kw.pop("dst", MAC2), **kw)


def udp4(sport: int = 1234, dport: int = 5678, *, src: str = IP1, dst: str = IP2, ttl: int = 64, tos: int = 0) -> Any:
    return eth() / IP(src=src, dst=dst, ttl=ttl, tos=tos) / UDP(sport=sport, dport=dport) / (b"x" * 18)


def tcp4(sport: int = 1234, dport: int = 80, flags: str = "S", *, src: str = IP1, dst: str = IP2) -> Any:
    return eth() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)


def icmp4(type_: int = 8, code: int = 0) -> Any:
    return eth() / IP(src=IP1, dst=IP2) / ICMP(type=type_, code=code)


def arp_request(psrc: str = IP1, pdst: str = IP2) -> Any:
    return Ether(src=MAC1, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC1, psrc=psrc, pdst=pdst)


def udp6(sport: int = 1234, dport: int = 5678) -> Any:
    return Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=sport, dport=dport)


def vlan_udp4(vid: int = 10, pcp: int = 0) -> Any:
    return Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=vid, prio=pcp) / IP(src=IP1, dst=IP2) / UDP(sport=1, dport=2)
