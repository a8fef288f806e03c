"""Width and height of an image from its header bytes, for counting image tokens.

Reads PNG, JPEG, GIF and WebP headers of base64 ``data:`` URLs in pure Python (no
Pillow), decoding only the first bytes where the header is; other URLs are never
downloaded.
"""

from __future__ import annotations

import base64
import binascii
import struct

__all__ = ["image_size_from_data_url"]

_IMAGE_HEAD_CHARS = 65536  # base64 characters decoded first to find an image header


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return width, height
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            index += 2
            continue
        if marker in _JPEG_SOF_MARKERS:
            if index + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        index += 2 + int(length)
    return None


def image_size_from_data_url(url: str) -> tuple[int, int] | None:
    """(width, height) of a base64 ``data:`` image URL, read from its header bytes.

    Reads PNG, JPEG, GIF and WebP headers in pure Python; returns None for any other
    URL (nothing is ever downloaded) or an unreadable image.

    Example:
        >>> image_size_from_data_url("https://example.com/cat.png") is None
        True
    """
    if not url.startswith("data:"):
        return None
    header, separator, payload = url.partition(",")
    if not separator or ";base64" not in header:
        return None
    payload = payload.strip()
    for chars in (_IMAGE_HEAD_CHARS, len(payload)):
        head = payload[:chars]
        head = head[: len(head) - len(head) % 4]
        try:
            size = _image_size(base64.b64decode(head))
        except (binascii.Error, ValueError, struct.error):
            return None
        if size is not None or chars >= len(payload):
            return size
    return None
