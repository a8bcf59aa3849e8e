"""The command tree, argument dispatch and ``main``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from odp.cli.base import JSON_VERSION, PROG, CommandError, UsageError, _add_global_options, _ArgParser, _Exit, _setup_dp
from odp.errors import InvalidFlow, OdpError

if TYPE_CHECKING:
    from odp.cli.base import Ctx

# ===========================================================================
# The command tree
# ===========================================================================

Handler = Callable[["Ctx", argparse.Namespace], int]
PlainHandler = Callable[[argparse.Namespace], int]
FileHandler = Callable[[argparse.Namespace, str], int]


@dataclass
class Command:
    """A node of the command tree: a leaf has a handler, an inner node children."""

    name: str
    help: str = ""
    handler: Handler | None = None
    setup: Callable[[argparse.ArgumentParser], None] | None = None
    #: "read"/"write": the handler gets a connection (and the simulator state, locked accordingly).
    state: str = "read"
    #: A leaf that needs no backend at all (demo, help).
    plain: PlainHandler | None = None
    #: A leaf that works on the simulator's state file itself (odp state export/import), given its path.
    on_file: FileHandler | None = None
    #: Text after a leaf's options in its --help (computed when asked for).
    epilog: Callable[[], str] | None = None
    aliases: tuple[str, ...] = ()
    children: dict[str, Command] = field(default_factory=dict)
    #: The child that runs when no subcommand is given (go-odp: ``odp datapath`` lists).
    default: str | None = None
    usage: str = ""

    def add(self, child: Command) -> Command:
        self.children[child.name] = child
        return child


def _resolve(node: Command, word: str, path: list[str]) -> Command | None:
    names: dict[str, Command] = {}
    for child in node.children.values():
        for name in (child.name, *child.aliases):
            names[name] = child
    if word in names:
        return names[word]
    found: dict[str, Command] = {}
    for name, child in names.items():
        # A hyphenated name (add-flows) answers only to prefixes with its hyphen,
        # so that the abbreviations of its first word (fl a: flow add) stay unique.
        if name.startswith(word) and ("-" not in name or "-" in word):
            found[child.name] = child
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        where = " ".join([*path, word])
        raise UsageError(f"ambiguous command '{where}': could be {', '.join(sorted(found))}")
    return None


def _usage_lines(node: Command, path: list[str]) -> list[str]:
    out: list[str] = []
    if node.handler is not None or node.plain is not None or node.on_file is not None:
        text = " ".join([PROG, *path, node.usage]).rstrip()
        out.append(f"  {text:<62} {node.help}".rstrip())
    for child in node.children.values():
        out.extend(_usage_lines(child, [*path, child.name]))
    return out


# The leaves name their handlers and argument setups by module, imported only
# when the command runs: ``odp --help`` and ``odp dp list`` need not import the
# flow parser, scapy or the simulator.


def _handler(module: str, name: str) -> Handler:
    def run(ctx: Ctx, a: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(f"odp.cli.{module}"), name)
        return handler(ctx, a)

    return run


def _file_handler(module: str, name: str) -> FileHandler:
    def run(a: argparse.Namespace, path: str) -> int:
        handler: FileHandler = getattr(importlib.import_module(f"odp.cli.{module}"), name)
        return handler(a, path)

    return run


def _plain(module: str, name: str) -> PlainHandler:
    def run(a: argparse.Namespace) -> int:
        handler: PlainHandler = getattr(importlib.import_module(f"odp.cli.{module}"), name)
        return handler(a)

    return run


def _setup(module: str, name: str) -> Callable[[argparse.ArgumentParser], None]:
    def setup(p: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(f"odp.cli.{module}"), name)(p)

    return setup


def _setup_factory(
    module: str, name: str, *args: object, **kwargs: object
) -> Callable[[argparse.ArgumentParser], None]:
    def setup(p: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(f"odp.cli.{module}"), name)(*args, **kwargs)(p)

    return setup


#: The vport types (odp.datapath.VportKind's values, in its order) and whether
#: each takes a UDP port (DEFAULT_TUNNEL_PORTS); spelled out here so that the
#: command tree needs no import of odp.datapath (a unit test keeps them equal).
VPORT_KINDS = (("netdev", False), ("internal", False), ("gre", False), ("vxlan", True), ("geneve", True))


def _cmd_demo(a: argparse.Namespace) -> int:
    from odp.demo import main as demo

    return demo()


def _cmd_help(a: argparse.Namespace) -> int:
    sys.stdout.write(_overview())
    return 0


def _flow_epilog() -> str:
    """What MATCH and ACTIONS may contain: every key attribute and action the ODP text parser knows."""
    import textwrap

    from odp import keys, text

    found = (
        getattr(c, "NAME", None) for c in vars(keys).values() if isinstance(c, type) and issubclass(c, keys.KeyAttr)
    )
    names = sorted({n for n in found if isinstance(n, str) and n != "key"})
    simple = ["drop", "pop_vlan", "pop_eth", "pop_nsh", "ct_clear", "ct", "dec_ttl"]
    actions = sorted({*getattr(text, "_ACTION_PARSERS", {}), *simple})

    def wrap(label: str, items: list[str]) -> str:
        return textwrap.fill(", ".join(items), width=100, initial_indent="  ", subsequent_indent="  ") + "\n"

    return (
        "MATCH: ODP text, comma-separated key attributes, e.g. in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1)\n"
        + wrap("attributes", [f"{n}()" for n in names])
        + "ACTIONS: ODP text, e.g. set(tunnel(tun_id=0x2a,dst=172.16.0.1)),2 (a port number or name outputs)\n"
        + wrap("actions", actions)
        + "Ports may be given by vport name.  ovs-dpctl's documentation describes each attribute's fields.\n"
    )


def _node_help(node: Command, path: list[str]) -> str:
    """An inner node's help: its commands, one usage line each."""
    head = f"usage: {' '.join([PROG, *path])} COMMAND ...\n\nCommands:\n"
    tail = (
        f"\n'{' '.join([PROG, *path])} COMMAND --help' (or '{' '.join([PROG, *path])} help COMMAND') describes one.\n"
    )
    return head + "\n".join(_usage_lines(node, path)) + "\n" + tail


