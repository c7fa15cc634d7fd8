"""Topic name rules: 1 to 255 characters of [A-Za-z0-9._-]."""

from __future__ import annotations

import pytest

from mega_client.protocol.limits import is_valid_topic_name, topic_name_problem


@pytest.mark.parametrize("name", ["a", "orders.v2", "A-Z_0-9", "x" * 255, "..", "-"])
def test_valid_names(name: str) -> None:
    assert is_valid_topic_name(name)
    assert topic_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "x" * 256, "with space", "caf\u00e9", "a/b", "t\n", "\u0661"])
def test_invalid_names_say_why(name: str) -> None:
    problem = topic_name_problem(name)
    assert problem is not None
    assert not is_valid_topic_name(name)
