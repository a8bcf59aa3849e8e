"""Test topologies: datapaths with ports a test can send into and capture from.

The same test code runs on both backends:

- :class:`SimTopology` puts each port on a simulated interface of an
  in-memory host (no root, no kernel);
- ``KernelTopology`` (odp.testing.kernel_topology) gives each port a veth pair
  whose far end the test drives through AF_PACKET sockets.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Protocol

from odp.datapath import Connection, Datapath
from odp.errors import OdpError
from odp.kernels import KernelLike


class Port(Protocol):
    """One datapath port plus the far end a test uses."""

    name: str
    port_no: int

    def send(self, frame: bytes) -> None:
        """Put a frame on the wire towards the datapath port."""

    def receive(self, timeout: float = 0.2) -> list[bytes]:
        """Frames that came out of the datapath port since the last call."""


class Topology(abc.ABC):
    """Datapaths and ports for one test, all removed by :meth:`close`."""

    backend_name: str = "abstract"
    conn: Connection

    def __init__(self) -> None:
        self._datapaths: list[Datapath] = []

    def create_datapath(self, name: str = "odptest", **kwargs: object) -> Datapath:
        dp = self.conn.create_datapath(name, **kwargs)  # type: ignore[arg-type]
        self._datapaths.append(dp)
        return dp

    @abc.abstractmethod
    def add_port(self, dp: Datapath, name: str) -> Port:
        """A netdev vport named ``name`` on ``dp`` with a test-driven far end."""

    @abc.abstractmethod
    def add_underlay(self, local_ip: str, peer_ip: str, peer_mac: str) -> Port:
        """Give the host an underlay address ``local_ip`` (IPv4 or IPv6, as ``peer_ip``) on a
        link whose far end the test drives: frames the host sends towards ``peer_ip`` (e.g.
        VXLAN-encapsulated packets, with ``peer_mac`` as Ethernet destination) come out of
        the returned port, and frames sent into it reach the host's stack (e.g. VXLAN to
        decapsulate)."""

    def is_noise(self, frame: bytes) -> bool:
        """Frames the host itself emits (e.g. IPv6 ND) that tests should not see."""
        return False

    def close(self) -> None:
        for dp in reversed(self._datapaths):
            with contextlib.suppress(OdpError):  # already deleted by the test
                dp.delete()
        self._datapaths.clear()
        self.conn.close()


class SimPort:
    def __init__(self, iface: object, port_no: int) -> None:
        from odp.sim.network import Interface

        assert isinstance(iface, Interface)
        self._iface = iface
        self.name = iface.name
        self.port_no = port_no

    def send(self, frame: bytes) -> None:
        self._iface.inject(frame)

    def receive(self, timeout: float = 0.2) -> list[bytes]:
        return self._iface.receive()


class SimUnderlayPort:
    def __init__(self, host: object) -> None:
        from odp.sim.network import Host

        assert isinstance(host, Host)
        self._host = host
        self.name = "underlay"
        self.port_no = -1
        self._seen = 0

    def send(self, frame: bytes) -> None:
        self._host.receive_underlay(frame)

    def receive(self, timeout: float = 0.2) -> list[bytes]:
        sent = self._host.underlay_sent
        frames, self._seen = sent.since(self._seen), sent.total
        return frames


class SimTopology(Topology):
    backend_name = "sim"

    def __init__(self, host: object | None = None, *, kernel: KernelLike | None = None) -> None:
        """``kernel``: the Linux version the simulated host runs (default: the host's, else TESTED)."""
        super().__init__()
        from odp.sim.datapath import SimBackend
        from odp.sim.network import Host

        self.host = host if isinstance(host, Host) else Host("test")
        self.conn = Connection(SimBackend(self.host, kernel=kernel))

    def add_port(self, dp: Datapath, name: str) -> Port:
        iface = self.host.add_interface(name)
        vport = dp.add_vport(name)
        return SimPort(iface, vport.port_no)

    def add_underlay(self, local_ip: str, peer_ip: str, peer_mac: str) -> Port:
        import ipaddress

        from odp.fields import parse_mac

        local, peer = ipaddress.ip_address(local_ip), ipaddress.ip_address(peer_ip)
        if local.version == 6:
            self.host.ip6 = int(local)
            self.host.neighbors6[int(peer)] = parse_mac(peer_mac)
        else:
            self.host.ip = int(local)
            self.host.neighbors[int(peer)] = parse_mac(peer_mac)
        return SimUnderlayPort(self.host)
