"""Progress bars for long work: lively on a terminal, a line every 30 s in a log file."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar on stderr; when stderr is not a terminal (a log file, CI), it redraws every 30 s
    instead of several times a second."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0)
