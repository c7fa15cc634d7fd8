"""TopicStore: O(1) append and read, in place reset."""

from __future__ import annotations

import pytest

from mock_broker import StoredMessage
from mock_broker._storage import TopicStore


def test_create_append_read_clear():
    s = TopicStore()
    assert s.create("a")
    assert not s.create("a")
    assert [s.append("a", ts, b"%d" % ts) for ts in range(3)] == [0, 1, 2]
    assert s.counts() == {"a": 3}
    assert s.messages("a")[2] == StoredMessage(2, 2, b"2")
    logs = s.logs
    s.clear()
    assert s.logs is logs
    assert s.counts() == {}
    with pytest.raises(KeyError):
        s.append("a", 0, b"")
