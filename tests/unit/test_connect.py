"""odp.connect(): opening a backend by name."""

from __future__ import annotations

import pytest

import odp


def test_an_unknown_backend_is_an_invalid_argument_naming_it() -> None:
    with pytest.raises(odp.InvalidArgument, match="'bogus'"):
        odp.connect("bogus")


def test_connect_opens_the_simulator() -> None:
    with odp.connect("sim") as conn:
        assert conn.backend.name == "sim"
        assert conn.datapaths() == []
