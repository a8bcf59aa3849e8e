"""Run oracle cases on one backend, reusing one datapath and its ports across cases.

A :class:`Bench` builds a datapath with four ports: frames enter
port 1, cases output to ports 1-3, and port 4 carries the *fence*.  On the
kernel, frames are processed in softirq context, so after sending a case's
frame the bench sends two fence frames into port 4 on the same CPU queue:
one that the fence flow forwards to ports 1-3, one that misses.  When the
first has come out of every port and the second's miss has arrived, the
case's frame has been fully processed: no timeouts to wait out.

Between cases the bench flushes the flows, deletes the case's meters,
drains the ports and the upcall socket, and checks that the datapath is
back to its empty state (no flows, no megaflow masks): kernel state must
not leak from one case into the next (:class:`StateLeak` if it does).
"""

from __future__ import annotations

import os
import time
from typing import Any

from odp.datapath import Datapath, UpcallListener
from odp.errors import OdpError
from odp.records import MeterBand
from odp.testing.oracle.cases import Case
from odp.testing.topology import Port, Topology

FENCE_FLOW = ("in_port(4),eth(),eth_type(0x88b5)", "1,2,3")
FENCE_OUT = bytes.fromhex("02000000fe0102000000fe0288b5") + b"odp-oracle-fence" + bytes(30)
FENCE_MISS = bytes.fromhex("02000000fe0102000000fe0288b6") + b"odp-oracle-fence" + bytes(30)
FENCE_PORT = 4
#: How long the kernel may take to process a frame before the bench gives up on it.
FENCE_TIMEOUT = 10.0

Outcome = dict[str, Any]


class StateLeak(AssertionError):
    """The datapath was not back to its empty state between cases."""


class FenceLost(RuntimeError):
    """A fence frame did not come back in time (the kernel dropped or delayed it)."""


class Bench:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.kernel = topology.backend_name == "kernel"
        # Names unique to this process: another test process (an xdist worker) may share the VM.
        tag = os.getpid() % 100000
        self.dp: Datapath = topology.create_datapath(f"odpor{tag}")
        self.ports: list[Port] = [topology.add_port(self.dp, f"or{tag}p{i}") for i in (1, 2, 3, 4)]
        assert [p.port_no for p in self.ports] == [1, 2, 3, 4], [p.port_no for p in self.ports]
        self.listener: UpcallListener = self.dp.listen()
        self._meters: list[int] = []

    def close(self) -> None:
        self.listener.close()
        self.topology.close()

    # -- state ------------------------------------------------------------------------
    def _drain(self) -> None:
        for p in self.ports:
            self._take(p)
        self.listener.receive(timeout=0.0)

    def _take(self, port: Port) -> list[bytes]:
        now = getattr(port, "receive_now", None)
        return list(now()) if now is not None else port.receive(0.0)

    def reset(self) -> None:
        """Back to the empty datapath, and prove it."""
        self.dp.flush_flows()
        for m in self._meters:
            self.dp.delete_meter(m)
        self._meters = []
        self._drain()
        info = self.dp.info()
        if info.stats.flows or info.megaflow.masks:
            raise StateLeak(
                f"after a flush the datapath still has {info.stats.flows} flows, {info.megaflow.masks} masks"
            )

    # -- cases -------------------------------------------------------------------------
    def run(self, case: Case) -> Outcome:
        self.reset()
        dp = self.dp
        out: Outcome = {}
        for meter_id, rate, burst, kbps in case.meters:
            dp.set_meter(meter_id, MeterBand(rate, burst), kbps=kbps)
            self._meters.append(meter_id)
        installs: list[str] = []
        for match, actions in case.flows:
            try:
                dp.add_flow(match, actions)
                installs.append("ok")
            except OdpError as exc:
                installs.append(type(exc).__name__)
        out["install"] = installs
        if case.kind == "packet":
            dp.add_flow(*FENCE_FLOW)
            before = dp.stats()
            out["packets"] = [self._send(frame) for frame in case.packets]
            after = dp.stats()
            out["dp"] = [after.hit - before.hit, after.missed - before.missed, after.lost - before.lost]
        flows = []
        for f in dp.flows():
            try:
                text = f"{f.match} actions:{f.actions}"
            except OdpError as exc:  # the dump did not decode: that is an outcome too (an odp bug)
                text = f"undecodable flow: {type(exc).__name__}: {exc}"
            if text.startswith("in_port(4),") and "eth_type(0x88b5)" in text:
                continue
            flows.append(f"{text} packets:{f.stats.packets} bytes:{f.stats.bytes}" if case.kind == "packet" else text)
        out["flows"] = sorted(flows)
        return out

    def _send(self, frame: bytes) -> list[Any]:
        self.ports[0].send(frame)
        fence = self.ports[FENCE_PORT - 1]
        fence.send(FENCE_OUT)
        fence.send(FENCE_MISS)
        got: list[list[bytes]] = [[], [], []]
        fenced = [False, False, False]
        upcalls: list[str] = []
        miss_fenced = False
        deadline = time.monotonic() + FENCE_TIMEOUT
        while not (all(fenced) and miss_fenced):
            for i, port in enumerate(self.ports[:3]):
                for f in self._take(port):
                    if f == FENCE_OUT:
                        fenced[i] = True
                    elif not self.topology.is_noise(f):
                        got[i].append(f)
            for up in self.listener.receive(timeout=0.0):
                if up.in_port == FENCE_PORT:
                    miss_fenced |= up.packet == FENCE_MISS
                elif not self.topology.is_noise(up.packet):
                    upcalls.append(f"{up.kind.name} {up.key}")
            if not self.kernel:
                if not (all(fenced) and miss_fenced):
                    raise FenceLost("the simulator did not process the fence frames")
                break
            if time.monotonic() > deadline:
                raise FenceLost(f"fence frames missing after {FENCE_TIMEOUT}s: ports {fenced}, miss {miss_fenced}")
            if not (all(fenced) and miss_fenced):
                time.sleep(0.001)
        return [[f.hex() for f in frames] for frames in got] + [upcalls]
