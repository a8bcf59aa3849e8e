"""Simulator throughput on a controller's workload, each figure beside its kinder twin, in one run.

Run on demand: ``python benchmarks/bench_sim.py [--flows 10000] [--masks 8] [--packets 200000]``.

- flow installs through the public API, validated: a fresh ``Match`` and
  ``Actions`` built per flow from API calls, with unique values and the
  validation and codec caches emptied first (what a controller handling misses
  does), beside the old measure (the same objects installed every round);
- receive (extract + lookup + output) with unique 5-tuples (every packet an
  exact-match-cache miss) and with repeating packets (cache hits), beside a
  linear scan over the same flows;
- the cost of a lookup without the cache against the number of flows (flat)
  and the number of masks (linear).

Times are CPU seconds of this process (``time.process_time_ns``), best of
``--rounds``: the machines this runs on are shared and noisy, and wall-clock
time would also count the time other processes had the CPU.  Ratios printed
are between figures of this one run.
"""

from __future__ import annotations

import argparse
import random
import struct
import time
from collections.abc import Callable

import odp.validate.fastpath as fastpath
import odp.validate.swkey as sk
from odp.actions import Actions, Output
from odp.datapath import Connection, Datapath
from odp.keys import Ethernet, EthType, InPort, Ipv4, KeyAttr, Match, Tcp, TcpFlags, Udp
from odp.netlink.codec import clear_decode_caches
from odp.sim.datapath import SimBackend, SimDatapath
from odp.sim.flow import extract
from odp.sim.network import Host

#: IPv4 destination prefix lengths, one per mask (with UDP and TCP alternating);
#: 100k flows over the first 8, or 10k over all of them, fit without overlapping.
PREFIXES = (32, 30, 28, 26, 24, 23, 22, 29, 31, 27, 25, 21, 20, 19, 18, 31)


def frame(src: int, dst: int, proto: int, sport: int, dport: int) -> bytes:
    l4 = (
        struct.pack("!HHHH", sport, dport, 8, 0)
        if proto == 17
        else struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, 2, 0, 0, 0)
    )
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + l4 + b"\x00" * 6


