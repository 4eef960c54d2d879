"""Measure the gate by simulation, through its own decision kernel (benchmarks/calibration/).

    .venv/bin/python benchmarks/gate_calibration.py --simulate [--replicates N] [--write-docs]
    .venv/bin/python benchmarks/gate_calibration.py --extract DIR [DIR ...] [--out FILE]

Prints, last: calibration: family-wise false alarm at margin <x> (ci) <x2> (release); power at 2x
margin <y> (release, 10% flips).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")  # many small array operations: threads only contend
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # this checkout's trustgate and benchmarks package

from benchmarks.calibration.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