def _help(node: Command, path: list[str], words: list[str]) -> int:
    """``help [COMMAND...]`` below ``node``: the commands of an inner node, the options of a leaf."""
    for word in words:
        if not node.children:
            break
        child = _resolve(node, word, path)
        if child is None:
            raise UsageError(f"unknown command '{' '.join([*path, word])}' (see '{PROG} help')")
        node, path = child, [*path, child.name]
    if node is TREE:
        sys.stdout.write(_overview())
    elif node.children:
        sys.stdout.write(_node_help(node, path))
    else:
        _leaf_parser(node, path).print_help()
    return 0


def _build_tree() -> Command:
    root = Command(PROG)
    dp = root.add(Command("datapath", aliases=("dp",), default="list"))
    dp.add(Command("list", "list datapaths", _handler("datapath", "_cmd_dp_list")))
    dp.add(
        Command(
            "add",
            "create a datapath (and vports: ovs-dpctl add-dp)",
            _handler("datapath", "_cmd_dp_add"),
            _setup("datapath", "_setup_dp_add"),
            "write",
            usage="DP [IFACE...] [--features=LIST]",
        )
    )
    dp.add(
        Command(
            "set",
            "change user features, masks cache size",
            _handler("datapath", "_cmd_dp_set"),
            _setup("datapath", "_setup_dp_set"),
            "write",
            usage="DP [--features=LIST] [--masks-cache-size=N]",
        )
    )
    dp.add(
        Command("delete", "delete a datapath", _handler("datapath", "_cmd_dp_delete"), _setup_dp, "write", usage="DP")
    )
    dp.add(
        Command(
            "show",
            "ovs-dpctl show",
            _handler("datapath", "_cmd_dp_show"),
            _setup("datapath", "_setup_dp_show"),
            usage="[-s] [-f] [DP...]",
        )
    )
    dp.add(
        Command(
            "listen",
            "print misses (sim: the queued ones)",
            _handler("datapath", "_cmd_dp_listen"),
            _setup("datapath", "_setup_dp_listen"),
            "write",
            usage="[--summary] [--pcap FILE|-] [--count N] [--timeout S] DP",
        )
    )
    vp = root.add(Command("vport", default="list"))
    vp.add(
        Command(
            "list",
            "list vports",
            _handler("vport", "_cmd_vport_list"),
            _setup("vport", "_setup_vport_list"),
            usage="[DP]",
        )
    )
    add = vp.add(Command("add"))
    for kind, tunnel_port in VPORT_KINDS:
        opts = " [--port=UDP]" if tunnel_port else ""
        add.add(
            Command(
                kind,
                f"add {'an' if kind[0] in 'aeiou' else 'a'} {kind} vport",
                _handler("vport", "_cmd_vport_add"),
                _setup_factory("vport", "_setup_vport_add", kind),
                "write",
                usage=f"DP NAME{opts} [--port-no=N]",
            )
        )
    vp.add(
        Command(
            "delete",
            "delete vports (ovs-dpctl del-if)",
            _handler("vport", "_cmd_vport_delete"),
            _setup("vport", "_setup_vport_delete"),
            "write",
            usage="[DP] NAME...",
        )
    )
    vp.add(
        Command(
            "set",
            "change a vport's upcall pids (ovs-dpctl set-if)",
            _handler("vport", "_cmd_vport_set"),
            _setup("vport", "_setup_vport_set"),
            "write",
            usage="[DP] NAME --upcall-pids=PID[,PID...]",
        )
    )
    vp.add(
        Command(
            "listen",
            "print vport events (sim: the queued ones)",
            _handler("vport", "_cmd_vport_listen"),
            _setup("vport", "_setup_vport_listen"),
            "write",
            usage="[DP]",
        )
    )
    fl = root.add(Command("flow"))
    fl.add(
        Command(
            "list",
            "ovs-dpctl dump-flows",
            _handler("flow", "_cmd_flow_list"),
            _setup("flow", "_setup_flow_list"),
            usage="[DP] [FILTER] [-m] [--names]",
        )
    )
    fl.add(
        Command(
            "add",
            "add a flow",
            _handler("flow", "_cmd_flow_add"),
            _setup_factory("flow", "_setup_flow", actions=True),
            "write",
            usage="DP MATCH ACTIONS | flags",
        )
    )
    fl.add(
        Command(
            "mod",
            "change a flow's actions",
            _handler("flow", "_cmd_flow_mod"),
            _setup_factory("flow", "_setup_flow", actions=True, mod=True),
            "write",
            usage="DP MATCH ACTIONS [--clear]",
        )
    )
    fl.add(
        Command(
            "get",
            "print one flow",
            _handler("flow", "_cmd_flow_get"),
            _setup_factory("flow", "_setup_flow", actions=False, names=True),
            usage="DP MATCH | --ufid=U",
        )
    )
    fl.add(
        Command(
            "delete",
            "delete a flow",
            _handler("flow", "_cmd_flow_delete"),
            _setup_factory("flow", "_setup_flow", actions=False),
            "write",
            usage="DP MATCH | flags",
        )
    )
    fl.add(
        Command(
            "clear",
            "clear a flow's statistics",
            _handler("flow", "_cmd_flow_clear"),
            _setup_factory("flow", "_setup_flow", actions=False),
            "write",
            usage="DP MATCH | flags",
        )
    )
    for name, verb in (("add-flows", "add"), ("mod-flows", "modify"), ("del-flows", "delete")):
        fl.add(
            Command(
                name,
                f"{verb} the flows of a file (ovs-dpctl's format)",
                _handler("flow_file", "_cmd_flows_file"),
                _setup("flow_file", f"_setup_{name.replace('-', '_')}"),
                "write",
                usage="[DP] FILE|-",
            )
        )
    for leaf in ("add", "mod", "get", "delete", "clear", "add-flows", "mod-flows", "del-flows"):
        fl.children[leaf].epilog = _flow_epilog
    fl.add(Command("flush", "delete every flow", _handler("flow", "_cmd_flow_flush"), _setup_dp, "write", usage="DP"))
    me = root.add(Command("meter"))
    me.add(
        Command(
            "features", "meter limits of a datapath", _handler("meter", "_cmd_meter_features"), _setup_dp, usage="DP"
        )
    )
    me.add(
        Command(
            "set",
            "create or replace a meter",
            _handler("meter", "_cmd_meter_set"),
            _setup("meter", "_setup_meter_set"),
            "write",
            usage="DP ID [--rate=N --burst=N] [--kbps] [--clear]",
        )
    )
    me.add(
        Command(
            "get",
            "print a meter's counters",
            _handler("meter", "_cmd_meter_get"),
            _setup("meter", "_setup_meter_id"),
            usage="DP ID",
        )
    )
    me.add(
        Command(
            "delete",
            "delete a meter",
            _handler("meter", "_cmd_meter_delete"),
            _setup("meter", "_setup_meter_id"),
            "write",
            usage="DP ID",
        )
    )
    pk = root.add(Command("packet"))
    pk.add(
        Command(
            "execute",
            "run actions on a packet",
            _handler("packet", "_cmd_packet_execute"),
            _setup("packet", "_setup_packet_execute"),
            "write",
            usage="DP PACKET ACTIONS",
        )
    )
    pk.add(
        Command(
            "inject",
            "trace a packet (simulator)",
            _handler("packet", "_cmd_packet_inject"),
            _setup("packet", "_setup_packet_inject"),
            "write",
            usage="DP PORT PACKET",
        )
    )
    st = root.add(Command("state"))
    st.add(
        Command(
            "export",
            "the simulator's state as JSON",
            setup=_setup("state", "_setup_state_file"),
            on_file=_file_handler("state", "_cmd_state_export"),
            usage="[FILE|-]",
        )
    )
    st.add(
        Command(
            "import",
            "replace the simulator's state with a JSON export",
            setup=_setup("state", "_setup_state_file"),
            on_file=_file_handler("state", "_cmd_state_import"),
            usage="[FILE|-]",
        )
    )
    root.add(
        Command(
            "completion",
            "a bash or zsh completion script",
            setup=_setup("completion", "_setup_completion"),
            plain=_plain("completion", "_cmd_completion"),
            usage="bash|zsh",
        )
    )
    root.add(Command("demo", "the simulator demo (no state, no backend)", plain=_cmd_demo))
    root.add(Command("help", "this overview", plain=_cmd_help))
    return root


