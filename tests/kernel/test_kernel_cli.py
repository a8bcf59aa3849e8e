"""The odp command line against the real kernel datapath (in the VM).

The same commands as the simulator session, with --backend kernel; flow
listings must be what Debian's ovs-dpctl prints for the same datapath.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kernel_helpers import unique

from odp.cli import main


def odp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--backend", "kernel", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dpname() -> object:
    name = unique("kcli")
    yield name
    main(["--backend", "kernel", "datapath", "delete", name])


def test_cli_session_on_kernel(capsys: pytest.CaptureFixture[str], dpname: str) -> None:
    assert odp(capsys, "datapath", "add", dpname)[0] == 0
    assert dpname in odp(capsys, "datapath", "list")[1].split()
    assert odp(capsys, "vport", "add", "internal", dpname, dpname + "i")[0] == 0
    assert odp(capsys, "vport", "add", "vxlan", dpname, dpname + "v", "--port=4799")[0] == 0
    code, out, err = odp(capsys, "flow", "add", dpname, "in_port(1),eth(),eth_type(0x0800),ipv4()", "2")
    assert code == 0, err
    code, out, _ = odp(capsys, "flow", "list", dpname)
    assert out == "in_port(1),eth(),eth_type(0x0800), packets:0, bytes:0, used:never, actions:2\n"
    if shutil.which("ovs-dpctl"):
        dpctl = subprocess.run(["ovs-dpctl", "dump-flows", f"system@{dpname}"], capture_output=True, text=True)
        assert dpctl.stdout == out
    code, out, _ = odp(capsys, "dp", "show", dpname)
    assert f"system@{dpname}:" in out
    assert "port 2: " + dpname + "v (vxlan" in out


def test_cli_errors_on_kernel(capsys: pytest.CaptureFixture[str], dpname: str) -> None:
    assert odp(capsys, "datapath", "add", dpname)[0] == 0
    code, _, err = odp(capsys, "datapath", "add", dpname)
    assert code == 1
    assert err.startswith("odp: error:") and err.count("\n") == 1
    code, _, err = odp(capsys, "flow", "add", dpname, "in_port(1),eth(),eth_type(0x0800)", "2")
    assert code == 1
    assert "ipv4" in err


def test_cli_meters_on_kernel(capsys: pytest.CaptureFixture[str], dpname: str) -> None:
    assert odp(capsys, "datapath", "add", dpname)[0] == 0
    code, out, err = odp(capsys, "meter", "features", dpname)
    assert code == 0, err
    features = out.strip()
    assert features.startswith("max_meters:") and features.endswith(" max_bands:1 band_types:drop")
    assert odp(capsys, "meter", "set", dpname, "3", "--rate=1000", "--burst=0", "--stats=5,500") == (0, "", "")
    code, out, _ = odp(capsys, "meter", "get", dpname, "3")
    assert out.startswith("meter:3 packets:5 bytes:500 used:") and out.endswith("\n  band 0: packets:0 bytes:0\n")
    code, out, _ = odp(capsys, "meter", "delete", dpname, "3")
    assert out.startswith("meter:3 packets:5 ")
    code, _, err = odp(capsys, "meter", "get", dpname, "3")
    assert code == 1 and "has no meter 3" in err
