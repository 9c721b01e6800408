# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: diagnose_report
short_description: The diagnosis of a router and its VPS, from what playbooks/diagnose.yml read
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Turns what C(playbooks/diagnose.yml) read on a router and its VPS into one JSON-able report and
    its verdicts in words, following OMR's five troubleshooting steps. Each link alone in both
    directions, set against what it can carry. The VPS's CPU during the bonded transfer, its memory,
    swap, OOM kills, network IO and top processes. MPTCP on both ends and the bonded probe. The bytes
    per subflow and per interface over time. The bonded transfer with and without the router's own
    shaping.
  - The thresholds of the verdicts are constants of C(plugins/module_utils/_diagnose.py). A link alone
    under 0.6 of what it can carry is a bottleneck. So is a link whose share of the bonded bytes is under
    half its share of the links alone. A CPU 90 % busy or more was the limit. Bonded at 0.9 of the links
    alone or more, bonding works.
options:
  _input:
    description:
      - The keyword arguments of C(collect()) in C(plugins/module_utils/_diagnose.py) as a dict, among them
        C(router), C(wans), C(single), C(bonded), C(unshaped), C(pings), C(samples), C(vps_snapshots),
        C(vps_samples), C(vps_ps), C(vps_memory), C(router_snapshots), C(mptcp), C(qdiscs), C(shaping), C(shaping_result),
        C(capacity), C(backend), C(client), C(seconds), C(generated) and C(check_mode).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    report: "{{ raw | omr.deploy.diagnose_report }}"
"""

RETURN = r"""
_value:
  description: >-
    The report: C(links) (each alone, what it can carry, its subflows and interface bytes in the bonded
    transfer), C(bonded), C(unshaped), C(timeline), C(vps_stats), C(router_cpu), C(mptcp), C(shaping),
    C(notes) and C(verdicts) (a list of C(level), C(topic), C(text)).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._diagnose import report


def diagnose_report(raw):
    if not isinstance(raw, dict) or 'router' not in raw or 'wans' not in raw:
        raise AnsibleFilterError('diagnose_report: expects a dict with at least router and wans')
    try:
        return report(dict(raw))
    except TypeError as exc:
        raise AnsibleFilterError('diagnose_report: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'diagnose_report': diagnose_report}
