"""Shell completion: ``odp completion bash|zsh`` prints a script; the script asks ``odp __complete WORDS``.

The candidates are the subcommands below the words typed so far, a leaf's
options, and the names of datapaths and vports (read from the backend the
words select: the simulator's state is opened read-only; errors give no
candidates rather than a message in the middle of a command line).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odp.cli.tree import Command

BASH = r"""# odp completion for bash: eval "$(odp completion bash)" (e.g. in ~/.bashrc)
_odp() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(odp __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "$cur"))
}
complete -F _odp odp
"""

ZSH = r"""#compdef odp
# odp completion for zsh: eval "$(odp completion zsh)" (e.g. in ~/.zshrc, after compinit)
_odp() {
    local -a candidates
    candidates=(${(f)"$(odp __complete ${words[2,CURRENT-1]} 2>/dev/null)"})
    compadd -- $candidates
}
compdef _odp odp
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}
#: Global options followed by a value (not a command word).
_VALUED = ("--state", "--backend")


def _setup_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=sorted(SCRIPTS), help="the shell to complete in")


def _cmd_completion(a: argparse.Namespace) -> int:
    sys.stdout.write(SCRIPTS[a.shell])
    return 0


def _names(backend: str, state_path: str) -> Iterator[str]:
    """Datapath and vport names, or nothing if they cannot be had quietly."""
    from odp.datapath import Connection

    with contextlib.suppress(Exception):  # completion never fails a command line
        if backend == "kernel":
            from odp.backends import connect

            with connect("kernel") as conn:
                yield from _conn_names(conn)
            return
        from odp.sim.datapath import SimBackend
        from odp.sim.store import open_state

        with open_state(state_path, write=False) as st:
            yield from _conn_names(Connection(SimBackend(st.host)))


def _conn_names(conn: object) -> Iterator[str]:
    for dp in conn.datapaths():  # type: ignore[attr-defined]
        yield dp.name
        for name in dp.port_numbers():
            if name != dp.name:
                yield name


def complete(
    words: list[str],
    backend: str,
    state_path: str,
    tree: Command,
    leaf_parser: Callable[[Command, list[str]], argparse.ArgumentParser],
    resolve: Callable[[Command, str, list[str]], Command | None],
) -> list[str]:
    """The candidates for the word after ``words`` (the words typed after ``odp``) in the
    command ``tree`` (odp.cli.tree, which passes its parser builder and name resolver)."""
    node, path = tree, list[str]()
    rest = [w for i, w in enumerate(words) if not w.startswith("-") and (i == 0 or words[i - 1] not in _VALUED)]
    for word in rest:
        if not node.children:
            break
        try:
            child = resolve(node, word, path)
        except Exception:
            return []
        if child is None:
            return []
        node, path = child, [*path, child.name]
    if node.children:
        return [*node.children, *([] if "help" in node.children else ["help"])]
    options = [s for action in leaf_parser(node, path)._actions for s in action.option_strings if s.startswith("--")]
    if node.handler is None:
        return options
    return [*dict.fromkeys(_names(backend, state_path)), *options]