TREE = _build_tree()


def _overview() -> str:
    lines = [
        f"usage: {PROG} [--backend kernel|sim] [--state PATH] [--kernel VERSION] [--json] COMMAND ...",
        "",
        "Commands (any unambiguous prefix works; dp = datapath):",
        *_usage_lines(TREE, []),
        "",
        "Backend: --backend or $ODP_BACKEND (default sim); simulator state: --state or $ODP_SIM_STATE",
        f"(default $XDG_STATE_HOME/odp/sim.db).  '{PROG} COMMAND --help' describes a command.",
        "",
    ]
    return "\n".join(lines)


# ===========================================================================
# main
# ===========================================================================


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, InvalidFlow) and exc.rule not in ("invalid", "kernel-einval") and "[rule:" not in text:
        text += f" [rule: {exc.rule}]"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def _main_parser() -> _ArgParser:
    p = _ArgParser(prog=PROG, add_help=False, allow_abbrev=False)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--version", action="store_true")
    _add_global_options(p, suppress=False)
    p.add_argument("words", nargs=argparse.REMAINDER)
    return p


def _leaf_parser(node: Command, path: list[str]) -> _ArgParser:
    p = _ArgParser(
        prog=" ".join([PROG, *path]),
        description=node.help,
        allow_abbrev=False,
        epilog=node.epilog() if node.epilog is not None else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if node.setup is not None:
        node.setup(p)
    _add_global_options(p, suppress=True)
    return p


def _backend_name(value: str | None) -> str:
    from odp.backends import BACKENDS

    name = value or os.environ.get("ODP_BACKEND") or "sim"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r} (use --backend kernel or --backend sim)")
    return name


