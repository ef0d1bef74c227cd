"""``python -m tests.fuzz``: the fuzz runner's command line (see ``fuzz_runner``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_runner  # found through the path set just above

sys.exit(fuzz_runner.main())
