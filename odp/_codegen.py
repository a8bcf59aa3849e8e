"""Functions generated from source text, as ``dataclasses`` builds ``__init__``.

The codec, the validation cache and the simulator's key conversion run once
per attribute of every flow installed or dumped; a function generated for one
attribute class (or one match shape) reads its fields in a single expression
and runs several times faster than a loop over the fields.  The source is
always built from the model's own class metadata and the swkey layout, never
from user input.

Each source is compiled under a file name of its own and its text registered
in :mod:`linecache` (as attrs does), so tracebacks, ``pdb`` and ``inspect``
show the generated lines instead of ``<string>``.  The name carries a hash of
the source: regenerating the same function (after a cache is cleared) reuses
its entry instead of adding one.
"""

from __future__ import annotations

import hashlib
import linecache
import re
from typing import Any

__all__ = ["define"]

_FIRST_DEF = re.compile(r"^\s*def\s+(\w+)", re.MULTILINE)


def define(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``source`` (function definitions) in ``namespace`` and return the namespace."""
    first = _FIRST_DEF.search(source)
    digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:16]
    filename = f"<odp generated {first.group(1) if first else 'code'} {digest}>"
    # Registered before running, so that an error while defining shows its line too;
    # mtime None keeps linecache.checkcache() from dropping the entry.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace
