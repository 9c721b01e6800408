# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the VPS firewall's plan, computed once, on the controller.

`plan_firewall(...)` turns omr.deploy.vps's variables into what its own nftables table
`inet omr_vps_firewall` holds: the public interfaces it filters (everything else is accepted),
the ICMP rate, and one rule per port with the networks it is open to. The role's template
renders the plan as it is; nothing is decided there. Bad input raises ValueError naming the
variable, before anything on the host changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import json
import re

try:
    from typing import Any, Dict, List, Optional, TypedDict
except ImportError:  # Python < 3.8 has no TypedDict; the shapes are documentation there
    Any = Dict = List = Optional = None
    TypedDict = None

PROTOS = ('tcp', 'udp')
SSH_PORT = 22
DEFAULT_ICMP_RATE = '10/second burst 20'
RATE_UNITS = ('second', 'minute', 'hour', 'day')
RATE_RE = re.compile(r'^\s*(\d+)\s*/\s*(second|minute|hour|day)(?:\s+burst\s+(\d+)(?:\s+packets)?)?\s*$')
# A Linux interface name (IFNAMSIZ 16 with the NUL), or a prefix with nft's trailing wildcard.
IFNAME_RE = re.compile(r'^[A-Za-z0-9_.:@+-]{1,15}\*?$')
# nft keeps comments up to 128 bytes; quotes and backslashes would end the string.
COMMENT_RE = re.compile(r'^[\x20-\x7e]{0,100}$')

if TypedDict is not None:
    class IcmpLimit(TypedDict):
        rate: int
        unit: str              # second, minute, hour, day
        burst: int

    class Rule(TypedDict):
        """One open port. Empty sources: open to everybody on the public interfaces."""
        port: int
        proto: str             # tcp, udp
        comment: str
        sources: List[str]     # networks, IPv4 first, each normalized (host bits cleared)
        sources_ipv4: List[str]
        sources_ipv6: List[str]
        vars: List[str]        # the variables that asked for it

    class FirewallPlan(TypedDict):
        public_interfaces: List[str]
        icmp_limit: IcmpLimit
        ssh_ports: List[int]
        ssh_port_in_use: Optional[int]
        tcp: List[int]         # every open TCP port, whatever its sources
        udp: List[int]
        rules: List[Rule]      # sorted by proto, then port
        digest: str            # names this plan in the table's comment


def _port(value, var):
    # type: (Any, str) -> int
    if isinstance(value, bool) or value is None:
        raise ValueError('%s must be a port number (1-65535), got %r' % (var, value))
    if isinstance(value, str) and re.match(r'^\s*\d+\s*$', value):
        value = int(value)
    if isinstance(value, float) and value == int(value):
        value = int(value)
    if not isinstance(value, int):
        raise ValueError('%s must be a port number (1-65535), got %r' % (var, value))
    if not 1 <= value <= 65535:
        raise ValueError('%s %d is not a port (1-65535)' % (var, value))
    return value


def _list(value, var):
    # type: (Any, str) -> list
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise ValueError('%s must be a list, got %r' % (var, value))
    return list(value)


def parse_icmp_rate(value, var='omr_vps_firewall_icmp_rate'):
    # type: (Any, str) -> IcmpLimit
    """'10/second burst 20' -> {'rate': 10, 'unit': 'second', 'burst': 20}; without a burst, the rate."""
    m = RATE_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError("%s must be a rate such as '10/second burst 20' (per %s), got %r"
                         % (var, '|'.join(RATE_UNITS), value))
    rate = int(m.group(1))
    burst = int(m.group(3)) if m.group(3) is not None else rate
    if rate < 1 or burst < 1:
        raise ValueError('%s: rate and burst must be at least 1, got %r' % (var, value))
    return {'rate': rate, 'unit': m.group(2), 'burst': burst}


