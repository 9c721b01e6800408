# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: transit_allocate
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.1.0
short_description: Deterministic, stable transit subnets for the bridge devices of an OMR router
description:
  - Allocates one transit subnet per link between the OpenMPTCProuter router and a bridge
    device in front of it (a WiFi client, an LTE router in bridge mode, ...), inside a
    private pool, by default C(172.16.0.0/12). That range keeps the transit networks
    apart from the usual C(192.168.0.0/16) networks that the devices hand out or join.
    OMR's shadowsocks bypass list holds all of RFC 1918, so traffic to a transit
    network is never proxied.
  - Deterministic. A link's preferred block is derived from the SHA-256 of its name
    alone, as an index among the aligned blocks of its size in the pool. When that
    block is taken, the allocator probes a sequence that also depends only on the name.
    It skips blocks that overlap a reserved network, an explicit subnet or an already
    placed link. Links with an explicit C(subnet) are placed first, then the still-valid
    allocations of O(existing), then the rest in sorted-name order. The order of the
    list therefore does not matter.
  - Stable. Adding or removing a link never moves another one when the previous result
    is passed back as O(existing). Without it, links stay put as long as their hashes
    do not collide.
  - An allocation from O(existing) is kept while it is still inside the pool, has the
    link's prefix and does not overlap a reserved network, an explicit subnet or
    another kept allocation. Otherwise the link is allocated again.
  - Raises an error that names the link (C(omr_router_transit_links[i]) and its name)
    and both networks when an explicit subnet is outside the pool or overlaps a reserved network or another
    explicit subnet. Also when a name is missing or used twice, when a prefix is out
    of range, and when the pool is exhausted.
positional: _input
options:
  _input:
    description:
      - The links, usually C(omr_router_transit_links). Each is a dictionary with
        C(name) (required and unique; it is the hash input, so renaming a link moves
        it), C(prefix) (default C(29), from C(16) to C(30), not shorter than the pool's
        prefix) and optionally C(subnet), an explicit network in CIDR notation inside
        the pool.
    type: list
    elements: dict
    required: true
  pool:
    description:
      - The IPv4 network all transit subnets come from, usually
        C(omr_router_transit_pool).
    type: str
    default: 172.16.0.0/12
  reserved:
    description:
      - Networks no transit subnet may overlap, each a dictionary with C(name), a label
        used in error messages (for example C(LAN), C(WAN wan1), C(VPS),
        C(route 10.8.0.0/24) or C(hotspot network)), and C(network) in CIDR notation.
      - Pass the LAN, the network of each WAN, the VPS address as a C(/32) and every
        network the router already has a route to. Leave out the default route, which
        would cover the whole pool.
      - Host bits are ignored (C(192.168.100.1/24) stands for C(192.168.100.0/24)).
        IPv6 networks are ignored.
    type: list
    elements: dict
    default: []
  existing:
    description:
      - The allocation of an earlier run, as link name to subnet (C(a.b.c.d/p)). A whole
        earlier result (name to the dictionary this filter returns) works as well.
        Entries for links that no longer exist are ignored.
    type: dict
    default: {}
  var:
    description:
      - The variable name used in error messages, for callers other than the router role
        (the WiFi bridge role checks its end of a link with C(omr_wifi_bridge_transit)).
    type: str
    default: omr_router_transit_links
notes:
  - Renaming a link or changing its prefix allocates it again.
  - The router role keeps the result as a local fact and passes it back as O(existing),
    which makes the allocation stable across runs.
"""

EXAMPLES = r"""
# existing: the result of the previous run, kept on the router as a local fact
- name: Allocate the transit subnets of the bridge devices
  ansible.builtin.set_fact:
    __omr_router_transit: >-
      {{ omr_router_transit_links
         | omr.deploy.transit_allocate(
             pool=omr_router_transit_pool,
             reserved=[{'name': 'LAN', 'network': '192.168.100.0/24'},
                       {'name': 'WAN wan1', 'network': '192.168.1.0/24'},
                       {'name': 'VPS', 'network': '203.0.113.10/32'},
                       {'name': 'route 10.8.0.0/24', 'network': '10.8.0.0/24'}],
             existing=ansible_local.omr_transit | default({})) }}

# [{'name': 'wifi1'}, {'name': 'wifi2'}, {'name': 'lte-bridge'}]
#   | omr.deploy.transit_allocate gives
#   wifi1:      172.23.213.48/29  router 172.23.213.49  peer 172.23.213.50
#   wifi2:      172.20.37.240/29  router 172.20.37.241  peer 172.20.37.242
#   lte-bridge: 172.19.118.80/29  router 172.19.118.81  peer 172.19.118.82

# An explicit subnet is kept as given, but must be inside the pool and free:
# [{'name': 'wifi1', 'subnet': '172.16.10.0/29'}, {'name': 'lte-bridge', 'prefix': 30}]
#   | omr.deploy.transit_allocate
"""

RETURN = r"""
_value:
  description:
    - Link name to its transit subnet, sorted by name. Each value has C(subnet)
      (C(a.b.c.d/p)), C(prefix), C(network), C(netmask), C(router_address) (the first
      host, for the OMR router), C(peer_address) (the second host, for the bridge
      device), C(hosts) (the number of usable addresses) and C(source).
    - C(source) is C(explicit) for a subnet given in the link, C(existing) for an
      allocation kept from O(existing) and C(hashed) for a new allocation.
  type: dict
  sample:
    wifi1:
      subnet: 172.23.213.48/29
      prefix: 29
      network: 172.23.213.48
      netmask: 255.255.255.248
      router_address: 172.23.213.49
      peer_address: 172.23.213.50
      hosts: 6
      source: hashed
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._transit import (
    DEFAULT_POOL,
    TransitError,
    allocate as _allocate,
)


def transit_allocate(links, pool=DEFAULT_POOL, reserved=None, existing=None, var='omr_router_transit_links'):
    try:
        return _allocate(pool, links, reserved=reserved or [], existing=existing or {}, var_name=var)
    except TransitError as e:
        raise AnsibleFilterError(str(e))


class FilterModule(object):

    def filters(self):
        return {'transit_allocate': transit_allocate}
