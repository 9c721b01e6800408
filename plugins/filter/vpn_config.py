# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vpn_config
short_description: Check the OpenVPN-over-MPTCP settings, or give the VPS's or the router's directives
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - With O(kind=check), validates the VPN's port (OMR's 65000-65535, clear of the other ports given), its
    tunnel network (a private IPv4 /16 to /29), device and instance name, and returns them with the network's
    address, netmask and the VPS's tunnel address. Errors name the variable (O(prefix) plus C(_port),
    C(_subnet), C(_device), C(_name)).
  - With O(kind=server) or O(kind=client), returns the OpenVPN directives, one per line, for the VPS
    (C(proto tcp-server)) or the router (C(proto tcp-client) to O(server)), without the PKI, which the
    role adds. Both run under C(mptcpize), so the tunnel's TCP connection is MPTCP.
options:
  _input:
    description: "The settings, C({name, port, subnet, device})."
    type: dict
    required: true
  kind:
    description: What to return.
    type: str
    choices: [check, server, client]
    default: check
  prefix:
    description: The variables' common prefix, for messages, e.g. C(omr_vps_vpn).
    type: str
    required: true
  taken:
    description: "Other ports of the collection's, C({variable: port}), the VPN's port must differ from."
    type: dict
    default: {}
  reserved:
    description: OMR's own ports, numbers or C([low, high]) ranges; the VPN's port must not be one of them, except O(own_port).
    type: list
    elements: raw
    default: []
  own_port:
    description: The OMR port this VPN is meant to use (65301).
    type: int
    default: 65301
  server:
    description: The VPS address, for O(kind=client).
    type: str
  up:
    description: For O(kind=client), the command OpenVPN runs each time the tunnel's device is configured.
    type: str
"""

EXAMPLES = r"""
- name: Check the VPN's settings before any change
  ansible.builtin.set_fact:
    checked: >-
      {{ {'name': 'omr', 'port': omr_vps_vpn_port, 'subnet': omr_vps_vpn_subnet}
         | omr.deploy.vpn_config(prefix='omr_vps_vpn', taken={'omr_vps_proxy_port': 65101}) }}

- name: The VPS's OpenVPN directives
  ansible.builtin.debug:
    msg: "{{ {'port': 65301, 'subnet': '10.255.252.0/24'} | omr.deploy.vpn_config(kind='server', prefix='omr_vps_vpn') }}"
"""

RETURN = r"""
_value:
  description:
    - For C(check), C({name, port, device, subnet?, network?, netmask?, server_address?}).
    - For C(server) and C(client), the list of directives.
  type: raw
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._vpn import (
    DEFAULT_SUBNET, VpnError, check_vpn, client_lines, server_lines)


def vpn_config(settings, prefix, kind="check", taken=None, reserved=None, own_port=65301, server=None, up=None):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("vpn_config: the settings must be a dict, got %s" % type(settings).__name__)
    if kind == "server" and "subnet" not in settings:
        settings = dict(settings, subnet=DEFAULT_SUBNET)
    try:
        checked = check_vpn(settings, prefix, taken=taken, reserved=reserved, own_port=own_port)
    except VpnError as exc:
        raise AnsibleFilterError(str(exc))
    if kind == "check":
        return checked
    if kind == "server":
        return server_lines(checked)
    if kind == "client":
        if not server:
            raise AnsibleFilterError("vpn_config: kind=client needs the VPS address (server)")
        return client_lines(server, checked, up)
    raise AnsibleFilterError("vpn_config: kind must be check, server or client, got %r" % (kind,))


class FilterModule(object):
    def filters(self):
        return {"vpn_config": vpn_config}
