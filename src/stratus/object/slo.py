"""Static large objects (SLO): a manifest object listing segments in other objects.

``PUT ?multipart-manifest=put`` takes a JSON list of ``{"path": "/<container>/<object>",
"etag": ..., "size_bytes": ...}`` (etag and size optional, checked when given); every
segment must exist. The manifest is stored as the object's bytes (a JSON list of
``{"name", "hash", "bytes"}``) with ``slo`` metadata: the total size and the ETag (the md5
of the segments' ETags). A GET streams the segments in order (ranges across them), a
``?multipart-manifest=get`` returns the manifest, a ``?multipart-manifest=delete`` deletes
the segments and the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from stratus.common.errors import BadRequest, NotFound
from stratus.object.core import ObjectService
from stratus.object.diskfile import ObjectFile
from stratus.object.store import iter_file
from stratus.object.views import LIMITS, check_name

MAX_SEGMENTS = 1000
MIN_SEGMENT_SIZE = 1
MAX_MANIFEST_SIZE = 8 * 1024 * 1024


def _split(path: str) -> tuple[str, str]:
    cont, _, obj = path.lstrip("/").partition("/")
    if not cont or not obj:
        raise BadRequest(f"SLO segment path {path!r} is not /<container>/<object>.")
    check_name("container", cont, LIMITS["max_container_name_length"])
    check_name("object", obj, LIMITS["max_object_name_length"])
    return cont, obj


def build_manifest(svc: ObjectService, account: str, raw: bytes
                   ) -> tuple[bytes, dict[str, Any]]:
    """Check a manifest PUT's body; the stored manifest and its ``slo`` metadata."""
    if len(raw) > MAX_MANIFEST_SIZE:
        raise BadRequest(f"The SLO manifest is larger than {MAX_MANIFEST_SIZE} bytes.")
    try:
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The SLO manifest is not valid JSON.") from None
    if not isinstance(items, list) or not items:
        raise BadRequest("The SLO manifest must be a non-empty JSON list of segments.")
    if len(items) > MAX_SEGMENTS:
        raise BadRequest(f"An SLO manifest has at most {MAX_SEGMENTS} segments.")
    out, errors, etags, total = [], [], [], 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise BadRequest(f"SLO segment {i}: expected an object with a path.")
        cont, obj = _split(item["path"])
        try:
            f = svc.read(account, cont, obj)
        except NotFound:
            errors.append(f"{item['path']}: 404 Not Found")
            continue
        etag, size = f.metadata.get("etag", ""), int(f.metadata.get("size", 0))
        if item.get("etag") not in (None, "") and str(item["etag"]).strip('"') != etag:
            errors.append(f"{item['path']}: Etag Mismatch")
        if item.get("size_bytes") is not None and item["size_bytes"] != size:
            errors.append(f"{item['path']}: Size Mismatch")
        if size < MIN_SEGMENT_SIZE and len(items) > 1:
            errors.append(f"{item['path']}: Too Small; each segment must be at least "
                          f"{MIN_SEGMENT_SIZE} byte")
        etags.append(etag)
        total += size
        out.append({"name": f"/{cont}/{obj}", "hash": etag, "bytes": size})
    if errors:
        raise BadRequest("Errors in the SLO manifest: " + "; ".join(errors))
    slo_etag = hashlib.md5("".join(etags).encode(), usedforsecurity=False).hexdigest()
    return json.dumps(out).encode(), {"size": total, "etag": slo_etag}


def manifest(svc: ObjectService, f: ObjectFile) -> list[dict[str, Any]]:
    """The segment list a manifest object holds."""
    with f.open() as fh:
        data = json.loads(fh.read())
    return data if isinstance(data, list) else []


def iter_segments(svc: ObjectService, account: str, segments: list[dict[str, Any]],
                  start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes from ``start`` across the segments, each read when reached."""
    offset = 0
    for seg in segments:
        size = int(seg["bytes"])
        if offset + size <= start:
            offset += size
            continue
        if length <= 0:
            return
        cont, obj = _split(seg["name"])
        f = svc.read(account, cont, obj)
        if f.metadata.get("etag") != seg["hash"]:
            raise NotFound(f"SLO segment {seg['name']} changed or is gone.")
        first = max(0, start - offset)
        take = min(size - first, length)
        yield from iter_file(f.open(), first, take)
        length -= take
        start += take
        offset += size


def delete_all(svc: ObjectService, account: str, container: str, name: str,
               segments: list[dict[str, Any]]) -> None:
    for seg in segments:
        cont, obj = _split(seg["name"])
        with contextlib.suppress(NotFound):
            svc.delete(account, cont, obj)
    svc.delete(account, container, name)
