"""TempURL: a signed, expiring URL to one object, without a token.

The signature is the HMAC of ``METHOD\\nexpires\\npath`` with a key from the account's
(``X-Account-Meta-Temp-URL-Key``, ``-Key-2``) or the container's
(``X-Container-Meta-Temp-URL-Key``, ``-Key-2``) metadata; the digest is sha1 (what
openstacksdk still signs with), sha256 or sha512, told apart by the signature's length
(hex) or a ``<digest>:<base64>`` prefix; ``temp_url_prefix`` signs every object whose name
starts with it, and ``inline`` / ``filename`` set the Content-Disposition. A HEAD is
allowed by a GET, HEAD or PUT signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_HEX_LENGTHS = {40: "sha1", 64: "sha256", 128: "sha512"}
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
KEY_NAMES = ("meta-temp-url-key", "meta-temp-url-key-2")


def _decode(sig: str) -> tuple[str, bytes] | None:
    if ":" in sig:
        name, _, b64 = sig.partition(":")
        if name not in DIGESTS:
            return None
        try:
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            return None
        return name, raw
    digest = _HEX_LENGTHS.get(len(sig))
    if digest is None:
        return None
    try:
        return digest, bytes.fromhex(sig)
    except ValueError:
        return None


def valid(method: str, path: str, sig: str, expires: str, keys: list[str],
          now: float | None = None, prefix: str | None = None) -> str:
    """"" when the signature is good for this request, else why not. With ``prefix``
    (``temp_url_prefix``) the signed path is ``prefix:/v1/<account>/<container>/<prefix>``
    and the object's name must start with the prefix."""
    if prefix is not None:
        container_path = "/".join(path.split("/", 4)[:4])
        signed = f"{container_path}/{prefix}"
        if not path.startswith(signed):
            return "The object's name does not start with temp_url_prefix."
        path = f"prefix:{signed}"
    if not expires.isdigit():
        return "temp_url_expires must be a Unix time in whole seconds."
    if int(expires) < (time.time() if now is None else now):
        return "The temporary URL has expired."
    decoded = _decode(sig)
    if decoded is None:
        return "temp_url_sig is not a sha1, sha256 or sha512 signature."
    name, raw = decoded
    methods = ("GET", "HEAD", "PUT") if method == "HEAD" else (method,)
    for key in keys:
        for m in methods:
            mac = hmac.new(key.encode(), f"{m}\n{expires}\n{path}".encode(), DIGESTS[name])
            if hmac.compare_digest(mac.digest(), raw):
                return ""
    return "The temporary URL's signature does not match."
