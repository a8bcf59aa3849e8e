"""The odp command line against the real kernel datapath (in the VM).

The same commands as the simulator session, with --backend kernel; flow
listings must be what Debian's ovs-dpctl prints for the same datapath.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_cli_flows_file_and_filter_on_kernel(capsys: pytest.CaptureFixture[str], dpname: str, tmp_path: Path) -> None:
    assert odp(capsys, "datapath", "add", dpname)[0] == 0
    assert odp(capsys, "vport", "add", "internal", dpname, dpname + "i")[0] == 0
    path = tmp_path / "flows.txt"
    path.write_text(
        "# two flows, batched\n"
        "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1) 0\n"
        "add in_port(0),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2) \\\n  1\n"
    )
    code, _, err = odp(capsys, "flow", "add-flows", dpname, str(path))
    assert code == 0, err
    code, out, _ = odp(capsys, "flow", "list", dpname)
    assert len(out.splitlines()) == 2
    if shutil.which("ovs-dpctl"):
        dpctl = subprocess.run(["ovs-dpctl", "dump-flows", f"system@{dpname}"], capture_output=True, text=True)
        assert sorted(dpctl.stdout.splitlines()) == sorted(out.splitlines())
    code, out, _ = odp(capsys, "flow", "list", dpname, "filter=in_port=1,ip,nw_dst=10.0.0.1")
    assert out == "in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.1), packets:0, bytes:0, used:never, actions:0\n"
    path.write_text("in_port(0),eth(),eth_type(0x0800),ipv4(dst=10.0.0.2)\n")
    assert odp(capsys, "flow", "del-flows", dpname, str(path))[0] == 0
    assert len(odp(capsys, "flow", "list", dpname)[1].splitlines()) == 1
    path.write_text("in_port(0),eth(),eth_type(0x0800),ipv4(dst=10.0.0.3) 1\nin_port(0),eth(),eth_type(0x0800) 1\n")
    code, _, err = odp(capsys, "flow", "add-flows", dpname, str(path))
    assert code == 1 and err.startswith(f"odp: error: {path}:2: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("dispatch", ["auto", "per-vport", "per-cpu"])
def test_cli_listen_ready_line_on_kernel(capsys: pytest.CaptureFixture[str], dpname: str, dispatch: str) -> None:
    """A script waits for the ready line, then causes an upcall to the pid it names: the listener prints it."""
    assert odp(capsys, "datapath", "add", dpname)[0] == 0
    listen = subprocess.Popen(
        [sys.executable, "-m", "odp", "--backend", "kernel", "datapath", "listen", dpname, "--count", "1",
         "--timeout", "120", "--dispatch", dispatch],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert listen.stderr is not None
        ready = listen.stderr.readline()
        assert ready.startswith(f"odp: listening on {dpname}: netlink pid "), ready
        pid = int(ready.rsplit(" ", 1)[1])
        code, out, _ = odp(capsys, "--json", "vport", "list", dpname)
        if dispatch == "per-vport":
            assert json.loads(out)["data"][0]["upcall_pids"] == [pid]  # the local port points at the listener
        frame = "02000000000202000000000108004500001c0001000040110000" + "0a0000010a000002" + "04d20050000800" + "00"
        code, _, err = odp(capsys, "packet", "execute", dpname, frame, f"userspace(pid={pid},userdata(0a0b))")
        assert code == 0, err
        out, err = listen.communicate(timeout=120)
    finally:
        listen.kill()
    assert listen.returncode == 0, err
    assert out.startswith("USERSPACE upcall[1]: ") and out.rstrip().endswith(", userdata(0a0b)"), out
