# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The base of every stratus.cloud module: options, connection, errors, warnings.

A module file declares a subclass with ``argument_spec`` (its own options; the
shared auth and wait options of the ``stratus.cloud.auth`` doc fragment are
added here), ``module_kwargs`` (mutually_exclusive, required_if, ...) and
``logic``: the class in module_utils that does the work, built with
``logic.connect(client, params, check_mode)`` and run with ``run()`` (a
``stratus_plan.Convergence``, or an ``*Info`` reader). Its result dict is the
module's; a ``warnings`` list in it becomes Ansible warnings.
``StratusError`` from the client becomes one ``fail_json(msg=...)``; nothing
else calls fail_json.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_auth import resolve_cloud
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
    DEFAULT_CLOUDS_YAML,
    StratusClient,
    StratusError,
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
    application_credential_id=dict(type="str"),
    application_credential_name=dict(type="str"),
    application_credential_secret=dict(type="str", no_log=True),
)


def auth_argument_spec():
    """The options of the stratus.cloud.auth doc fragment."""
    return dict(
        cloud=dict(type="raw"),
        clouds_yaml=dict(type="path"),
        auth=dict(type="dict", options=AUTH_OPTIONS),
        auth_type=dict(type="str", choices=["password", "token", "v3applicationcredential"]),
        region_name=dict(type="str"),
        interface=dict(type="str", choices=["public", "internal", "admin"]),
        validate_certs=dict(type="bool"),
        ca_cert=dict(type="path", aliases=["cacert"]),
        client_cert=dict(type="path", aliases=["cert"]),
        client_key=dict(type="path", no_log=False, aliases=["key"]),
        api_timeout=dict(type="int", default=60),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=180),
    )


class StratusModule:
    """Base class: see the module docstring."""

    argument_spec = {}
    module_kwargs = {}
    logic = None

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
            cloud = self.params["cloud"]
            if cloud is not None and not isinstance(cloud, (str, dict)):
                raise StratusError("cloud must be a cloud's name or a clouds.yaml entry (a dict).")
            names = ("clouds_yaml", "auth", "auth_type", "region_name", "interface",
                     "validate_certs", "ca_cert", "client_cert", "client_key", "api_timeout")
            config = resolve_cloud(cloud=cloud, **dict((k, self.params[k]) for k in names))
            self._client = StratusClient(config)
            self._client.authenticate()
        return self._client

    def run(self):
        """Do the module's work; return the result dict (with ``changed``)."""
        result = self.logic.connect(self.client, self.params, self.check_mode).run()
        for warning in result.pop("warnings", []):
            self.ansible.warn(warning)
        return result

    def __call__(self):
        try:
            result = self.run()
        except StratusError as exc:
            extra = {}
            if exc.status is not None:
                extra["status"] = exc.status
            self.ansible.fail_json(msg=str(exc), **extra)
        self.ansible.exit_json(**result)


__all__ = ["DEFAULT_CLOUDS_YAML", "StratusError", "StratusModule", "auth_argument_spec"]