def _state_path(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("ODP_SIM_STATE")
    if env:
        return env
    from odp.sim.state import default_state_path

    return str(default_state_path())


def _dispatch(args: list[str]) -> int:
    top = _main_parser().parse_args(args)
    if top.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            sys.stdout.write(f"{PROG} {version('odp')}\n")
        except PackageNotFoundError:
            sys.stdout.write(f"{PROG} (version unknown)\n")
        return 0
    words: list[str] = list(top.words)
    if words[:1] == ["__complete"]:  # the shell completion scripts' question (odp.cli.completion)
        from odp.cli.completion import complete

        backend_opt = next((w.split("=", 1)[1] for w in words if w.startswith("--backend=")), None)
        state_opt = next((w.split("=", 1)[1] for w in words if w.startswith("--state=")), None)
        for i, w in enumerate(words[:-1]):
            if w == "--backend":
                backend_opt = words[i + 1]
            elif w == "--state":
                state_opt = words[i + 1]
        name = _backend_name(backend_opt or top.backend)
        found = complete(words[1:], name, _state_path(state_opt or top.state), TREE, _leaf_parser, _resolve)
        sys.stdout.write("".join(c + "\n" for c in found))
        return 0
    if top.help:
        sys.stdout.write(_overview())
        return 0
    if not words:
        sys.stderr.write(_overview())  # a usage error: no command
        return 2
    node, path = TREE, list[str]()
    while node.children and words and not words[0].startswith("-"):
        if words[0] == "help":  # 'odp help flow add', 'odp dp help', 'odp flow help add'
            return _help(node, path, words[1:])
        child = _resolve(node, words[0], path)
        if child is None:
            raise UsageError(f"unknown command '{' '.join([*path, words[0]])}' (see '{PROG} help')")
        node = child
        path.append(child.name)
        words.pop(0)
    if node.children:
        if node.default is not None and not any(w in ("-h", "--help") for w in words):
            node = node.children[node.default]
            path.append(node.name)
        else:
            subs = ", ".join(node.children)
            if any(w in ("-h", "--help") for w in words):
                sys.stdout.write(_node_help(node, path))
                return 0
            raise UsageError(f"'{' '.join(path)}' needs a subcommand: {subs}")
    a = _leaf_parser(node, path).parse_intermixed_args(words)  # options may come between positionals
    json_out = bool(getattr(a, "json", False) or top.json)
    backend = _backend_name(getattr(a, "backend", None) or top.backend)
    if node.plain is not None:
        return node.plain(a)
    if node.on_file is not None:
        if backend != "sim":
            raise UsageError(f"'{' '.join(path)}' is about the simulator's state (--backend sim)")
        return node.on_file(a, _state_path(getattr(a, "state", None) or top.state))
    handler = node.handler
    assert handler is not None
    out = sys.stdout
    kernel = getattr(a, "kernel", None) or top.kernel
    if kernel is not None and backend == "kernel":
        raise CommandError("--kernel is for the simulator: the kernel backend runs the machine's own kernel")
    if backend == "kernel":
        from odp.backends import connect
        from odp.cli.base import Ctx

        with connect("kernel") as conn:
            return handler(Ctx(conn, backend, json_out, out), a)
    from odp.cli.base import Ctx
    from odp.datapath import Connection
    from odp.sim.datapath import SimBackend
    from odp.sim.store import open_state

    path_ = _state_path(getattr(a, "state", None) or top.state)
    with open_state(path_, write=node.state == "write" or kernel is not None) as state:
        conn = Connection(SimBackend(state.host, kernel=kernel))
        return handler(Ctx(conn, backend, json_out, out, state), a)


def main(argv: list[str] | None = None) -> int:
    """Run the ``odp`` command line; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = sys.argv[1:] if argv is None else list(argv)
    json_errors = "--json" in args
    try:
        return _dispatch(args)
    except _Exit as exc:
        return exc.status
    except UsageError as exc:
        _report(exc, json_errors)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OdpError, ValueError, OSError) as exc:
        _report(exc, json_errors)
        return 1


def _report(exc: BaseException, as_json: bool) -> None:
    """The one error line on stderr: text, or with --json a JSON object (error, kind, rule, field)."""
    if not as_json:
        sys.stderr.write(f"{PROG}: error: {_error_text(exc)}\n")
        return
    kind = "usage" if isinstance(exc, UsageError) else type(exc).__name__
    doc = {
        "version": JSON_VERSION,
        "error": _error_text(exc),
        "kind": kind,
        "rule": getattr(exc, "rule", None),
        "field": getattr(exc, "field", None),
    }
    sys.stderr.write(json.dumps(doc) + "\n")
