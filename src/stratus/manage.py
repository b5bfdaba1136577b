"""stratus-manage: operator commands (schema sync, Fernet keys, bootstrap, catalog).

Every command prints one JSON line, ``{"changed": ...}``, so Ansible can tell
whether it changed anything; failures exit non-zero with a message on stderr.
``run-steps`` runs several commands in one process (the roles' steps of one service: one
interpreter start and one configuration read instead of one per step).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from stratus.common import db
from stratus.common.config import Config, ConfigError

SERVICES = {
    "identity": "stratus.identity",
    "image": "stratus.image",
    "network": "stratus.network",
    "compute": "stratus.compute",
    "volume": "stratus.volume",
    "object": "stratus.object",
}


def _identity(config: Config) -> Any:
    from stratus.identity.app import build_identity

    return build_identity(config)


def cmd_db_sync(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    url = config.get(args.service, "database_url")
    changed = db.sync(SERVICES[args.service], url)
    return {"changed": changed, "revision": db.current_revision(url)}


def _key_repo(config: Config) -> Any:
    from stratus.identity.tokens import KeyRepository

    return KeyRepository(
        config.get("identity", "fernet_key_repository"),
        config.get_int("identity", "fernet_max_active_keys", minimum=2),
    )


def cmd_fernet_setup(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    repo = _key_repo(config)
    changed = repo.setup()
    _chown(repo.path, args.owner)
    return {"changed": changed, "keys": [p.name for p in sorted(repo.path.iterdir())]}


def cmd_fernet_rotate(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    repo = _key_repo(config)
    keys = repo.rotate()
    _chown(repo.path, args.owner)
    return {"changed": True, "keys": [str(k) for k in keys]}


def _chown(path: Any, owner: str | None) -> None:
    if not owner:
        return
    import shutil

    for p in [path, *path.iterdir()]:
        shutil.chown(p, user=owner, group=owner)


def cmd_bootstrap(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    from stratus.identity.bootstrap import bootstrap

    password = os.environ.get("STRATUS_BOOTSTRAP_PASSWORD", "")
    if not password:
        raise SystemExit(
            "stratus-manage bootstrap: set STRATUS_BOOTSTRAP_PASSWORD to the "
            "admin password (it is never taken from the command line)"
        )
    changed = bootstrap(
        _identity(config),
        password=password,
        username=args.admin_username,
        project_name=args.admin_project,
        region_id=args.region_id,
        public_url=args.public_url,
        internal_url=args.internal_url,
    )
    return {"changed": changed}


def cmd_catalog_ensure(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    from stratus.identity.bootstrap import ensure_catalog_entry

    urls = {"public": args.public_url, "internal": args.internal_url or args.public_url}
    changed = ensure_catalog_entry(
        _identity(config), stype=args.type, name=args.name, region_id=args.region_id, urls=urls
    )
    return {"changed": changed}


def cmd_service_user_ensure(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    from stratus.identity.bootstrap import ensure_service_user

    variable = args.password_env
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
        raise SystemExit(
            f"stratus-manage service-user ensure: --password-env {variable!r} is not an "
            "environment variable name (letters, digits and '_', not starting with a digit)"
        )
    password = os.environ.get(variable, "")
    if not password:
        raise SystemExit(
            f"stratus-manage service-user ensure: set {variable} to the "
            "user's password (it is never taken from the command line)"
        )
    changed = ensure_service_user(
        _identity(config), name=args.name, password=password,
        project_name=args.project, role_name=args.role,
    )
    return {"changed": changed}


def cmd_ring_build(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    from stratus.object.ring import ensure

    path = args.ring_file or config.get("object", "ring_file")
    changed, ring = ensure(path, args.device, args.part_power, args.replicas)
    return {"changed": changed, "version": ring.version, "replicas": ring.replicas}


def cmd_ring_show(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    from stratus.contracts.object import ring_summary
    from stratus.object.ring import load

    ring = load(args.ring_file or config.get("object", "ring_file"))
    return {"changed": False, **ring_summary(ring)}


class StepError(Exception):
    """A step of run-steps failed: the message names the step."""


def cmd_run_steps(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Each ``--step`` is one command as a JSON list of its arguments; they run in order
    and the first failure stops the rest (the steps before it keep what they did)."""
    steps = [_parse_step(number, text) for number, text in enumerate(args.step, 1)]
    results = []
    for number, argv in enumerate(steps, 1):
        step_args = parser().parse_args(argv)
        try:
            results.append(step_args.func(config, step_args))
        except SystemExit as exc:  # a command's own refusal (a missing password, ...)
            raise StepError(f"step {number} ({argv[0]}): {exc}") from exc
        except (ConfigError, ValueError, OSError, SQLAlchemyError) as exc:
            raise StepError(f"step {number} ({argv[0]}): {exc}") from exc
    return {"changed": any(bool(r.get("changed")) for r in results), "steps": results}


