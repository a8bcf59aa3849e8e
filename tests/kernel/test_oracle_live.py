"""A fresh sample of oracle cases, recorded live on this kernel and compared with the simulator on the spot.

The recorded corpora (tests/oracle) are replayed on the host; this keeps them from going stale: every
run draws a new seed (printed; ``ODP_ORACLE_SEED`` repeats one), runs ``ODP_ORACLE_LIVE`` cases
(default 500) on the kernel, then the same cases on the simulator configured as this kernel.
In the VM the sample is kept as ``$ODP_VM_OUT/oracle-live-<kernel>.jsonl.gz``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from odp.testing import oracle


def test_live_oracle_sample_agrees_with_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("ODP_ORACLE_SEED") or oracle.new_seed())
    count = int(os.environ.get("ODP_ORACLE_LIVE", "500"))
    kernel = oracle.kernel_name()
    with capsys.disabled():
        print(f"\noracle live sample: kernel {kernel}, seed {seed}, {count} cases", flush=True)
    started = time.monotonic()
    bench = oracle.kernel_bench()
    try:
        results = oracle.record(bench, oracle.generate_many(seed, count))
    finally:
        bench.close()
    recorded = time.monotonic() - started
    out = os.environ.get("ODP_VM_OUT")
    if out:  # keep the sample (a corpus like tests/oracle's) for whoever looks into a disagreement
        oracle.write(Path(out) / f"oracle-live-{kernel}.jsonl.gz", kernel, os.uname().release, seed, results)
    found = oracle.compare(kernel, results)
    lines = oracle.summary(kernel, len(results), found)
    with capsys.disabled():
        print(f"{lines[0]} (seed {seed}; recorded in {recorded:.1f}s)", flush=True)
    assert not found, f"seed {seed} (rerun with ODP_ORACLE_SEED={seed}):\n" + "\n".join(lines)
