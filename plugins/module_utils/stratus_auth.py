# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""Where a module's credentials come from, the way openstack.cloud users expect.

``resolve_cloud(...)`` returns the ``CloudConfig`` a ``StratusClient`` needs,
from (in this order of precedence, as openstacksdk does):

1. ``cloud`` given as a dict: that clouds.yaml entry, inline;
2. ``cloud`` given as a name, else ``$OS_CLOUD``: that entry of the first
   clouds.yaml found, merged with the same entry of the first secure.yaml;
3. no name, but ``OS_AUTH_URL`` in the environment: the ``OS_*`` variables
   of an openrc;
4. no name, but ``auth.auth_url`` given: the ``auth`` dict alone;
5. otherwise the cloud named ``stratus`` (what the identity role writes).

The clouds.yaml is ``clouds_yaml`` when given, else ``$OS_CLIENT_CONFIG_FILE``,
else the first of ``./clouds.yaml``, ``~/.config/openstack/clouds.yaml``,
``/etc/openstack/clouds.yaml`` and ``/etc/stratus/clouds.yaml`` that exists.
Explicit ``auth`` values override the entry's (a project or user given by name
replaces the entry's by ID, and the other way round); explicit ``region_name``,
``interface``, ``validate_certs``, ``ca_cert``, ``client_cert`` and
``client_key`` override the entry's ``region_name``, ``interface``,
``verify``, ``cacert``, ``cert`` and ``key``. Every error says which file or
variable was read and what was missing.

Standard library only (PyYAML when a file is read): this runs on managed hosts.
"""

from __future__ import annotations

import os

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
    AUTH_KEYS,
    CloudConfig,
    StratusError,
    read_yaml_clouds,
)

DEFAULT_CLOUD = "stratus"
CONFIG_DIRS = ("{cwd}", "{home}/.config/openstack", "/etc/openstack")
STRATUS_CLOUDS_YAML = "/etc/stratus/clouds.yaml"
AUTH_TYPES = {
    "password": "password",
    "v3password": "password",
    "token": "token",
    "v3token": "token",
    "v3applicationcredential": "v3applicationcredential",
    "applicationcredential": "v3applicationcredential",
}
# The OS_* variables of an openrc, and the auth key (or setting) each one gives.
ENV_AUTH = {
    "OS_AUTH_URL": "auth_url",
    "OS_USERNAME": "username",
    "OS_USER_ID": "user_id",
    "OS_PASSWORD": "password",
    "OS_PROJECT_NAME": "project_name",
    "OS_TENANT_NAME": "project_name",
    "OS_PROJECT_ID": "project_id",
    "OS_TENANT_ID": "project_id",
    "OS_USER_DOMAIN_NAME": "user_domain_name",
    "OS_USER_DOMAIN_ID": "user_domain_id",
    "OS_PROJECT_DOMAIN_NAME": "project_domain_name",
    "OS_PROJECT_DOMAIN_ID": "project_domain_id",
    "OS_DOMAIN_NAME": "domain_name",
    "OS_DOMAIN_ID": "domain_id",
    "OS_TOKEN": "token",
    "OS_APPLICATION_CREDENTIAL_ID": "application_credential_id",
    "OS_APPLICATION_CREDENTIAL_NAME": "application_credential_name",
    "OS_APPLICATION_CREDENTIAL_SECRET": "application_credential_secret",
}
ENV_SETTINGS = {
    "OS_AUTH_TYPE": "auth_type",
    "OS_REGION_NAME": "region_name",
    "OS_INTERFACE": "interface",
    "OS_CACERT": "cacert",
    "OS_CERT": "cert",
    "OS_KEY": "key",
}
# Auth keys that name one thing two ways: giving one replaces the entry's other.
EXCLUSIVE = (
    ("project_name", "project_id"),
    ("username", "user_id"),
    ("user_domain_name", "user_domain_id"),
    ("project_domain_name", "project_domain_id"),
)


def search_path(name, cwd=None, home=None):
    """The files a clouds.yaml (or secure.yaml) is looked for in, first first."""
    cwd = cwd or os.getcwd()
    home = home or os.path.expanduser("~")
    paths = [os.path.join(d.format(cwd=cwd, home=home), name) for d in CONFIG_DIRS]
    if name == "clouds.yaml":
        paths.append(STRATUS_CLOUDS_YAML)
    return paths


def _first_file(paths):
    for path in paths:
        if path and os.path.isfile(path):
            return path
    return None


def _merge(base, extra):
    """``extra`` deep-merged over ``base`` (dicts merge, the rest replaces)."""
    out = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def environment_entry(environ):
    """A clouds.yaml-shaped entry from the OS_* variables of an openrc."""
    auth = {}
    entry = {}
    for var, key in ENV_AUTH.items():
        if environ.get(var) and key not in auth:
            auth[key] = environ[var]
    for var, key in ENV_SETTINGS.items():
        if environ.get(var):
            entry[key] = environ[var]
    if environ.get("OS_INSECURE", "").lower() in ("1", "true", "yes"):
        entry["verify"] = False
    entry["auth"] = auth
    return entry


def _named_entry(name, source, clouds_yaml, environ, cwd, home):
    """The entry ``name`` of the first clouds.yaml, with the secure.yaml's over it."""
    if clouds_yaml:
        path, searched = clouds_yaml, [clouds_yaml]
    else:
        searched = [environ.get("OS_CLIENT_CONFIG_FILE"), *search_path("clouds.yaml", cwd, home)]
        searched = [p for p in searched if p]
        path = _first_file(searched)
        if path is None:
            raise StratusError(
                "Cloud {!r} ({}) needs a clouds.yaml and none exists: looked for {}.".format(
                    name, source, ", ".join(searched)
                )
            )
    clouds = read_yaml_clouds(path)
    if name not in clouds:
        raise StratusError(
            "Cloud {!r} is not in {} (named by {}); it has: {}.".format(
                name, path, source, ", ".join(sorted(clouds)) or "no clouds"
            )
        )
    entry = clouds[name] or {}
    if not isinstance(entry, dict):
        raise StratusError(f"Cloud {name!r} in {path} is not a mapping.")
    secure = _first_file(search_path("secure.yaml", cwd, home))
    if secure is not None:
        entry = _merge(entry, read_yaml_clouds(secure).get(name) or {})
    return entry, f"cloud {name!r} of {path}"


