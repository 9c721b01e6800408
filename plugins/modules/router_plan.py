#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: router_plan
short_description: Plan an OMR router once, from its settings and one read of its state
version_added: 0.2.0
description:
  - Checks the router's settings on the controller, before anything on the router is read, and fails
    naming the variable (C(omr_router_wans[1] (wan2)), C(omr_router_transit_links[0] (wifi1)), ...).
  - Then reads the router in one round trip of plain shell, parsed on the controller as
    M(omr.deploy.mptcp_info) does; the router needs no Python for it. It reads the leases of the DHCP WANs
    (waiting up to C(dhcp_timeout) seconds for missing ones, then under the DHCP hook's lock), the plan
    saved at C(/etc/omr-router/plan.json), the routes of every table, and the MPTCP state.
  - From both it computes the whole plan once (C(plugins/module_utils/_router.py) documents its shape);
    the WANs with their tables, rules, metrics and endpoints, the LAN and its NAT, the transit links and their
    allocation (stable, the saved allocation is kept while it is still valid), the networks the allocation
    avoided, the limits, the DHCP WANs and the quality checks. It is backend-neutral, it says what the router
    must look like, not which commands make it so.
  - The plan is the C(omr_router_plan) fact. C(host_plan) is the same plan without lease addresses, as the
    router keeps it for its own programs.
  - Used by M(omr.deploy.router); nothing on the router is changed.
author:
  - omr.deploy maintainers (!UNKNOWN)
options:
  config:
    description:
      - The router's settings, keyed as the role's variables without the C(omr_router_) prefix;
        C(wans), C(lan), C(lan_nat), C(vps), C(transit_pool), C(transit_links), C(limits), C(dhcp_timeout), C(backend).
      - The peers of transit links (C(transit_links[].peer)) are looked up in the controller's hostvars
        (C(omr_wifi_bridge_uplink) or their C(ansible_local.omr_wifi_bridge.uplink)), and the networks their
        hotspots hand out are avoided.
    type: dict
    required: true
  gather:
    description:
      - When false, only check the settings; nothing on the router is read. Returns C(config_digest) and C(dhcp_devices).
    type: bool
    default: true
extends_documentation_fragment:
  - omr.deploy.attributes
  - omr.deploy.attributes.INFO_MODULE
  - omr.deploy.attributes.FACTS
attributes:
  platform:
    support: full
    platforms: [linux]
    details:
      - A POSIX C(sh), C(grep), C(flock), C(cat) and iproute2's C(ip) on the router.
notes:
  - This runs as an action plugin on the controller; the module file holds its documentation.
seealso:
  - module: omr.deploy.mptcp_info
  - module: omr.deploy.mptcp_endpoint
"""

EXAMPLES = r"""
- name: Check the settings before anything changes
  omr.deploy.router_plan:
    config: "{{ router_config }}"
    gather: false
  register: checked

- name: Plan the router
  omr.deploy.router_plan:
    config:
      wans:
        - {name: wan1, device: eth1, address: 100.64.1.2/24, gateway: 100.64.1.1, multipath: master}
        - {name: lte, device: wwan0, address: dhcp, multipath: "on"}
      lan: {device: br-lan, address: 192.168.100.1/24}
      vps: {address: 198.51.100.10}
      transit_links: [{name: wifi1, device: eth3}]
  register: planned

- name: Keep it on the router
  ansible.builtin.copy:
    dest: /etc/omr-router/plan.json
    content: "{{ planned.host_plan | to_nice_json }}\n"
    mode: "0644"
"""

RETURN = r"""
config_digest:
  description: sha256 of the checked settings; the plan records it as C(config_digest).
  returned: when gather is false
  type: str
dhcp_devices:
  description: The devices of the WANs with C(address=dhcp).
  returned: when gather is false
  type: list
  elements: str
host_plan:
  description: The plan as the router keeps it, without lease addresses (they change without Ansible).
  returned: when gather is true
  type: dict
ansible_facts:
  description: Facts added to the host.
  returned: when gather is true
  type: dict
  contains:
    omr_router_plan:
      description:
        - The plan, with DHCP WANs resolved against their current leases. Its keys are C(version), C(backend),
          C(config_digest), C(vps), C(lan), C(nat), C(wans), C(transit), C(reserved), C(limits), C(endpoints),
          C(dhcp), C(quality) and C(pending) (DHCP WANs still without a lease).
        - Each WAN has C(name), C(device), C(multipath), C(addressing) (static, dhcp or transit), C(address),
          C(prefix), C(cidr), C(network), C(gateway), C(table), C(rule_priority), C(metric), C(default_route),
          C(endpoint_id), C(flags), C(keep_backup), C(quality), C(pending) and C(endpoint).
      returned: when gather is true
      type: dict
    omr_router_transit:
      description: The transit allocation (C(omr_router_plan.transit)), under its name of omr.deploy 0.1.
      returned: when gather is true
      type: dict
    omr_mptcp:
      description: The MPTCP state, as M(omr.deploy.mptcp_info) returns it.
      returned: when gather is true
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(config=dict(type='dict', required=True), gather=dict(type='bool', default=True)),
        supports_check_mode=True,
    )
    module.fail_json(msg='omr.deploy.router_plan runs as an action plugin on the controller; '
                         'this module file only holds its documentation')


if __name__ == '__main__':
    main()
