# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: converge_metrics
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: The textfile that records the last converge that changed a host
description:
  - Renders C(omr_deploy_last_converge_timestamp_seconds{role}), the Unix time of the input, in Prometheus'
    text exposition format, for node_exporter's textfile collector.
  - The roles write it from a handler that every concern notifies, in a file of its own
    (C(omr_vps_converge.prom), C(omr_router_converge.prom)), so it moves only when a converge changed
    something and a run that changes nothing changes no file.
notes:
  - Pure, it reads nothing from the host.
positional: _input
options:
  _input:
    description: Unix time in seconds; a fraction is dropped.
    type: float
    required: true
  role:
    description: The role, the value of the C(role) label.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Record the converge
  ansible.builtin.copy:
    dest: /var/lib/prometheus/node-exporter/omr_vps_converge.prom
    content: "{{ now(utc=true).timestamp() | omr.deploy.converge_metrics(role='vps') }}"
    mode: "0644"

# 1767225600 | omr.deploy.converge_metrics(role='vps') gives
#   # HELP omr_deploy_last_converge_timestamp_seconds Unix time of the last converge of an omr.deploy role ...
#   # TYPE omr_deploy_last_converge_timestamp_seconds gauge
#   omr_deploy_last_converge_timestamp_seconds{role="vps"} 1767225600
"""

RETURN = r"""
_value:
  description: The textfile, ending in a newline.
  type: str
  sample: |
    # HELP omr_deploy_last_converge_timestamp_seconds Unix time of the last converge of an omr.deploy role that changed this host.
    # TYPE omr_deploy_last_converge_timestamp_seconds gauge
    omr_deploy_last_converge_timestamp_seconds{role="vps"} 1767225600
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._monitoring import converge_metrics as render_converge


def converge_metrics(timestamp, role):
    try:
        return render_converge(timestamp, role)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.converge_metrics: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'converge_metrics': converge_metrics}
