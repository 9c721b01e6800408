# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: omr_admin_key
short_description: The OMR Server key and username a router needs, from an OMR VPS's files
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Reads the Server key and username from C(/etc/openmptcprouter-vps-admin/omr-admin-config.json), where omr-admin
    keeps them (C(.users[0].openmptcprouter.user_password)); when that file is missing or unusable, from the
    "Your OpenMPTCProuter Server key" and "Server username" lines of C(/root/openmptcprouter_config.txt).
  - Fails when neither holds a key, or when the key is still the template's placeholder (C(MySecretKey),
    C(AdminMySecretKey)), meaning the install did not finish. Messages never show a key.
  - Use it only in C(no_log) tasks; the result holds the key.
options:
  _input:
    description: The text of omr-admin-config.json, or an empty string or null when it is missing.
    type: str
    required: true
  config_txt:
    description: The text of C(/root/openmptcprouter_config.txt), the fallback.
    type: str
"""

EXAMPLES = r"""
- name: Read the files that hold the Server key
  ansible.builtin.slurp:
    src: "{{ item }}"
  loop:
    - /etc/openmptcprouter-vps-admin/omr-admin-config.json
    - /root/openmptcprouter_config.txt
  register: __omr_vps_key_files
  failed_when: false
  no_log: true

- name: Keep the Server key
  ansible.builtin.set_fact:
    __omr_vps_server: >-
      {{ (__omr_vps_key_files.results[0].content | default('') | b64decode)
         | omr.deploy.omr_admin_key(config_txt=__omr_vps_key_files.results[1].content | default('') | b64decode) }}
  no_log: true
"""

RETURN = r"""
_value:
  description: C({username, key, source}); C(source) is the file the key came from.
  type: dict
  sample:
    username: openmptcprouter
    key: "(64 upper-case hexadecimal digits)"
    source: /etc/openmptcprouter-vps-admin/omr-admin-config.json
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._omr_install import (
    ADMIN_CONFIG, CONFIG_TXT, OmrInstallError, admin_key, config_txt_key)


def omr_admin_key(json_text, config_txt=None):
    try:
        found = admin_key(json_text)
        found["source"] = ADMIN_CONFIG
        return found
    except OmrInstallError as exc:
        first = str(exc)
    if not config_txt:
        raise AnsibleFilterError(first)
    try:
        found = config_txt_key(config_txt)
    except OmrInstallError as exc:
        raise AnsibleFilterError("%s; %s" % (first, exc))
    found["source"] = CONFIG_TXT
    return found


class FilterModule(object):
    def filters(self):
        return {"omr_admin_key": omr_admin_key}
