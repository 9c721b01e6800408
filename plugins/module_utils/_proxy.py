# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the shadowsocks-libev proxy that carries a LAN's TCP over MPTCP.

OMR routers up to 0.60 (and later ones with the proxy set to "Shadowsocks") talk to
shadowsocks-libev on the VPS: port 65101, chacha20-ietf-poly1305, a base64 key of the cipher's
key length, `"mptcp": true` on both ends. `check_proxy` validates the settings on the controller
(naming the variable, never echoing the key); `server_config` and `redir_config` give the JSON
ss-server and ss-redir read; `bypass_networks` what the router must not send into the proxy, as
OMR's ss-rules does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress

try:
    from typing import Dict, List, Optional
except ImportError:  # pragma: no cover
    Dict = List = Optional = None

# The AEAD ciphers ss-libev 3.3 offers, with their key length in bytes. The stream ciphers are
# deprecated upstream and refused.
CIPHERS = {
    "chacha20-ietf-poly1305": 32,
    "xchacha20-ietf-poly1305": 32,
    "aes-256-gcm": 32,
    "aes-192-gcm": 24,
    "aes-128-gcm": 16,
}
PORT_RANGE = (65000, 65535)
MODES = ("tcp_only", "tcp_and_udp", "udp_only")
# What OMR's ss-rules never proxies: loopback, this network, RFC1918 (172.16.0.0/12 holds the
# transit pool), CGNAT, link-local, multicast and reserved.
DEFAULT_BYPASS = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                  "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
# Seconds an idle proxied connection is kept (OMR's value).
TIMEOUT = 600


class ProxyError(ValueError):
    pass


def key_bytes(method):
    # type: (str) -> int
    return CIPHERS[method]


def check_port(port, var, taken=None, reserved=None, own=None):
    # type: (object, str, Optional[Dict[str, int]], Optional[List[int]], Optional[int]) -> int
    """A port in OMR's 65000-65535, clear of `taken` ({variable: port}) and of OMR's `reserved`
    ports (numbers, or [low, high] ranges), except `own` (the OMR port this service is meant to use)."""
    try:
        value = int(str(port))
    except (TypeError, ValueError):
        raise ProxyError("%s must be a port number, got %r" % (var, port))
    if not PORT_RANGE[0] <= value <= PORT_RANGE[1]:
        raise ProxyError("%s %d is outside %d-%d, the range OMR's firewall and routers expect"
                         % (var, value, PORT_RANGE[0], PORT_RANGE[1]))
    for other, other_port in sorted((taken or {}).items()):
        if other_port is not None and int(other_port) == value:
            raise ProxyError("%s %d is already used by %s" % (var, value, other))
    for entry in reserved or []:
        low, high = (entry, entry) if isinstance(entry, int) else (int(entry[0]), int(entry[1]))
        if value != own and low <= value <= high:
            raise ProxyError("%s %d is one of OMR's own ports (%s); pick another in %d-%d"
                             % (var, value, _ports_text(reserved), PORT_RANGE[0], PORT_RANGE[1]))
    return value


def _ports_text(reserved):
    return ", ".join(str(e) if isinstance(e, int) else "%s-%s" % (e[0], e[1]) for e in reserved)


def check_method(method, var):
    # type: (object, str) -> str
    if method not in CIPHERS:
        raise ProxyError("%s %r is not a cipher shadowsocks-libev offers here (%s)"
                         % (var, method, ", ".join(sorted(CIPHERS))))
    return str(method)


def urlsafe_key(key):
    # type: (str) -> str
    """ss-libev reads its `key` as URL-safe base64 (- and _); OMR's and `base64`'s keys use + and /."""
    return str(key).strip().replace("+", "-").replace("/", "_")


