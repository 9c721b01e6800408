# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: diagnose_shaping
short_description: A router's own traffic shaping, and the tc commands that remove it and put it back
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Reads what C(playbooks/files/omr-diagnose.sh qdiscs) printed for the WANs' devices, that is
    C(tc qdisc show), C(tc class show) and the filters of each device and of the IFB its ingress
    redirects to (OMR's SQM). It says which WAN is shaped, in which direction, by what and at what rate.
  - Anything but a qdisc that only orders or drops (the kernel's defaults C(pfifo_fast), C(fq_codel),
    C(noqueue), C(mq), and C(fq) without a C(maxrate), ...) shapes. Examples are C(tbf), C(htb),
    C(cake), C(netem) and an ingress policer.
  - A shaping tree is removable when it can be rebuilt exactly. That means qdiscs of the kinds tc prints
    back (C(tbf), C(htb), C(cake), C(netem), C(pfifo), C(bfifo)), htb classes, and no filter. The result
    has the shell that rehearses the rebuild on a scratch IFB device, the shell that removes, and the shell
    that restores.
  - With O(before), the result's C(problems) lists how each of O(before)'s removable trees differs from
    what the input shows now. It is empty when the rebuild matched, after the rehearsal or after the restore.
options:
  _input:
    description: What C(omr-diagnose.sh qdiscs DEV...) printed.
    type: str
    required: true
  wans:
    description: The WANs (C(name), C(device)) whose devices were read.
    type: list
    elements: dict
    required: true
  before:
    description: An earlier result of this filter, to compare its removable trees with the input.
    type: dict
"""

EXAMPLES = r"""
- name: Work out the router's shaping
  ansible.builtin.set_fact:
    shaping: "{{ dump.stdout | omr.deploy.diagnose_shaping(wans) }}"

- name: Check it was put back
  ansible.builtin.assert:
    that: (after.stdout | omr.deploy.diagnose_shaping(wans, before=shaping)).problems == []
"""

RETURN = r"""
_value:
  description: >-
    C(tc) (false when the router has no tc), C(shaped), C(links) (per WAN its C(upload) tree, its C(download)
    tree through an IFB, its C(policer)), C(targets) (the removable trees, each with C(device), C(shaper),
    C(rate_mbit), C(before), C(remove) and C(restore) commands), C(blocked) (shaping trees that cannot be
    removed, with a C(reason)), C(devices), C(rehearse), C(remove) and C(restore) (shell), and with O(before)
    C(problems).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._qdisc import compare, shaping


def diagnose_shaping(text, wans, before=None):
    if not isinstance(wans, list) or not all(isinstance(w, dict) and 'device' in w and 'name' in w for w in wans):
        raise AnsibleFilterError('diagnose_shaping: wans must be a list of dicts with name and device')
    result = shaping(text or '', wans)
    if before is not None:
        result['problems'] = compare(before.get('targets') or [], text or '')
    return result


class FilterModule(object):
    def filters(self):
        return {'diagnose_shaping': diagnose_shaping}
