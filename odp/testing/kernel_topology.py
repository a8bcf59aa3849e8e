"""The kernel side of the test topologies: veth pairs driven through AF_PACKET.

``KernelTopology().add_port(dp, "p1")`` creates a veth pair ``p1`` /
``p1.pN``, attaches ``p1`` to the datapath as a netdev vport and opens a raw
``AF_PACKET`` socket on the peer: :meth:`KernelPort.send` puts a frame on the
peer, so it enters the datapath on ``p1``; :meth:`KernelPort.receive` returns
the frames the datapath sent out of ``p1`` (they arrive at the peer).

Both ends have IPv6 disabled before they come up (no router/neighbour
solicitations, no MLD reports) and no IPv4 address, so the only traffic on
them is the test's.  The peer socket is promiscuous, ignores what it sends
itself, and asks for ``PACKET_AUXDATA`` so that a VLAN tag the veth stripped
on receive (VLAN offload) is put back into the frame.

:meth:`KernelTopology.add_underlay` gives the host an IPv4 address on a veth
whose far end the test drives, for tunnel vports (VXLAN) to send and receive
through.

:meth:`KernelTopology.close` removes the datapaths (which detaches the
vports), then every veth it created, even after failures half way.  Needs root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from typing import Any

from odp.datapath import Connection, Datapath
from odp.errors import OdpError
from odp.testing.topology import Topology

__all__ = ["KernelPort", "KernelTopology"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
ETH_P_8021Q = 0x8100

# struct tpacket_auxdata { u32 tp_status, tp_len, tp_snaplen; u16 tp_mac, tp_net, tp_vlan_tci, tp_vlan_tpid; }
_AUXDATA = struct.Struct("=IIIHHHH")
# struct packet_mreq { int mr_ifindex; unsigned short mr_type, mr_alen; unsigned char mr_address[8]; }
_MREQ = struct.Struct("=iHH8s")
_SNAPLEN = 65536 + 64
#: After the first frame, how long receive() keeps collecting frames that follow it.
_GRACE = 0.02


def _restore_vlan(frame: bytes, ancdata: list[tuple[int, int, bytes]]) -> bytes:
    """Re-insert the VLAN tag the receive path moved into the auxdata, if any."""
    for level, kind, data in ancdata:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(data) < _AUXDATA.size:
            continue
        status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(data)
        if status & TP_STATUS_VLAN_VALID or tci:
            if not status & TP_STATUS_VLAN_TPID_VALID or not tpid:
                tpid = ETH_P_8021Q
            return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]
    return frame


class KernelPort:
    """One netdev vport of a datapath with its veth peer driven by the test."""

    def __init__(self, name: str, port_no: int, peer: str, peer_ifindex: int) -> None:
        self.name = name
        self.port_no = port_no
        self.peer = peer
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ALL))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            with contextlib.suppress(OSError):  # kernels before 4.20: filtered by pkttype below
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, _MREQ.pack(peer_ifindex, PACKET_MR_PROMISC, 0, b""))
            sock.bind((peer, ETH_P_ALL))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._anc = socket.CMSG_SPACE(_AUXDATA.size)

    def send(self, frame: bytes) -> None:
        """Put ``frame`` on the wire towards the datapath port.

        Linux cannot transmit a frame shorter than an Ethernet header (14 bytes) on
        a veth: AF_PACKET refuses it (EINVAL), so such frames raise ValueError here.
        """
        if len(frame) < 14:
            raise ValueError(
                f"a {len(frame)}-byte frame cannot be sent on a veth: Linux refuses frames shorter than an "
                "Ethernet header (14 bytes) on AF_PACKET sockets, so runt frames cannot reach a kernel datapath "
                "port this way (test them on the simulator, or with packet execute)"
            )
        self._sock.send(frame)

    def _recv_one(self) -> bytes | None:
        try:
            data, anc, _flags, addr = self._sock.recvmsg(_SNAPLEN, self._anc, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        if len(addr) > 2 and addr[2] == PACKET_OUTGOING:
            return b""  # our own transmission (no PACKET_IGNORE_OUTGOING)
        return _restore_vlan(data, anc)

    def receive_now(self) -> list[bytes]:
        """The frames waiting now, without waiting for more (the oracle fences instead)."""
        out: list[bytes] = []
        while (frame := self._recv_one()) is not None:
            if frame:
                out.append(frame)
        return out

    def receive(self, timeout: float = 0.2) -> list[bytes]:
        """Frames that came out of the datapath port: waits up to ``timeout`` for the first."""
        out: list[bytes] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            frame = self._recv_one()
            if frame is None:
                now = time.monotonic()
                if out:
                    # Something arrived: collect what follows closely, then stop.
                    wait = _GRACE
                elif now < deadline:
                    wait = deadline - now
                else:
                    return out
                ready, _, _ = select.select([self._sock], [], [], wait)
                if not ready and (out or time.monotonic() >= deadline):
                    return out
                continue
            if frame:
                out.append(frame)

    def close(self) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"<KernelPort {self.name} port {self.port_no} (peer {self.peer})>"


class KernelTopology(Topology):
    """Datapaths on the real openvswitch module, ports on veth pairs."""

    backend_name = "kernel"

    def __init__(self) -> None:
        super().__init__()
        from odp.kernel.backend import KernelBackend

        self.conn = Connection(KernelBackend())
        self._ipr: Any = None
        self._links: list[str] = []
        self._ports: list[KernelPort] = []

    # -- rtnetlink ---------------------------------------------------------------
    def _iproute(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def _ifindex(self, name: str) -> int | None:
        found = self._iproute().link_lookup(ifname=name)
        return int(found[0]) if found else None

    def _remove_link(self, name: str) -> None:
        idx = self._ifindex(name)
        if idx is not None:
            with contextlib.suppress(Exception):
                self._iproute().link("del", index=idx)

    @staticmethod
    def _disable_ipv6(name: str) -> None:
        path = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write("1")

    # -- ports ---------------------------------------------------------------------
    def _veth(self, name: str, peer: str) -> int:
        """Create the veth pair ``name``/``peer`` (IPv6 off, both up); the peer's ifindex."""
        ipr = self._iproute()
        for stale in (name, peer):  # left over by an earlier run that died
            self._remove_link(stale)
        ipr.link("add", ifname=name, kind="veth", peer={"ifname": peer})
        self._links += [name, peer]
        for end in (name, peer):
            self._disable_ipv6(end)
        for end in (name, peer):
            idx = self._ifindex(end)
            if idx is None:
                raise OdpError(f"veth end {end!r} vanished right after it was created")
            ipr.link("set", index=idx, state="up")
        peer_idx = self._ifindex(peer)
        assert peer_idx is not None
        return peer_idx

    def add_port(self, dp: Datapath, name: str) -> KernelPort:
        """A veth pair ``name``/peer; ``name`` becomes a netdev vport of ``dp``."""
        if len(name) > 15:
            raise ValueError(f"port name {name!r} is longer than 15 characters")
        peer = f"{name[:10]}.p{len(self._links) // 2}"
        peer_idx = self._veth(name, peer)
        vport = dp.add_vport(name)
        port = KernelPort(name, vport.port_no, peer, peer_idx)
        self._ports.append(port)
        _wait_carrier(peer)
        return port

    def add_underlay(self, local_ip: str, peer_ip: str, peer_mac: str) -> KernelPort:
        """A veth whose host end has ``local_ip`` (/32, or /128 for IPv6: then IPv6 is
        left on for that end, without duplicate address detection) with a route and a
        permanent neighbour entry for ``peer_ip`` at ``peer_mac``; the returned port
        drives the far end (``port_no`` -1: it is not a vport)."""
        n = len(self._links) // 2
        host_end, peer = f"odpul{n}", f"odpul{n}.p"
        peer_idx = self._veth(host_end, peer)
        ipr = self._iproute()
        idx = self._ifindex(host_end)
        assert idx is not None
        if ":" in local_ip:
            with open(f"/proc/sys/net/ipv6/conf/{host_end}/disable_ipv6", "w") as f:
                f.write("0")
            ipr.addr("add", index=idx, address=local_ip, prefixlen=128, flags=0x02)  # IFA_F_NODAD
            ipr.route("add", dst=peer_ip, dst_len=128, oif=idx)
        else:
            ipr.addr("add", index=idx, address=local_ip, prefixlen=32)
            ipr.route("add", dst=peer_ip, dst_len=32, oif=idx)
        ipr.neigh("add", dst=peer_ip, lladdr=peer_mac, ifindex=idx, state=0x80)  # NUD_PERMANENT
        port = KernelPort(host_end, -1, peer, peer_idx)
        self._ports.append(port)
        _wait_carrier(peer)
        return port

    def is_noise(self, frame: bytes) -> bool:
        """IPv6 multicast (ND, MLD) the host may still emit before IPv6 is off."""
        return len(frame) >= 14 and frame[0:2] == b"\x33\x33"

    def close(self) -> None:
        errors: list[BaseException] = []
        for port in self._ports:
            try:
                port.close()
            except Exception as exc:
                errors.append(exc)
        self._ports.clear()
        try:
            super().close()  # deletes the datapaths (detaching the vports) and closes the backend
        except Exception as exc:
            errors.append(exc)
        for name in self._links[::2]:  # deleting one end of a veth deletes the pair
            try:
                self._remove_link(name)
            except Exception as exc:
                errors.append(exc)
        self._links.clear()
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()
            self._ipr = None
        if errors:
            raise errors[0]


def _wait_carrier(name: str, timeout: float = 2.0) -> None:
    """Wait until the link reports carrier (a veth is ready once both ends are up)."""
    path = f"/sys/class/net/{name}/carrier"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if f.read().strip() == "1":
                    return
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL while the link is down
                return
        time.sleep(0.01)
