"""odp._codegen.define: generated code shows up in tracebacks."""

from __future__ import annotations

import inspect
import linecache
import traceback

import pytest

from odp._codegen import define

SOURCE = """\
def divide(a, b):
    total = a + b
    return total // b
"""


def test_a_generated_function_that_raises_shows_its_source_line() -> None:
    divide = define(SOURCE, {})["divide"]
    assert divide(4, 2) == 3
    with pytest.raises(ZeroDivisionError) as info:
        divide(1, 0)
    text = "".join(traceback.format_exception(info.value))
    assert "<odp generated divide " in text
    assert "return total // b" in text
    assert inspect.getsource(divide) == SOURCE


def test_the_file_name_is_per_source_and_stable() -> None:
    a = define(SOURCE, {})["divide"]
    b = define(SOURCE, {})["divide"]
    c = define(SOURCE.replace("a + b", "a - b"), {})["divide"]
    assert a.__code__.co_filename == b.__code__.co_filename != c.__code__.co_filename
    linecache.checkcache()  # a generated entry survives the check for changed files
    assert linecache.getline(c.__code__.co_filename, 2) == "    total = a - b\n"
