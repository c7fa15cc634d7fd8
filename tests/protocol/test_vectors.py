"""The codec against the language-neutral vectors of conformance/vectors/.

The vectors are hand-written from docs/PROTOCOL.md (see conformance/vectors/README.md); this
module only loads them and compares. Each vector runs three ways: all bytes fed at once, fed one
byte at a time (the 1 MiB vectors in small chunks), and, for every expected frame, encoded back
to exactly its bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mega_client.protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorCode,
    ErrorResponse,
    LocalProtocolError,
    MessageType,
    ProduceRequest,
    ProduceResponse,
    RemoteProtocolError,
    RequestDecoder,
    ResponseDecoder,
    UnsolicitedError,
    encode_request,
    encode_response,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"
SPEC = ROOT / "docs" / "PROTOCOL.md"

#: Inputs longer than this are fed byte by byte only around the repeated part.
_BYTEWISE_LIMIT = 8192
_CHUNK = 4099  # prime, so chunk edges fall on no field boundary in particular


def _load(name: str) -> list[dict[str, Any]]:
    with (VECTORS / name).open(encoding="utf-8") as f:
        doc = json.load(f)
    assert isinstance(doc["description"], str)
    vectors: list[dict[str, Any]] = doc["vectors"]
    return vectors


REQUEST_VECTORS = _load("requests.json")
RESPONSE_VECTORS = _load("responses.json")


# --------------------------------------------------------------------------- loading helpers


def _repeat(spec: dict[str, Any]) -> bytes:
    return bytes.fromhex(str(spec["byte"])) * int(spec["count"])


def _pieces(v: dict[str, Any]) -> list[bytes]:
    """The input as [hex, repeated payload, hex_tail]; empty parts kept for chunking."""
    return [
        bytes.fromhex(v["hex"]),
        _repeat(v["payload_repeat"]) if "payload_repeat" in v else b"",
        bytes.fromhex(v.get("hex_tail", "")),
    ]


def _data(v: dict[str, Any]) -> bytes:
    return b"".join(_pieces(v))


def _chunks(v: dict[str, Any]) -> list[bytes]:
    """One byte at a time; the repeated payload of the 1 MiB vectors in 4099-byte chunks."""
    data = _data(v)
    if len(data) <= _BYTEWISE_LIMIT:
        return [data[i : i + 1] for i in range(len(data))]
    out: list[bytes] = []
    for i, part in enumerate(_pieces(v)):
        step = _CHUNK if i == 1 else 1
        out.extend(part[j : j + step] for j in range(0, len(part), step))
    return out


def _payload(f: dict[str, Any]) -> bytes:
    if "payload_repeat" in f:
        return _repeat(f["payload_repeat"])
    return bytes.fromhex(str(f["payload_hex"]))


def _code(name: str | int) -> int:
    return ErrorCode[name] if isinstance(name, str) else name


def _request(f: dict[str, Any]) -> CreateTopicRequest | ProduceRequest | ConsumeRequest:
    cid, topic, ts, payload = f["correlation_id"], f["topic"], f["timestamp"], _payload(f)
    if f["type"] == "PRODUCE":
        return ProduceRequest(cid, topic, ts, payload)
    if f["type"] == "CONSUME":
        return ConsumeRequest(cid, topic, ts, f["offset"], payload)
    assert f["type"] == "CREATE_TOPIC", f
    return CreateTopicRequest(cid, topic, ts, payload)


def _response(f: dict[str, Any]) -> object:
    kind = f["kind"]
    if kind == "error":
        return ErrorResponse(f["correlation_id"], _code(f["error_code"]))
    if kind == "create_topic":
        return CreateTopicResponse(f["correlation_id"], f["timestamp"], f["topic"])
    if kind == "produce":
        return ProduceResponse(f["correlation_id"], f["timestamp"], f["offset"])
    if kind == "consume":
        return ConsumeResponse(f["correlation_id"], f["timestamp"], f["next_offset"], _payload(f))
    assert kind == "unsolicited", f
    return UnsolicitedError(_code(f["error_code"]))


# --------------------------------------------------------------------------- outcomes
#
# Both decoders are driven to an outcome list: ("frame", dataclass) for each frame,
# ("error", {...}) for an error. Feeding stops at a fatal error.


def _request_error(exc: RemoteProtocolError) -> dict[str, Any]:
    return {"error_code": exc.error_code, "correlation_id": exc.correlation_id, "fatal": exc.fatal}


def _drive_requests(chunks: list[bytes]) -> list[tuple[str, Any]]:
    dec = RequestDecoder()
    out: list[tuple[str, Any]] = []
    for chunk in chunks:
        dec.feed(chunk)
        while True:
            try:
                req = dec.next_request()
            except RemoteProtocolError as exc:
                out.append(("error", _request_error(exc)))
                if exc.fatal:
                    return out
                continue
            if req is None:
                break
            out.append(("frame", req))
    return out


def _drive_responses(awaiting: list[dict[str, Any]], chunks: list[bytes]) -> list[tuple[str, Any]]:
    dec = ResponseDecoder()
    for a in awaiting:
        dec.expect(MessageType[a["type"]], a["correlation_id"])
    out: list[tuple[str, Any]] = []
    for chunk in chunks:
        dec.feed(chunk)
        while True:
            try:
                resp = dec.next_response()
            except RemoteProtocolError as exc:
                assert exc.fatal, f"protocol errors in responses are fatal: {exc!r}"
                out.append(("error", {"reason": exc.reason}))
                return out
            if resp is None:
                break
            out.append(("frame", resp))
    return out


def _expected_requests(v: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for e in [v["expect"], *v.get("then", [])]:
        if "incomplete" in e:
            assert e == {"incomplete": True}
        elif "frame" in e:
            out.append(("frame", _request(e["frame"])))
        else:
            err = e["error"]
            out.append(("error", {**err, "error_code": _code(err["error_code"])}))
    return out


def _expected_responses(v: dict[str, Any]) -> list[tuple[str, Any]]:
    e = v["expect"]
    if "incomplete" in e:
        assert e == {"incomplete": True}
        return []
    if "frames" in e:
        return [("frame", _response(f)) for f in e["frames"]]
    return [("frame", _response(f)) for f in v.get("frames_before", [])] + [("error", e["error"])]


def _show(outcomes: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Replace payloads over 64 bytes by their length and SHA-256, so that failure messages
    stay readable while the comparison stays exact."""
    shown = []
    for kind, x in outcomes:
        p = getattr(x, "payload", b"")
        if len(p) > 64:
            digest = hashlib.sha256(p).hexdigest()
            shown.append((kind, f"{type(x).__name__}({x.correlation_id}, payload=<{len(p)} bytes, sha256 {digest}>)"))
        else:
            shown.append((kind, x))
    return shown


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def _params(vectors: list[dict[str, Any]]) -> list[Any]:
    """One pytest param per vector, named by its id."""
    return [pytest.param(v, id=v["id"]) for v in vectors]


