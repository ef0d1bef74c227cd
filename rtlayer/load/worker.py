"""``python -m rtlayer.load.worker``: one generator process of a multi-process load run.

Reads its job (a pickle, from the parent ``rtlayer load`` process, on stdin), runs its share of the
callers, and writes the measurements (a pickle of plain data) on stdout. Not meant to be run by hand.
"""

from __future__ import annotations

import pickle
import sys

from .runner import run_worker_job


def main() -> None:
    job = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(run_worker_job(job)))


if __name__ == "__main__":
    main()
