# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lookup stratus.cloud.template: ansible.builtin.template without its deep copy."""

from __future__ import annotations

DOCUMENTATION = r"""
name: template
author: Stratus developers (!UNKNOWN)
short_description: ansible.builtin.template's rendering without its deep copy of the variables
description:
  - Renders each template and returns its text, exactly as the lookup
    C(ansible.builtin.template) does (the same search path, options and template variables
    such as C(ansible_managed)).
  - The difference is the copy of the task's variables a rendering gets. The builtin lookup
    deep-copies every variable of the task for each template (about 0.1 s on a host with a
    deployed cloud's variables); this one copies the top-level mapping only. The template
    sees the same values and cannot change the task's variables either way.
  - The roles render the files they compare with what a host already has with it, on every
    run (the no-change path of a re-run).
options:
  _terms:
    description:
      - The templates to render (searched as ansible.builtin.template searches them).
    required: true
  template_vars:
    description: Variables the templates see in addition to the task's.
    type: dict
    default: {}
  variable_start_string:
    description: The string marking the beginning of a print statement.
    type: str
    default: "{{"
  variable_end_string:
    description: The string marking the end of a print statement.
    type: str
    default: "}}"
  comment_start_string:
    description: The string marking the beginning of a comment.
    type: str
    default: "{#"
  comment_end_string:
    description: The string marking the end of a comment.
    type: str
    default: "#}"
  trim_blocks:
    description: Whether the first newline after a block tag is removed.
    type: bool
    default: true
seealso:
  - plugin: ansible.builtin.template
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: The sha256 of the section as this run renders it
  ansible.builtin.set_fact:
    section_sum: >-
      {{ lookup('stratus.cloud.template', 'stratus.conf.identity.j2') | hash('sha256') }}
"""

RETURN = r"""
_raw:
  description: The rendered text of each template.
  type: list
  elements: str
"""

from ansible.plugins.lookup.template import LookupModule as _TemplateLookup  # noqa: E402


class _ShallowCopy(dict):
    """The task's variables: a deep copy of them is a copy of the top-level mapping."""

    def __deepcopy__(self, memo):
        return dict(self)


class LookupModule(_TemplateLookup):
    def run(self, terms, variables=None, **kwargs):
        return super().run(terms, _ShallowCopy(variables or {}), **kwargs)
