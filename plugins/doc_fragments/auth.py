# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The options every stratus.cloud module shares: credentials, endpoint choice, waiting."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  cloud:
    description:
      - Name of the cloud in the clouds.yaml file.
    type: str
    default: stratus
  clouds_yaml:
    description:
      - Path of a clouds.yaml file on the host the module runs on.
      - When not set, C(/etc/stratus/clouds.yaml) (written by the identity role), then the file
        named by the environment variable C(OS_CLIENT_CONFIG_FILE), unless O(auth.auth_url) is
        given (then no file is read).
    type: path
  auth:
    description:
      - Credentials, used as given or overriding those of the O(cloud) in the clouds.yaml.
    type: dict
    suboptions:
      auth_url:
        description: URL of the identity service (with or without C(/v3)).
        type: str
      username:
        description: Name of the user.
        type: str
      user_id:
        description: ID of the user (instead of O(auth.username)).
        type: str
      password:
        description: Password of the user.
        type: str
      project_name:
        description: Name of the project to work in.
        type: str
      project_id:
        description: ID of the project to work in (instead of O(auth.project_name)).
        type: str
      user_domain_name:
        description: Domain of the user, by name (default the C(default) domain).
        type: str
      user_domain_id:
        description: Domain of the user, by ID.
        type: str
      project_domain_name:
        description: Domain of the project, by name (default the C(default) domain).
        type: str
      project_domain_id:
        description: Domain of the project, by ID.
        type: str
      domain_name:
        description: Scope the token to this domain (when no project is given).
        type: str
      domain_id:
        description: Scope the token to this domain, by ID.
        type: str
      token:
        description: An existing token to use instead of a password.
        type: str
  region_name:
    description:
      - Region whose endpoints are used; default the clouds.yaml's C(region_name), else any.
    type: str
  interface:
    description:
      - Which endpoints of the catalog are used; default the clouds.yaml's C(interface), else
        C(public).
    type: str
    choices: [public, internal, admin]
  validate_certs:
    description:
      - Whether TLS certificates are verified; default the clouds.yaml's C(verify), else true.
    type: bool
  ca_cert:
    description:
      - A CA bundle to verify TLS certificates with.
    type: path
  api_timeout:
    description:
      - Seconds to wait for an answer to one API request.
    type: int
    default: 60
  wait:
    description:
      - Whether to wait until the resource reaches its final state.
    type: bool
    default: true
  timeout:
    description:
      - How long to wait, in seconds, when O(wait=true); also the time allowed for sending
        large data (an image file).
    type: int
    default: 180
requirements:
  - python >= 3.8
  - PyYAML, when credentials come from a clouds.yaml file
"""