def check_key(key, method, var):
    # type: (object, str, str) -> None
    """The key must be base64 of exactly the cipher's key length. The message never shows it."""
    want = key_bytes(method)
    text = str(key or "").strip()
    try:
        raw = base64.b64decode(urlsafe_key(text).encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ProxyError("%s is not base64 (%d characters); %s needs base64 of %d random bytes, e.g. "
                         "`head -c %d /dev/urandom | base64`" % (var, len(text), method, want, want))
    if len(raw) != want:
        raise ProxyError("%s decodes to %d bytes; %s needs a key of %d bytes (%s than the cipher's key), e.g. "
                         "`head -c %d /dev/urandom | base64`"
                         % (var, len(raw), method, want, "shorter" if len(raw) < want else "longer", want))


def check_proxy(settings, prefix, require_key=False, taken=None, reserved=None, own_port=None):
    # type: (Dict[str, object], str, bool, Optional[Dict[str, int]], Optional[List[int]], Optional[int]) -> Dict[str, object]
    """Validate {port, method, key, mode?, local_port?} given as `<prefix>_<name>` variables.
    Returns the checked settings without the key, and whether one was given."""
    port = check_port(settings.get("port"), prefix + "_port", taken, reserved, own_port)
    method = check_method(settings.get("method"), prefix + "_method")
    key = settings.get("key")
    if key:
        check_key(key, method, prefix + "_key")
    elif require_key:
        raise ProxyError("%s is empty, no VPS in the play exported one (omr_vps_proxy) and the router has none yet; "
                         "run omr.deploy.vps in the same play (site.yml) or set it to the VPS's proxy key" % (prefix + "_key"))
    out = {"port": port, "method": method, "key_bytes": key_bytes(method), "key_given": bool(key)}
    mode = settings.get("mode")
    if mode is not None:
        if mode not in MODES:
            raise ProxyError("%s %r is not one of %s" % (prefix + "_mode", mode, ", ".join(MODES)))
        out["mode"] = mode
    if settings.get("local_port") is not None:
        try:
            local = int(str(settings["local_port"]))
        except ValueError:
            local = 0
        if not 1 <= local <= 65535:
            raise ProxyError("%s must be a port number, got %r" % (prefix + "_local_port", settings["local_port"]))
        out["local_port"] = local
    return out


def server_config(port, method, key, mode="tcp_and_udp"):
    # type: (int, str, str, str) -> Dict[str, object]
    """ss-server's JSON: every IPv4 address, MPTCP on the listener."""
    return {"server": "0.0.0.0", "server_port": int(port), "method": method, "key": urlsafe_key(key),
            "mode": mode, "mptcp": True, "no_delay": True, "reuse_port": True, "timeout": TIMEOUT}


def redir_config(server, port, method, key, local_port=1100):
    # type: (str, int, str, str, int) -> Dict[str, object]
    """ss-redir's JSON: listens on every address (the nftables redirect targets the LAN's
    interface address), MPTCP to the VPS. TCP only: UDP goes to the VPN."""
    return {"server": server, "server_port": int(port), "method": method, "key": urlsafe_key(key),
            "local_address": "0.0.0.0", "local_port": int(local_port), "mode": "tcp_only",
            "mptcp": True, "no_delay": True, "reuse_port": True, "timeout": TIMEOUT}


def bypass_networks(vps_addresses, wan_networks, extra=None, var="omr_router_proxy_bypass"):
    # type: (List[str], List[Optional[str]], Optional[List[object]], str) -> List[str]
    """The destinations LAN TCP reaches directly: OMR's defaults, the VPS, the WANs' own
    networks and `extra`, collapsed. Raises ProxyError naming `var` for an entry that is not a network."""
    nets = [ipaddress.ip_network(n) for n in DEFAULT_BYPASS]
    nets += [ipaddress.ip_network("%s/32" % a) for a in vps_addresses if a]
    nets += [ipaddress.ip_network(n, strict=False) for n in wan_networks if n]
    if extra is not None and not isinstance(extra, list):
        raise ProxyError("%s must be a list of IPv4 networks, got %r" % (var, extra))
    for i, entry in enumerate(extra or []):
        try:
            net = ipaddress.ip_network(str(entry).strip(), strict=False)
            if net.version != 4:
                raise ValueError("not IPv4")
        except ValueError:
            raise ProxyError("%s[%d] %r is not an IPv4 network (e.g. 203.0.113.0/24)" % (var, i, entry))
        nets.append(net)
    return [str(n) for n in ipaddress.collapse_addresses(nets)]
