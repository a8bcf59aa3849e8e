"""Test framework: topologies, a PTF-style packet harness and a pytest plugin."""

from odp.testing.harness import Mask, PacketHarness, key_covers
from odp.testing.topology import Port, SimTopology, Topology

__all__ = ["Mask", "PacketHarness", "Port", "SimTopology", "Topology", "key_covers"]
