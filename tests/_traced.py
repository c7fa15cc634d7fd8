"""``python -m tests._traced MODULE ARGS``: run ``python -m MODULE ARGS`` with tracemalloc on.

On SIGUSR1 it prints ``traced N`` on stdout: the bytes Python holds allocated at
that moment, after a full garbage collection. Unlike the resident set, the figure
does not move with the allocator's arenas or with the machine's load (memory
freed during a burst of work can stay resident), so a test can compare two
servers' cost per connection to a few bytes on a loaded machine.
"""

from __future__ import annotations

import gc
import runpy
import signal
import sys
import tracemalloc
from types import FrameType


def _report(signum: int, frame: FrameType | None) -> None:
    gc.collect()
    print(f"traced {tracemalloc.get_traced_memory()[0]}", flush=True)


def main() -> None:
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    signal.signal(signal.SIGUSR1, _report)
    tracemalloc.start()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
