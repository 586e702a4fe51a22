"""One rule for both command-line tools: a user error is one line and exit code 1."""

from __future__ import annotations

import argparse
import sys
from typing import Callable


def run_reporting_errors(prog: str, run: Callable[[argparse.Namespace], int],
                         args: argparse.Namespace) -> int:
    """Missing files, bad values and unreachable downloads are the user's to fix.

    They get the message alone; anything else is a bug and keeps its traceback.
    """
    try:
        return run(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
