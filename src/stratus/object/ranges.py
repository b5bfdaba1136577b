"""HTTP details of an object GET: conditional requests and byte ranges (RFC 7232/7233
as Swift applies them)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from stratus.object.store import iter_file
from stratus.object.views import PreconditionFailed


def _etags(value: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in value.split(",") if t.strip()]


def _date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def check_conditions(headers: dict[str, str], etag: str, last_modified: float,
                     method: str) -> int:
    """0 to go on, 304 for "not modified"; raises 412 for a failed precondition.
    ``headers``: lower-case names."""
    if_match = headers.get("if-match")
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            raise PreconditionFailed("The object's ETag does not match If-Match.")
    else:
        since = _date(headers.get("if-unmodified-since", ""))
        if since is not None and int(last_modified) > since:
            raise PreconditionFailed("The object was modified after If-Unmodified-Since.")
    if_none = headers.get("if-none-match")
    if if_none is not None:
        tags = _etags(if_none)
        if "*" in tags or etag in tags:
            if method in ("GET", "HEAD"):
                return 304
            raise PreconditionFailed("The object matches If-None-Match.")
    elif method in ("GET", "HEAD"):
        since = _date(headers.get("if-modified-since", ""))
        if since is not None and int(last_modified) <= since:
            return 304
    return 0


def parse_range(value: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ``(start, end inclusive)`` ranges of a ``Range`` header; None to
    ignore the header (not a bytes range, or malformed: the whole object is sent); an
    empty list when no range is satisfiable (416)."""
    value = value.strip()
    if not value.lower().startswith("bytes="):
        return None
    out: list[tuple[int, int]] = []
    specs = [s.strip() for s in value[6:].split(",")]
    if not specs or len(specs) > 100:
        return None
    for spec in specs:
        first, dash, last = spec.partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        if not first:
            if not last.isdigit() or int(last) == 0:
                if last.isdigit():
                    continue
                return None
            n = int(last)
            out.append((max(0, size - n), size - 1))
            continue
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        if last and int(last) < start:
            return None
        if start >= size:
            continue
        end = int(last) if last else size - 1
        out.append((start, min(end, size - 1)))
    return [r for r in out if r[1] >= r[0]]


def multipart(fh: BinaryIO, ranges: list[tuple[int, int]], size: int, content_type: str
              ) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/byteranges body: its boundary, its length and its chunks."""
    boundary = secrets.token_hex(16)
    heads = [(f"--{boundary}\r\nContent-Type: {content_type}\r\n"
              f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n").encode() for a, b in ranges]
    tail = f"\r\n--{boundary}--".encode()
    length = sum(len(h) + (b - a + 1) for h, (a, b) in zip(heads, ranges, strict=True)) \
        + 2 * (len(ranges) - 1) + len(tail)

    def chunks() -> Iterator[bytes]:
        for i, (head, (a, b)) in enumerate(zip(heads, ranges, strict=True)):
            if i:
                yield b"\r\n"
            yield head
            yield from iter_file(fh, a, b - a + 1, close=False)
        yield tail
        fh.close()

    return boundary, length, chunks()
