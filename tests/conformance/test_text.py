"""Text from outside made safe: bounded, valid Unicode, one terminal line, or valid XML and HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from conformance._text import bounded, decode, multiline, one_line, valid_unicode

#: What a terminal obeys or a line break: C0 (newline too), DEL, C1, separators, bidi controls.
OBEYED = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: What XML 1.0 cannot carry (and the controls this kit escapes anyway), tab and newline allowed.
NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def test_escape_sequences_and_newlines_become_visible() -> None:
    assert one_line("a\x1b[2Jb\nPASS x\r\x07") == "a\\x1b[2Jb\\nPASS x\\r\\x07"
    assert one_line("tab\there") == "tab\\there"
    assert one_line("\u2028\u202e\x85\x9b") == "\\u2028\\u202e\\x85\\x9b"
    assert one_line("\ud800") == "\\ud800"
    assert one_line("naïve 名前 ok") == "naïve 名前 ok"  # printable text is left alone


def test_multiline_keeps_lines_and_tabs() -> None:
    assert multiline("a\r\nb\tc\n") == "a\nb\tc\n"
    assert multiline("bare\rreturn\x00nul") == "bare\\rreturn\\x00nul"


def test_bounded_cuts_and_says_how_much() -> None:
    assert bounded("abcdef", 10) == "abcdef"
    assert bounded("abcdef", 3) == "... [6 more characters]"
    assert bounded("x" * 100, 50) == "xxxxx... [95 more characters]"
    assert len(bounded("x" * 10**6, 2000)) <= 2000
    assert bounded("\ud800x", 10) == "\ufffdx"


def test_decode_cuts_bytes_first() -> None:
    assert decode(b"hello", 10) == "hello"
    assert decode(b"\xff" * 10, 4) == "\ufffd" * 4 + "... [6 more bytes]"


def test_valid_unicode_replaces_only_lone_surrogates() -> None:
    assert valid_unicode("ok \U0001f600") == "ok \U0001f600"
    assert valid_unicode("a\udc80b").encode("utf-8") == "a\ufffdb".encode()


@given(st.text())
def test_one_line_never_lets_a_control_character_through(text: str) -> None:
    safe = one_line(text)
    assert not OBEYED.search(safe)
    assert "\n" not in safe
    safe.encode("utf-8")


@given(st.text())
def test_multiline_is_always_valid_xml_text(text: str) -> None:
    safe = multiline(text)
    assert not NOT_XML.search(safe)
    element = ET.Element("t")
    element.text = safe
    element.set("a", safe)
    parsed = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert (parsed.text or "") == safe
    assert parsed.get("a") == safe
