"""Helpers of the kernel-only tests (imported by the test modules and conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_counter = [0]


def unique(prefix: str) -> str:
    """A device name unique to this process and test (at most 15 characters)."""
    _counter[0] += 1
    return f"{prefix}{os.getpid() % 1000}x{_counter[0]}"[:15]


def ip(args: str) -> None:
    subprocess.run(["ip", *args.split()], check=True, capture_output=True)


def ovs_dpctl(*args: str) -> str:
    """Run Debian's ovs-dpctl (on PATH in the VM) and return its stdout."""
    exe = shutil.which("ovs-dpctl")
    if exe is None:
        pytest.skip("ovs-dpctl is not on PATH (the VM provides Debian's)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"ovs-dpctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout
