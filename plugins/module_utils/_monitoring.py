# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: node_exporter for the VPS and the Debian router, and the textfiles
the roles keep for it, computed on the controller.

`plan_exporter(...)` checks where Debian's `prometheus-node-exporter` may listen (loopback, or an
address declared private or a tunnel's, never one of the public side) and gives the `ARGS` of its
`/etc/default/prometheus-node-exporter`: that address, every `MPTcpExt` netstat counter besides the
package's default fields, and the textfile directory. Bad input raises ValueError naming the
variable, before anything on the host changes.

`vps_metrics`, `router_metrics` and `converge_metrics` render what the roles know (plan memory,
swappiness, masked units, MPTCP flavour, endpoints and limits, the router's WANs, the last converge
that changed the host) in Prometheus' text exposition format, for the textfile collector.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import ipaddress
import math
import re

try:
    from typing import Any, Dict, List, Optional, Tuple, TypedDict
except ImportError:  # Python < 3.8 has no TypedDict; the shapes are documentation there
    Any = Dict = List = Optional = Tuple = None
    TypedDict = None

DEFAULT_LISTEN = '127.0.0.1:9100'
# Debian's: the package creates it, omr.deploy.wifi_bridge writes there too.
TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
# node_exporter 1.5's (Debian 12) default netstat fields, kept, with every MPTcpExt counter added
# (MPCapableFallbackACK and SYNACK count the connections that fell back to plain TCP).
DEFAULT_NETSTAT_FIELDS = ('.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|'
                          'TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|'
                          'Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|'
                          'Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors)')
NETSTAT_FIELDS = '^(MPTcpExt_.*|%s)$' % DEFAULT_NETSTAT_FIELDS
MIB = 1024 * 1024
# A Linux interface name, or a prefix with nft's trailing wildcard (the firewall's public interfaces).
IFNAME_RE = re.compile(r'^[A-Za-z0-9_.:@+-]{1,15}\*?$')
METRIC_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
LIMIT_KINDS = ('subflows', 'add_addr_accepted')

if TypedDict is not None:
    class ExporterPlan(TypedDict):
        listen: str             # ADDRESS:PORT, IPv6 in brackets
        address: str
        port: int
        loopback: bool
        declared_by: Optional[str]  # the variable that declared a non-loopback address
        args: List[str]         # node_exporter's arguments, none holding a space, a quote or a backslash
        environment: str        # the ARGS line of /etc/default/prometheus-node-exporter
        textfile_dir: str


def _addr(value):
    # type: (Any) -> Optional[Any]
    """An address, from 'a.b.c.d', 'a.b.c.d/len' or an IPv6 one; None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ipaddress.ip_interface(value.strip()).ip
    except ValueError:
        return None


def parse_listen(value, var):
    # type: (Any, str) -> Tuple[Any, int]
    """'127.0.0.1:9100' or '[::1]:9100' -> (address, port); a bare port, a wildcard or a name is refused."""
    hint = '127.0.0.1:9100, [::1]:9100, or a private or tunnel address of the host'
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError('%s must be ADDRESS:PORT (%s), got %r' % (var, hint, value))
    text = value.strip()
    m = re.match(r'^\[([0-9A-Fa-f:.]*)\]:(\d+)$', text) or re.match(r'^([^:\[\]]*):(\d+)$', text)
    if not m:
        if re.match(r'^:?\d+$', text):
            raise ValueError('%s %r has no address: node_exporter would listen on every address, the public one '
                             'included. Give %s' % (var, value, hint))
        raise ValueError('%s must be ADDRESS:PORT (%s), got %r' % (var, hint, value))
    host, port = m.group(1), int(m.group(2))
    if not 1 <= port <= 65535:
        raise ValueError('%s %r: %d is not a port (1-65535)' % (var, value, port))
    if host in ('', '*'):
        raise ValueError('%s %r has no address: node_exporter would listen on every address, the public one '
                         'included. Give %s' % (var, value, hint))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError('%s %r: %r is not an IP address (names are refused: they may resolve to a public '
                         'address). Give %s' % (var, value, host, hint))
    if address.is_unspecified:
        raise ValueError('%s %r listens on every address, the public one included. Give %s' % (var, value, hint))
    return address, port


def _private(addresses, var):
    # type: (Any, str) -> List[Tuple[Any, str]]
    if addresses is None:
        return []
    if isinstance(addresses, (str, bytes, dict)) or not isinstance(addresses, (list, tuple)):
        raise ValueError('%s must be a list of addresses, got %r' % (var, addresses))
    out = []
    for i, item in enumerate(addresses):
        where = '%s[%d]' % (var, i)
        address = _addr(item)
        if address is None:
            raise ValueError('%s %r is not an IP address' % (where, item))
        if address.is_global or address.is_unspecified or address.is_multicast:
            raise ValueError('%s %s is not a private address: node_exporter must not listen on the public side'
                             % (where, address))
        out.append((address, where))
    return out


def public_addresses(interfaces=None, public_interfaces=None, default_interface=None, var='public_interfaces'):
    # type: (Any, Any, Optional[str], str) -> List[Tuple[Any, str]]
    """The addresses of the public interfaces, from Ansible's interface facts ({device, ipv4: {address},
    ipv4_secondaries: [...], ipv6: [{address}]}). Names may end in * (a prefix); none given means
    default_interface."""
    names = [n for n in (public_interfaces or []) if isinstance(n, str) and IFNAME_RE.match(n)]
    if not names and isinstance(default_interface, str) and default_interface:
        names = [default_interface]
    out = []  # type: List[Tuple[Any, str]]
    for facts in interfaces or []:
        if not isinstance(facts, dict) or not isinstance(facts.get('device'), str):
            continue
        device = facts['device']
        if not any(fnmatch.fnmatchcase(device, n) if n.endswith('*') else device == n for n in names):
            continue
        entries = [facts.get('ipv4')] + list(facts.get('ipv4_secondaries') or []) + list(facts.get('ipv6') or [])
        for entry in entries:
            address = _addr((entry or {}).get('address')) if isinstance(entry, dict) else None
            if address is not None:
                out.append((address, 'an address of %s, a public interface (%s)' % (device, var)))
    return out


def plan_exporter(listen=DEFAULT_LISTEN, var='omr_vps_monitoring_listen', private_addresses=None,
                  private_var='omr_vps_monitoring_private_addresses', declared=None, public=None, wans=None,
                  interfaces=None, public_interfaces=None, default_interface=None,
                  public_interfaces_var='omr_vps_firewall_public_interfaces', taken=None, textfile_dir=TEXTFILE_DIR):
    # type: (Any, str, Any, str, Any, Any, Any, Any, Any, Optional[str], str, Any, str) -> ExporterPlan
    """Where node_exporter listens, checked, and its arguments.

    The address must be loopback, or one the role knows as private: `declared` ([{address, var}],
    e.g. the VPS's end of the VPN's tunnel, the router's LAN address) or the user's `private_addresses`.
    It must not be public: an address of `wans` ([{name, address}]), of the public interfaces (from
    `interfaces`, Ansible's interface facts) or listed in `public` ([{address, where}]); a cloud VPS's
    public interface may well hold a private address that the provider maps a public one to.
    `taken` ({variable: port}) are the ports of the host's other listeners.
    """
    address, port = parse_listen(listen, var)
    known = _private(private_addresses, private_var)
    for item in declared or []:
        found = _addr(item.get('address')) if isinstance(item, dict) else None
        if found is not None:
            known.append((found, str(item.get('var') or 'declared')))
    outside = public_addresses(interfaces, public_interfaces, default_interface, public_interfaces_var)
    for item in public or []:
        found = _addr(item.get('address')) if isinstance(item, dict) else None
        if found is not None:
            outside.append((found, str(item.get('where') or 'a public address')))
    for wan in wans or []:
        found = _addr(wan.get('address')) if isinstance(wan, dict) else None
        if found is not None:
            outside.append((found, 'the address of WAN %s (omr_router_wans)' % wan.get('name')))
    for other, port_taken in sorted((taken or {}).items()):
        if port_taken is not None and str(port_taken).isdigit() and int(port_taken) == port:
            raise ValueError('%s %r: port %d is %s\'s; node_exporter needs a port of its own'
                             % (var, listen, port, other))

    declared_by = None
    if not address.is_loopback:
        for other, where in outside:
            if other == address:
                raise ValueError('%s %r: %s is %s; node_exporter must never answer on the public side. Use %s, '
                                 'or the tunnel\'s or a private network\'s address, and scrape through it'
                                 % (var, listen, address, where, DEFAULT_LISTEN))
        for other, where in known:
            if other == address:
                declared_by = where
                break
        if declared_by is None:
            names = ', '.join('%s (%s)' % (a, w) for a, w in known) or 'none'
            raise ValueError('%s %r: %s is neither loopback nor a declared private or tunnel address (declared: %s). '
                             'Use %s, or list the address in %s if it is on a private network'
                             % (var, listen, address, names, DEFAULT_LISTEN, private_var))
        if address.is_global:
            raise ValueError('%s %r: %s is a public address; node_exporter must never answer on the public side'
                             % (var, listen, address))
    shown = '[%s]:%d' % (address, port) if address.version == 6 else '%s:%d' % (address, port)
    if not isinstance(textfile_dir, str) or not textfile_dir.startswith('/') or re.search(r'[\s"\'\\$`]', textfile_dir):
        raise ValueError('the textfile directory must be an absolute path without spaces, quotes or $, got %r'
                         % (textfile_dir,))
    # No argument holds a space, a quote or a backslash: systemd's $ARGS and the init script's
    # unquoted $ARGS split them alike, and neither escapes anything.
    args = ['--web.listen-address=%s' % shown,
            '--collector.netstat.fields=%s' % NETSTAT_FIELDS,
            '--collector.textfile.directory=%s' % textfile_dir]
    return {
        'listen': shown,
        'address': str(address),
        'port': port,
        'loopback': address.is_loopback,
        'declared_by': declared_by,
        'args': args,
        'environment': 'ARGS="%s"' % ' '.join(args),
        'textfile_dir': textfile_dir,
    }


# ---- the text exposition format -------------------------------------------------------------

def _escape_label(value):
    # type: (Any) -> str
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _escape_help(text):
    # type: (str) -> str
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def _value(value):
    # type: (Any) -> str
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return 'NaN'
    if math.isinf(number):
        return '+Inf' if number > 0 else '-Inf'
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def render(families):
    # type: (List[Tuple[str, str, str, List[Tuple[Dict[str, Any], Any]]]]) -> str
    """[(name, type, help, [(labels, value), ...]), ...] as text exposition format: HELP and TYPE
    before each family's samples, families without samples left out, label values escaped."""
    lines = []  # type: List[str]
    seen = set()
    for name, kind, text, samples in families:
        if not METRIC_RE.match(name) or name in seen:
            raise ValueError('metric name %r is invalid or repeated' % name)
        seen.add(name)
        if kind not in ('gauge', 'counter', 'untyped'):
            raise ValueError('metric %s: type %r' % (name, kind))
        if not samples:
            continue
        lines.append('# HELP %s %s' % (name, _escape_help(text)))
        lines.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples:
            bad = [k for k in labels if not LABEL_RE.match(k) or k.startswith('__')]
            if bad:
                raise ValueError('metric %s: label names %s are invalid' % (name, bad))
            pairs = ','.join('%s="%s"' % (k, _escape_label(labels[k])) for k in sorted(labels))
            lines.append('%s%s %s' % (name, '{%s}' % pairs if pairs else '', _value(value)))
    return '\n'.join(lines) + '\n' if lines else ''


def _int(value):
    # type: (Any) -> Optional[int]
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _mptcp_families(role, mptcp, endpoints, limits):
    # type: (str, Dict[str, Any], Optional[List[Dict[str, Any]]], Any) -> List[Tuple[str, str, str, list]]
    """The MPTCP families both roles write: the same HELP, and a `role` label, so that a host carrying
    both files still has one family of each, without duplicate series."""
    mptcp = mptcp if isinstance(mptcp, dict) else {}
    flavour = mptcp.get('flavour')
    families = [
        ('omr_mptcp_flavour', 'gauge', 'The kernel\'s MPTCP flavour (v1 upstream, v0 out-of-tree, none), always 1.',
         [({'flavour': flavour, 'role': role}, 1)] if flavour else []),
        ('omr_mptcp_enabled', 'gauge', '1 if MPTCP is switched on (net.mptcp.enabled).',
         [({'role': role}, bool(mptcp.get('enabled')))] if 'enabled' in mptcp else []),
    ]
    families.append(('omr_mptcp_endpoints', 'gauge', 'MPTCP endpoints (ip mptcp endpoint).',
                     [({'role': role}, len(endpoints))] if endpoints is not None else []))
    samples = []
    for kind in LIMIT_KINDS:
        value = _int((limits or {}).get(kind)) if isinstance(limits, dict) else None
        if value is not None:
            samples.append(({'kind': kind, 'role': role}, value))
    families.append(('omr_mptcp_limit', 'gauge', 'MPTCP path-manager limits (ip mptcp limits).', samples))
    return families


def vps_metrics(memory=None, mptcp=None, swappiness=None, masked=None):
    # type: (Any, Any, Any, Any) -> str
    """omr.deploy.vps's textfile. memory: the omr_memory fact; mptcp: the omr_mptcp fact read after
    the converge; swappiness: vm.swappiness as read; masked: the role's units that are masked."""
    memory = memory if isinstance(memory, dict) else {}
    plan_mb = _int(memory.get('installed_mb'))
    effective_mb = _int(memory.get('effective_mb'))
    units = sorted(set(str(u) for u in masked)) if isinstance(masked, (list, tuple)) else None
    mptcp = mptcp if isinstance(mptcp, dict) else {}
    endpoints = mptcp.get('endpoints') if isinstance(mptcp.get('endpoints'), list) else None
    families = [
        ('omr_vps_memory_plan_bytes', 'gauge',
         'The VPS plan\'s RAM as omr.deploy.memory_info estimates it (cgroup limit, memory blocks or MemTotal).',
         [({}, plan_mb * MIB)] if plan_mb is not None else []),
        ('omr_vps_memory_effective_bytes', 'gauge',
         'The RAM the services can use, the smaller of MemTotal and the cgroup limit.',
         [({}, effective_mb * MIB)] if effective_mb is not None else []),
        ('omr_vps_swappiness', 'gauge', 'vm.swappiness.',
         [({}, _int(swappiness))] if _int(swappiness) is not None else []),
        ('omr_vps_masked_services', 'gauge', 'Units of omr_vps_disabled_services that are masked.',
         [({}, len(units))] if units is not None else []),
        ('omr_vps_masked_service', 'gauge', 'A unit of omr_vps_disabled_services that is masked, always 1.',
         [({'unit': u}, 1) for u in units or []]),
    ]
    families += _mptcp_families('vps', mptcp, endpoints, mptcp.get('limits'))
    families.append(('omr_mptcp_endpoint_info', 'gauge', 'An MPTCP endpoint and its flags, always 1.',
                     [({'id': ep.get('id'), 'address': ep.get('address'), 'dev': ep.get('dev') or '',
                        'flags': ','.join(str(f) for f in ep.get('flags') or [])}, 1)
                      for ep in endpoints or [] if isinstance(ep, dict)]))
    return render(families)


def router_metrics(plan=None, mptcp=None):
    # type: (Any, Any) -> str
    """omr.deploy.router's textfile, from its plan (omr_router_plan) and the omr_mptcp fact: per WAN its
    multipath mode and whether the plan gives it an MPTCP endpoint, the endpoints and limits planned."""
    plan = plan if isinstance(plan, dict) else {}
    wans = [w for w in plan.get('wans') or [] if isinstance(w, dict) and w.get('name')]
    endpoints = plan.get('endpoints') if isinstance(plan.get('endpoints'), list) else None
    families = [
        ('omr_router_wan_info', 'gauge', 'A WAN of the router\'s plan, its device, multipath mode and addressing, always 1.',
         [({'wan': w['name'], 'device': w.get('device') or '', 'mode': w.get('multipath') or '',
            'addressing': w.get('addressing') or ''}, 1) for w in wans]),
        ('omr_router_wan_endpoint', 'gauge',
         '1 if the plan gave the WAN an MPTCP endpoint at the last converge (0: multipath off, or a DHCP WAN '
         'without a lease then).',
         [({'wan': w['name'], 'device': w.get('device') or ''}, isinstance(w.get('endpoint'), dict)) for w in wans]),
        ('omr_router_wans', 'gauge', 'WANs in the router\'s plan.', [({}, len(wans))] if 'wans' in plan else []),
    ]
    families += _mptcp_families('router', mptcp if isinstance(mptcp, dict) else {}, endpoints, plan.get('limits'))
    return render(families)


def converge_metrics(timestamp, role):
    # type: (Any, str) -> str
    """The last converge that changed the host, in a file of its own: written only then, so a run
    that changes nothing leaves every file as it was."""
    if not isinstance(role, str) or not LABEL_RE.match(role):
        raise ValueError('role must be a word, got %r' % (role,))
    try:
        seconds = int(float(timestamp))
    except (TypeError, ValueError):
        raise ValueError('timestamp must be Unix seconds, got %r' % (timestamp,))
    return render([('omr_deploy_last_converge_timestamp_seconds', 'gauge',
                    'Unix time of the last converge of an omr.deploy role that changed this host.',
                    [({'role': role}, seconds)])])
