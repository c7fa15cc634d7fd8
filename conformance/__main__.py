"""``python -m conformance``: the same as ``mega-conformance``."""

from ._cli import console_main

if __name__ == "__main__":
    console_main()
