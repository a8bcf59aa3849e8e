"""``python -m odp.testing.oracle``: record, replay, live, show.

- ``record --count N [--seed S] --out FILE``: run N generated cases on the running kernel (root, in the VM)
  and write the corpus;
- ``replay [FILE...]``: replay corpora (default: every ``tests/oracle/kernel-*.jsonl.gz``) on the simulator;
  prints ``kernel 6.1: N cases, D disagreements`` per corpus, then a line per disagreement; exit 1 if any;
- ``live --count N [--seed S]``: record N fresh cases on the running kernel and compare them with the
  simulator on the spot (CI's live sample);
- ``show --kernel K --case SEED:INDEX [FILE]``: one case, its kernel outcome (from the corpus, else
  regenerated from the seed) and the simulator's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from odp.testing import oracle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odp.testing.oracle")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="record generated cases on the running kernel")
    live = sub.add_parser("live", help="record fresh cases on the running kernel and compare with the simulator")
    for p in (rec, live):
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--seed", type=int, default=None, help="default: a new random seed (printed)")
        p.add_argument("--kernel", default=None, help="kernel version name (default: the running kernel's)")
    rec.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("replay", help="replay corpora on the simulator")
    rep.add_argument("files", nargs="*", type=Path)
    show = sub.add_parser("show", help="one case, both outcomes")
    show.add_argument("--kernel", required=True)
    show.add_argument("--case", required=True, help="SEED:INDEX")
    show.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args(argv)

    if args.cmd in ("record", "live"):
        seed = oracle.new_seed() if args.seed is None else args.seed
        kernel = args.kernel or oracle.kernel_name()
        print(
            f"oracle: kernel {kernel}, seed {seed}, {args.count} cases, generator {oracle.GENERATOR_VERSION}",
            flush=True,
        )
        cases = oracle.generate_many(seed, args.count)
        bench = oracle.kernel_bench()
        started = time.monotonic()
        try:
            results = oracle.record(bench, cases, progress=500)
        finally:
            bench.close()
        print(f"recorded {len(results)} cases in {time.monotonic() - started:.1f}s", flush=True)
        if args.cmd == "record":
            import os

            oracle.write(args.out, kernel, os.uname().release, seed, results)
            print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
            return 0
        found = oracle.compare(kernel, results)
        print("\n".join(oracle.summary(kernel, len(results), found)))
        return 1 if found else 0

    if args.cmd == "replay":
        files = args.files or sorted(oracle.CORPUS_DIR.glob("kernel-*.jsonl.gz"))
        corpora = sorted((oracle.load(f) for f in files), key=lambda c: tuple(int(x) for x in c.kernel.split(".")))
        bad = 0
        for corpus in corpora:
            found = oracle.replay(corpus)
            bad += len(found)
            print("\n".join(oracle.summary(corpus.kernel, len(corpus.cases), found)), flush=True)
        return 1 if bad else 0

    seed_text, _, index_text = args.case.partition(":")
    case, expected = None, None
    if args.file is not None:
        for c, o in oracle.load(args.file).cases:
            if c.name == args.case:
                case, expected = c, o
    if case is None:
        case = oracle.generate(int(seed_text), int(index_text))
    print(json.dumps(case.to_json(), indent=1))
    # (non-zero dp_hash values as their order of appearance: see oracle.comparable)
    shown = json.dumps(oracle.comparable(expected), indent=1) if expected is not None else "(not in a corpus)"
    print("kernel:", shown)
    bench = oracle.sim_bench(args.kernel)
    try:
        print("simulator:", json.dumps(oracle.comparable(oracle.run_one(bench, case)), indent=1))
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
