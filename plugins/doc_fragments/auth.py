# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The options every stratus.cloud module shares: credentials, endpoint choice, waiting."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  cloud:
    description:
      - The cloud to use, as in C(openstack.cloud) - the name of an entry of a clouds.yaml, or a
        dict holding such an entry (C(auth), C(region_name), C(interface), C(verify),
        C(cacert), C(auth_type)...).
      - When not set - the cloud named by the environment variable C(OS_CLOUD); else, when
        C(OS_AUTH_URL) is set, the C(OS_*) variables of an openrc (C(OS_USERNAME),
        C(OS_PASSWORD), C(OS_PROJECT_NAME), C(OS_APPLICATION_CREDENTIAL_ID)...,
        C(OS_REGION_NAME), C(OS_INTERFACE), C(OS_CACERT)); else O(auth) alone when it has an
        O(auth.auth_url); else the cloud named C(stratus) (which the identity role writes).
      - A named cloud is read from the first clouds.yaml found - O(clouds_yaml), the file named
        by C(OS_CLIENT_CONFIG_FILE), C(./clouds.yaml), C(~/.config/openstack/clouds.yaml),
        C(/etc/openstack/clouds.yaml), then C(/etc/stratus/clouds.yaml); the same entry of the
        first C(secure.yaml) found in those directories is merged over it.
    type: raw
  clouds_yaml:
    description:
      - Path of the clouds.yaml file to read, on the host the module runs on, instead of
        searching for one (see O(cloud)).
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
      application_credential_id:
        description: ID of an application credential (O(auth_type=v3applicationcredential)).
        type: str
      application_credential_name:
        description:
          - Name of an application credential, with O(auth.username) or O(auth.user_id).
        type: str
      application_credential_secret:
        description: Secret of the application credential.
        type: str
  auth_type:
    description:
      - How to authenticate; default the cloud's C(auth_type), else C(v3applicationcredential)
        when an application credential secret is given, C(token) when only a token is, else
        C(password).
    type: str
    choices: [password, token, v3applicationcredential]
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
      - A CA bundle to verify TLS certificates with; default the cloud's C(cacert).
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - A client certificate (PEM) to present to the APIs; default the cloud's C(cert).
    type: path
    aliases: [cert]
  client_key:
    description:
      - The private key of O(client_cert), when it is not in the same file; default the
        cloud's C(key).
    type: path
    aliases: [key]
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
