# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the WiFi bridge's end of its transit link (pure functions).

The router plans the link (`_router.plan_router`, its `transit` entry); the bridge takes that
subnet, or an explicit one, and checks it against what only the bridge knows: the network its
hotspot handed out and the LAN behind the router.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.omr.deploy.plugins.module_utils._transit import DEFAULT_POOL, TransitError, allocate

VAR = 'omr_wifi_bridge_transit'


def bridge_transit(link, subnet, pool=DEFAULT_POOL, lan=None, uplink=None, uplink_label=None,
                   address=None, router_address=None):
    """{name, subnet, prefix, address, router_address} of the bridge's end of transit link
    `link`, or {} when there is no subnet yet (the router has not planned the link).

    subnet: the router's allocation or an explicit omr_wifi_bridge_transit.subnet.
    lan: the LAN behind the router; uplink: the network the hotspot handed out (or the static
    uplink address), labelled `uplink_label`. Raises TransitError naming omr_wifi_bridge_transit
    when the subnet is outside the pool or overlaps either.
    """
    if not subnet:
        return {}
    reserved = []
    if lan:
        reserved.append({'name': 'LAN %s' % lan, 'network': lan})
    if uplink:
        reserved.append({'name': uplink_label or 'uplink network %s' % uplink, 'network': uplink})
    placed = allocate(pool, [{'name': link, 'subnet': subnet}], reserved=reserved, var_name=VAR)[link]
    net = ipaddress.ip_network(placed['subnet'])
    out = {'name': link, 'subnet': placed['subnet'], 'prefix': placed['prefix'],
           'address': address or placed['peer_address'], 'router_address': router_address or placed['router_address']}
    for key in ('address', 'router_address'):
        try:
            inside = ipaddress.ip_address(out[key]) in net
        except ValueError:
            inside = False
        if not inside:
            raise TransitError('%s.%s %s is not an address of the transit subnet %s' % (VAR, key, out[key], net))
    if out['address'] == out['router_address']:
        raise TransitError('%s: address and router_address are both %s' % (VAR, out['address']))
    return out
