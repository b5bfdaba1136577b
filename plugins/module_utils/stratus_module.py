# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The base of every stratus.cloud module, and the difference tracker.

A module declares ``argument_spec`` (its own options; the shared auth and
wait options of the ``stratus.cloud.auth`` doc fragment are added here) and
``module_kwargs`` (mutually_exclusive, required_if, ...), and implements
``run()``, which returns the module's result dict. ``StratusError`` from the
client becomes one ``fail_json(msg=...)``; nothing else calls fail_json.

``Difference`` is the one computed difference between what exists and what
is wanted: ``changed``, the ``diff`` (before/after) and what check mode
reports all come from it, so check mode and a real run cannot disagree. A
module computes it first, then applies it only when not in check mode.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
    DEFAULT_CLOUD,
    DEFAULT_CLOUDS_YAML,
    StratusClient,
    StratusError,
    load_cloud,
)

AUTH_OPTIONS = dict(
    auth_url=dict(type="str"),
    username=dict(type="str"),
    user_id=dict(type="str"),
    password=dict(type="str", no_log=True),
    project_name=dict(type="str"),
    project_id=dict(type="str"),
    user_domain_name=dict(type="str"),
    user_domain_id=dict(type="str"),
    project_domain_name=dict(type="str"),
    project_domain_id=dict(type="str"),
    domain_name=dict(type="str"),
    domain_id=dict(type="str"),
    token=dict(type="str", no_log=True),
)


def query_value(value):
    """A filter value as a query string wants it (booleans lower-case, lists kept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [query_value(v) for v in value]
    return str(value)


def auth_argument_spec():
    """The options of the stratus.cloud.auth doc fragment."""
    return dict(
        cloud=dict(type="str", default=DEFAULT_CLOUD),
        clouds_yaml=dict(type="path"),
        auth=dict(type="dict", options=AUTH_OPTIONS),
        region_name=dict(type="str"),
        interface=dict(type="str", choices=["public", "internal", "admin"]),
        validate_certs=dict(type="bool"),
        ca_cert=dict(type="path"),
        api_timeout=dict(type="int", default=60),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=180),
    )


class Difference:
    """Differences between what is (before) and what is wanted (after), per key."""

    def __init__(self):
        self.before = {}
        self.after = {}

    def add(self, key, before, after):
        """Record ``key`` if ``before`` and ``after`` differ; True when they do."""
        if before == after:
            return False
        self.before[key] = before
        self.after[key] = after
        return True

    def create(self, after):
        """Everything is new: nothing before."""
        self.before = {}
        self.after = dict(after)

    def delete(self, before):
        """Everything goes: nothing after."""
        self.before = dict(before)
        self.after = {}

    @property
    def changed(self):
        return bool(self.before or self.after)

    def __contains__(self, key):
        return key in self.before or key in self.after

    @property
    def diff(self):
        return {"before": self.before, "after": self.after}


class StratusModule:
    """Base class: see the module docstring."""

    argument_spec = {}
    module_kwargs = {}

    def __init__(self):
        spec = auth_argument_spec()
        spec.update(self.argument_spec)
        kwargs = dict(supports_check_mode=True)
        kwargs.update(self.module_kwargs)
        self.ansible = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.ansible.params
        self.check_mode = self.ansible.check_mode
        self._client = None

    @property
    def client(self):
        """The API client, connected on first use (so argument errors fail first)."""
        if self._client is None:
            config = load_cloud(
                cloud=self.params["cloud"],
                clouds_yaml=self.params["clouds_yaml"],
                auth=self.params["auth"],
                region_name=self.params["region_name"],
                interface=self.params["interface"],
                validate_certs=self.params["validate_certs"],
                ca_cert=self.params["ca_cert"],
                api_timeout=self.params["api_timeout"],
            )
            self._client = StratusClient(config)
            self._client.authenticate()
        return self._client

    def run(self):
        """Do the module's work; return the result dict (with ``changed``)."""
        raise NotImplementedError

    def __call__(self):
        try:
            result = self.run()
        except StratusError as exc:
            extra = {}
            if exc.status is not None:
                extra["status"] = exc.status
            self.ansible.fail_json(msg=str(exc), **extra)
        self.ansible.exit_json(**result)


__all__ = ["DEFAULT_CLOUDS_YAML", "Difference", "StratusError", "StratusModule"]
