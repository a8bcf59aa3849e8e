"""Golden cases for the ODP flow text format: input text -> canonical text.

The expected strings are written from OVS's canonical forms (``tests/odp.at``,
``lib/odp-util.c``) and from what ``ovs-dpctl dump-flows`` prints on Debian's
kernel 6.1 (shared/reference/kernel-semantics.md, "Canonical text").  Each case
checks the canonical output, and that parsing that output gives the same model
and the same text again.
"""

# ruff: noqa: E501  (golden strings are kept on one line each)
from __future__ import annotations

import pytest

from odp.text import format_flow_line, parse_actions, parse_flow_line, parse_match

# (input, canonical output)
MATCHES: list[tuple[str, str]] = [
    # --- the examples and kernel-semantics.md -------------------------
    ("in_port(1),eth(),eth_type(0x0800)", "in_port(1),eth(),eth_type(0x0800)"),
    ("in_port(1),eth(),eth_type(0x0800),ipv4()", "in_port(1),eth(),eth_type(0x0800)"),
    ("in_port(1),eth(dst=02:00:00:00:00:02),eth_type(0/0x0000)", "in_port(1),eth(dst=02:00:00:00:00:02),eth_type(0/0x0000)"),
    (
        "eth(),eth_type(0x0800),ipv4(),in_port(2),skb_priority(0x5)",
        "skb_priority(0x5),in_port(2),eth(),eth_type(0x0800)",
    ),
    (
        "eth(),ct_state(+new+trk),in_port(1),eth_type(0x0800)",
        "in_port(1),ct_state(+new+trk),eth(),eth_type(0x0800)",
    ),
    (
        "tunnel(tun_id=0x5,src=10.0.0.1,dst=10.0.0.2,ttl=64,flags(df|csum|key)),in_port(3),eth(),eth_type(0x0800)",
        "tunnel(tun_id=0x5,src=10.0.0.1,dst=10.0.0.2,ttl=64,flags(df|csum|key)),in_port(3),eth(),eth_type(0x0800)",
    ),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(+syn-ack)",
     "in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp_flags(+syn-ack)"),
    ("tcp_flags(syn|ack)", "tcp_flags(syn|ack)"),
    ("tcp_flags(0x12)", "tcp_flags(syn|ack)"),
    ("tcp_flags(0/0)", ""),
    ("ct_state(new|trk)", "ct_state(new|trk)"),
    ("ct_state(-new+est+trk)", "ct_state(-new+est+trk)"),
    ("ct_state(0x21/0x21)", "ct_state(+new+trk)"),
    ("ct_state(0x100/0x100)", "ct_state(0x100/0x100)"),
    ("ct_state(0)", "ct_state(0)"),
    # --- masks in each field notation ----------------------------------------
    (
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.2.3/255.255.0.0,dst=10.0.0.2)",
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.2.3/255.255.0.0,dst=10.0.0.2)",
    ),
    (
        "eth_type(0x0800),ipv4(src=10.0.0.0/8,dst=192.168.1.0/24)",
        "eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0,dst=192.168.1.0/255.255.255.0)",
    ),
    (
        "eth_type(0x0800),ipv4(src=35.8.2.41/255.255.255.0,dst=172.16.0.20/255.255.255.0,proto=5/0xf0,tos=0x80/0xf0,ttl=128/0xf0,frag=no)",
        "eth_type(0x0800),ipv4(src=35.8.2.41/255.255.255.0,dst=172.16.0.20/255.255.255.0,proto=5/0xf0,tos=0x80/0xf0,ttl=128/0xf0,frag=no)",
    ),
    ("ipv4(tos=0,ttl=0)", "ipv4(tos=0,ttl=0)"),
    ("ipv4(tos=0/0x3)", "ipv4(tos=0/0x3)"),
    ("ipv4(frag=0)", "ipv4(frag=no)"),
    ("ipv4(frag=2)", "ipv4(frag=later)"),
    ("ipv4(frag=3/0xff)", "ipv4(frag=3)"),
    ("ipv4(frag=1/0xf)", "ipv4(frag=1/0xf)"),
    ("ipv4(proto=6),tcp(src=80/0xff00,dst=8080/0xff)", "ipv4(proto=6),tcp(src=80/0xff00,dst=8080/0xff)"),
    ("udp(src=81/0xff,dst=6632/0xff00)", "udp(src=81/0xff,dst=6632/0xff00)"),
    ("sctp(src=1,dst=2)", "sctp(src=1,dst=2)"),
    ("tcp(src=0x50)", "tcp(src=80)"),
    ("in_port(1/0xff),eth(src=00:01:02:03:04:05/ff:ff:ff:ff:ff:f0,dst=10:11:12:13:14:15/ff:ff:ff:ff:ff:f0)",
     "in_port(1/0xff),eth(src=00:01:02:03:04:05/ff:ff:ff:ff:ff:f0,dst=10:11:12:13:14:15/ff:ff:ff:ff:ff:f0)"),
    ("eth(src=00:01:02:03:04:05,dst=FF:FF:FF:FF:FF:FF)", "eth(src=00:01:02:03:04:05,dst=ff:ff:ff:ff:ff:ff)"),
    ("eth(dst=01:00:00:00:00:00/01:00:00:00:00:00)", "eth(dst=01:00:00:00:00:00/01:00:00:00:00:00)"),
    ("eth_type(0x1234/0xfff0)", "eth_type(0x1234/0xfff0)"),
    ("skb_mark(0x1234/0xfff0),skb_priority(0x1234/0xff)", "skb_priority(0x1234/0xff),skb_mark(0x1234/0xfff0)"),
    ("recirc_id(0),dp_hash(0x1/0xf)", "recirc_id(0),dp_hash(0x1/0xf)"),
    # --- IPv6, ND, ARP, ICMP --------------------------------------------------
    (
        "eth_type(0x86dd),ipv6(src=::1/::255,dst=::2/::255,label=0/0xf0,proto=10/0xf0,tclass=0x70/0xf0,hlimit=128/0xf0,frag=no)",
        "eth_type(0x86dd),ipv6(src=::1/::255,dst=::2/::255,label=0/0xf0,proto=10/0xf0,tclass=0x70/0xf0,hlimit=128/0xf0,frag=no)",
    ),
    ("ipv6(src=2001:db8::1/64,dst=fe80::1)", "ipv6(src=2001:db8::1/ffff:ffff:ffff:ffff::,dst=fe80::1)"),
    ("ipv6(src=::ffff:10.0.0.1,label=0x12345)", "ipv6(src=::ffff:10.0.0.1,label=0x12345)"),
    (
        "eth_type(0x86dd),ipv6(proto=58),icmpv6(type=136,code=0),nd(target=::3,sll=00:05:06:07:08:09,tll=00:0a:0b:0c:0d:0e)",
        "eth_type(0x86dd),ipv6(proto=58),icmpv6(type=136,code=0),nd(target=::3,sll=00:05:06:07:08:09,tll=00:0a:0b:0c:0d:0e)",
    ),
    ("nd(target=::3/::250,sll=00:05:06:07:08:09/ff:ff:ff:ff:ff:00)", "nd(target=::3/::250,sll=00:05:06:07:08:09/ff:ff:ff:ff:ff:00)"),
    ("icmpv6(type=135),nd()", "icmpv6(type=135)"),
    (
        "eth_type(0x0806),arp(sip=1.2.3.4/255.255.255.250,tip=5.6.7.8/255.255.255.250,op=1/0xf0,sha=00:0f:10:11:12:13/ff:ff:ff:ff:ff:00,tha=00:14:15:16:17:18/ff:ff:ff:ff:ff:00)",
        "eth_type(0x0806),arp(sip=1.2.3.4/255.255.255.250,tip=5.6.7.8/255.255.255.250,op=1/0xf0,sha=00:0f:10:11:12:13/ff:ff:ff:ff:ff:00,tha=00:14:15:16:17:18/ff:ff:ff:ff:ff:00)",
    ),
    ("eth_type(0x0806),arp(op=1)", "eth_type(0x0806),arp(op=1)"),
    ("icmp(type=1/0xf0,code=2)", "icmp(type=1/0xf0,code=2)"),
    # --- VLAN, encap, QinQ, MPLS ---------------------------------------------
    (
        "in_port(1),eth(),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0800),ipv4(proto=17),udp(dst=53))",
        "in_port(1),eth(),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0800),ipv4(proto=17),udp(dst=53))",
    ),
    (
        "in_port(1),eth(),vlan(vid=99/0xff0,pcp=7/0x6),eth_type(0x8100),encap(tcp(src=80/0xff00),eth_type(0x0800),ipv4(proto=6))",
        "in_port(1),eth(),eth_type(0x8100),vlan(vid=99/0xff0,pcp=7/0x6),encap(eth_type(0x0800),ipv4(proto=6),tcp(src=80/0xff00))",
    ),
    (
        "eth(),eth_type(0x88a8),vlan(vid=100),encap(eth_type(0x8100),vlan(vid=200),encap(eth_type(0x0800),ipv4()))",
        "eth(),eth_type(0x88a8),vlan(vid=100),encap(eth_type(0x8100),vlan(vid=200),encap(eth_type(0x0800)))",
    ),
    ("eth(),eth_type(0x8100),vlan(vid=0,pcp=0,cfi=0),encap()", "eth(),eth_type(0x8100),vlan(vid=0,pcp=0,cfi=0),encap()"),
    ("vlan()", "vlan()"),
    ("vlan(tci=0x1005)", "vlan(vid=5,pcp=0)"),
    ("vlan(vid=5,cfi=1/0)", "vlan(vid=5,cfi=1/0)"),
    ("eth_type(0x8847),mpls(label=100,tc=3,ttl=64,bos=1)", "eth_type(0x8847),mpls(label=100,tc=3,ttl=64,bos=1)"),
    (
        "mpls(label=100/0xff,tc=7/7,ttl=64/0xff,bos=1/1)",
        "mpls(label=100/0xff,tc=7/7,ttl=64/0xff,bos=1/1)",
    ),
    (
        "mpls(label=1,tc=0,ttl=64,bos=0,label=2,tc=0,ttl=64,bos=1)",
        "mpls(label=1,tc=0,ttl=64,bos=0,label=2,tc=0,ttl=64,bos=1)",
    ),
    ("mpls(lse0=0x64140,lse1=0x2/0xff)", "mpls(label=100/0xfffff,tc=0/7,ttl=64/0xff,bos=1/1,label=0/0x0,tc=0/0,ttl=2/0xff,bos=0/0)"),
    # --- metadata, conntrack -------------------------------------------------
    (
        "skb_priority(0),skb_mark(0),ct_state(0),ct_zone(0),ct_mark(0),ct_label(0),recirc_id(0),dp_hash(0),in_port(1)",
        "recirc_id(0),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0),ct_state(0),ct_zone(0),ct_mark(0),ct_label(0)",
    ),
    (
        "eth(),ct_state(+trk),ct_zone(0x5/0xff),ct_mark(0x10305070/0xf0f0f0f0),ct_label(0x1234567890abcdef1234567890abcdef/0x102030405060708090a0b0c0d0e0f0),ct_tuple4(src=10.10.10.10,dst=20.20.20.20,proto=17,tp_src=1,tp_dst=2)",
        "ct_state(+trk),ct_zone(0x5/0xff),ct_mark(0x10305070/0xf0f0f0f0),ct_label(0x1234567890abcdef1234567890abcdef/0x102030405060708090a0b0c0d0e0f0),ct_tuple4(src=10.10.10.10,dst=20.20.20.20,proto=17,tp_src=1,tp_dst=2),eth()",
    ),
    ("ct_tuple6(src=::1,dst=::2,proto=6,tp_src=10,tp_dst=20)", "ct_tuple6(src=::1,dst=::2,proto=6,src_port=10,dst_port=20)"),
    ("ct_label(0x5)", "ct_label(0x5)"),
    ("packet_type(ns=1,id=0x800)", "packet_type(ns=1,id=0x800)"),
    # --- tunnels --------------------------------------------------------------
    (
        "tunnel(tun_id=0x7f10354,src=10.10.10.10,dst=20.20.20.20,ttl=64,flags(csum|key)),skb_mark(0x1234),in_port(1)",
        "tunnel(tun_id=0x7f10354,src=10.10.10.10,dst=20.20.20.20,ttl=64,flags(csum|key)),in_port(1),skb_mark(0x1234)",
    ),
    (
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,vxlan(gbp(id=10/0xff,flags=0xb)),flags(oam|csum|key))",
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,vxlan(gbp(id=10/0xff,flags=0xb)),flags(oam|csum|key))",
    ),
    (
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,flags(-df+csum+key))",
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,flags(-df+csum+key))",
    ),
    (
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,geneve({class=0,type=0,len=4,0xa/0xff}{class=0xffff,type=0x1,len=4,0xffffffff}),flags(csum|key))",
        "tunnel(tun_id=0x7f10354/0xff,src=10.10.10.10/255.255.255.0,dst=20.20.20.20/255.255.255.0,ttl=64,geneve({class=0,type=0,len=4,0xa/0xff}{class=0xffff,type=0x1,len=4,0xffffffff}),flags(csum|key))",
    ),
    (
        "tunnel(tun_id=0xfedcba9876543210,src=10.0.0.1,dst=10.0.0.2,ttl=128,erspan(ver=1,idx=0x7),flags(df|key))",
        "tunnel(tun_id=0xfedcba9876543210,src=10.0.0.1,dst=10.0.0.2,ttl=128,erspan(ver=1,idx=0x7),flags(df|key))",
    ),
    (
        "tunnel(tun_id=0xfedcba9876543210,src=10.0.0.1,dst=10.0.0.2,ttl=128,erspan(ver=2,dir=1,hwid=0x7),flags(df|key))",
        "tunnel(tun_id=0xfedcba9876543210,src=10.0.0.1,dst=10.0.0.2,ttl=128,erspan(ver=2,dir=1,hwid=0x7),flags(df|key))",
    ),
    # the selftest tool's forms: decimal tun_id, decimal tos, no key flag written
    (
        "tunnel(tun_id=5,src=10.0.0.1,dst=10.0.0.2,tos=8,ttl=64,flags(df|csum))",
        "tunnel(tun_id=0x5,src=10.0.0.1,dst=10.0.0.2,tos=0x8,ttl=64,flags(df|csum|key))",
    ),
    ("tunnel(tun_id=0x5,ttl=64)", "tunnel(tun_id=0x5,ttl=64,flags(+key))"),
    (
        "tunnel(ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,ttl=64,tp_src=100,tp_dst=4789,flags(0))",
        "tunnel(ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,ttl=64,tp_src=100,tp_dst=4789,flags(0))",
    ),
    ("tunnel(dst=10.0.0.2,key20(0102/ff00),flags(-key))", "tunnel(dst=10.0.0.2,key20(0102/ff00),flags(-key))"),
    # --- NSH, unknown attributes, whitespace, ufid -----------------------------
    (
        "nsh(flags=0,ttl=63,mdtype=1,np=3,spi=0x5,si=255,c1=0x1,c2=0x2,c3=0x3,c4=0x4)",
        "nsh(flags=0,ttl=63,mdtype=1,np=3,spi=0x5,si=255,c1=0x1,c2=0x2,c3=0x3,c4=0x4)",
    ),
    ("nsh(np=3,spi=0x5/0x00ffff00,si=1/0xf)", "nsh(np=3,spi=0x5/0x00ffff00,si=0x01/0x0f)"),
    ("in_port(3),key40(0102/ff00)", "in_port(3),key40(0102/ff00)"),
    ("key40(01 02),in_port(3)", "in_port(3),key40(0102)"),
    (
        "in_port(1), eth( src=00:01:02:03:04:05 , dst=10:11:12:13:14:15 ),\teth_type(0x0800), ipv4(src = 1.2.3.4)",
        "in_port(1),eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15),eth_type(0x0800),ipv4(src=1.2.3.4)",
    ),
    ("ufid:9ab3fbc4-8e32-4d4c-bd2e-1df0b2a4e3a1 in_port(1),eth()", "in_port(1),eth()"),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(frag=later),", "in_port(1),eth(),eth_type(0x0800),ipv4(frag=later)"),
]  # fmt: skip