def _parse_step(number: int, text: str) -> list[str]:
    try:
        argv = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepError(f"step {number} is not JSON ({exc}): give a list of arguments, "
                        'e.g. \'["db", "sync", "identity"]\'') from exc
    if not isinstance(argv, list) or not argv or not all(
            isinstance(a, (str, int)) and not isinstance(a, bool) for a in argv):
        raise StepError(f"step {number} must be a non-empty JSON list of strings, "
                        f"e.g. [\"db\", \"sync\", \"identity\"]; got {text!r}")
    argv = [str(a) for a in argv]
    if argv[0] == "run-steps":
        raise StepError(f"step {number}: run-steps cannot be a step of run-steps")
    try:
        parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed why on stderr
        raise StepError(f"step {number} ({argv[0]}): not a valid command") from exc
    return argv


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stratus-manage", description=__doc__)
    p.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG_FILE or /etc/stratus/stratus.conf"
    )
    sub = p.add_subparsers(dest="command", required=True)

    dbp = sub.add_parser("db", help="database schema")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    sync = dbsub.add_parser("sync", help="create or upgrade a service's schema")
    sync.add_argument("service", choices=sorted(SERVICES))
    sync.set_defaults(func=cmd_db_sync)

    for name, func, text in (
        ("fernet-setup", cmd_fernet_setup, "create the key repository"),
        ("fernet-rotate", cmd_fernet_rotate, "rotate the token keys"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--owner", help="user that must own the key files (the service user)")
        sp.set_defaults(func=func)

    bp = sub.add_parser("bootstrap", help="admin user/project, roles, identity endpoint")
    bp.add_argument("--admin-username", default="admin")
    bp.add_argument("--admin-project", default="admin")
    bp.add_argument("--region-id", default="RegionOne")
    bp.add_argument("--public-url", required=True)
    bp.add_argument("--internal-url")
    bp.set_defaults(func=cmd_bootstrap)

    cp = sub.add_parser("catalog", help="service catalog")
    csub = cp.add_subparsers(dest="catalog_command", required=True)
    ce = csub.add_parser("ensure", help="register a service and its endpoints")
    ce.add_argument("--type", required=True)
    ce.add_argument("--name", required=True)
    ce.add_argument("--region-id", default="RegionOne")
    ce.add_argument("--public-url", required=True)
    ce.add_argument("--internal-url")
    ce.set_defaults(func=cmd_catalog_ensure)

    up = sub.add_parser("service-user", help="users the services call each other as")
    usub = up.add_subparsers(dest="service_user_command", required=True)
    ue = usub.add_parser("ensure", help="a user with a role on the service project "
                         "(password from $STRATUS_SERVICE_PASSWORD)")
    ue.add_argument("--name", required=True)
    ue.add_argument("--project", default="service")
    ue.add_argument("--role", default="admin")
    ue.add_argument("--password-env", default="STRATUS_SERVICE_PASSWORD",
                    help="the environment variable holding the password (default "
                         "STRATUS_SERVICE_PASSWORD; run-steps gives each user its own)")
    ue.set_defaults(func=cmd_service_user_ensure)

    rp = sub.add_parser("ring", help="the object ring (stratus-object)")
    rsub = rp.add_subparsers(dest="ring_command", required=True)
    rb = rsub.add_parser("build", help="place partitions on the devices (rebalance)")
    rb.add_argument("--device", action="append", required=True,
                    help="host[:port]:zone:/path[:weight], once per device (with a "
                         "port: a device of the stratus-object-server at host:port)")
    rb.add_argument("--part-power", type=int, default=10)
    rb.add_argument("--replicas", type=int, default=3)
    rb.add_argument("--ring-file", help="default: [object] ring_file")
    rb.set_defaults(func=cmd_ring_build)
    rs = rsub.add_parser("show", help="print the ring: devices and their partitions")
    rs.add_argument("--ring-file", help="default: [object] ring_file")
    rs.set_defaults(func=cmd_ring_show)

    st = sub.add_parser("run-steps", help="run several of these commands in one process")
    st.add_argument("--step", action="append", required=True,
                    help='one command as a JSON list, e.g. \'["db", "sync", "identity"]\'; '
                         "repeat it; the steps run in order, the first failure stops them")
    st.set_defaults(func=cmd_run_steps)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        result = args.func(Config.load(), args)
    except (ConfigError, ValueError, OSError, SQLAlchemyError, StepError) as exc:
        print(f"stratus-manage {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
