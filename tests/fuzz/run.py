"""Coverage-guided fuzzing with atheris (``tox -e fuzz``; on demand, never in CI).

    python tests/fuzz/run.py TARGET [libFuzzer options] [corpus dirs]

TARGET is ``text`` (the flow text parser), ``codec`` (the netlink decoders)
or ``sim`` (the simulator's receive path); the properties are in
``targets.py``.  Without a corpus directory the run starts from the seeds of
``targets.seeds`` in a temporary one.  Useful options: ``-max_total_time=S``,
``-runs=N``, ``-jobs=N``; a crash is written to ``crash-<sha1>`` and replays
with ``python tests/fuzz/run.py TARGET crash-<sha1>``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "unit")]

with atheris.instrument_imports(include=["odp"]):
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer options] [corpus dirs]")
    name = sys.argv[1]
    args = [sys.argv[0], *sys.argv[2:]]
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = Path(tempfile.mkdtemp(prefix=f"odp-fuzz-{name}-"))
        for i, seed in enumerate(targets.seeds(name)):
            (corpus / f"seed{i}").write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup(args, targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
