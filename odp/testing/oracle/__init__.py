"""The recorded kernel oracle: the kernel's outcomes for thousands of generated cases.

- :mod:`~odp.testing.oracle.cases` generates cases from a seed (install
  cases: one flow, valid or not; packet cases: a flow table and frames);
- :mod:`~odp.testing.oracle.bench` runs them on one backend, reusing one
  datapath across cases;
- :func:`record` runs cases on the kernel and writes a corpus: gzip'd JSON
  lines, a header (oracle format, generator version, kernel version and
  release, seed) then one line per case with the case and the kernel's
  outcome; :func:`replay` runs a corpus's cases on the simulator configured
  as that kernel and returns every disagreement.

``python -m odp.testing.oracle record|replay|live`` is the command line
(see ``--help``); the corpora live in ``tests/oracle/``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from odp.testing.oracle.bench import Bench, Outcome, StateLeak
from odp.testing.oracle.cases import GENERATOR_VERSION, Case, generate, generate_many

__all__ = [
    "CORPUS_DIR",
    "GENERATOR_VERSION",
    "Case",
    "Corpus",
    "Disagreement",
    "comparable",
    "compare",
    "generate",
    "generate_many",
    "load",
    "record",
    "replay",
    "run_one",
    "sim_bench",
]

FORMAT = 1
CORPUS_DIR = Path(__file__).resolve().parents[3] / "tests" / "oracle"


@dataclass(frozen=True)
class Corpus:
    kernel: str
    release: str
    seed: int
    generator: int
    cases: tuple[tuple[Case, Outcome], ...]
    path: Path | None = None


@dataclass(frozen=True)
class Disagreement:
    kernel: str
    case: Case
    kernel_outcome: Outcome
    sim_outcome: Outcome
    corpus: Path | None = None

    def reproducer(self) -> str:
        """A one-line command that runs this case again and shows both outcomes."""
        where = f" {self.corpus}" if self.corpus is not None else ""
        return f"python -m odp.testing.oracle show --kernel {self.kernel} --case {self.case.name}{where}"

    def line(self) -> str:
        diff = {k: (self.kernel_outcome.get(k), self.sim_outcome.get(k))
                for k in sorted(set(self.kernel_outcome) | set(self.sim_outcome))
                if self.kernel_outcome.get(k) != self.sim_outcome.get(k)}  # fmt: skip
        flows = " ; ".join(f"{m} -> {a}" for m, a in self.case.flows)
        packets = " ".join(p.hex() for p in self.case.packets)
        detail = "; ".join(f"{k}: kernel {kv!r} sim {sv!r}" for k, (kv, sv) in diff.items())
        return (f"case {self.case.name} ({self.case.kind}) flows [{flows}] meters {list(self.case.meters)}"
                f" packets [{packets}]: {detail} | reproduce: {self.reproducer()}")  # fmt: skip


def kernel_name() -> str:
    """The running kernel as the oracle names it: "6.1", "6.12"."""
    from odp.kernels import Kernel

    return str(Kernel.running())


def sim_bench(kernel: str) -> Bench:
    """A bench on the simulator configured as ``kernel`` ("6.1", "6.12")."""
    from odp.testing.topology import SimTopology

    return Bench(SimTopology(kernel=kernel))


def kernel_bench() -> Bench:
    from odp.testing.kernel_topology import KernelTopology

    return Bench(KernelTopology())


# -- corpus files ---------------------------------------------------------------------


def write(path: Path, kernel: str, release: str, seed: int, results: Iterable[tuple[Case, Outcome]]) -> int:
    """Write a corpus; returns the number of cases."""
    n = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        header = {"oracle": FORMAT, "generator": GENERATOR_VERSION, "kernel": kernel, "release": release, "seed": seed}
        f.write(json.dumps(header, sort_keys=True) + "\n")
        for case, outcome in results:
            f.write(
                json.dumps({"case": case.to_json(), "outcome": outcome}, sort_keys=True, separators=(",", ":")) + "\n"
            )
            n += 1
    return n


def load(path: Path) -> Corpus:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        if header.get("oracle") != FORMAT:
            raise ValueError(f"{path}: oracle format {header.get('oracle')}, this odp reads {FORMAT}")
        cases = tuple((Case.from_json(d["case"]), d["outcome"]) for d in map(json.loads, f))
    return Corpus(
        str(header["kernel"]), str(header["release"]), int(header["seed"]), int(header["generator"]), cases, path
    )


def corpora(directory: Path = CORPUS_DIR) -> list[Corpus]:
    """Every corpus in ``directory``, in kernel version order."""
    found = [load(p) for p in sorted(directory.glob("kernel-*.jsonl.gz"))]
    return sorted(found, key=lambda c: tuple(int(x) for x in c.kernel.split(".")))


# -- running ----------------------------------------------------------------------------


def run_cases(bench: Bench, cases: Iterable[Case]) -> Iterator[tuple[Case, Outcome]]:
    for case in cases:
        yield case, run_one(bench, case)


def run_one(bench: Bench, case: Case) -> Outcome:
    """The case's outcome; an error escaping the bench (an odp bug, never the case's fault) is one too."""
    from odp.errors import OdpError

    try:
        outcome: Outcome = json.loads(json.dumps(bench.run(case)))  # the shapes of a loaded outcome (lists)
        return outcome
    except (OdpError, ValueError, KeyError, IndexError, TypeError, AssertionError) as exc:
        if isinstance(exc, StateLeak):
            raise
        return {"error": f"{type(exc).__name__}: {exc}"}


_DP_HASH = re.compile(r"dp_hash\((0x[0-9a-f]+)\)")


def comparable(outcome: Outcome) -> Outcome:
    """``outcome`` with each non-zero ``dp_hash`` value in miss keys replaced by its order of appearance.

    The kernel seeds skb_get_hash() at random at boot (``hashrnd``), so no
    hash value can be compared; which packets of a case hash alike (and
    which hash to 0) can."""
    packets = outcome.get("packets")
    if not packets:
        return outcome
    seen: dict[str, int] = {}

    def label(m: re.Match[str]) -> str:
        return f"dp_hash(#{seen.setdefault(m.group(1), len(seen) + 1)})"

    return {**outcome, "packets": json.loads(_DP_HASH.sub(label, json.dumps(packets)))}


def compare(kernel: str, results: Iterable[tuple[Case, Outcome]], corpus: Path | None = None) -> list[Disagreement]:
    """Run each case on the simulator as ``kernel``; the cases whose outcome differs from the recorded one."""
    bench = sim_bench(kernel)
    found = []
    try:
        for case, expected in results:
            got = comparable(run_one(bench, case))
            expected = comparable(expected)
            if got != expected:
                found.append(Disagreement(kernel, case, expected, got, corpus))
    finally:
        bench.close()
    return found


def replay(corpus: Corpus) -> list[Disagreement]:
    return compare(corpus.kernel, corpus.cases, corpus.path)


def record(bench: Bench, cases: list[Case], progress: int = 0) -> list[tuple[Case, Outcome]]:
    """The kernel's outcome for each case (printing progress every ``progress`` cases)."""
    results = []
    started = time.monotonic()
    for i, result in enumerate(run_cases(bench, cases), 1):
        results.append(result)
        if progress and i % progress == 0:
            print(f"recorded {i}/{len(cases)} cases in {time.monotonic() - started:.0f}s", flush=True)
    return results


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "big")


def summary(kernel: str, n: int, disagreements: list[Disagreement]) -> list[str]:
    return [f"kernel {kernel}: {n} cases, {len(disagreements)} disagreements", *(d.line() for d in disagreements)]
