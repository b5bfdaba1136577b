"""stratus-novncproxy: the noVNC client (Debian's ``novnc``) and a websocket-to-VNC
proxy (websockify) that lets a browser reach a guest's display with a one-time token.

A browser opens ``/vnc_lite.html?path=websockify%3Ftoken%3D...%26instance%3D...`` (the
URL ``os-remote-consoles`` answers); the page opens a websocket back here; before the
upgrade this process spends the token with the compute API
(``POST /v2.1/stratus/console-tokens/{token}/consume``, as its service user) and
connects to the host and port the API answers. A token that is unknown, used,
expired or for another server closes the connection. Each connection runs in its own
child process (websockify's model), so one slow guest holds up no other.

With ``tls_cert_file`` set (``[DEFAULT]`` or ``[novncproxy]``, as the APIs) the proxy
serves only https and wss (TLS 1.2 at least) and verifies the compute and identity APIs
with ``tls_ca_file`` (docs/security.md, "TLS").
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from typing import Any
from urllib.parse import parse_qs, urlparse

from stratus.common.clients import ApiClient, Auth, PasswordAuth, ServiceError
from stratus.common.config import Config, ConfigError
from stratus.common.tls import Tls, use_ca_file

PROG = "stratus-novncproxy"
SECTION = "novncproxy"
LOG = logging.getLogger("stratus.novncproxy")


class TokenChecker:
    """Spends a token with the compute API and answers ``(host, port)``."""

    def __init__(self, compute_url: str, auth: Auth | None, timeout: float = 10.0) -> None:
        self.compute_url = compute_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout

    def target(self, token: str, instance: str | None) -> tuple[str, int]:
        """Where the token's display is; :class:`PermissionError` saying why not."""
        client = ApiClient(self.compute_url, self.auth, timeout=self.timeout,
                           service="compute")  # made in the connection's own process
        try:
            got = client.post(f"/stratus/console-tokens/{token}/consume",
                              json={"instance": instance})
        except ServiceError as exc:
            raise PermissionError(f"console token refused: {exc}") from None
        finally:
            client.close()
        console = (got or {}).get("console") or {}
        host, port = console.get("host"), console.get("port")
        if not isinstance(host, str) or not isinstance(port, int):
            raise PermissionError("the compute API named no display for the token")
        LOG.info("console of instance %s: connecting to %s:%s", console.get("instance_uuid"),
                 host, port)
        return host, port


def token_and_instance(path: str) -> tuple[str | None, str | None]:
    """``token`` and ``instance`` from the websocket request's query string."""
    args = parse_qs(urlparse(path).query)
    token = (args.get("token") or [""])[0].strip()
    instance = (args.get("instance") or [""])[0].strip()
    return token or None, instance or None


def tls_options(tls: Tls) -> dict[str, Any]:
    """websockify's options for ``tls``: https/wss only, TLS 1.0 and 1.1 refused (websockify
    sets its context's options to exactly ``ssl_options``, so they start from the
    defaults); plain http and ws when ``tls`` is off."""
    if not tls.enabled:
        return {}
    options = (ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).options
               | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1)
    return {"cert": tls.cert_file, "key": tls.key_file or None, "ssl_only": True,
            "ssl_options": options}


def make_server(checker: TokenChecker, host: str, port: int, web: str, **kw: Any) -> Any:
    """The websockify server bound to ``host:port`` serving ``web`` (the noVNC files);
    ``kw`` goes to websockify (``tls_options`` for https/wss)."""
    from websockify import websocketproxy

    class Handler(websocketproxy.ProxyRequestHandler):
        def get_target(self, target_plugin: Any) -> tuple[str, int]:
            token, instance = token_and_instance(self.path)
            if not token:
                raise self.server.EClose("no console token in the request")
            try:
                return checker.target(token, instance)
            except PermissionError as exc:
                raise self.server.EClose(str(exc)) from None

    class Tokens:  # websockify only asks the handler when a token plugin is set
        def lookup(self, token: str) -> None:
            return None

    return websocketproxy.WebSocketProxy(
        RequestHandlerClass=Handler, listen_host=host, listen_port=port, web=web,
        token_plugin=Tokens(), verbose=kw.pop("verbose", False), **kw)


def build(config: Config) -> tuple[TokenChecker, str, int, str]:
    """The checker and where to listen, from ``[novncproxy]``."""
    use_ca_file(config.get(SECTION, "tls_ca_file"))  # before any client is made
    auth: Auth | None = None
    if config.get(SECTION, "username"):
        auth = PasswordAuth(config.get("DEFAULT", "identity_url"),
                            config.get(SECTION, "username"), config.get(SECTION, "password"),
                            config.get(SECTION, "project_name"))
    web = config.get(SECTION, "web")
    if not os.path.isfile(os.path.join(web, "vnc_lite.html")):
        raise ConfigError(f"[{SECTION}] web={web!r} has no vnc_lite.html (install the "
                          "novnc package)")
    checker = TokenChecker(config.get(SECTION, "compute_url"), auth,
                           float(config.get_int(SECTION, "api_timeout", minimum=1)))
    return (checker, config.get(SECTION, "bind_host"),
            config.get_int(SECTION, "bind_port", minimum=1), web)


def main(argv: list[str] | None = None) -> int:
    """Run the proxy until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file",
                        help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        logging.basicConfig(level=logging.DEBUG if config.get_bool("DEFAULT", "debug")
                            else logging.INFO, format="%(asctime)s %(name)s %(message)s")
        checker, host, port, web = build(config)
        tls = Tls.from_config(config, SECTION)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    server = make_server(checker, host, port, web, **tls_options(tls))
    LOG.info("%s on %s:%s (%s) serving %s", PROG, host, port,
             "https/wss" if tls.enabled else "http/ws", web)
    server.start_server()  # returns on SIGTERM/SIGINT (websockify's handlers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
