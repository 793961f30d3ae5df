"""The frozen build's program: the `almanac` command (the CLI; `almanac gui` opens the window)."""

import multiprocessing
import sys

from almanac.cli.main import main

if __name__ == "__main__":
    # Text extraction runs in spawned worker processes (core/extractors/worker.py): in a frozen program each
    # starts as this executable, and this call turns it into the worker instead of a second `almanac`.
    multiprocessing.freeze_support()
    sys.exit(main())
