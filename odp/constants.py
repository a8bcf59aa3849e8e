"""Numbers from include/uapi/linux/openvswitch.h (see shared/reference/uapi.md)."""

from __future__ import annotations

import enum

OVSP_LOCAL = 0
DP_MAX_PORTS = 65535


class Family(str, enum.Enum):
    DATAPATH = "ovs_datapath"
    VPORT = "ovs_vport"
    FLOW = "ovs_flow"
    PACKET = "ovs_packet"
    METER = "ovs_meter"
    CT_LIMIT = "ovs_ct_limit"


FAMILY_VERSION = {
    Family.DATAPATH: 2,
    Family.VPORT: 1,
    Family.FLOW: 1,
    Family.PACKET: 1,
    Family.METER: 1,
    Family.CT_LIMIT: 1,
}


class Cmd(enum.IntEnum):
    """Datapath, vport and flow commands share these numbers."""

    NEW = 1
    DEL = 2
    GET = 3
    SET = 4


class PacketCmd(enum.IntEnum):
    MISS = 1
    ACTION = 2
    EXECUTE = 3


class DpAttr(enum.IntEnum):
    NAME = 1
    UPCALL_PID = 2
    STATS = 3
    MEGAFLOW_STATS = 4
    USER_FEATURES = 5
    PAD = 6
    MASKS_CACHE_SIZE = 7
    PER_CPU_PIDS = 8
    IFINDEX = 9


class DpFeature(enum.IntFlag):
    UNALIGNED = 1 << 0
    VPORT_PIDS = 1 << 1
    TC_RECIRC_SHARING = 1 << 2
    DISPATCH_UPCALL_PER_CPU = 1 << 3


class VportType(enum.IntEnum):
    NETDEV = 1
    INTERNAL = 2
    GRE = 3
    VXLAN = 4
    GENEVE = 5


class VportAttr(enum.IntEnum):
    PORT_NO = 1
    TYPE = 2
    NAME = 3
    OPTIONS = 4
    UPCALL_PID = 5
    STATS = 6
    PAD = 7
    IFINDEX = 8
    NETNSID = 9
    UPCALL_STATS = 10


class TunnelOptAttr(enum.IntEnum):
    DST_PORT = 1
    EXTENSION = 2


class FlowAttr(enum.IntEnum):
    KEY = 1
    ACTIONS = 2
    STATS = 3
    TCP_FLAGS = 4
    USED = 5
    CLEAR = 6
    MASK = 7
    PROBE = 8
    UFID = 9
    UFID_FLAGS = 10
    PAD = 11


class MeterCmd(enum.IntEnum):
    """``ovs_meter`` commands (enum ovs_meter_cmd)."""

    FEATURES = 1
    SET = 2
    DEL = 3
    GET = 4


class MeterAttr(enum.IntEnum):
    ID = 1
    KBPS = 2
    STATS = 3
    BANDS = 4
    USED = 5
    CLEAR = 6
    MAX_METERS = 7
    MAX_BANDS = 8
    PAD = 9


class BandAttr(enum.IntEnum):
    """Attributes of one band nested in ``OVS_METER_ATTR_BANDS``."""

    TYPE = 1
    RATE = 2
    BURST = 3
    STATS = 4


class MeterBandType(enum.IntEnum):
    DROP = 1


#: Bands per meter the kernel accepts (net/openvswitch/meter.h DP_MAX_BANDS).
DP_MAX_BANDS = 1


class UfidFlags(enum.IntFlag):
    OMIT_KEY = 1
    OMIT_MASK = 2
    OMIT_ACTIONS = 4


class KeyAttrType(enum.IntEnum):
    ENCAP = 1
    PRIORITY = 2
    IN_PORT = 3
    ETHERNET = 4
    VLAN = 5
    ETHERTYPE = 6
    IPV4 = 7
    IPV6 = 8
    TCP = 9
    UDP = 10
    ICMP = 11
    ICMPV6 = 12
    ARP = 13
    ND = 14
    SKB_MARK = 15
    TUNNEL = 16
    SCTP = 17
    TCP_FLAGS = 18
    DP_HASH = 19
    RECIRC_ID = 20
    MPLS = 21
    CT_STATE = 22
    CT_ZONE = 23
    CT_MARK = 24
    CT_LABELS = 25
    CT_ORIG_TUPLE_IPV4 = 26
    CT_ORIG_TUPLE_IPV6 = 27
    NSH = 28
    PACKET_TYPE = 29
    ND_EXTENSIONS = 30
    TUNNEL_INFO = 31
    IPV6_EXTHDRS = 32