def choose_entry(cloud, clouds_yaml, auth, environ, cwd=None, home=None):
    """(entry, where it came from): the first applicable rule of the module docstring."""
    if isinstance(cloud, dict):
        return dict(cloud), "the cloud option (a dict)"
    if cloud:
        return _named_entry(cloud, "the cloud option", clouds_yaml, environ, cwd, home)
    if environ.get("OS_CLOUD"):
        return _named_entry(environ["OS_CLOUD"], "OS_CLOUD", clouds_yaml, environ, cwd,
                            home)
    if environ.get("OS_AUTH_URL") and not clouds_yaml:
        return environment_entry(environ), "the OS_* environment variables"
    if (auth or {}).get("auth_url") and not clouds_yaml:
        return {}, "the auth option"
    return _named_entry(DEFAULT_CLOUD, "the default", clouds_yaml, environ, cwd, home)


def merge_auth(entry_auth, explicit):
    """The entry's auth with the explicit values over it (see EXCLUSIVE)."""
    merged = dict(entry_auth or {})
    given = dict((k, v) for k, v in (explicit or {}).items() if v is not None)
    for pair in EXCLUSIVE:
        for key in pair:
            if key in given:
                for other in pair:
                    if other != key and other not in given:
                        merged.pop(other, None)
    merged.update(given)
    return merged


def resolve_cloud(
    cloud=None,
    clouds_yaml=None,
    auth=None,
    auth_type=None,
    region_name=None,
    interface=None,
    validate_certs=None,
    ca_cert=None,
    client_cert=None,
    client_key=None,
    api_timeout=None,
    environ=None,
    cwd=None,
    home=None,
):
    """The CloudConfig for these module options; see the module docstring."""
    environ = os.environ if environ is None else environ
    entry, source = choose_entry(cloud, clouds_yaml, auth, environ, cwd, home)
    merged = merge_auth(entry.get("auth"), auth)
    unknown = sorted(set(merged) - set(AUTH_KEYS))
    if unknown:
        raise StratusError(
            "Unknown auth keys: {} (in {}); allowed: {}.".format(
                ", ".join(unknown), source, ", ".join(AUTH_KEYS)
            )
        )
    kind_given = auth_type or entry.get("auth_type") or _implied_type(merged)
    kind = AUTH_TYPES.get(str(kind_given).lower())
    if kind is None:
        raise StratusError(
            "auth_type {!r} (from {}) is not supported; allowed: {}.".format(
                kind_given, "the auth_type option" if auth_type else source,
                ", ".join(sorted(set(AUTH_TYPES.values())))
            )
        )
    _check_complete(kind, merged, source)
    verify = entry.get("verify", True) if validate_certs is None else validate_certs
    name = cloud if isinstance(cloud, str) else entry.get("name")
    return CloudConfig(
        merged,
        region_name=region_name or entry.get("region_name"),
        interface=interface or entry.get("interface") or "public",
        verify=bool(verify) if not isinstance(verify, str) else verify.lower() == "true",
        cacert=ca_cert or entry.get("cacert"),
        timeout=api_timeout or 60,
        name=name or environ.get("OS_CLOUD") or source,
        auth_type=kind,
        cert=client_cert or entry.get("cert"),
        key=client_key or entry.get("key"),
    )


def _implied_type(auth):
    if auth.get("application_credential_secret"):
        return "v3applicationcredential"
    if auth.get("token") and not auth.get("password"):
        return "token"
    return "password"


def _check_complete(kind, auth, source):
    """Fail, naming the source, when the credentials of ``kind`` are incomplete."""
    missing = []
    if not auth.get("auth_url"):
        missing.append("auth_url")
    if kind == "password":
        if not (auth.get("username") or auth.get("user_id")):
            missing.append("username (or user_id)")
        if not auth.get("password"):
            missing.append("password")
    elif kind == "token":
        if not auth.get("token"):
            missing.append("token")
    else:
        if not auth.get("application_credential_secret"):
            missing.append("application_credential_secret")
        if not auth.get("application_credential_id"):
            if not auth.get("application_credential_name"):
                missing.append("application_credential_id (or _name)")
            elif not (auth.get("username") or auth.get("user_id")):
                missing.append("username (or user_id) with application_credential_name")
    if missing:
        raise StratusError(
            "Credentials from {} are incomplete for auth_type {}: missing {}.".format(
                source, kind, ", ".join(missing)
            )
        )
