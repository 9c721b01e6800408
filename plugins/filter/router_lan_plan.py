# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_lan_plan
short_description: Validate an OMR router's LAN declaration and add its network
version_added: 0.1.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Checks C(device) and C(address) (CIDR) and returns C(device), C(address), C(prefix), C(cidr) and C(network),
    as C(omr_router_plan.lan) holds them.
options:
  _input:
    description: The LAN, as in O(omr.deploy.router#role:main:omr_router_lan).
    type: dict
    required: true
  var:
    description: The variable name to use in error messages.
    type: str
    default: omr_router_lan
"""

EXAMPLES = r"""
- name: Plan the LAN
  ansible.builtin.set_fact:
    lan: "{{ omr_router_lan | omr.deploy.router_lan_plan }}"
"""

RETURN = r"""
_value:
  description: The LAN with C(device), C(address), C(prefix), C(cidr) and C(network).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._router import RouterPlanError, plan_lan


def router_lan_plan(lan, var="omr_router_lan"):
    try:
        return plan_lan(lan, var=var)
    except RouterPlanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"router_lan_plan": router_lan_plan}