def flow_spec(i: int, n_masks: int) -> tuple[int, int, int]:
    """Flow ``i`` of a table spread over ``n_masks`` masks: (dst, mask, proto), none overlapping."""
    shape = i % n_masks
    host_bits = 32 - PREFIXES[shape]
    dst = ((10 + shape) << 24) | (((i // n_masks) << host_bits) & 0xFFFFFF)
    return dst, (0xFFFFFFFF << host_bits) & 0xFFFFFFFF, 17 if shape % 2 == 0 else 6


def build_match(i: int, n_masks: int) -> Match:
    """A fresh Match for flow ``i``, built the way a controller writes one."""
    dst, mask, proto = flow_spec(i, n_masks)
    l4: tuple[KeyAttr, ...]
    if proto == 17:
        l4 = (Udp(dst=53),)
    elif i % n_masks == 15:  # the 16th mask: a /31 like the 9th, but the TCP flags matched too
        l4 = (Tcp(dst=80), TcpFlags(value=(0, 0x3F)))
    else:
        l4 = (Tcp(dst=80), TcpFlags(value=(0, 0)))
    return Match(InPort(1), Ethernet(), EthType(0x0800), Ipv4(dst=(dst, mask), proto=proto), *l4)


def packet_for(i: int, n_masks: int, src: int, sport: int, rng: random.Random) -> bytes:
    dst, mask, proto = flow_spec(i, n_masks)
    return frame(src, dst | rng.randrange((~mask & 0xFFFFFFFF) + 1), proto, sport, 53 if proto == 17 else 80)


def new_datapath() -> tuple[Host, Datapath, SimDatapath]:
    host = Host("bench")
    host.add_interface("in")
    host.add_interface("out")
    dp = Connection(SimBackend(host)).create_datapath("bench")
    dp.add_vport("in")
    dp.add_vport("out")
    return host, dp, host.datapaths["bench"]


def cold_caches() -> None:
    """Empty the validation and codec caches (a controller's first flows of a shape meet them empty)."""
    fastpath._accepted_matches.clear()
    fastpath._accepted_actions.clear()
    fastpath._last_accepted = None
    clear_decode_caches()


def best(rounds: int, run: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    """The least CPU time of ``rounds`` runs of ``run`` (``before`` runs untimed before each)."""
    least = float("inf")
    for _ in range(rounds):
        before()
        t0 = time.process_time_ns()
        run()
        least = min(least, (time.process_time_ns() - t0) / 1e9)
    return least


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f}/s"


def bench_installs(n: int, n_masks: int, rounds: int) -> None:
    _, dp, _ = new_datapath()
    generation = [0]

    def fresh() -> None:
        # Unique values every round (a new generation of dst ports' high bits is not
        # possible without changing masks, so each round uses a new range of flows).
        base = generation[0] * n
        generation[0] += 1
        add = dp.add_flow
        for i in range(base, base + n):
            add(build_match(i, n_masks), Actions.of(Output(2)))

    def reset() -> None:
        dp.flush_flows()
        cold_caches()

    t_fresh = best(rounds, fresh, reset)
    built: list[tuple[Match, Actions]] = []

    def build() -> None:
        base = generation[0] * n
        generation[0] += 1
        built[:] = [(build_match(i, n_masks), Actions.of(Output(2))) for i in range(base, base + n)]

    t_build = best(rounds, build)

    def install_built() -> None:
        for m, a in built:
            dp.add_flow(m, a)

    t_install = best(rounds, install_built, reset)
    matches = [m for m, _ in built]
    actions = Actions.of(Output(2))

    def cached() -> None:
        for m in matches:
            dp.add_flow(m, actions)

    dp.flush_flows()
    cached()  # the old benchmark's state: every cache warm with these very objects
    t_cached = best(rounds, cached, dp.flush_flows)
    print(f"flow installs, {n:,} flows over {n_masks} masks (API, validated):")
    print(f"  fresh Match+Actions per flow, unique values, cold caches {rate(n, t_fresh)}")
    print(f"    of which building the objects alone                    {rate(n, t_build)}")
    print(f"    and installing objects built beforehand                {rate(n, t_install)}")
    print(
        f"  the same objects every round, caches warm                {rate(n, t_cached)}"
        f"   (fresh is {t_fresh / t_cached:.1f}x slower)"
    )


def bench_receive(n: int, n_masks: int, n_packets: int, rounds: int, rng: random.Random) -> None:
    host, dp, sim = new_datapath()
    actions = Actions.of(Output(2))
    for i in range(n):
        dp.add_flow(build_match(i, n_masks), actions)
    out = host.interface("out")
    # Repeating: one packet per flow, drawn at random (after the first round every key is cached).
    per_flow = [packet_for(i, n_masks, 0x0A000001, 1234, rng) for i in range(n)]
    repeating = [per_flow[rng.randrange(n)] for _ in range(n_packets)]
    # Unique 5-tuples: every packet's source address and port differ (the flows wildcard them).
    unique = [
        packet_for(rng.randrange(n), n_masks, 0xC0000000 | (p >> 16), 1024 + (p & 0xFFFF) % 60000, rng)
        for p in range(n_packets)
    ]

    def receive(stream: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            for f in stream:
                sim.receive(1, f)
            out.sent.clear()

        return run

    receive(repeating)()  # fills the exact-match cache
    t_hit = best(rounds, receive(repeating))
    stats0 = sim.table.stats.cache_hit
    t_miss = best(rounds, receive(unique), sim.table._emc.clear)
    unique_hits = sim.table.stats.cache_hit - stats0
    # The linear-scan baseline: extract, then the first flow (in install order) whose mask matches.
    flows = [(fl.sw.mask, fl.sw.masked_key) for fl in sim.table.flows()]
    in_port_1 = sk.put(0, "in_port", 1)
    sample = unique[: max(200, n_packets // 1000)]

    def linear() -> None:
        for f in sample:
            key = extract(f, in_port_1).key  # type: ignore[union-attr]
            for mask, mkey in flows:
                if key & mask == mkey:
                    break

    t_lin = best(rounds, linear)
    print(f"receive (extract + lookup + output), {n:,} flows over {sim.table.mask_count} masks:")
    print(f"  unique 5-tuples (exact-match cache misses)               {rate(len(unique), t_miss)}")
    print(f"  repeating packets (cache hits)                           {rate(len(repeating), t_hit)}")
    lin = len(sample) / t_lin
    print(
        f"  linear scan over the same flows (unique 5-tuples)        {rate(len(sample), t_lin)}"
        f"   (misses {len(unique) / t_miss / lin:,.0f}x and hits {len(repeating) / t_hit / lin:,.0f}x faster)"
    )
    if unique_hits:
        print(f"  (unique stream: {unique_hits} cache hits, expected none)")


def lookup_ns(n: int, n_masks: int, rounds: int, rng: random.Random) -> float:
    """Mean ns of a tuple-space lookup without the cache, packets spread evenly over the flows."""
    _, dp, sim = new_datapath()
    actions = Actions.of(Output(2))
    for i in range(n):
        dp.add_flow(build_match(i, n_masks), actions)
    in_port_1 = sk.put(0, "in_port", 1)
    keys = [
        extract(packet_for(rng.randrange(n), n_masks, 0x0A000001, 1234, rng), in_port_1).key  # type: ignore[union-attr]
        for _ in range(5000)
    ]
    tables = sim.table._masks

    def probe() -> None:
        for k in keys:
            for tab in tables:
                if tab.flows.get(k & tab.mask) is not None:
                    break

    return best(rounds, probe) / len(keys) * 1e9


def bench_scaling(n_masks: int, rounds: int, rng: random.Random, flow_counts: tuple[int, ...]) -> None:
    by_flows = [(f, lookup_ns(f, n_masks, rounds, rng)) for f in flow_counts]
    base = by_flows[0][1]
    print(
        f"lookup without the cache, {n_masks} masks, vs flows:   "
        + "  ".join(f"{f:,}: {ns:.0f} ns ({ns / base:.2f}x)" for f, ns in by_flows)
    )
    by_masks = [(m, lookup_ns(10_000, m, rounds, rng)) for m in (1, 2, 4, 8, 16)]  # PREFIXES has 16
    one = by_masks[0][1]
    print(
        "lookup without the cache, 10,000 flows, vs masks:   "
        + "  ".join(f"{m}: {ns:.0f} ns ({ns / one:.1f}x)" for m, ns in by_masks)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=10_000)
    ap.add_argument("--masks", type=int, default=8)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("installs", "receive", "scaling"), default=None)
    args = ap.parse_args()
    rng = random.Random(1)
    if args.only in (None, "installs"):
        bench_installs(args.flows, args.masks, args.rounds)
    if args.only in (None, "receive"):
        bench_receive(args.flows, args.masks, args.packets, args.rounds, rng)
    if args.only in (None, "scaling"):
        bench_scaling(args.masks, args.rounds, rng, (1_000, 10_000, 100_000))


if __name__ == "__main__":
    main()
