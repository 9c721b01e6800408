# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vps_metrics
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: The textfile omr.deploy.vps keeps for node_exporter
description:
  - Renders what M(omr.deploy.vps) knows of the VPS in Prometheus' text exposition format (HELP and TYPE
    before each family), for node_exporter's textfile collector
    (C(/var/lib/prometheus/node-exporter/omr_vps.prom)).
  - "Gauges: C(omr_vps_memory_plan_bytes) and C(omr_vps_memory_effective_bytes) (from the input, the
    C(omr_memory) fact), C(omr_vps_swappiness), C(omr_vps_masked_services) and one
    C(omr_vps_masked_service{unit}) per masked unit, C(omr_mptcp_flavour{flavour,role}), C(omr_mptcp_enabled{role}),
    C(omr_mptcp_endpoints{role}), C(omr_mptcp_endpoint_info{id,address,dev,flags}) and
    C(omr_mptcp_limit{kind=subflows|add_addr_accepted,role}), C(role) being C(vps): the router's textfile has
    the same C(omr_mptcp_*) families with C(role=router), so one host may carry both files."
  - A family whose value is unknown is left out. The output holds no timestamp, so it changes only when the
    VPS does; the last converge has a file of its own (M(omr.deploy.converge_metrics)).
notes:
  - Pure, it reads nothing from the host.
positional: _input
options:
  _input:
    description: The C(omr_memory) fact (M(omr.deploy.memory_info)).
    type: dict
    required: true
  mptcp:
    description: The C(omr_mptcp) fact (M(omr.deploy.mptcp_info)), read after the converge.
    type: dict
    default: {}
  swappiness:
    description: C(vm.swappiness) as read; null leaves the gauge out.
    type: int
  masked:
    description: The units of C(omr_vps_disabled_services) that are masked (C(snapd.service), ...); null leaves the gauges out.
    type: list
    elements: str
seealso:
  - plugin: omr.deploy.node_exporter_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Keep the VPS's textfile current
  ansible.builtin.copy:
    dest: /var/lib/prometheus/node-exporter/omr_vps.prom
    content: "{{ omr_memory | omr.deploy.vps_metrics(mptcp=omr_mptcp, swappiness=10, masked=['exim4.service']) }}"
    mode: "0644"

# {'installed_mb': 1024, 'effective_mb': 979} | omr.deploy.vps_metrics(swappiness=10) gives
#   # HELP omr_vps_memory_plan_bytes The VPS plan's RAM as omr.deploy.memory_info estimates it ...
#   # TYPE omr_vps_memory_plan_bytes gauge
#   omr_vps_memory_plan_bytes 1073741824
#   ...
#   omr_vps_swappiness 10
"""

RETURN = r"""
_value:
  description: The textfile, families separated by their HELP and TYPE lines, ending in a newline.
  type: str
  sample: |
    # HELP omr_vps_swappiness vm.swappiness.
    # TYPE omr_vps_swappiness gauge
    omr_vps_swappiness 10
    # HELP omr_mptcp_limit MPTCP path-manager limits (ip mptcp limits).
    # TYPE omr_mptcp_limit gauge
    omr_mptcp_limit{kind="subflows",role="vps"} 8
    omr_mptcp_limit{kind="add_addr_accepted",role="vps"} 8
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._monitoring import vps_metrics as render_vps


def vps_metrics(memory, mptcp=None, swappiness=None, masked=None):
    try:
        return render_vps(memory, mptcp=mptcp, swappiness=swappiness, masked=masked)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.vps_metrics: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'vps_metrics': vps_metrics}
