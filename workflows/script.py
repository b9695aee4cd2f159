"""How the three entry points run their workflow: signals, exit codes, and failures said in one line."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

import torch

from common.atomic import DiskFullError

log = logging.getLogger("script")


def raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_script(workflow: Callable[[Any], Any], config: Any) -> None:
    """Run `workflow(config)`. SIGTERM is taken as Ctrl-C (what finished is kept: episodes, a checkpoint);
    exit status 130 when interrupted, 1 with one line when the disk is full."""
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        workflow(config)
    except KeyboardInterrupt:
        sys.exit(130)
    except DiskFullError as error:
        log.error("%s", error)
        sys.exit(1)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
