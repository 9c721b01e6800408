#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: uci
short_description: Bring an OpenWrt router's UCI to the desired sections with the minimal uci batch
version_added: 0.2.0
description:
  - Declarative UCI for routers without Python (OpenMPTCProuter's OpenWrt firmware). It runs on the controller as an
    action plugin and reaches the router with plain shell over the connection (C(ansible.builtin.ssh)).
  - It reads the packages the sections belong to (C(uci -X show)), plans on the controller the minimal
    C(uci batch) (a C(set) only where a value differs, an C(add_list) only for an absent member, a C(delete)
    only for what the sections say must go, C(uci add) for a new anonymous section), sends the batch on
    stdin, treats any message on stderr as a failure (C(uci batch) exits 0 even when lines fail) and then
    reverts, checks that C(uci changes) records exactly the planned deltas, and commits only the packages it
    touched.
  - A package with uncommitted changes it did not make (an edit in LuCI not yet applied) is refused rather
    than committed along.
  - Secret values (options named C(password), C(key), C(token), C(psk), C(upsk), C(private_key),
    C(preshared_key), C(user_password), and those listed in a section's C(secrets)) never travel back from the
    router. The read replaces them with a salted sha256 on the router, the comparison is made on digests, and
    every output (C(batch), C(changes), the diff, C(-vvv)) shows them masked.
  - It does not apply the configuration; C(reload_config) in a handler does (the openwrt backend of the omr.deploy.router role).
author:
  - omr.deploy maintainers (!UNKNOWN)
options:
  sections:
    description:
      - The desired sections, each a dict. A section is named (O(sections[].name)) or found by option values
        (O(sections[].match)).
    type: list
    elements: dict
    required: true
    suboptions:
      package:
        description: The UCI package (C(network), C(firewall), C(openmptcprouter), ...).
        type: str
        required: true
      type:
        description: The section type (C(interface), C(zone), ...). A named section of another type gets this type.
        type: str
        required: true
      name:
        description: The section's name; it is created with C(set) when missing.
        type: str
      match:
        description:
          - Options that find an anonymous or named section of O(sections[].type), the first that has all these
            values (the firewall zone whose C(name) is C(wan), wherever it sits). When none has them, a new
            anonymous section is added with C(uci add) and given them.
        type: dict
      state:
        description: C(absent) deletes the section if it is there.
        type: str
        choices: [present, absent]
        default: present
      options:
        description: Options set where their value differs; a null value deletes the option if present.
        type: dict
      defaults:
        description: Options set only when absent (values another program rewrites, as OMR rewrites C(ip4table)).
        type: dict
      lists:
        description: List options whose members must be present; others are left alone. Absent members are added with C(add_list).
        type: dict
      exact_lists:
        description: List options that must hold exactly these members, in this order; others are removed with C(del_list).
        type: dict
      remove_members:
        description: List members removed with C(del_list) where present.
        type: dict
      on_change:
        description: Options set too when anything else in the section changes (OMR's C(get_config) after a new pairing).
        type: dict
      secrets:
        description: More option names to mask in every output, beyond the built-in ones.
        type: list
        elements: str
  secrets:
    description:
      - "Secret values, as C({package.section.option: value}), added to the named section of O(sections). An empty
        value leaves the option out, so the router keeps the one it has."
    type: dict
    default: {}
  commit:
    description: Commit the touched packages. With false the changes stay pending (C(uci changes)) for a later commit.
    type: bool
    default: true
extends_documentation_fragment:
  - omr.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Check mode reads the router and plans; nothing is sent to C(uci batch).
  diff_mode:
    support: full
    details: The touched packages before and after, as C(uci show) prints them, with secrets masked.
  platform:
    support: full
    platforms: [openwrt]
    details:
      - OpenWrt's C(uci), a POSIX C(sh) (busybox ash), C(sha256sum) and C(cut); no Python.
notes:
  - This runs as an action plugin on the controller; the module file holds its documentation.
  - Section and option names must be what C(uci) accepts (letters, digits, C(_)); values may hold anything but a newline.
seealso:
  - module: omr.deploy.router_plan
  - name: OpenWrt UCI documentation
    description: The UCI system and its command line.
    link: https://openwrt.org/docs/guide-user/base-system/uci
"""

EXAMPLES = r"""
- name: A WAN as OMR reads it, in the firewall's WAN zone
  omr.deploy.uci:
    sections:
      - package: network
        type: interface
        name: wan2
        options: {device: eth2, proto: dhcp, multipath: "on", defaultroute: "0", peerdns: "0", ipaddr: null}
        defaults: {ip4table: wan}
      - package: firewall
        type: zone
        match: {name: wan}
        lists: {network: [wan1, wan2]}

- name: Pair with the VPS's omr-admin; the Server key comes from a vault
  omr.deploy.uci:
    sections:
      - package: openmptcprouter
        type: server
        name: vps
        options: {username: openmptcprouter, port: "65500", master: "1", backup: "0"}
        exact_lists: {ip: [198.51.100.10]}
        on_change: {get_config: "1"}
    secrets:
      openmptcprouter.vps.password: "{{ vault_omr_server_key }}"
  notify: Apply the router's UCI
"""

RETURN = r"""
packages:
  description: The packages the batch touched (and committed, with O(commit)).
  returned: always
  type: list
  elements: str
  sample: [network, firewall]
batch:
  description: The planned C(uci batch) lines, secrets masked.
  returned: always
  type: list
  elements: str
  sample: ["set network.wan2.multipath='on'", "add_list firewall.cfg02dc81.network='wan2'"]
changes:
  description: What C(uci changes) recorded per package (secrets masked); C(*) stands for the id of a section the batch added.
  returned: always
  type: dict
sections_changed:
  description: C(package.section) of every section the batch touches.
  returned: always
  type: list
  elements: str
  sample: [network.wan2, openmptcprouter.vps]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(sections=dict(type='list', elements='dict', required=True),
                           secrets=dict(type='dict', default={}, no_log=True),
                           commit=dict(type='bool', default=True)),
        supports_check_mode=True,
    )
    module.fail_json(msg='omr.deploy.uci runs as an action plugin on the controller; '
                         'this module file only holds its documentation')


if __name__ == '__main__':
    main()
