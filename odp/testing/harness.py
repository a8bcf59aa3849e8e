"""A PTF-style packet test harness over any :class:`~odp.testing.topology.Topology`.

    h = PacketHarness(topology)
    h.send_packet(p1, Ether()/IP(dst="10.0.0.2")/UDP())
    h.verify_packet(expected, p2)
    h.verify_no_other_packets()

Expected packets shorter than 60 bytes are compared on their prefix (the
wire pads them); a :class:`Mask` ignores fields such as the IP id, checksums
or the UDP source port.  Failures list what did arrive, port by port.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from odp.datapath import UpcallListener
from odp.keys import Match
from odp.records import Upcall, UpcallKind
from odp.testing.topology import Port, Topology

ETH_MIN = 60


def to_bytes(pkt: Any) -> bytes:
    if isinstance(pkt, (bytes, bytearray)):
        return bytes(pkt)
    return bytes(pkt)  # scapy packets convert with bytes()


def describe(frame: bytes) -> str:
    """One line per frame: scapy's summary when scapy is there, else hex."""
    try:
        from scapy.layers.l2 import Ether

        return f"{Ether(frame).summary()} [{len(frame)} bytes] {frame[:64].hex()}"
    except Exception:
        return f"[{len(frame)} bytes] {frame[:64].hex()}"


