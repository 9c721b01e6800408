# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: speedtest_report
short_description: Per-link results, shares of the bonded bytes and aggregation efficiency
version_added: 0.1.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Combines one C(omr.deploy.mptcp_probe) result per WAN alone with the result of the bonded
    MPTCP run into a report like OMR's C(omr-test-speed), plus the aggregation efficiency
    (bonded throughput / sum of the single-link results).
options:
  _input:
    description: The WANs as planned by P(omr.deploy.router_wan_plan#filter) (name, multipath, address), in the order of O(single).
    type: list
    elements: dict
    required: true
  single:
    description: The probe results of each WAN alone.
    type: list
    elements: dict
    required: true
  bonded:
    description: The probe result of the bonded MPTCP run.
    type: dict
    required: true
  direction:
    description: The direction the probes ran in.
    type: str
    default: download
    choices: [download, upload]
  pings:
    description: The output of C(ping -q) from each WAN's address to the VPS, in the order of the WANs; each link's round trip.
    type: list
    elements: str
  capacity:
    description:
      - "What each link can carry, as C({wan: {download: Mbit/s, upload: Mbit/s}}) (its contract, or the lab's shaping)."
      - With every WAN in it, the bonded rate is also set against their sum (C(efficiency_capacity)).
    type: dict
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    report: "{{ wans | omr.deploy.speedtest_report(single.results, bonded) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(links) (name, multipath, address, single_mbps, rtt_ms, capacity_mbps, bytes, share), C(sum_single_mbps),
    C(aggregate_mbps), C(mptcp), C(subflows), C(efficiency) (bonded / the links alone), C(sum_capacity_mbps),
    C(efficiency_capacity) (bonded / what the links can carry), C(direction) and C(table), the lines to print.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._speedtest import report


def speedtest_report(wans, single, bonded, direction="download", pings=None, capacity=None):
    if len(wans) != len(single) or (pings is not None and len(pings) != len(wans)):
        raise AnsibleFilterError("speedtest_report: %d WANs but %d single-link results and %s pings"
                                 % (len(wans), len(single), "no" if pings is None else len(pings)))
    return report(wans, single, bonded, direction, pings=pings, capacity=capacity)


class FilterModule(object):
    def filters(self):
        return {"speedtest_report": speedtest_report}
