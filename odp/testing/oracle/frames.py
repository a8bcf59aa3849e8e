"""A seeded corpus of Ethernet frames for the kernel oracle, built by hand (no scapy).

:func:`random_frame` returns a frame and the header fields it carries (the
values a flow matching it would use): Ethernet with 0-2 VLAN tags, IPv4 and
IPv6 (with fragments, options, extension headers), TCP, UDP, SCTP, ICMP,
ICMPv6 neighbour discovery, ARP, MPLS and an unknown ethertype; then, now
and then, a damage: truncated anywhere, a bad IHL or total length, a bad
IPv6 payload length.  Checksums are computed, so the kernel's incremental
checksum updates have something real to update.  Everything comes from the
``random.Random`` passed in: the same seed gives the same frames.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:01:03", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01")
IP4S = ("10.0.0.1", "10.0.0.2", "10.0.1.7", "192.168.0.1", "172.16.5.4", "224.0.0.5")
IP6S = ("2001:db8::1", "2001:db8::2", "2001:db8:1::7", "fe80::1", "ff02::1")
PORTS = (53, 80, 443, 1000, 4789, 65535)

Fields = dict[str, object]


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def ip4_bytes(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def ip6_bytes(ip: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(ip).packed


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Frame:
    """A frame and the fields a flow would match it on (``"ipv4.src"`` -> ``"10.0.0.1"``)."""

    data: bytes
    kind: str
    fields: Fields = field(default_factory=dict)


def _l4(rng: random.Random, proto: int, f: Fields, pseudo: bytes) -> bytes:
    payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, 4, 18, 40))))
    if proto in (6, 17, 132):
        sport, dport = rng.choice(PORTS), rng.choice(PORTS)
        f["l4.src"], f["l4.dst"] = sport, dport
    if proto == 6:
        flags = rng.choice((0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x0FFF & rng.randrange(1 << 12)))
        f["tcp_flags"] = flags
        hdr = struct.pack("!HHIIHHHH", sport, dport, 1, 0, (5 << 12) | flags, 8192, 0, 0)
        seg = hdr + payload
        c = csum(pseudo + struct.pack("!HH", 6, len(seg)) + seg)
        return seg[:16] + struct.pack("!H", c) + seg[18:]
    if proto == 17:
        seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        c = 0 if rng.random() < 0.2 else (csum(pseudo + struct.pack("!HH", 17, len(seg)) + seg) or 0xFFFF)
        return seg[:6] + struct.pack("!H", c) + seg[8:]
    if proto == 132:
        return struct.pack("!HHII", sport, dport, 7, 0) + payload  # CRC32c left 0: the datapath does not check it
    if proto in (1, 58):
        t, code = rng.choice(((8, 0), (0, 0), (3, 1), (11, 0), (128, 0), (129, 0), (133, 0)))
        f["icmp.type"], f["icmp.code"] = t, code
        msg = struct.pack("!BBHI", t, code, 0, 0x12345678) + payload
        c = csum((pseudo + struct.pack("!HH", 58, len(msg)) if proto == 58 else b"") + msg)
        return msg[:2] + struct.pack("!H", c) + msg[4:]
    return payload


def _ipv4(rng: random.Random, f: Fields) -> bytes:
    src, dst = rng.choice(IP4S), rng.choice(IP4S)
    proto = rng.choice((6, 17, 1, 132, 6, 17, 47))
    tos, ttl = rng.choice((0, 0x10, 0xB8, 0x03)), rng.choice((64, 1, 0, 255))
    frag = rng.choice((0, 0, 0, 1, 2))  # none, first, later
    ihl = rng.choice((5, 5, 5, 6))
    f.update({"ipv4.src": src, "ipv4.dst": dst, "ipv4.proto": proto, "ipv4.tos": tos, "ipv4.ttl": ttl})
    f["ipv4.frag"] = ("no", "first", "later")[frag]
    pseudo = ip4_bytes(src) + ip4_bytes(dst)
    body = _l4(rng, proto, f, pseudo) if frag != 2 else bytes(24)
    flags_off = {0: 0x4000 if rng.random() < 0.5 else 0, 1: 0x2000, 2: 0x2000 | 10}[frag]
    opts = b"\x01\x01\x01\x00" if ihl == 6 else b""
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, tos, 20 + len(opts) + len(body), rng.randrange(65536),
                      flags_off, ttl, proto, 0, ip4_bytes(src), ip4_bytes(dst)) + opts  # fmt: skip
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + body


def _ipv6(rng: random.Random, f: Fields) -> bytes:
    src, dst = rng.choice(IP6S), rng.choice(IP6S)
    proto = rng.choice((6, 17, 58, 58, 132, 44, 0))
    tclass, label, hlim = rng.choice((0, 0x70, 0xFF)), rng.choice((0, 0x12345, 0xFFFFF)), rng.choice((64, 1, 255))
    f.update({"ipv6.src": src, "ipv6.dst": dst, "ipv6.tclass": tclass, "ipv6.label": label, "ipv6.hlimit": hlim})
    pseudo = ip6_bytes(src) + ip6_bytes(dst)
    frag = "no"
    ext = b""
    nxt = proto
    if proto == 44:  # a fragment header in front of UDP
        later = rng.random() < 0.5
        frag = "later" if later else "first"
        nxt = 17
        ext = struct.pack("!BBHI", 17, 0, (8 << 3 if later else 0) | 1, 7)
    elif proto == 0:  # hop-by-hop then TCP
        nxt = 6
        ext = struct.pack("!BB6s", 6, 0, b"\x01\x04\0\0\0\0")
    f["ipv6.proto"], f["ipv6.frag"] = nxt, frag
    if nxt == 58 and rng.random() < 0.6:  # neighbour discovery
        t = rng.choice((135, 136))
        target, ll = rng.choice(IP6S), rng.choice(MACS)
        f.update({"icmp.type": t, "icmp.code": 0, "nd.target": target, "nd.ll": ll})
        msg = struct.pack("!BBHI16s", t, 0, 0, 0, ip6_bytes(target)) + struct.pack(
            "!BB6s", 1 if t == 135 else 2, 1, mac_bytes(ll)
        )
        c = csum(pseudo + struct.pack("!HH", 58, len(msg)) + msg)
        body = msg[:2] + struct.pack("!H", c) + msg[4:]
    elif frag == "later":
        body = bytes(16)
    else:
        body = _l4(rng, nxt, f, pseudo)
    payload = ext + body
    first = proto if proto in (44, 0) else nxt
    return struct.pack("!IHBB16s16s", (6 << 28) | (tclass << 20) | label, len(payload), first, hlim,
                       ip6_bytes(src), ip6_bytes(dst)) + payload  # fmt: skip


def _arp(rng: random.Random, f: Fields) -> bytes:
    op, sha, tha = rng.choice((1, 2, 3)), rng.choice(MACS), rng.choice(MACS)
    sip, tip = rng.choice(IP4S), rng.choice(IP4S)
    f.update({"arp.op": op, "arp.sha": sha, "arp.tha": tha, "arp.sip": sip, "arp.tip": tip})
    return struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac_bytes(sha), ip4_bytes(sip), mac_bytes(tha), ip4_bytes(tip)
    )


def _mpls(rng: random.Random, f: Fields) -> bytes:
    n = rng.choice((1, 1, 2, 3))
    out = b""
    for i in range(n):
        label, tc, ttl = rng.choice((16, 100, 0xFFFFF, 3)), rng.randrange(8), rng.choice((64, 1, 0))
        bos = 1 if i == n - 1 else 0
        if i == 0:
            f.update({"mpls.label": label, "mpls.tc": tc, "mpls.ttl": ttl, "mpls.bos": bos})
        out += struct.pack("!I", (label << 12) | (tc << 9) | (bos << 8) | ttl)
    return out + _ipv4(rng, {})


L3 = {"ipv4": (0x0800, _ipv4), "ipv6": (0x86DD, _ipv6), "arp": (0x0806, _arp), "mpls": (0x8847, _mpls)}


def random_frame(rng: random.Random, kind: str | None = None) -> Frame:
    """One frame of ``kind`` (ipv4, ipv6, arp, mpls, other; random when None), maybe VLAN-tagged, maybe damaged."""
    kind = kind or rng.choice(("ipv4", "ipv4", "ipv4", "ipv6", "ipv6", "arp", "mpls", "other"))
    f: Fields = {"eth.src": rng.choice(MACS[:3]), "eth.dst": rng.choice(MACS)}
    if kind == "other":
        eth_type = rng.choice((0x88B5, 0x1234, 0x05DC, 0x8100))
        body = bytes(rng.randrange(256) for _ in range(rng.choice((0, 30, 46))))
        if eth_type == 0x05DC:
            body = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + body  # 802.2 SNAP: the length is not an ethertype
    else:
        eth_type, build = L3[kind]
        body = build(rng, f)
    f["eth_type"] = eth_type
    tags = b""
    ntags = rng.choice((0, 0, 0, 0, 1, 1, 2)) if eth_type != 0x8100 else 0
    vlans = []
    for i in range(ntags):
        tpid = 0x88A8 if ntags == 2 and i == 0 else 0x8100
        vid, pcp = rng.choice((5, 100, 0, 4095)), rng.randrange(8)
        vlans.append((tpid, vid, pcp))
        tags += struct.pack("!HH", tpid, (pcp << 13) | vid)
    if vlans:
        f["vlans"] = vlans
    data = mac_bytes(str(f["eth.dst"])) + mac_bytes(str(f["eth.src"])) + tags + struct.pack("!H", eth_type) + body
    if rng.random() < 0.12:
        data = _damage(rng, data, 14 + len(tags), kind)
        f["damaged"] = True
    return Frame(data, kind, f)


def _damage(rng: random.Random, data: bytes, l3: int, kind: str) -> bytes:
    how = rng.choice(("truncate", "truncate", "ihl", "len", "zero"))
    if how == "truncate" or kind not in ("ipv4", "ipv6"):
        return data[: max(14, rng.randrange(14, len(data) + 1))]
    b = bytearray(data)
    if how == "ihl" and kind == "ipv4":
        b[l3] = 0x40 | rng.choice((0, 3, 15))
    elif how == "len":
        off = l3 + (2 if kind == "ipv4" else 4)
        struct.pack_into("!H", b, off, rng.choice((0, 10, 0xFFFF)))
    else:
        b[l3] = rng.choice((0x00, 0x65, 0x45 if kind == "ipv6" else 0x60))
    return bytes(b)
