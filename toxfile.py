"""tox's in-tree plugin (tox 4 loads ``toxfile.py`` beside tox.ini): every CPython of the machine is found.

pyenv keeps each interpreter in its own folder, and its shims do not answer the
probe tox makes to learn an interpreter's version; so ``tox`` alone, run as the
README says, would find only the ``python3.X`` on PATH and skip the others. This
adds each pyenv version's ``bin`` folder to the end of PATH before any
interpreter is looked for (what is on PATH already keeps precedence). On a
machine without pyenv it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tox.plugin import impl


def pyenv_bins() -> list[str]:
    """The ``bin`` folder of every interpreter pyenv has installed."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = root / "versions"
    if not versions.is_dir():
        return []
    return [str(v / "bin") for v in sorted(versions.iterdir()) if (v / "bin").is_dir()]


@impl
def tox_add_option(parser: Any) -> None:
    """The earliest hook tox calls, before it looks for an interpreter."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    extra = [b for b in pyenv_bins() if b not in path]
    if extra:
        os.environ["PATH"] = os.pathsep.join([*path, *extra])
