"""TLS of the API services and of the clients between them (docs/security.md, "TLS").

An API serves https when its ``tls_cert_file`` (``[DEFAULT]`` or its own section) names a
certificate: :class:`Tls` gives uvicorn its options (TLS 1.2 at least). Every process that
calls another service verifies it with ``tls_ca_file`` (:func:`use_ca_file`): the CA bundle
becomes the process's ``SSL_CERT_FILE``, which every httpx client (``trust_env``, the
default) and Python's ``ssl.create_default_context`` (the metadata proxies) read, so no
client of Stratus needs its own setting.
"""

from __future__ import annotations

import inspect
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratus.common.config import Config, ConfigError


def use_ca_file(path: str) -> None:
    """Verify the https of other services with the CA bundle ``path`` (empty: keep the
    default trust). Call it at process start, before any client is made."""
    if path:
        os.environ["SSL_CERT_FILE"] = path


@dataclass(frozen=True)
class Tls:
    """What an API serves https with (``[DEFAULT]``/section ``tls_cert_file``,
    ``tls_key_file``); an empty ``cert_file``: plain http."""

    cert_file: str = ""
    key_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    @classmethod
    def from_config(cls, config: Config, section: str) -> Tls:
        """The section's TLS settings; ConfigError when a file is named but unreadable
        or a key comes without its certificate."""
        tls = cls(config.get(section, "tls_cert_file"), config.get(section, "tls_key_file"))
        if tls.key_file and not tls.cert_file:
            raise ConfigError(f"setting [{section}] tls_key_file is set but tls_cert_file "
                              "is empty: both or neither")
        for key, path in (("tls_cert_file", tls.cert_file), ("tls_key_file", tls.key_file)):
            if path and not os.access(path, os.R_OK):
                raise ConfigError(f"setting [{section}] {key}={path}: cannot be read")
        return tls

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's ssl options: TLS 1.2 at least (where uvicorn takes a context factory;
        else the OpenSSL default, which is 1.2 on Debian 12)."""
        if not self.enabled:
            return {}
        import uvicorn

        options: dict[str, Any] = {"ssl_certfile": self.cert_file,
                                   "ssl_keyfile": self.key_file or None}
        if "ssl_context_factory" in inspect.signature(uvicorn.Config).parameters:
            options["ssl_context_factory"] = _tls12_context
        return options


def _tls12_context(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context with TLS 1.0 and 1.1 refused."""
    ctx = default()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
