"""The ``odp`` command line: datapaths, vports, flows and packets on the kernel or the simulator.

Commands (any unambiguous prefix works: ``odp dp a x``, ``odp fl l x``;
``dp`` is an alias of ``datapath``)::

    odp datapath [list]                       datapath names, one per line (the syntax that creates them)
    odp datapath add DP [IFACE...] [--features=LIST]     (ovs-dpctl add-dp: IFACE is NAME[,type=T][,port_no=N])
    odp datapath set DP [--features=LIST] [--masks-cache-size=N]
    odp datapath delete DP
    odp datapath show [-s] [-f] [DP...]       like ovs-dpctl show
    odp datapath listen [--summary] [--pcap FILE|-] [--count N] [--timeout S] [--dispatch MODE] DP
                                              MISS upcall[N]: KEY lines; a ready line on stderr (kernel)
    odp vport [list] [DP]                     "TYPE DP NAME [--port=UDP] --port-no=N" lines
    odp vport add netdev|internal|vxlan|gre|geneve DP NAME [--port=UDP] [--port-no=N]
    odp vport delete [DP] NAME...             (without DP: the vport of that name in any datapath)
    odp vport set [DP] NAME --upcall-pids=P[,P...]   (ovs-dpctl set-if)
    odp vport listen [DP]                     vport events (sim: the ones queued by vport commands)
    odp flow list [DP] [FILTER] [-m] [--names] [--ufid]   as ovs-dpctl dump-flows [filter=...]
    odp flow add DP [MATCH ACTIONS] [--ufid=U] [key flags] [action flags]
    odp flow mod DP MATCH ACTIONS [--clear] [--may-create]
    odp flow get DP [MATCH] [--ufid=U] [--names]
    odp flow delete DP [MATCH] [--ufid=U] [key flags]
    odp flow clear DP [MATCH] [key flags]     clear a flow's statistics (go-odp)
    odp flow add-flows|mod-flows|del-flows [DP] FILE|-   ovs-dpctl's flows files
    odp flow flush DP                         delete every flow
    odp meter features DP                     max meters, max bands, band types
    odp meter set DP ID [--rate=N --burst=N [--type=drop|N]] [--kbps] [--clear] [--stats=P,B]
    odp meter get DP ID                       a meter's packets, bytes, used and per-band counts
    odp meter delete DP ID
    odp packet execute DP PACKET ACTIONS [--in-port=P] [--key=MATCH]
    odp packet inject DP PORT PACKET [--pcap FILE]   simulator only: run a packet through, print a trace
    odp state export|import [FILE|-]          the simulator's state as JSON, and back
    odp completion bash|zsh                   a shell completion script
    odp help [COMMAND...]                     (also 'odp dp help', '--help' anywhere)
    odp demo                                  the simulator demo (two hosts joined by VXLAN)

``MATCH`` and ``ACTIONS`` are ODP text as ovs-dpctl reads it; ports may be
given by number or vport name.  The go-odp flags build the same flows:
``--in-port=P``, ``--eth-src/--eth-dst=MAC[&MASK]``, ``--tunnel-id=HEX[&MASK]``,
``--tunnel-ipv4-src/--tunnel-ipv4-dst=IP[&MASK]``, ``--tunnel-tos/--tunnel-ttl/
--tunnel-tp-src/--tunnel-tp-dst=N[&MASK]``, ``--tunnel-df/--tunnel-csum=BOOL``
(the key always has ``eth()``, as in go-odp), and as actions
``--set-tunnel-*`` (same fields, no masks) followed by ``--output=P[,P...]``.
``PACKET`` is hex bytes or a scapy expression (``Ether()/IP(dst="10.0.0.2")/UDP()``)
evaluated with scapy's layer classes as the only names.

Global options (before or after the command): ``--backend kernel|sim``
(default: ``$ODP_BACKEND``, else ``sim``: the command line never talks to the
kernel unless asked to), ``--state PATH`` (the simulator's state file;
default ``$ODP_SIM_STATE``, else ``$XDG_STATE_HOME/odp/sim.db`` or
``~/.local/state/odp/sim.db``), ``--kernel VERSION`` (the Linux version the
simulator behaves as, e.g. ``6.6``: saved in the state, refused once datapaths
exist under another; default the state's, else :data:`odp.kernels.TESTED`),
``--json`` (machine-readable output).

Exit status: 0 success, 1 error (one ``odp: error: ...`` line on stderr),
2 usage error.

The simulator's state persists in the state file, an SQLite database (see
:mod:`odp.sim.store`): each invocation runs in one transaction and reads only
what it needs, so concurrent invocations lose nothing and a command costs the
same with a hundred thousand flows as with ten; ``odp state export|import``
convert it to and from a readable JSON document.  Because the simulator
only moves packets while a command runs, ``datapath listen`` cannot wait for
misses there: ``packet inject`` and ``packet execute`` listen on every
datapath while they run, print the upcalls they cause in their trace and
queue them in the state, and ``datapath listen`` on the simulator prints
(and removes) the queued ones, then returns.  ``vport add netdev`` creates
the simulated network device when it does not exist yet (on the kernel the
device must exist).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from odp.cli.tree import main

if TYPE_CHECKING:
    from odp.cli.output import parse_packet, ufid_from_text, ufid_to_uuid, write_pcap_header, write_pcap_record

__all__ = ["main", "parse_packet", "ufid_from_text", "ufid_to_uuid", "write_pcap_header", "write_pcap_record"]

#: Helpers re-exported from odp.cli.output, imported on first use (``odp --help`` needs none of them).
_OUTPUT = frozenset(__all__) - {"main"}


def __getattr__(name: str) -> Any:
    if name in _OUTPUT:
        from odp.cli import output

        return getattr(output, name)
    raise AttributeError(f"module 'odp.cli' has no attribute {name!r}")
