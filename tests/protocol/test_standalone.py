"""The codec stands alone: importing it loads neither client, nor sockets, nor asyncio.

The mock broker and the conformance suite import ``mega_client.protocol``; it
must not drag in the sync and async clients behind it. Each check runs in a
fresh interpreter, where ``sys.modules`` shows exactly what an import loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mega_client

#: What the codec must never load: the clients and the I/O they need.
CLIENT_SIDE = {"mega_client._sync", "mega_client._async", "asyncio", "socket", "select", "selectors", "threading"}


def modules_after(statement: str) -> set[str]:
    """The modules loaded in a fresh interpreter after ``statement``, beyond those of a bare start."""
    script = (
        f"import sys, json; before = set(sys.modules); {statement}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_importing_the_codec_loads_no_client_and_no_io() -> None:
    loaded = modules_after("import mega_client.protocol")
    assert "mega_client.protocol._readers" in loaded  # the check sees the codec itself
    assert not loaded & CLIENT_SIDE, sorted(loaded & CLIENT_SIDE)


def test_importing_the_package_loads_nothing_until_a_name_is_used() -> None:
    assert not modules_after("import mega_client") & ({"mega_client.protocol", "mega_client.errors"} | CLIENT_SIDE)
    loaded = modules_after("from mega_client import MegaError")
    assert "mega_client.errors" in loaded
    assert not loaded & CLIENT_SIDE
    assert {"mega_client._async", "asyncio"} <= modules_after("from mega_client import AsyncMessageClient")


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in mega_client.__all__:
        value = getattr(mega_client, name)
        assert getattr(value, "__name__", name) == name  # a class under its own name, or NO_RETRY
    assert set(mega_client.__all__) <= set(dir(mega_client))
    assert mega_client.errors.MegaError is mega_client.MegaError
    namespace: dict[str, object] = {}
    exec("from mega_client import *", namespace)
    assert set(mega_client.__all__) <= set(namespace)


def test_type_checkers_see_every_lazy_name() -> None:
    """The ``if TYPE_CHECKING:`` imports (what mypy and IDEs read) list exactly the lazy exports."""
    tree = ast.parse(Path(mega_client.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    imports = [node for node in block.body if isinstance(node, ast.ImportFrom)]
    seen = {alias.asname or alias.name for node in imports for alias in node.names}
    assert seen == set(mega_client.__all__) | {"errors", "protocol"}