@dataclass
class Mask:
    """Which bits of an expected packet must match (PTF's Mask).

    ``Mask(pkt).ignore("IP", "id").ignore("IP", "chksum")`` builds a bit mask
    over scapy's field offsets; ``ignore_bytes(offset, length)`` works on raw
    offsets.
    """

    expected: bytes
    bits: bytearray = field(init=False)
    _pkt: Any = None

    def __init__(self, pkt: Any) -> None:
        self._pkt = pkt
        self.expected = to_bytes(pkt)
        self.bits = bytearray(b"\xff" * len(self.expected))

    def ignore_bytes(self, offset: int, length: int) -> Mask:
        for i in range(offset, min(offset + length, len(self.bits))):
            self.bits[i] = 0
        return self

    def ignore(self, layer: str, field_name: str) -> Mask:
        """Ignore a scapy field, e.g. ``ignore("IP", "id")`` or ``ignore("UDP", "sport")``."""
        if self._pkt is None or isinstance(self._pkt, (bytes, bytearray)):
            raise ValueError("ignore() needs the expected packet as a scapy packet")
        offset = 0
        layer_pkt = self._pkt
        while layer_pkt is not None and layer_pkt.__class__.__name__ != layer:
            offset += len(layer_pkt) - len(layer_pkt.payload)
            layer_pkt = layer_pkt.payload if layer_pkt.payload else None
        if layer_pkt is None:
            raise ValueError(f"the expected packet has no {layer} layer")
        bit = 0
        for f in layer_pkt.fields_desc:
            size = f.i2len(layer_pkt, layer_pkt.getfieldval(f.name)) * 8 if not hasattr(f, "size") else f.size
            if hasattr(f, "sz"):
                size = int(f.sz * 8)
            if f.name == field_name:
                start, end = offset * 8 + bit, offset * 8 + bit + size
                for b in range(start, end):
                    self.bits[b // 8] &= ~(0x80 >> (b % 8)) & 0xFF
                return self
            bit += size
        raise ValueError(f"{layer} has no field {field_name!r}")

    def matches(self, frame: bytes) -> bool:
        exp = self.expected
        if len(frame) < len(exp):
            return False
        if len(frame) != len(exp) and len(exp) >= ETH_MIN:
            return False
        return all((a ^ b) & m == 0 for a, b, m in zip(exp, frame, self.bits))


def _matches(expected: bytes | Mask, frame: bytes) -> bool:
    if isinstance(expected, Mask):
        return expected.matches(frame)
    if len(expected) < ETH_MIN:
        # Short frames are padded on the wire: compare the prefix only.
        return frame[: len(expected)] == expected and (len(frame) == len(expected) or len(frame) <= ETH_MIN)
    return frame == expected


class PacketHarness:
    """send_packet / verify_packet / verify_no_other_packets over a topology."""

    def __init__(self, topology: Topology, timeout: float | None = None) -> None:
        self.topology = topology
        self.timeout = timeout if timeout is not None else (0.0 if topology.backend_name == "sim" else 0.5)
        self._ports: dict[int | str, Port] = {}
        self._arrived: dict[str, list[bytes]] = {}

    def register(self, *ports: Port) -> None:
        for p in ports:
            self._ports[p.name] = p
            self._arrived.setdefault(p.name, [])

    def _port(self, port: Port | str) -> Port:
        if isinstance(port, str):
            return self._ports[port]
        if port.name not in self._ports:
            self.register(port)
        return port

    def _poll(self, timeout: float) -> None:
        for p in self._ports.values():
            for frame in p.receive(timeout):
                if not self.topology.is_noise(frame):
                    self._arrived[p.name].append(frame)

    def send_packet(self, port: Port | str, pkt: Any) -> None:
        self._port(port).send(to_bytes(pkt))

    def _arrivals(self) -> str:
        lines = []
        for name, frames in self._arrived.items():
            for f in frames:
                lines.append(f"  on {name}: {describe(f)}")
        return "\n".join(lines) if lines else "  nothing arrived on any port"

    def verify_packet(self, pkt: Any, port: Port | str, timeout: float | None = None) -> bytes:
        """Assert that ``pkt`` (bytes, scapy packet or Mask) came out of ``port``; returns the frame."""
        p = self._port(port)
        expected: bytes | Mask = pkt if isinstance(pkt, Mask) else to_bytes(pkt)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            self._poll(0.05 if self.topology.backend_name != "sim" else 0.0)
            for i, frame in enumerate(self._arrived[p.name]):
                if _matches(expected, frame):
                    del self._arrived[p.name][i]
                    return frame
            if time.monotonic() >= deadline:
                break
        exp_bytes = expected.expected if isinstance(expected, Mask) else expected
        raise AssertionError(
            f"expected packet not received on {p.name}:\n  expected: {describe(exp_bytes)}\n"
            f"what arrived:\n{self._arrivals()}"
        )

    def verify_packets(self, pkt: Any, ports: Iterable[Port | str]) -> None:
        for port in ports:
            self.verify_packet(pkt, port)

    def verify_no_packet(self, pkt: Any, port: Port | str, timeout: float | None = None) -> None:
        p = self._port(port)
        expected: bytes | Mask = pkt if isinstance(pkt, Mask) else to_bytes(pkt)
        self._poll(self.timeout if timeout is None else timeout)
        for frame in self._arrived[p.name]:
            if _matches(expected, frame):
                raise AssertionError(f"unexpected packet on {p.name}: {describe(frame)}")

    def verify_no_other_packets(self, timeout: float | None = None) -> None:
        self._poll(self.timeout if timeout is None else timeout)
        if any(self._arrived.values()):
            text = self._arrivals()
            for frames in self._arrived.values():
                frames.clear()
            raise AssertionError(f"unexpected packets:\n{text}")

    def received(self, port: Port | str) -> list[bytes]:
        """Take every frame that came out of ``port`` so far."""
        p = self._port(port)
        self._poll(self.timeout)
        frames = self._arrived[p.name]
        self._arrived[p.name] = []
        return frames

    def expect_miss(
        self,
        listener: UpcallListener,
        key: Match | str | None = None,
        *,
        in_port: int | None = None,
        timeout: float | None = None,
    ) -> Upcall:
        """Wait for a MISS upcall (optionally with this key, compared mask-aware) and return it."""
        from odp.text import parse_match

        want = parse_match(key) if isinstance(key, str) else key
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout) + 0.5
        seen: list[Upcall] = []
        while True:
            for up in listener.receive(timeout=0.1 if self.topology.backend_name != "sim" else 0.0):
                if self.topology.is_noise(up.packet):
                    continue
                seen.append(up)
                if up.kind != UpcallKind.MISS:
                    continue
                if in_port is not None and up.in_port != in_port:
                    continue
                if want is not None and not key_covers(up.key, want):
                    continue
                return up
            if time.monotonic() >= deadline:
                break
        got = "\n".join(f"  {u.kind.name} in_port={u.in_port} key={u.key}" for u in seen) or "  no upcall"
        raise AssertionError(f"expected a miss with key {want} (in_port={in_port}); upcalls seen:\n{got}")


def key_covers(key: Match, want: Match) -> bool:
    """Whether every field ``want`` specifies (by its mask) has that value in ``key``."""
    from odp.keys import Encap, FixedKeyAttr

    have = {a.TYPE: a for a in key.attrs}
    for w in want.attrs:
        h = have.get(w.TYPE)
        if h is None:
            if w.is_wildcard():
                continue
            return False
        if isinstance(w, FixedKeyAttr) and isinstance(h, FixedKeyAttr):
            for (_, wm), (_, hm) in zip(w.items(), h.items()):
                if (wm.value ^ hm.value) & wm.mask:
                    return False
        elif isinstance(w, Encap) and isinstance(h, Encap):
            if not key_covers(Match(*h.attrs), Match(*w.attrs)):
                return False
        elif w != h:
            return False
    return True
