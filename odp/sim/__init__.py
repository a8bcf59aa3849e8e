"""The simulator: a faithful in-memory openvswitch.ko.

File layout follows net/openvswitch/: flow.py extracts keys (flow.c),
odp.validate converts matches (flow_netlink.c), flow_table.py holds flows
(flow_table.c), actions.py executes actions (actions.c), vport*.py are the
port types and their ops (vport*.c), datapath.py glues them (datapath.c),
trace.py is the trace hook (openvswitch_trace.h); network.py is the simulated
world (hosts, interfaces, underlay) around them.

``host.datapaths[name].trace(port, frame)`` returns the :mod:`odp.sim.trace`
events of one frame; :func:`observing` watches every datapath of some hosts.
"""

from odp.sim import trace
from odp.sim.network import Host, Interface, Network
from odp.sim.trace import Event, Observer, Tracer, observing

__all__ = ["Event", "Host", "Interface", "Network", "Observer", "Tracer", "observing", "trace"]
