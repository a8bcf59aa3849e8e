"""``odp meter``: features, set, get, delete."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from odp.cli.base import CommandError, Ctx, UsageError, _setup_dp
from odp.constants import MeterBandType
from odp.records import FlowStats, MeterBand, MeterStats

if TYPE_CHECKING:
    pass

# ===========================================================================
# meter commands
# ===========================================================================


def _band_type_name(number: int) -> str:
    try:
        return MeterBandType(number).name.lower()
    except ValueError:
        return str(number)


def _meter_json(stats: MeterStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "meter_id": stats.meter_id,
        "packets": stats.packets,
        "bytes": stats.bytes,
        "used": stats.used,
        "bands": [{"packets": b.packets, "bytes": b.bytes} for b in stats.bands],
    }


def _meter_lines(stats: MeterStats) -> list[str]:
    # ``used`` is ms of the monotonic clock, as flows report it; print the age like dump-flows.
    age = max(0, int(time.monotonic() * 1000) - stats.used) / 1000
    lines = [f"meter:{stats.meter_id} packets:{stats.packets} bytes:{stats.bytes} used:{age:.3f}s"]
    lines += [f"  band {i}: packets:{b.packets} bytes:{b.bytes}" for i, b in enumerate(stats.bands)]
    return lines


def _meter_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise CommandError(f"meter id {text!r} is not a number") from None
    return value


def _cmd_meter_features(ctx: Ctx, a: argparse.Namespace) -> int:
    f = ctx.datapath(a.dp).meter_features()
    types = [_band_type_name(t) for t in f.band_types]
    if ctx.json:
        ctx.print_json({"max_meters": f.max_meters, "max_bands": f.max_bands, "band_types": types})
    else:
        ctx.print(f"max_meters:{f.max_meters} max_bands:{f.max_bands} band_types:{','.join(types) or 'none'}")
    return 0


def _cmd_meter_set(ctx: Ctx, a: argparse.Namespace) -> int:
    dp = ctx.datapath(a.dp)
    if (a.rate is None) != (a.burst is None):
        raise UsageError("meter set: give both --rate and --burst (or neither, for a meter without bands)")
    if a.type is not None and a.rate is None:
        raise UsageError("meter set: --type needs --rate and --burst")
    bands: list[MeterBand] = []
    if a.rate is not None:
        type_text = a.type or "drop"
        if type_text.lower() == "drop":
            band_type = int(MeterBandType.DROP)
        else:
            try:
                band_type = int(type_text, 0)
            except ValueError:
                raise CommandError(f"--type={type_text}: 'drop' or a band type number") from None
        bands.append(MeterBand(rate=a.rate, burst=a.burst, type=band_type))
    stats = None
    if a.stats is not None:
        parts = a.stats.split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise CommandError(f"--stats={a.stats}: expected PACKETS,BYTES")
        stats = FlowStats(int(parts[0]), int(parts[1]))
    old = dp.set_meter(_meter_id(a.id), bands, kbps=a.kbps, clear=a.clear, stats=stats)
    if ctx.json:
        ctx.print_json({"meter_id": _meter_id(a.id), "replaced": _meter_json(old)})
    elif old is not None:
        ctx.print("replaced " + "\n".join(_meter_lines(old)))
    return 0


def _cmd_meter_get(ctx: Ctx, a: argparse.Namespace) -> int:
    stats = ctx.datapath(a.dp).get_meter(_meter_id(a.id))
    if ctx.json:
        ctx.print_json(_meter_json(stats))
    else:
        for line in _meter_lines(stats):
            ctx.print(line)
    return 0


def _cmd_meter_delete(ctx: Ctx, a: argparse.Namespace) -> int:
    stats = ctx.datapath(a.dp).delete_meter(_meter_id(a.id))
    if ctx.json:
        ctx.print_json(_meter_json(stats))
    elif stats is not None:
        for line in _meter_lines(stats):
            ctx.print(line)
    return 0


def _setup_meter_id(p: argparse.ArgumentParser) -> None:
    _setup_dp(p)
    p.add_argument("id", metavar="ID", help="meter id (0 to 4294967295)")


def _setup_meter_set(p: argparse.ArgumentParser) -> None:
    _setup_meter_id(p)
    p.add_argument("--rate", type=int, help="band rate: packets/s, or kbit/s with --kbps")
    p.add_argument("--burst", type=int, help="band burst: packets, or kbit with --kbps")
    p.add_argument("--type", help="band type: drop (default) or a number (other types only count)")
    p.add_argument("--kbps", action="store_true", help="rates in kbit/s of frame bytes (default: packets/s)")
    p.add_argument("--clear", action="store_true", help="keep this meter's stats out of the reply that replaces it")
    p.add_argument("--stats", metavar="PACKETS,BYTES", help="start the meter's counters at these values")
