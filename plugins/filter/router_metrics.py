# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_metrics
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: The textfile omr.deploy.router keeps for node_exporter on a Debian router
description:
  - Renders the router's plan (C(omr_router_plan)) in Prometheus' text exposition format (HELP and TYPE
    before each family), for node_exporter's textfile collector
    (C(/var/lib/prometheus/node-exporter/omr_router.prom)).
  - "Gauges: C(omr_router_wan_info{wan,device,mode,addressing}) (always 1; C(mode) is OMR's multipath mode,
    master, on, backup or off), C(omr_router_wan_endpoint{wan,device}) (1 if the plan gave the WAN an MPTCP
    endpoint), C(omr_router_wans), C(omr_mptcp_flavour{flavour,role}) and C(omr_mptcp_enabled{role}) (from
    O(mptcp)), C(omr_mptcp_endpoints{role}) and C(omr_mptcp_limit{kind=subflows|add_addr_accepted,role}) as
    planned, C(role) being C(router)."
  - The plan is the converge's, not the live state. A DHCP WAN without a lease then has no endpoint here until
    the next converge, though its dhcpcd hook adds one when a lease comes; the quality check's backup flag is
    not shown. Live link state comes from node_exporter itself (C(node_network_up) by C(device)).
notes:
  - Pure, it reads nothing from the host.
positional: _input
options:
  _input:
    description: The C(omr_router_plan) fact (M(omr.deploy.router_plan)).
    type: dict
    required: true
  mptcp:
    description: The C(omr_mptcp) fact.
    type: dict
    default: {}
seealso:
  - plugin: omr.deploy.node_exporter_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Keep the router's textfile current
  ansible.builtin.copy:
    dest: /var/lib/prometheus/node-exporter/omr_router.prom
    content: "{{ omr_router_plan | omr.deploy.router_metrics(mptcp=omr_mptcp) }}"
    mode: "0644"

# A plan with WAN wan1 (eth1, master, static, an endpoint) gives, among others,
#   omr_router_wan_info{addressing="static",device="eth1",mode="master",wan="wan1"} 1
#   omr_router_wan_endpoint{device="eth1",wan="wan1"} 1
"""

RETURN = r"""
_value:
  description: The textfile, families separated by their HELP and TYPE lines, ending in a newline.
  type: str
  sample: |
    # HELP omr_router_wan_endpoint 1 if the plan gave the WAN an MPTCP endpoint at the last converge ...
    # TYPE omr_router_wan_endpoint gauge
    omr_router_wan_endpoint{device="eth1",wan="wan1"} 1
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._monitoring import router_metrics as render_router


def router_metrics(plan, mptcp=None):
    try:
        return render_router(plan, mptcp=mptcp)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.router_metrics: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'router_metrics': router_metrics}
