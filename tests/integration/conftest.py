"""Fixtures shared by the conformance suite.

Every test here is written against the shared API only and runs on each
backend the odp pytest plugin selects (``--backend=sim|kernel|all``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from odp.datapath import Datapath, UpcallListener
from odp.testing import PacketHarness, Port, Topology


@pytest.fixture
def dp(topology: Topology) -> Datapath:
    return topology.create_datapath("odptest")


@pytest.fixture
def ports(topology: Topology, dp: Datapath, harness: PacketHarness) -> list[Port]:
    """Three netdev ports p1..p3 with test-driven far ends."""
    made = [topology.add_port(dp, f"odpp{i}") for i in (1, 2, 3)]
    harness.register(*made)
    return made


@pytest.fixture
def listener(dp: Datapath, ports: list[Port]) -> Iterator[UpcallListener]:
    with dp.listen() as lst:
        yield lst
