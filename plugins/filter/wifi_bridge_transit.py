# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: wifi_bridge_transit
short_description: The WiFi bridge's end of its transit link, checked against its hotspot's network and the LAN
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Takes the transit subnet the router planned for the link (C(omr_router_plan.transit[link].subnet)) or an
    explicit one, and checks that it lies inside the pool and overlaps neither the LAN behind the router nor the
    network the bridge's hotspot handed out (hotspots may hand out C(172.16.0.0/12) themselves).
  - Fails naming C(omr_wifi_bridge_transit) and both networks.
  - Returns C(name), C(subnet), C(prefix), C(address) (the bridge's end, by default the subnet's second host)
    and C(router_address) (the router's end, the first host); an empty dict when there is no subnet yet.
options:
  _input:
    description: The transit link's name, as in the router's C(omr_router_transit_links).
    type: str
    required: true
  subnet:
    description: The link's subnet in CIDR notation; empty when the router has not planned it yet.
    type: str
  pool:
    description: The pool transit subnets come from.
    type: str
    default: 172.16.0.0/12
  lan:
    description: The LAN behind the router (CIDR).
    type: str
  uplink:
    description: The network the bridge's uplink is on (CIDR).
    type: str
  uplink_label:
    description: How error messages name O(uplink), for example C(hotspot network 172.23.208.0/20 on wlan0).
    type: str
  address:
    description: The bridge's address on the link, instead of the subnet's second host.
    type: str
  router_address:
    description: The router's address on the link, instead of the subnet's first host.
    type: str
"""

EXAMPLES = r"""
- name: The bridge's end of transit link wifi1
  ansible.builtin.set_fact:
    transit: >-
      {{ 'wifi1' | omr.deploy.wifi_bridge_transit(subnet=hostvars['omr1'].omr_router_plan.transit.wifi1.subnet,
                                                   lan='192.168.100.0/24', uplink='172.23.208.0/20') }}
"""

RETURN = r"""
_value:
  description: C(name), C(subnet), C(prefix), C(address), C(router_address); empty without a subnet.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._transit import TransitError
from ansible_collections.omr.deploy.plugins.module_utils._wifi_bridge import bridge_transit


def wifi_bridge_transit(link, subnet=None, pool='172.16.0.0/12', lan=None, uplink=None, uplink_label=None,
                        address=None, router_address=None):
    try:
        return bridge_transit(link, subnet, pool=pool, lan=lan, uplink=uplink, uplink_label=uplink_label,
                              address=address, router_address=router_address)
    except TransitError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"wifi_bridge_transit": wifi_bridge_transit}
