# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_wan_plan
short_description: Validate an OMR router's WAN list and fill in tables, metrics and endpoint flags
version_added: 0.1.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Checks the WANs as OMR does (exactly one C(master), known multipath modes, unique names,
    devices and tables, the gateway on the link's network) and fails naming the variable.
  - Returns each WAN as the router plan (M(omr.deploy.router_plan)) holds it, with C(table),
    C(rule_priority), C(metric), C(network), C(address), C(prefix), C(endpoint_id) and the MPTCPv1 endpoint
    C(flags) OMR uses for its mode.
  - M(omr.deploy.router_plan) plans the whole router with it; this filter is for playbooks that
    want the WAN part alone.
options:
  _input:
    description: The WAN list, as in O(omr.deploy.router#role:main:omr_router_wans).
    type: list
    elements: dict
    required: true
  var:
    description: The variable name to use in error messages.
    type: str
    default: omr_router_wans
  transit:
    description: A transit allocation (C(omr_router_plan.transit)); WANs behind a transit link take their addresses from it.
    type: dict
  transit_links:
    description: The transit links (C(omr_router_transit_links)) WANs may name with C(transit).
    type: list
    elements: dict
  leases:
    description:
      - DHCP leases by device, as P(omr.deploy.router_dhcp_leases#filter) returns them.
      - WANs with C(address=dhcp) take their address and gateway from the lease on their device.
      - Without one they are returned pending, with C(address) and C(endpoint) null.
    type: dict
"""

EXAMPLES = r"""
- name: Plan the WANs
  ansible.builtin.set_fact:
    wan_plan: "{{ omr_router_wans | omr.deploy.router_wan_plan }}"
"""

RETURN = r"""
_value:
  description:
    - The WANs with C(addressing), C(table), C(rule_priority), C(metric), C(default_route), C(network), C(address),
      C(prefix), C(cidr), C(gateway), C(endpoint_id), C(flags), C(keep_backup), C(quality), C(pending) and C(endpoint).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._router import RouterPlanError, plan_wans


def router_wan_plan(wans, var="omr_router_wans", transit=None, transit_links=None, leases=None):
    try:
        return plan_wans(wans, var=var, transit=transit, transit_links=transit_links, leases=leases)
    except RouterPlanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"router_wan_plan": router_wan_plan}
