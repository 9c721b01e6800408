# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the VPN that carries what the proxy does not (UDP, ICMP, the rest).

OpenVPN in TCP mode on OMR's port 65301, both ends under Debian's `mptcpize`, so that its one TCP
connection is an MPTCP connection with a subflow per WAN. `check_vpn` validates the settings on
the controller, naming the variable; `server_lines` gives what the VPS's configuration holds
besides the PKI paths, `client_lines` the router's, and `vpn_plan` what the router's program
needs to steer the LAN's traffic into the tunnel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

try:
    from typing import Dict, List, Optional
except ImportError:  # pragma: no cover
    Dict = List = Optional = None

from ansible_collections.omr.deploy.plugins.module_utils._proxy import ProxyError, check_port

PORT = 65301
# OMR's OpenVPN tun0 network (its shorewall masquerades it).
DEFAULT_SUBNET = "10.255.252.0/24"
DEVICE = "omrvpn"
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# A Linux interface name, without the characters nft or a unit instance would trip on.
DEVICE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,14}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# The router's routing table and rule for the tunnel (its WANs use 101 and up, rules 1101 and up),
# and the mark its nftables table gives the LAN packets bound for it.
TABLE = 100
RULE_PRIORITY = 1100
MARK = 0x6F6D
# Seconds: a keepalive every 10, the peer given up after 60 (then OpenVPN reconnects).
KEEPALIVE = (10, 60)


class VpnError(ValueError):
    pass


def check_subnet(subnet, var):
    # type: (object, str) -> ipaddress.IPv4Network
    """A private IPv4 network of /16 to /29 for the tunnel's addresses."""
    try:
        net = ipaddress.ip_network(str(subnet).strip(), strict=True)
    except ValueError:
        raise VpnError("%s %r is not an IPv4 network with its host bits clear (e.g. %s)" % (var, subnet, DEFAULT_SUBNET))
    if net.version != 4 or not any(net.subnet_of(block) for block in RFC1918):
        raise VpnError("%s %s must be a private IPv4 network (RFC 1918), e.g. %s" % (var, net, DEFAULT_SUBNET))
    if not 16 <= net.prefixlen <= 29:
        raise VpnError("%s %s must be between a /16 and a /29" % (var, net))
    return net


def check_name(name, var):
    # type: (object, str) -> str
    text = str(name or "")
    if not NAME_RE.match(text):
        raise VpnError("%s %r must be letters, digits, - and _ (it names the unit and its file)" % (var, name))
    return text


def check_device(device, var):
    # type: (object, str) -> str
    text = str(device or "")
    if not DEVICE_RE.match(text):
        raise VpnError("%s %r must be an interface name: a letter, then up to 14 letters, digits or _" % (var, device))
    return text


def check_vpn(settings, prefix, taken=None, reserved=None, own_port=PORT):
    # type: (Dict[str, object], str, Optional[Dict[str, int]], Optional[List[object]], Optional[int]) -> Dict[str, object]
    """Validate {name, port, subnet?, device?} given as `<prefix>_<key>` variables."""
    try:
        port = check_port(settings.get("port", PORT), prefix + "_port", taken, reserved, own_port)
    except ProxyError as exc:
        raise VpnError(str(exc))
    out = {"name": check_name(settings.get("name", "omr"), prefix + "_name"), "port": port,
           "device": check_device(settings.get("device", DEVICE), prefix + "_device")}
    if "subnet" in settings:
        net = check_subnet(settings["subnet"], prefix + "_subnet")
        out.update({"subnet": str(net), "network": str(net.network_address), "netmask": str(net.netmask),
                    "server_address": str(net.network_address + 1)})
    return out


def server_lines(checked):
    # type: (Dict[str, object]) -> List[str]
    """The VPS's directives besides the PKI: TCP (MPTCP through mptcpize) on the port, one
    tunnel for every router (they share the client certificate, as OMR's do), no routes pushed:
    each router masquerades its LAN into the tunnel, the VPS masquerades the tunnel out."""
    return [
        "port %d" % checked["port"],
        "proto tcp-server",
        "dev %s" % checked["device"],
        "dev-type tun",
        "topology subnet",
        "server %s %s" % (checked["network"], checked["netmask"]),
        "duplicate-cn",
        "keepalive %d %d" % KEEPALIVE,
        # DCO has no TCP over MPTCP, and mptcpize wraps the userspace socket only.
        "disable-dco",
        "tcp-nodelay",
        "persist-key",
        "persist-tun",
        "user nobody",
        "group nogroup",
        "verb 3",
    ]


def client_lines(server, checked, up=None):
    # type: (str, Dict[str, object], Optional[str]) -> List[str]
    """The router's directives besides the inline PKI. `up`: the command OpenVPN runs each time
    the tunnel's device is configured (the first connection and every reconnection), which routes
    the LAN's traffic into it. It keeps root: a reconnection may configure a new address."""
    lines = [
        "client",
        "remote %s %d tcp-client" % (server, checked["port"]),
        "dev %s" % checked["device"],
        "dev-type tun",
        "nobind",
        "remote-cert-tls server",
        "route-nopull",
        "disable-dco",
        "tcp-nodelay",
        "persist-key",
        "persist-tun",
        "connect-retry 2 10",
        "keepalive %d %d" % KEEPALIVE,
        "verb 3",
    ]
    if up:
        lines += ["script-security 2", 'up "%s"' % up, "up-restart"]
    return lines


def vpn_plan(checked, server, lan_device, lan_source, bypass, carry_tcp):
    # type: (Dict[str, object], str, str, str, List[str], bool) -> Dict[str, object]
    """What omr-router-net needs: which LAN packets to mark (not TCP while the proxy carries it,
    never the bypass), the table and rule that send marked packets into the tunnel."""
    return {"enabled": True, "unit": "openvpn-client@%s.service" % checked["name"], "server": server,
            "port": checked["port"], "device": checked["device"], "table": TABLE, "rule_priority": RULE_PRIORITY,
            "mark": MARK, "lan_device": lan_device, "source": lan_source, "carry_tcp": bool(carry_tcp),
            "bypass": list(bypass)}
