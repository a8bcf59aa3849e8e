"""Kernel backend throughput against openvswitch.ko, next to Debian's ovs-dpctl.

Run as root where the module is loaded, e.g. in the test VM::

    vmtest/run -- /work/venv/bin/python benchmarks/bench_kernel.py
    vmtest/run -- /work/venv/bin/python benchmarks/bench_kernel.py --flows 10000,100000 --upcalls 20000

Measures, on a scratch datapath:

- flow installs/s: ``flow_new_many`` (batched NEW requests, one ACK each),
  one ``flow_new`` at a time (NLM_F_ECHO, reply decoded), and
  ``ovs-dpctl add-flows FILE`` with the same flows as text;
- dump rate at each table size: ``flow_dump`` (Flow values with stats, whose
  match and actions are decoded on first access), then with every match and
  action decoded, then also formatted as ``dump-flows`` text; the raw dump
  alone (netlink only, no decoding); and ``ovs-dpctl dump-flows`` (a process
  that prints every flow, so its start-up is in its time; measured alone on an
  empty datapath too);
- upcalls/s: ACTION upcalls generated in the kernel (one EXECUTE with many
  ``userspace()`` actions) received and decoded by the listener, and MISS
  upcalls of frames sent into a veth port.

Prints a table; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

from odp.actions import Actions, Output, Userspace
from odp.constants import Cmd
from odp.errors import OdpError
from odp.kernel.backend import KernelBackend
from odp.kernel.upcall import KernelUpcallListener
from odp.keys import Ethernet, EthType, InPort, Ipv4, Match
from odp.records import Flow, FlowCreate
from odp.text import format_actions, format_match

Results = dict[str, Any]
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def make_flows(n: int, offset: int = 0) -> list[tuple[Match, Actions]]:
    act = Actions.of(Output(1))
    out = []
    for i in range(offset, offset + n):
        ip = 0x0A000000 + i
        out.append((Match(InPort(1 + i % 64), Ethernet(), EthType(0x0800), Ipv4(dst=ip, frag=0)), act))
    return out


def dpctl(*args: str, stdout: Any = subprocess.DEVNULL) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ovs-dpctl", *args], check=True, stdout=stdout, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def best_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    return min((timed(fn) for _ in range(runs)), key=lambda r: r[0])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f}/s" if seconds > 0 else "       inf"


def decode_all(flows: list[Flow]) -> None:
    for f in flows:
        _ = f.match, f.actions


def as_text(flows: list[Flow]) -> list[str]:
    return [str(f) for f in flows]


def bench_flows(backend: KernelBackend, dp: str, sizes: list[int], use_dpctl: bool, res: Results) -> None:
    fam = backend.families.flow
    ifindex = backend.dp_get(dp).ifindex
    for n in sizes:
        backend.flow_flush(dp)
        flows = make_flows(n)
        t, _ = timed(functools.partial(backend.flow_new_many, dp, flows))
        res[f"install_batched_{n}"] = n / t
        print(f"flow_new_many      {n:>7} flows  {t:8.2f} s {rate(n, t)}")

        # Best of two, as for ovs-dpctl below: the first run of a code path in
        # the emulated VM pays for translating it, a cost a fresh ovs-dpctl
        # process pays in its start-up (measured on its own below).
        t, dumped = best_of(2, lambda: list(backend.flow_dump(dp)))
        assert len(dumped) == n, f"dumped {len(dumped)} of {n}"
        res[f"dump_{n}"] = n / t
        print(f"flow_dump          {n:>7} flows  {t:8.2f} s {rate(n, t)}  (match, actions not decoded yet)")
        td, _ = timed(functools.partial(decode_all, dumped))
        res[f"dump_decoded_{n}"] = n / (t + td)
        print(f"  + match, actions {n:>7} flows  {t + td:8.2f} s {rate(n, t + td)}  (every field decoded)")
        if n == min(sizes):  # formatting is per flow; 100k of them take minutes in the VM
            tt, _ = timed(functools.partial(as_text, dumped))
            total = t + td + tt
            res[f"dump_text_{n}"] = n / total
            print(f"  + dump-flows text {n:>6} flows  {total:8.2f} s {rate(n, total)}  (as ovs-dpctl prints)")
        t, raw = timed(lambda: backend._chan.dump(fam.id, Cmd.GET, fam.version, ifindex, []))
        size = sum(len(d) for d in raw)
        res[f"dump_raw_{n}"] = n / t
        print(f"flow dump raw      {n:>7} flows  {t:8.2f} s {rate(n, t)}  ({size / n:.0f} bytes/flow)")

        if use_dpctl:
            t = min(dpctl("dump-flows", dp), dpctl("dump-flows", dp))
            res[f"dpctl_dump_{n}"] = n / t
            print(f"ovs-dpctl dump     {n:>7} flows  {t:8.2f} s {rate(n, t)}")
            backend.flow_flush(dp)
            with tempfile.NamedTemporaryFile("w", suffix=".flows", delete=False) as f:
                for m, a in flows:
                    f.write(f"{format_match(m)} {format_actions(a)}\n")
                path = f.name
            try:
                t = dpctl("add-flows", dp, path)
            finally:
                os.unlink(path)
            count = backend.dp_get(dp).stats.flows
            res[f"dpctl_install_{n}"] = n / t
            print(f"ovs-dpctl add-flows {n:>6} flows  {t:8.2f} s {rate(n, t)}  ({count} in the table)")

    backend.flow_flush(dp)
    if use_dpctl:
        t = dpctl("dump-flows", dp)
        res["dpctl_dump_empty_s"] = t
        print(f"ovs-dpctl dump     {0:>7} flows  {t:8.2f} s  (start-up alone)")
    n1 = min(2000, max(sizes))
    flows = make_flows(n1)

    def one_by_one() -> None:
        for m, a in flows:
            backend.flow_new(dp, m, a, create=FlowCreate.EXCLUSIVE)

    t, _ = timed(one_by_one)
    res["install_single"] = n1 / t
    print(f"flow_new one by one {n1:>6} flows  {t:8.2f} s {rate(n1, t)}")
    backend.flow_flush(dp)


def bench_action_upcalls(backend: KernelBackend, dp: str, n: int, res: Results) -> None:
    listener = backend.upcall_listener(dp)
    try:
        assert isinstance(listener, KernelUpcallListener)
        pid = listener.pid
        per_execute = 50
        actions = Actions.of(*[Userspace(pid=pid, userdata=b"bench")] * per_execute)
        frame = bytes(12) + b"\x08\x00" + bytes(46)
        got = 0
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            backend.packet_execute(dp, frame, actions)
            sent += per_execute
            got += len(listener.receive(timeout=0.0))
        while got < sent:
            more = listener.receive(timeout=1.0)
            if not more:
                break
            got += len(more)
        t = time.perf_counter() - t0
        res["upcalls_action"] = got / t
        print(f"ACTION upcalls     {got:>7} recv   {t:8.2f} s {rate(got, t)}  (lost {listener.lost})")
    finally:
        listener.close()


def bench_miss_upcalls(n: int, res: Results) -> None:
    from odp.testing.kernel_topology import KernelTopology

    topo = KernelTopology()
    try:
        dp = topo.create_datapath(f"benchm{os.getpid() % 10000}")
        port = topo.add_port(dp, f"bm{os.getpid() % 10000}")
        listener = topo.conn.backend.upcall_listener(dp.name)
        try:
            head = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
            frames = [head + bytes([0x45, 0, 0, 46]) + bytes([i]) + bytes(41) for i in range(256)]
            got = 0
            t0 = time.perf_counter()
            for i in range(n):
                port.send(frames[i & 0xFF])
                if i % 64 == 63:
                    got += len(listener.receive(timeout=0.0))
            while True:
                more = listener.receive(timeout=0.5)
                if not more:
                    break
                got += len(more)
            t = time.perf_counter() - t0
            res["upcalls_miss"] = got / t
            print(f"MISS upcalls       {got:>7} recv   {t:8.2f} s {rate(got, t)}  (sent {n}, lost {listener.lost})")
        finally:
            listener.close()
    finally:
        topo.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", default="10000,100000", help="table sizes, comma separated (default 10000,100000)")
    ap.add_argument("--upcalls", type=int, default=20000, help="upcalls to generate (default 20000)")
    ap.add_argument("--no-dpctl", action="store_true", help="skip the ovs-dpctl comparison")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_kernel: needs root and the openvswitch module (run it in the VM: vmtest/run -- ...)")
        return 2
    use_dpctl = not args.no_dpctl and shutil.which("ovs-dpctl") is not None
    sizes = [int(s) for s in args.flows.split(",") if s]
    res: Results = {"python": sys.version.split()[0], "kernel": os.uname().release}
    try:
        t, backend = timed(KernelBackend)
    except OdpError as exc:
        print(f"bench_kernel: {exc}")
        return 2
    print(f"backend start (family resolution) {t:.3f} s; kernel {os.uname().release}")
    dp = f"bench{os.getpid() % 10000}"
    backend.dp_new(dp)
    try:
        bench_flows(backend, dp, sizes, use_dpctl, res)
        bench_action_upcalls(backend, dp, args.upcalls, res)
    finally:
        backend.dp_del(dp)
        backend.close()
    bench_miss_upcalls(min(args.upcalls, 5000), res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
