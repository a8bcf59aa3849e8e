"""``python -m odp``: the odp command line (``python -m odp demo`` runs the simulator demo)."""

from __future__ import annotations

import sys

from odp.cli import main

sys.exit(main())
