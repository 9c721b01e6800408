# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: node_exporter_plan
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Check where node_exporter may listen and give its arguments
description:
  - Checks the input, C(ADDRESS:PORT), for Debian's C(prometheus-node-exporter) on an OMR VPS or a Debian
    router, and returns its arguments for C(ARGS) in C(/etc/default/prometheus-node-exporter).
  - The address must be loopback, or an address declared private or a tunnel's (O(declared), the user's
    O(private_addresses)). It must never be one of the public side, an address of O(wans), of the public
    interfaces (O(interfaces) filtered by O(public_interfaces)) or of O(public). A bare port, a wildcard
    (C(0.0.0.0), C(::)), a host name or a port of another listener (O(taken)) is refused. Errors name O(var)
    or O(private_var), so they can be raised before anything changes.
  - The arguments set C(--web.listen-address), C(--collector.netstat.fields) (node_exporter 1.5's default
    fields and every C(MPTcpExt) counter) and C(--collector.textfile.directory). None holds a space, a quote
    or a backslash, so systemd's C($ARGS) and the init script split them alike.
notes:
  - Pure, it reads nothing from the host.
positional: _input
options:
  _input:
    description: C(ADDRESS:PORT), IPv6 in brackets, e.g. C(127.0.0.1:9100), C([::1]:9100), C(10.255.252.1:9100).
    type: str
    required: true
  var:
    description: The variable the input comes from, for messages.
    type: str
    default: omr_vps_monitoring_listen
  private_addresses:
    description: The user's private addresses of the host node_exporter may listen on; each must not be public.
    type: list
    elements: str
    default: []
  private_var:
    description: The variable O(private_addresses) come from, for messages.
    type: str
    default: omr_vps_monitoring_private_addresses
  declared:
    description: Addresses the role knows as private or a tunnel's, C({address, var}); C(address) may be a CIDR.
    type: list
    elements: dict
    default: []
  public:
    description: Public addresses, C({address, where}); C(where) says what the address is, in messages.
    type: list
    elements: dict
    default: []
  wans:
    description: The router's WANs, C({name, address}); their addresses are public. C(address) may be C(dhcp).
    type: list
    elements: dict
    default: []
  interfaces:
    description: Ansible's interface facts (C({device, ipv4, ipv4_secondaries, ipv6})); those of the public interfaces count.
    type: list
    elements: dict
    default: []
  public_interfaces:
    description: The public interfaces' names (a trailing C(*) matches a prefix); empty, O(default_interface).
    type: list
    elements: str
    default: []
  default_interface:
    description: The interface of the default IPv4 route.
    type: str
  public_interfaces_var:
    description: The variable O(public_interfaces) come from, for messages.
    type: str
    default: omr_vps_firewall_public_interfaces
  taken:
    description: "The ports of the host's other listeners, C({variable: port})."
    type: dict
    default: {}
  textfile_dir:
    description: The textfile collector's directory.
    type: str
    default: /var/lib/prometheus/node-exporter
seealso:
  - plugin: omr.deploy.vps_metrics
    plugin_type: filter
  - plugin: omr.deploy.router_metrics
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Plan node_exporter before any change
  ansible.builtin.set_fact:
    __omr_vps_monitoring_plan: >-
      {{ omr_vps_monitoring_listen | omr.deploy.node_exporter_plan(
           private_addresses=omr_vps_monitoring_private_addresses,
           declared=[{'address': '10.255.252.1', 'var': 'omr_vps_vpn_subnet'}],
           interfaces=[ansible_facts.eth0], default_interface='eth0',
           taken={'omr_vps_proxy_port': 65101}) }}

# '127.0.0.1:9100' | omr.deploy.node_exporter_plan
#   -> listen 127.0.0.1:9100, environment 'ARGS="--web.listen-address=127.0.0.1:9100 --collector.netstat.fields=..."'
# '0.0.0.0:9100' | omr.deploy.node_exporter_plan
#   fails: "omr_vps_monitoring_listen '0.0.0.0:9100' listens on every address, the public one included. ..."
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    listen:
      description: C(ADDRESS:PORT) as node_exporter gets it.
      type: str
      sample: 127.0.0.1:9100
    address:
      description: The address.
      type: str
      sample: 127.0.0.1
    port:
      description: The port.
      type: int
      sample: 9100
    loopback:
      description: Whether the address is loopback.
      type: bool
      sample: true
    declared_by:
      description: What declared a non-loopback address (a variable); null for loopback.
      type: str
      sample: omr_vps_vpn_subnet
    args:
      description: node_exporter's arguments.
      type: list
      elements: str
      sample:
        - --web.listen-address=127.0.0.1:9100
        - --collector.netstat.fields=^(MPTcpExt_.*|.*_(InErrors|InErrs)|Ip_Forwarding|...)$
        - --collector.textfile.directory=/var/lib/prometheus/node-exporter
    environment:
      description: The C(ARGS) line of C(/etc/default/prometheus-node-exporter).
      type: str
      sample: ARGS="--web.listen-address=127.0.0.1:9100 --collector.netstat.fields=... --collector.textfile.directory=..."
    textfile_dir:
      description: The textfile collector's directory.
      type: str
      sample: /var/lib/prometheus/node-exporter
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._monitoring import TEXTFILE_DIR, plan_exporter


def node_exporter_plan(listen, var='omr_vps_monitoring_listen', private_addresses=None,
                       private_var='omr_vps_monitoring_private_addresses', declared=None, public=None, wans=None,
                       interfaces=None, public_interfaces=None, default_interface=None,
                       public_interfaces_var='omr_vps_firewall_public_interfaces', taken=None,
                       textfile_dir=TEXTFILE_DIR):
    try:
        return plan_exporter(listen, var=var, private_addresses=private_addresses, private_var=private_var,
                             declared=declared, public=public, wans=wans, interfaces=interfaces,
                             public_interfaces=public_interfaces, default_interface=default_interface,
                             public_interfaces_var=public_interfaces_var, taken=taken, textfile_dir=textfile_dir)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.node_exporter_plan: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'node_exporter_plan': node_exporter_plan}
