"""Text from outside (a driver's replies and stderr, a broker's bytes): bounded, then made safe to show.

Three rules, applied at the edges:

* bounded when read and stored: :func:`bounded`, :func:`decode`;
* valid Unicode: a lone surrogate (``"\\ud800"`` in a driver's JSON) cannot be written as
  UTF-8, so :func:`decode` and :func:`bounded` turn it into U+FFFD;
* visible, never obeyed: :func:`one_line` (for a terminal) and :func:`multiline` (for XML
  and HTML) replace every control character (C0, DEL, C1), every Unicode line or paragraph
  separator and bidirectional override, and anything XML 1.0 cannot carry, by an escape
  such as ``\\x1b`` or ``\\n``. An escape sequence cannot set a terminal's title or clear
  it, and a newline in a driver's message cannot forge a line of the run's output.

Backslashes are left as they are: driver text that *spells* ``\\x1b`` shows as that text,
which is harmless, and reasons that quote Python reprs stay readable.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; the Unicode line and paragraph separators; the bidirectional
# marks, embeddings, overrides and isolates; the BOM; the two non-characters XML 1.0 excludes;
# lone surrogates.
_UNSAFE = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff"
)
_UNSAFE_MULTILINE = re.compile(f"[{_UNSAFE}]|\r(?!\n)")
_UNSAFE_ONE_LINE = re.compile(f"[{_UNSAFE}\t\n\r]")
_MARKER_ROOM = 45  # "... [N more characters]" for any N a str can have
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (so it can be written as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def bounded(text: str, limit: int) -> str:
    """``text`` (valid Unicode) in at most ``limit`` characters: if longer, its start and how many were left out."""
    if len(text) > limit:
        keep = max(0, limit - _MARKER_ROOM)
        text = f"{text[:keep]}... [{len(text) - keep} more characters]"
    return valid_unicode(text)


def decode(data: bytes, limit: int) -> str:
    """Bytes from outside as text: UTF-8 (invalid bytes become U+FFFD), cut to ``limit`` bytes first."""
    if len(data) > limit:
        return data[:limit].decode("utf-8", "replace") + f"... [{len(data) - limit} more bytes]"
    return data.decode("utf-8", "replace")


def one_line(text: str) -> str:
    """``text`` safe for a terminal line: no control character, no line break, no bidi override."""
    return _UNSAFE_ONE_LINE.sub(_escape, text)


def multiline(text: str) -> str:
    """``text`` safe for XML and HTML: as :func:`one_line`, but tabs and newlines stay (CRLF becomes LF)."""
    return _UNSAFE_MULTILINE.sub(_escape, text.replace("\r\n", "\n"))