_REQUEST_FRAMES = [v for v in REQUEST_VECTORS if "frame" in v["expect"]]
_RESPONSE_FRAMES = [v for v in RESPONSE_VECTORS if v["expect"].get("frames") or v.get("frames_before")]


# --------------------------------------------------------------------------- the vector files


def test_vector_files_are_well_formed() -> None:
    clauses = set(re.findall(r"^\*\*([A-Z]+-\d+)\*\* \((?:MUST|SHOULD|MAY)\)", SPEC.read_text("utf-8"), re.M))
    assert clauses, "no clause ids found in docs/PROTOCOL.md"
    for vectors in (REQUEST_VECTORS, RESPONSE_VECTORS):
        ids = _ids(vectors)
        assert len(ids) == len(set(ids)), "duplicate vector ids"
        for v in vectors:
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", v["id"]), v["id"]
            assert v["clauses"], v["id"]
            assert set(v["clauses"]) <= clauses, (v["id"], set(v["clauses"]) - clauses)
            assert re.fullmatch(r"(?:[0-9a-f]{2})*", v["hex"]), v["id"]
            assert len(v["expect"]) == 1, v["id"]
    for v in RESPONSE_VECTORS:
        assert isinstance(v["awaiting"], list), v["id"]
    assert len(REQUEST_VECTORS) + len(RESPONSE_VECTORS) >= 60


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("v", _params(REQUEST_VECTORS))
def test_request_vector_all_at_once(v: dict[str, Any]) -> None:
    assert _show(_drive_requests([_data(v)])) == _show(_expected_requests(v))


@pytest.mark.parametrize("v", _params(REQUEST_VECTORS))
def test_request_vector_byte_by_byte(v: dict[str, Any]) -> None:
    assert _show(_drive_requests(_chunks(v))) == _show(_expected_requests(v))


@pytest.mark.parametrize("v", _params(_REQUEST_FRAMES))
def test_request_vector_encodes_back(v: dict[str, Any]) -> None:
    data = _data(v)
    frames = [e["frame"] for e in [v["expect"], *v.get("then", [])] if "frame" in e]
    pos = 0
    for f in frames:
        try:
            encoded = encode_request(_request(f))
        except LocalProtocolError:
            # An encoder may refuse a name that breaks the rules (CLIENT-17); nothing else.
            assert "broker_answer" in v, f"encoder refused a valid frame: {f}"
            return
        assert data[pos : pos + len(encoded)] == encoded
        pos += len(encoded)
    # Bytes left over are an incomplete frame, which the decode tests cover.


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("v", _params(RESPONSE_VECTORS))
def test_response_vector_all_at_once(v: dict[str, Any]) -> None:
    assert _show(_drive_responses(v["awaiting"], [_data(v)])) == _show(_expected_responses(v))


@pytest.mark.parametrize("v", _params(RESPONSE_VECTORS))
def test_response_vector_byte_by_byte(v: dict[str, Any]) -> None:
    assert _show(_drive_responses(v["awaiting"], _chunks(v))) == _show(_expected_responses(v))


@pytest.mark.parametrize("v", _params(_RESPONSE_FRAMES))
def test_response_vector_encodes_back(v: dict[str, Any]) -> None:
    data = _data(v)
    frames = v["expect"].get("frames") or v["frames_before"]
    pos = 0
    for f in frames:
        encoded = encode_response(_response(f))  # type: ignore[arg-type]
        assert data[pos : pos + len(encoded)] == encoded, f
        pos += len(encoded)