class TunnelKeyAttr(enum.IntEnum):
    ID = 0
    IPV4_SRC = 1
    IPV4_DST = 2
    TOS = 3
    TTL = 4
    DONT_FRAGMENT = 5
    CSUM = 6
    OAM = 7
    GENEVE_OPTS = 8
    TP_SRC = 9
    TP_DST = 10
    VXLAN_OPTS = 11
    IPV6_SRC = 12
    IPV6_DST = 13
    PAD = 14
    ERSPAN_OPTS = 15


class VxlanExtAttr(enum.IntEnum):
    GBP = 1


class NshKeyAttr(enum.IntEnum):
    BASE = 1
    MD1 = 2
    MD2 = 3


class ActionType(enum.IntEnum):
    OUTPUT = 1
    USERSPACE = 2
    SET = 3
    PUSH_VLAN = 4
    POP_VLAN = 5
    SAMPLE = 6
    RECIRC = 7
    HASH = 8
    PUSH_MPLS = 9
    POP_MPLS = 10
    SET_MASKED = 11
    CT = 12
    TRUNC = 13
    PUSH_ETH = 14
    POP_ETH = 15
    CT_CLEAR = 16
    PUSH_NSH = 17
    POP_NSH = 18
    METER = 19
    CLONE = 20
    CHECK_PKT_LEN = 21
    ADD_MPLS = 22
    DEC_TTL = 23
    DROP = 24
    PSAMPLE = 25


class UserspaceAttr(enum.IntEnum):
    PID = 1
    USERDATA = 2
    EGRESS_TUN_PORT = 3
    ACTIONS = 4


class SampleAttr(enum.IntEnum):
    PROBABILITY = 1
    ACTIONS = 2


class CtAttr(enum.IntEnum):
    COMMIT = 1
    ZONE = 2
    MARK = 3
    LABELS = 4
    HELPER = 5
    NAT = 6
    FORCE_COMMIT = 7
    EVENTMASK = 8
    TIMEOUT = 9


class NatAttr(enum.IntEnum):
    SRC = 1
    DST = 2
    IP_MIN = 3
    IP_MAX = 4
    PROTO_MIN = 5
    PROTO_MAX = 6
    PERSISTENT = 7
    PROTO_HASH = 8
    PROTO_RANDOM = 9


class CheckPktLenAttr(enum.IntEnum):
    PKT_LEN = 1
    ACTIONS_IF_GREATER = 2
    ACTIONS_IF_LESS_EQUAL = 3


class DecTtlAttr(enum.IntEnum):
    ACTION = 1


class PsampleAttr(enum.IntEnum):
    GROUP = 1
    COOKIE = 2


class PacketAttr(enum.IntEnum):
    PACKET = 1
    KEY = 2
    ACTIONS = 3
    USERDATA = 4
    EGRESS_TUN_KEY = 5
    UNUSED1 = 6
    UNUSED2 = 7
    PROBE = 8
    MRU = 9
    LEN = 10
    HASH = 11
    UPCALL_PID = 12


class HashAlg(enum.IntEnum):
    L4 = 0
    SYM_L4 = 1


class Frag(enum.IntEnum):
    NO = 0
    FIRST = 1
    LATER = 2


class CtState(enum.IntFlag):
    NEW = 0x01
    ESTABLISHED = 0x02
    RELATED = 0x04
    REPLY_DIR = 0x08
    INVALID = 0x10
    TRACKED = 0x20
    SRC_NAT = 0x40
    DST_NAT = 0x80


class TunnelFlag(enum.IntFlag):
    """Tunnel flags as the ODP text format numbers them (OVS FLOW_TNL_F_*).

    In netlink, DF/CSUM/OAM are presence-only attributes and KEY is the
    presence of OVS_TUNNEL_KEY_ATTR_ID.
    """

    OAM = 1 << 0
    DF = 1 << 1
    CSUM = 1 << 2
    KEY = 1 << 3


TUNNEL_FLAGS_ALL = 0xF

# Ethertypes the key extraction and validation care about.
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_RARP = 0x8035
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
ETH_P_NSH = 0x894F
ETH_P_802_3_MIN = 0x0600
ETH_P_802_2 = 0x0004
VLAN_CFI = 0x1000

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
