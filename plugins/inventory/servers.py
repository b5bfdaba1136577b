# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stratus.cloud.servers inventory plugin: a Stratus cloud's servers as Ansible hosts."""

from __future__ import annotations

DOCUMENTATION = r"""
name: servers
short_description: Servers of Stratus clouds as Ansible hosts
description:
  - Lists the servers of one or more Stratus clouds (compute API C(/servers/detail)) and makes
    each one a host, with the options users know from C(openstack.cloud.openstack).
  - "The inventory file is a YAML file whose name ends in C(stratus.yml), C(stratus.yaml),
    C(servers.yml) or C(servers.yaml), with C(plugin: stratus.cloud.servers)."
  - Host variables - C(ansible_host) (the first floating IP, else the first fixed IP; with
    O(private), the first fixed IP) and C(stratus) (C(id), C(name), C(status), C(project),
    C(project_id), C(flavor), C(image), C(availability_zone), C(metadata), C(fixed_ips),
    C(floating_ips), C(private_v4), C(public_v4), C(cloud), C(region); with O(expand_hostvars)
    also C(server), the server as the API shows it).
  - Groups - the cloud's name, C(project-<name>), C(flavor-<name>), C(image-<name>),
    C(az-<zone>), C(status-<status>) and C(meta-<key>_<value>) for each metadata item; more
    with O(groups) and O(keyed_groups).
  - Credentials are found as the collection's modules find them - the clouds of the first
    clouds.yaml in O(clouds_yaml_path) (by default C(./clouds.yaml),
    C(~/.config/openstack/clouds.yaml), C(/etc/openstack/clouds.yaml),
    C(/etc/stratus/clouds.yaml)), or, with no clouds.yaml, the C(OS_*) variables of an openrc.
version_added: 0.2.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    required: true
    type: str
    choices: [stratus.cloud.servers]
  cloud:
    description:
      - One cloud to list, by name (in the clouds.yaml) or as a clouds.yaml entry (a dict),
        instead of every cloud of the clouds.yaml.
    type: raw
  clouds_yaml_path:
    description:
      - clouds.yaml files to read, instead of the search path; the clouds of all of them are
        listed (a name found twice is taken from the first file).
    type: list
    elements: path
    env:
      - name: OS_CLIENT_CONFIG_FILE
  only_clouds:
    description: List only these clouds (by name); all of them when empty.
    type: list
    elements: str
    default: []
  all_projects:
    description: List the servers of every project (the credentials need the admin role).
    type: bool
    default: false
  expand_hostvars:
    description: Add the server as the API shows it to the host variables (C(stratus.server)).
    type: bool
    default: false
  inventory_hostname:
    description:
      - What names a host - the server's C(name) (a second server of the same name is then
        named by its ID) or its C(uuid).
    type: str
    choices: [name, uuid]
    default: name
  private:
    description: Use the fixed IP as C(ansible_host) even when the server has a floating IP.
    type: bool
    default: false
  fail_on_errors:
    description:
      - Fail when a cloud cannot be read; otherwise warn and list the other clouds.
    type: bool
    default: false
"""

EXAMPLES = r"""
# stratus.yml
plugin: stratus.cloud.servers
only_clouds: [stratus]
all_projects: true
keyed_groups:
  - key: stratus.metadata.role | default('none')
    prefix: role
compose:
  ansible_user: "'debian'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/stratus-inventory
"""

import os  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_auth import (  # noqa: E402
    environment_entry,
    resolve_cloud,
    search_path,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (  # noqa: E402
    StratusClient,
    StratusError,
    read_yaml_clouds,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_inventory import (  # noqa: E402
    host_entry,
    read_cloud,
)

SUFFIXES = ("stratus.yml", "stratus.yaml", "servers.yml", "servers.yaml")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Servers as hosts; see DOCUMENTATION."""

    NAME = "stratus.cloud.servers"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(SUFFIXES)

    def clouds(self):
        """[(name, CloudConfig)] of the clouds to list."""
        cloud = self.get_option("cloud")
        if cloud:
            return [(cloud if isinstance(cloud, str) else "stratus", resolve_cloud(cloud=cloud))]
        paths = self.get_option("clouds_yaml_path") or search_path("clouds.yaml")
        found = {}
        for path in paths:
            if os.path.isfile(path):
                for name in read_yaml_clouds(path):
                    found.setdefault(name, path)
        only = self.get_option("only_clouds") or []
        if not found and os.environ.get("OS_AUTH_URL"):
            return [("envvars", resolve_cloud(cloud=environment_entry(os.environ)))]
        if not found:
            raise AnsibleParserError("No clouds.yaml found (looked for {}) and no OS_AUTH_URL."
                                     .format(", ".join(paths)))
        return [(name, resolve_cloud(cloud=name, clouds_yaml=path))
                for name, path in sorted(found.items()) if not only or name in only]

    def fetch(self):
        """{cloud: {"region": ..., "servers": [...]}} read from the APIs."""
        options = {"all_projects": self.get_option("all_projects")}
        out = {}
        for name, config in self.clouds():
            try:
                client = StratusClient(config)
                out[name] = {"region": config.region_name,
                             "servers": read_cloud(client, name, options)}
            except StratusError as exc:
                if self.get_option("fail_on_errors"):
                    raise AnsibleParserError(f"Cloud {name}: {exc}") from None
                self.display.warning(f"Cloud {name} was not listed: {exc}")
        return out

    def populate(self, data):
        strict = self.get_option("strict")
        options = {k: self.get_option(k) for k in ("inventory_hostname", "private",
                                                   "expand_hostvars")}
        for cloud, listing in sorted(data.items()):
            taken = set()
            for server in sorted(listing["servers"], key=lambda s: (s.get("name") or "", s["id"])):
                host, hostvars, groups = host_entry(server, cloud, listing["region"], options,
                                                    taken)
                taken.add(server.get("name"))
                self.inventory.add_host(host)
                for group in groups:
                    self.inventory.add_group(group)
                    self.inventory.add_child(group, host)
                for key, value in hostvars.items():
                    self.inventory.set_variable(host, key, value)
                variables = self.inventory.get_host(host).get_vars()
                self._set_composite_vars(self.get_option("compose"), variables, host, strict)
                self._add_host_to_composed_groups(self.get_option("groups"), variables, host,
                                                  strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host,
                                               strict)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        data = None
        if use_cache:
            try:
                data = self._cache[key]
            except KeyError:
                update_cache = True
        if data is None:
            try:
                data = self.fetch()
            except StratusError as exc:
                raise AnsibleParserError(str(exc)) from None
        if update_cache:
            self._cache[key] = data
        self.populate(data)
