"""The simulator: a faithful in-memory openvswitch.ko.

File layout follows net/openvswitch/: flow.py extracts keys (flow.c),
odp.validate converts matches (flow_netlink.c), flow_table.py holds flows
(flow_table.c), actions.py executes actions (actions.c), vport*.py are the
port types, datapath.py glues them (datapath.c); network.py is the simulated
world (hosts, interfaces, underlay) around them.
"""

from odp.sim.network import Host, Interface, Network

__all__ = ["Host", "Interface", "Network"]
