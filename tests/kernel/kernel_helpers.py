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


def ovs_dpctl_version() -> tuple[int, int]:
    """The (major, minor) of the ovs-dpctl on PATH: 3.1 with Debian 12's kernel, 3.5 with Debian 13's."""
    first = ovs_dpctl("--version").splitlines()[0]  # "ovs-dpctl (Open vSwitch) 3.5.0"
    major, minor = first.rsplit(" ", 1)[1].split(".")[:2]
    return int(major), int(minor)


def ovs_dpctl(*args: str) -> str:
    """Run Debian's ovs-dpctl (on PATH in the VM) and return its stdout."""
    exe = shutil.which("ovs-dpctl")
    if exe is None:
        pytest.skip("ovs-dpctl is not on PATH (the VM provides Debian's)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"ovs-dpctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout
