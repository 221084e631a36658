"""Encoding ``application/vnd.amazon.eventstream`` messages, as SageMaker sends them.

botocore only decodes this format, so the emulator needs its own encoder; the tests prove it by
decoding every frame with botocore's ``EventStreamBuffer``. Layout (big-endian)::

    uint32 total_length | uint32 headers_length | uint32 crc32(first 8 bytes)
    headers | payload | uint32 crc32(everything before)

Headers here are all strings (type 7): ``uint8 name_len, name, 0x07, uint16 value_len, value``.

>>> payload_part(b'data:{"token":{"id":1}}\\n\\n').hex()[:24]
'0000008200000059bcb3d5cb'
"""

from __future__ import annotations

import struct
import zlib

import orjson

_PRELUDE = struct.Struct(">II")
_UINT32 = struct.Struct(">I")
_STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        bytes((len(raw_name),))
        + raw_name
        + bytes((_STRING,))
        + struct.pack(">H", len(raw_value))
        + raw_value
    )


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with correct prelude and message CRCs."""
    raw_headers = b"".join(_header(name, value) for name, value in headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    prelude_crc = zlib.crc32(prelude)
    head = prelude + _UINT32.pack(prelude_crc)
    body = raw_headers + payload
    message_crc = zlib.crc32(body, zlib.crc32(_UINT32.pack(prelude_crc), prelude_crc))
    return head + body + _UINT32.pack(message_crc)


# Header order as in the reference known-answer frame.
_PAYLOAD_HEADERS = [
    (":event-type", "PayloadPart"),
    (":content-type", "application/octet-stream"),
    (":message-type", "event"),
]


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event carrying ``data`` (a slice of the container's byte stream)."""
    return encode_message(_PAYLOAD_HEADERS, data)


def stream_exception(kind: str, message: str, error_code: str | None = None) -> bytes:
    """A modeled in-stream exception: ``ModelStreamError`` or ``InternalStreamFailure``."""
    body: dict[str, str] = {"Message": message}
    if error_code:
        body["ErrorCode"] = error_code
    headers = [
        (":exception-type", kind),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return encode_message(headers, orjson.dumps(body))