def _interfaces(public_interfaces, default_interface, var):
    # type: (Any, Optional[str], str) -> List[str]
    names = []  # type: List[str]
    for i, name in enumerate(_list(public_interfaces, var)):
        if not isinstance(name, str) or not IFNAME_RE.match(name):
            raise ValueError('%s[%d] %r is not an interface name (up to 15 letters, digits or ._:@+-, '
                             'optionally ending in *)' % (var, i, name))
        if name not in names:
            names.append(name)
    if names:
        return names
    if isinstance(default_interface, str) and IFNAME_RE.match(default_interface):
        return [default_interface]
    raise ValueError('%s is empty and the host has no default IPv4 route to take the public interface from; '
                     'name the public interfaces, e.g. [eth0]' % var)


def _sources(value, var):
    # type: (Any, str) -> List[str]
    nets = []
    for i, item in enumerate(_list(value, var)):
        try:
            if not isinstance(item, str):
                raise ValueError()
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError('%s[%d] %r is not a network (an address or CIDR, e.g. 100.64.0.0/16)' % (var, i, item))
    nets = sorted(set(nets), key=lambda n: (n.version, n.network_address, n.prefixlen))
    return [str(n) for n in nets]


def _entry(item, var, port_var, sources_var):
    # type: (Any, str, str, str) -> Dict[str, Any]
    """One requested port: var names the item, port_var its port, sources_var its sources."""
    if not isinstance(item, dict):
        raise ValueError('%s must be a dict with port and proto, got %r' % (var, item))
    port = _port(item.get('port'), port_var)
    proto = item.get('proto')
    if not isinstance(proto, str) or proto.lower() not in PROTOS:
        raise ValueError('%s.proto must be tcp or udp, got %r' % (var, proto))
    comment = item.get('comment') or ''
    if not isinstance(comment, str) or not COMMENT_RE.match(comment) or '"' in comment or '\\' in comment:
        raise ValueError('%s.comment must be up to 100 printable ASCII characters without quotes or '
                         'backslashes, got %r' % (var, comment))
    return {'port': port, 'proto': proto.lower(), 'comment': comment.strip(),
            'sources': _sources(item.get('sources'), sources_var), 'var': var}


def ssh_ports_for(ssh_ports, ssh_port_in_use, var='omr_vps_firewall_ssh_ports'):
    # type: (Any, Optional[int], str) -> List[int]
    """`auto`: the port Ansible reaches the host on, or 22 when it does not come over SSH.
    A list must hold the port in use, or the run would lock Ansible (and its user) out."""
    if ssh_ports is None or ssh_ports == 'auto':
        return [ssh_port_in_use if ssh_port_in_use is not None else SSH_PORT]
    if isinstance(ssh_ports, str):
        raise ValueError('%s must be auto or a list of ports, got %r' % (var, ssh_ports))
    ports = sorted(set(_port(p, '%s[%d]' % (var, i)) for i, p in enumerate(_list(ssh_ports, var))))
    if ssh_port_in_use is not None and ssh_port_in_use not in ports:
        raise ValueError('%s %s lacks %d, the SSH port Ansible reaches this host on: the firewall would cut this '
                         'connection and lock you out. Add %d to the list, or leave it at auto. Nothing was changed.'
                         % (var, ports, ssh_port_in_use, ssh_port_in_use))
    return ports


def _opened(sources):
    # type: (List[str]) -> str
    return 'to ' + ', '.join(sources) if sources else 'to everybody'


def _digest(plan):
    # type: (Dict[str, Any]) -> str
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode('utf-8')).hexdigest()[:16]


