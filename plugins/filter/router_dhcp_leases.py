# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_dhcp_leases
short_description: DHCP leases of an OMR router's WANs, as its dhcpcd hook keeps them
version_added: 0.1.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - omr.deploy.router runs dhcpcd on WANs with C(address=dhcp); its hook (C(omr-router-net lease)) keeps one file
    per device, C(/run/omr-router/dhcp/<device>.env), with C(ADDRESS), C(PREFIX), C(GATEWAY) and C(NETWORK).
  - Parses the output of C(grep -H . /run/omr-router/dhcp/*.env) into leases by device, for
    P(omr.deploy.router_wan_plan#filter). A file that lacks a value is left out.
options:
  _input:
    description: The command's output.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Plan the WANs with their current leases
  ansible.builtin.set_fact:
    wans: "{{ omr_router_wans | omr.deploy.router_wan_plan(leases=lease_files.stdout | omr.deploy.router_dhcp_leases) }}"
"""

RETURN = r"""
_value:
  description: "C({device: {address, prefix, gateway, network}})."
  type: dict
"""

from ansible_collections.omr.deploy.plugins.module_utils._router_runtime import parse_lease_files


def router_dhcp_leases(text):
    return parse_lease_files(text or "")


class FilterModule(object):
    def filters(self):
        return {"router_dhcp_leases": router_dhcp_leases}
