# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_endpoint_drift
short_description: How an OMR router's MPTCP endpoints differ from its planned WANs
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - OMR's C(/etc/init.d/mptcp) gives every WAN that is not C(off) one MPTCP endpoint on its device, with C(subflow fullmesh)
    for C(master) and C(on) and C(subflow backup fullmesh) for C(backup), and none for C(off); ids are OMR's.
  - Compares the live endpoints (C(omr_mptcp.endpoints) from M(omr.deploy.mptcp_info)) with the WANs of
    C(omr_router_plan) and lists what differs, in words. Empty when the router is as planned.
  - The address is compared where the plan knows it (static and transit WANs); a DHCP WAN's is its lease.
options:
  _input:
    description: The live endpoints, C(omr_mptcp.endpoints).
    type: list
    elements: dict
    required: true
  wans:
    description: The planned WANs, C(omr_router_plan.wans).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Assert the endpoints OMR set are the planned ones
  ansible.builtin.assert:
    that: omr_mptcp.endpoints | omr.deploy.router_endpoint_drift(omr_router_plan.wans) | length == 0
"""

RETURN = r"""
_value:
  description: "One sentence per difference, e.g. C(wan2 (eth2, backup): flags subflow fullmesh, planned backup fullmesh subflow)."
  type: list
  elements: str
"""

from ansible_collections.omr.deploy.plugins.module_utils._openwrt import endpoint_drift


def router_endpoint_drift(endpoints, wans):
    return endpoint_drift(endpoints, wans)


class FilterModule(object):
    def filters(self):
        return {"router_endpoint_drift": router_endpoint_drift}
