# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vps_firewall_plan
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Plan an OMR VPS's nftables firewall (its own table, the public side only)
description:
  - Returns what the table C(inet omr_vps_firewall) of M(omr.deploy.vps) holds, as data for its
    template. The input chain drops by default, but only on the O(public_interfaces); anything
    arriving on another interface (a VPN's tunnel, a private network) is accepted.
  - On the public interfaces it accepts loopback, C(ct state established,related), IPv6 neighbour
    discovery, ICMP and ICMPv6 up to O(icmp_rate) per source address, and exactly the ports planned here, each TCP or UDP,
    open to everybody or to the networks its C(sources) list.
  - The ports are the SSH ports (O(ssh_ports)), the role's concerns' ports (O(services)), the ports
    of C(signal) endpoints in O(mptcp_endpoints) (MPTCP subflows join there) and the user's (the input).
    A port asked for twice is one rule; asked for with different sources, it is an error.
  - Errors name the variable (O(prefix) plus C(_extra_ports), C(_ssh_ports), C(_public_interfaces),
    C(_icmp_rate), or the variable a service names), so they can be raised before anything changes.
    A firewall that drops the SSH port Ansible uses locks the host out, so an O(ssh_ports) list that
    lacks O(ssh_port_in_use) is refused.
notes:
  - Pure, it reads nothing from the host. The role passes C(ansible_facts.default_ipv4.interface) as
    O(default_interface) and the port of the SSH connection it uses as O(ssh_port_in_use).
positional: _input
options:
  _input:
    description:
      - The ports the user adds, C(omr_vps_firewall_extra_ports).
    type: list
    elements: dict
    required: true
    suboptions:
      port:
        description: The port, 1-65535.
        type: int
        required: true
      proto:
        description: The protocol.
        type: str
        choices: [tcp, udp]
        required: true
      comment:
        description: Shown in C(nft list); up to 100 printable ASCII characters, no quotes or backslashes.
        type: str
      sources:
        description: Networks (CIDR, or addresses) allowed to reach the port; empty, everybody.
        type: list
        elements: str
        default: []
  public_interfaces:
    description: The interfaces filtered (a trailing C(*) matches a prefix); empty, [O(default_interface)].
    type: list
    elements: str
    default: []
  default_interface:
    description: The interface of the default IPv4 route; required when O(public_interfaces) is empty.
    type: str
  ssh_ports:
    description:
      - C(auto), the port in O(ssh_port_in_use), or 22 when Ansible does not come over SSH; or a list of ports.
      - A list that lacks O(ssh_port_in_use) is refused.
    type: raw
    default: auto
  ssh_port_in_use:
    description: The port of the SSH connection Ansible reaches the host on; null when it does not use SSH.
    type: int
  services:
    description:
      - The role's concerns' ports, each C({port, proto, comment, var, sources, sources_var}); C(var) names the
        variable of the port and C(sources_var) that of the sources, in messages.
    type: list
    elements: dict
    default: []
  mptcp_endpoints:
    description: C(omr_vps_mptcp_endpoints); the C(port) of each C(signal) endpoint is opened (TCP).
    type: list
    elements: dict
    default: []
  icmp_rate:
    description: The rate ICMP and ICMPv6 are accepted at per source address, C(N/second|minute|hour|day [burst M]).
    type: str
    default: 10/second burst 20
  prefix:
    description: The variables' common prefix, for messages.
    type: str
    default: omr_vps_firewall
  closed:
    description:
      - Ports the plan must never open, each C({port, proto, var, why}) (C(proto) defaults to C(tcp)), such as
        node_exporter's (C(omr_vps_monitoring_listen)). Any port above that asks for one is an error naming both
        variables. They are not part of the plan (nor of its digest), the input chain drops them anyway.
    type: list
    elements: dict
    default: []
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Plan the firewall once, before any change
  ansible.builtin.set_fact:
    __omr_vps_firewall_plan: >-
      {{ omr_vps_firewall_extra_ports | omr.deploy.vps_firewall_plan(
           public_interfaces=omr_vps_firewall_public_interfaces,
           default_interface=ansible_facts.default_ipv4.interface | default(none),
           ssh_ports=omr_vps_firewall_ssh_ports, ssh_port_in_use=22,
           services=[{'port': 65101, 'proto': 'tcp', 'comment': 'proxy', 'var': 'omr_vps_proxy_port'}],
           icmp_rate='10/second burst 20') }}

# [{'port': 8443, 'proto': 'tcp', 'comment': 'admin', 'sources': ['192.0.2.0/24']}]
#   | omr.deploy.vps_firewall_plan(default_interface='eth0', ssh_ports=[22, 2222], ssh_port_in_use=2222)
# gives tcp [22, 2222, 8443], udp [], and the rule
#   {port: 8443, proto: tcp, comment: admin, sources: [192.0.2.0/24], sources_ipv4: [192.0.2.0/24], ...}
# With ssh_ports=[22] it fails: "omr_vps_firewall_ssh_ports [22] lacks 2222, the SSH port Ansible reaches ..."
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    public_interfaces:
      description: The interfaces filtered; traffic on any other is accepted.
      type: list
      elements: str
      sample: [eth0]
    icmp_limit:
      description: The ICMP and ICMPv6 rate, C({rate, unit, burst}) (nft's C(limit rate 10/second burst 20 packets)).
      type: dict
      sample: {rate: 10, unit: second, burst: 20}
    ssh_ports:
      description: The SSH ports opened.
      type: list
      elements: int
      sample: [22]
    ssh_port_in_use:
      description: The port Ansible reaches the host on, null when not over SSH.
      type: int
      sample: 22
    tcp:
      description: Every TCP port opened, to everybody or to some sources.
      type: list
      elements: int
      sample: [22, 65101, 65432]
    udp:
      description: Every UDP port opened.
      type: list
      elements: int
      sample: [65101]
    rules:
      description:
        - One per port and protocol, sorted by protocol then port, C({port, proto, comment, sources, sources_ipv4,
          sources_ipv6, vars}). Empty C(sources) is everybody; C(vars) are the variables that asked for the port.
      type: list
      elements: dict
      sample:
        - {port: 22, proto: tcp, comment: ssh, sources: [], sources_ipv4: [], sources_ipv6: [],
           vars: [omr_vps_firewall_ssh_ports]}
        - {port: 65432, proto: tcp, comment: speed test, sources: [100.64.0.0/16], sources_ipv4: [100.64.0.0/16],
           sources_ipv6: [], vars: [omr_vps_speedtest_port]}
    digest:
      description: A hash of the plan, kept in the table's comment, so a check compares one line.
      type: str
      sample: 188a83ef328be02c
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._firewall import (
    DEFAULT_ICMP_RATE, plan_firewall,
)


def vps_firewall_plan(extra_ports, public_interfaces=None, default_interface=None, ssh_ports='auto',
                      ssh_port_in_use=None, services=None, mptcp_endpoints=None, icmp_rate=DEFAULT_ICMP_RATE,
                      prefix='omr_vps_firewall', closed=None):
    try:
        return plan_firewall(extra_ports, public_interfaces=public_interfaces, default_interface=default_interface,
                             ssh_ports=ssh_ports, ssh_port_in_use=ssh_port_in_use, services=services,
                             mptcp_endpoints=mptcp_endpoints, icmp_rate=icmp_rate, prefix=prefix, closed=closed)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.vps_firewall_plan: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'vps_firewall_plan': vps_firewall_plan}
