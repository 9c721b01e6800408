# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: omr_status
short_description: An OMR router's own view of its WANs, against the plan
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Reads the JSON of C(ubus call openmptcprouter status) (OMR's rpcd, what LuCI's status page shows), followed by one
    line, the value of C(openmptcprouter.<server>.admin_error).
  - For every planned WAN it checks that OMR lists it, that it sits in the WAN firewall zone (C(zonewan) C(OK); LuCI
    otherwise warns "Network interface not in WAN firewall zone") and that OMR's multipath mode is the planned one.
options:
  _input:
    description: The output of C(ubus call openmptcprouter status; echo; uci -q get openmptcprouter.vps.admin_error).
    type: str
    required: true
  wans:
    description: The planned WANs, C(omr_router_plan.wans).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: OMR's status against the plan
  ansible.builtin.set_fact:
    status: "{{ ubus.stdout | omr.deploy.omr_status(omr_router_plan.wans) }}"
"""

RETURN = r"""
_value:
  description: C(problems) (sentences, empty when all is as planned), C(admin_error), C(wans) (name, status and mode per WAN) and C(summary).
  type: dict
"""

from ansible_collections.omr.deploy.plugins.module_utils._openwrt import omr_status as _omr_status


def omr_status(text, wans):
    return _omr_status(text, wans)


class FilterModule(object):
    def filters(self):
        return {"omr_status": omr_status}