def plan_firewall(extra_ports=None, public_interfaces=None, default_interface=None, ssh_ports='auto',
                  ssh_port_in_use=None, services=None, mptcp_endpoints=None, icmp_rate=DEFAULT_ICMP_RATE,
                  prefix='omr_vps_firewall', closed=None):
    # type: (Any, Any, Optional[str], Any, Any, Any, Any, Any, str, Any) -> FirewallPlan
    """The firewall's plan.

    extra_ports: the user's [{port, proto, comment?, sources?}] (`<prefix>_extra_ports`).
    public_interfaces: the interfaces filtered; empty means [default_interface].
    ssh_ports: `auto` or a list; ssh_port_in_use: the port of the SSH connection Ansible uses,
    None when it does not come over SSH (podman, docker, local).
    services: the role's concerns' ports, [{port, proto, comment, sources?, var, sources_var?}].
    mptcp_endpoints: omr_vps_mptcp_endpoints; a `signal` endpoint with a port listens there for subflows.
    closed: ports the plan must never open, [{port, proto, var, why}] (node_exporter's): asking for one is an error.
    """
    if ssh_port_in_use in ('', None):
        ssh_port_in_use = None
    else:
        ssh_port_in_use = _port(ssh_port_in_use, 'the SSH port in use (ansible_env.SSH_CONNECTION, ansible_port)')
    entries = []  # type: List[Dict[str, Any]]
    ssh_var = prefix + '_ssh_ports'
    ssh = ssh_ports_for(ssh_ports, ssh_port_in_use, ssh_var)
    entries += [{'port': p, 'proto': 'tcp', 'comment': 'ssh', 'sources': [], 'var': ssh_var} for p in ssh]
    for i, item in enumerate(_list(services, 'services')):
        # The role's concerns: each names the variable of its port, and of its sources if any.
        item = item if isinstance(item, dict) else {'port': item}
        var = item.get('var') or 'services[%d]' % i
        entries.append(_entry(item, var, var, item.get('sources_var') or var + '.sources'))
    endpoints_var = 'omr_vps_mptcp_endpoints'
    for i, ep in enumerate(_list(mptcp_endpoints, endpoints_var)):
        if isinstance(ep, dict) and ep.get('port') is not None and 'signal' in (ep.get('flags') or ['signal']):
            entries.append({'port': _port(ep['port'], '%s[%d].port' % (endpoints_var, i)), 'proto': 'tcp',
                            'comment': 'MPTCP subflows', 'sources': [], 'var': endpoints_var})
    extra_var = prefix + '_extra_ports'
    for i, item in enumerate(_list(extra_ports, extra_var)):
        var = '%s[%d]' % (extra_var, i)
        entries.append(_entry(item, var, var + '.port', var + '.sources'))

    rules = {}  # type: Dict[tuple, Dict[str, Any]]
    for e in entries:
        key = (e['proto'], e['port'])
        if key not in rules:
            rules[key] = {'port': e['port'], 'proto': e['proto'], 'comments': [], 'sources': e['sources'], 'vars': []}
        rule = rules[key]
        if rule['sources'] != e['sources']:
            raise ValueError('%s opens %s %d %s, but %s opens it %s: one port, one list of sources'
                             % (e['var'], e['proto'], e['port'], _opened(e['sources']), ', '.join(rule['vars']),
                                _opened(rule['sources'])))
        if e['comment'] and e['comment'] not in rule['comments']:
            rule['comments'].append(e['comment'])
        if e['var'] not in rule['vars']:
            rule['vars'].append(e['var'])

    for i, item in enumerate(_list(closed, 'closed')):
        item = item if isinstance(item, dict) else {'port': item}
        var = item.get('var') or 'closed[%d]' % i
        key = (str(item.get('proto') or 'tcp').lower(), _port(item.get('port'), var))
        if key in rules:
            raise ValueError('%s opens %s %d, %s (%s): the firewall never opens it on the public side. Remove it, and '
                             'reach the port through a tunnel or a private network'
                             % (', '.join(rules[key]['vars']), key[0], key[1], item.get('why') or 'a port kept closed',
                                var))

    planned = []
    for key in sorted(rules):
        r = rules[key]
        planned.append({
            'port': r['port'], 'proto': r['proto'],
            'comment': (', '.join(r['comments']) or ', '.join(r['vars']))[:100],
            'sources': r['sources'],
            'sources_ipv4': [s for s in r['sources'] if ':' not in s],
            'sources_ipv6': [s for s in r['sources'] if ':' in s],
            'vars': r['vars'],
        })
    plan = {
        'public_interfaces': _interfaces(public_interfaces, default_interface, prefix + '_public_interfaces'),
        'icmp_limit': parse_icmp_rate(icmp_rate, prefix + '_icmp_rate'),
        'ssh_ports': ssh,
        'ssh_port_in_use': ssh_port_in_use,
        'tcp': sorted(r['port'] for r in planned if r['proto'] == 'tcp'),
        'udp': sorted(r['port'] for r in planned if r['proto'] == 'udp'),
        'rules': planned,
    }
    plan['digest'] = _digest(plan)
    return plan