ACTIONS: list[tuple[str, str]] = [
    ("", "drop"),
    ("drop", "drop"),
    ("1,2,3", "1,2,3"),
    ("1, 2,\t3", "1,2,3"),
    ("drop(3)", "drop(3)"),
    ("userspace(pid=1234)", "userspace(pid=1234)"),
    ("userspace(pid=1234567,userdata(0102030405060708090a0b0c0d0e0f),actions)", "userspace(pid=1234567,userdata(0102030405060708090a0b0c0d0e0f),actions)"),
    ("userspace(pid=7,userdata(01020304),tunnel_out_port=10)", "userspace(pid=7,userdata(01020304),tunnel_out_port=10)"),
    ("userspace(pid=7,egress_tun_port=3,userdata=0a0b)", "userspace(pid=7,userdata(0a0b),tunnel_out_port=3)"),
    ("set(in_port(2))", "set(in_port(2))"),
    ("set(eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15))", "set(eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15))"),
    ("set(eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15/ff:ff:ff:00:00:00))", "set(eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15/ff:ff:ff:00:00:00))"),
    ("set(ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x80,ttl=128,frag=no))", "set(ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x80,ttl=128,frag=no))"),
    ("set(ipv4(dst=10.0.0.2))", "set(ipv4(dst=10.0.0.2))"),
    ("set(ipv4(tos=0x80/0xfc))", "set(ipv4(tos=0x80/0xfc))"),
    ("set(tcp(src=80/0xff00,dst=8080))", "set(tcp(src=80/0xff00,dst=8080))"),
    ("set(ipv6(label=0/0xfff,proto=10,tclass=0x70/0x70))", "set(ipv6(label=0/0xfff,proto=10,tclass=0x70/0x70))"),
    ("set(vlan(vid=5/0x3))", "set(vlan(vid=5/0x3))"),
    ("set(vlan(vid=3,pcp=5,cfi=0))", "set(vlan(vid=3,pcp=5,cfi=0))"),
    ("set_masked(eth(dst=10:11:12:13:14:15))", "set(eth(dst=10:11:12:13:14:15))"),
    (
        "set(tunnel(tun_id=0xabcdef1234567890,src=1.1.1.1,dst=2.2.2.2,ttl=64,flags(df|csum|key)))",
        "set(tunnel(tun_id=0xabcdef1234567890,src=1.1.1.1,dst=2.2.2.2,ttl=64,flags(df|csum|key)))",
    ),
    ("set(tunnel(tun_id=0x1,dst=1.1.1.1,ttl=64,erspan(ver=1,idx=0x7),flags(df|key)))", "set(tunnel(tun_id=0x1,dst=1.1.1.1,ttl=64,erspan(ver=1,idx=0x7),flags(df|key)))"),
    ("set(tunnel(tun_id=5,dst=10.0.0.2,ttl=64))", "set(tunnel(tun_id=0x5,dst=10.0.0.2,ttl=64,flags(key)))"),
    (
        "set(tunnel(dst=10.0.0.2,ttl=64,geneve({class=0x102,type=0x80,len=4,0xa}),flags(0)))",
        "set(tunnel(dst=10.0.0.2,ttl=64,geneve({class=0x102,type=0x80,len=4,0xa}),flags(0)))",
    ),
    ("set(skb_mark(0x5))", "set(skb_mark(0x5))"),
    ("set(skb_mark(0x5/0xff))", "set(skb_mark(0x5/0xff))"),
    ("set(nsh(flags=0,spi=0x5/0x00ffffff))", "set(nsh(flags=0,spi=0x5))"),
    ("push_vlan(vid=12,pcp=0)", "push_vlan(vid=12,pcp=0)"),
    ("push_vlan(vid=13,pcp=5,cfi=0)", "push_vlan(vid=13,pcp=5,cfi=0)"),
    ("push_vlan(tpid=0x9100,vid=13,pcp=5)", "push_vlan(tpid=0x9100,vid=13,pcp=5)"),
    ("push_vlan(vid=10,pcp=3,tpid=0x8100)", "push_vlan(vid=10,pcp=3)"),
    ("pop_vlan", "pop_vlan"),
    ("sample(sample=9.7%,actions(1,2,3,push_vlan(vid=1,pcp=2)))", "sample(sample=9.7%,actions(1,2,3,push_vlan(vid=1,pcp=2)))"),
    ("sample(sample=50.00%,actions(drop))", "sample(sample=50.0%,actions(drop))"),
    ("sample(sample=100%,actions())", "sample(sample=100.0%,actions(drop))"),
    ("clone(1)", "clone(1)"),
    ("clone(clone(push_vlan(vid=12,pcp=0),2),1)", "clone(clone(push_vlan(vid=12,pcp=0),2),1)"),
    ("clone()", "clone(drop)"),
    ("recirc(0x5)", "recirc(0x5)"),
    ("recirc(10)", "recirc(0xa)"),
    ("hash(l4(0))", "hash(l4(0))"),
    ("hash(sym_l4(5))", "hash(sym_l4(5))"),
    ("ct", "ct"),
    ("ct()", "ct"),
    ("ct(commit,zone=5)", "ct(commit,zone=5)"),
    ("ct(commit,mark=0xa0a0a0a0/0xfefefefe)", "ct(commit,mark=0xa0a0a0a0/0xfefefefe)"),
    ("ct(mark=10)", "ct(mark=0x10/0xffffffff)"),
    ("ct(commit,label=0x1234567890abcdef1234567890abcdef/0xf1f2f3f4f5f6f7f8f9f0fafbfcfdfeff)", "ct(commit,label=0x1234567890abcdef1234567890abcdef/0xf1f2f3f4f5f6f7f8f9f0fafbfcfdfeff)"),
    ("ct(commit,helper=ftp,nat(src=10.1.1.240-10.1.1.255))", "ct(commit,helper=ftp,nat(src=10.1.1.240-10.1.1.255))"),
    ("ct(nat)", "ct(nat)"),
    ("ct(commit,nat(src=10.0.0.240:32768-65535,random))", "ct(commit,nat(src=10.0.0.240:32768-65535,random))"),
    ("ct(commit,nat(dst=10.0.0.128-10.0.0.254,hash))", "ct(commit,nat(dst=10.0.0.128-10.0.0.254,hash))"),
    ("ct(commit,nat(src=fe80::20c:29ff:fe88:1-fe80::20c:29ff:fe88:a18b,random))", "ct(commit,nat(src=fe80::20c:29ff:fe88:1-fe80::20c:29ff:fe88:a18b,random))"),
    ("ct(commit,nat(src=[fe80::1]-[fe80::2]:255-4096,persistent))", "ct(commit,nat(src=[fe80::1]-[fe80::2]:255-4096,persistent))"),
    ("ct(force_commit,zone=5,timeout=t1)", "ct(force_commit,zone=5,timeout=t1)"),
    ("ct_clear", "ct_clear"),
    ("trunc(100)", "trunc(100)"),
    ("meter(3)", "meter(3)"),
    ("push_mpls(label=100,tc=3,ttl=64,bos=1,eth_type=0x8847)", "push_mpls(label=100,tc=3,ttl=64,bos=1,eth_type=0x8847)"),
    ("add_mpls(label=200,tc=7,ttl=64,bos=1,eth_type=0x8847)", "add_mpls(label=200,tc=7,ttl=64,bos=1,eth_type=0x8847)"),
    ("pop_mpls(eth_type=0x800)", "pop_mpls(eth_type=0x800)"),
    ("push_eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15)", "push_eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15)"),
    ("pop_eth", "pop_eth"),
    ("push_nsh(spi=0x5,si=254)", "push_nsh(flags=0,ttl=63,mdtype=1,np=3,spi=0x5,si=254,c1=0x0,c2=0x0,c3=0x0,c4=0x0)"),
    ("push_nsh(flags=0,ttl=63,mdtype=2,np=3,spi=0x5,si=255,md2=0x00010203)", "push_nsh(flags=0,ttl=63,mdtype=2,np=3,spi=0x5,si=255,md2=0x00010203)"),
    ("pop_nsh", "pop_nsh()"),
    ("dec_ttl(le_1(drop))", "dec_ttl(le_1(drop))"),
    ("dec_ttl(le_1(userspace(pid=5)))", "dec_ttl(le_1(userspace(pid=5)))"),
    ("check_pkt_len(size=200,gt(4),le(5))", "check_pkt_len(size=200,gt(4),le(5))"),
    ("check_pkt_len(size=200,gt(drop),le(ct(nat),5))", "check_pkt_len(size=200,gt(drop),le(ct(nat),5))"),
    ("psample(group=12,cookie=0x0102030405060708090a0b0c0d0e0f10)", "psample(group=12,cookie=0x0102030405060708090a0b0c0d0e0f10)"),
    ("psample(group=12,cookie(00ff))", "psample(group=12,cookie=0x00ff)"),
    ("psample(group=12)", "psample(group=12)"),
    ("action42(0102),action43", "action42(0102),action43"),
]  # fmt: skip

