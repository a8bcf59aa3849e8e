"""Flows matching tunnel options or NSH in the simulator: matched as the kernel matches them, or refused."""

from __future__ import annotations

import pytest

import odp
from odp.sim import Host

_TUNNEL = "tunnel(tun_id=0x2a,dst=172.16.0.1,ttl=64,{opts}flags(+key)),in_port(1),eth(),eth_type(0x0800),ipv4()"


def _dp() -> odp.Datapath:
    conn = odp.connect("sim", host=Host("t"))
    return conn.create_datapath("d")


@pytest.mark.parametrize(
    ("opts", "name"),
    [
        ("geneve({class=0x102,type=0x80,len=4,0xa}),", "geneve"),
        ("erspan(raw=00000001000000ab00000000),", "erspan"),
    ],
)
def test_tunnel_option_flows_are_refused_not_wildcarded(opts: str, name: str) -> None:
    dp = _dp()
    with pytest.raises(odp.NotSupported, match=rf"tunnel {name} options"):
        dp.add_flow(_TUNNEL.format(opts=opts), "2")
    assert dp.flows() == []


def test_nsh_flows_are_refused() -> None:
    dp = _dp()
    with pytest.raises(odp.NotSupported, match="nsh"):
        dp.add_flow("in_port(1),eth(),eth_type(0x894f),nsh(flags=0,ttl=63,mdtype=1,np=3,spi=1,si=255)", "2")
    assert dp.flows() == []
