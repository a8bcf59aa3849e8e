"""Functions generated from source text, as ``dataclasses`` builds ``__init__``.

The codec, the validation cache and the simulator's key conversion run once
per attribute of every flow installed or dumped; a function generated for one
attribute class (or one match shape) reads its fields in a single expression
and runs several times faster than a loop over the fields.  The source is
always built from the model's own class metadata and the swkey layout, never
from user input.
"""

from __future__ import annotations

from typing import Any

__all__ = ["define"]


def define(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``source`` (function definitions) in ``namespace`` and return the namespace."""
    exec(source, namespace)
    return namespace