FLOW_LINES: list[tuple[str, str]] = [
    (
        "in_port(1),eth(),eth_type(0x0800),ipv4(), packets:0, bytes:0, used:never, actions:2",
        "in_port(1),eth(),eth_type(0x0800), packets:0, bytes:0, used:never, actions:2",
    ),
    (
        "recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4(frag=no), packets:10, bytes:980, used:0.520s, flags:S., actions:drop",
        "recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4(frag=no), packets:10, bytes:980, used:0.520s, flags:S., actions:drop",
    ),
    (
        "ufid:9ab3fbc4-8e32-4d4c-bd2e-1df0b2a4e3a1, in_port(1),eth(dst=02:00:00:00:00:02),eth_type(0/0x0000), packets:3, bytes:180, used:1.5s, flags:SFPRU.ECN, actions:userspace(pid=4)",
        "ufid:9ab3fbc4-8e32-4d4c-bd2e-1df0b2a4e3a1, in_port(1),eth(dst=02:00:00:00:00:02),eth_type(0/0x0000), packets:3, bytes:180, used:1.500s, flags:SFPRU.ECN, actions:userspace(pid=4)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_match_golden(text: str, expected: str) -> None:
    match = parse_match(text)
    assert str(match) == expected
    again = parse_match(expected)
    assert again == match
    assert str(again) == expected


@pytest.mark.parametrize(("text", "expected"), ACTIONS)
def test_actions_golden(text: str, expected: str) -> None:
    actions = parse_actions(text)
    assert str(actions) == expected
    again = parse_actions(expected)
    assert again == actions
    assert str(again) == expected


@pytest.mark.parametrize(("text", "expected"), FLOW_LINES)
def test_flow_line_golden(text: str, expected: str) -> None:
    line = parse_flow_line(text)
    assert format_flow_line(line) == expected
    again = parse_flow_line(expected)
    assert again == line
    assert format_flow_line(again) == expected


def test_golden_corpus_is_large_enough() -> None:
    assert len(MATCHES) + len(ACTIONS) + len(FLOW_LINES) >= 70
