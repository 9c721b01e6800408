# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: this is not a public API; names may change in any
# release. Used by omr.deploy.mptcp_info (action plugin and module) and
# omr.deploy.mptcp_endpoint.
#
# Pure parsing and planning only (standard library, no Ansible imports), so the
# action plugin can parse on the controller what a Python-less router printed.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import shlex


MARKER = '#omr-mptcp#'

# One remote command that must run under dash, bash and busybox ash alike:
# no arrays, no `local`, no process substitution, no temp files (router flash),
# and neither `exit` nor a trailing newline, because Ansible appends
# ` && sleep 0` to low-level commands.
# One grep reads every sysctl: shell `read` fetches byte by byte and procfs
# integer files return EOF after the first byte. `ip` runs twice only when it
# failed, to keep its stderr apart from stdout.
GATHER_SCRIPT = r"""LC_ALL=C; LANG=C; PATH="$PATH:/usr/sbin:/sbin"; export LC_ALL LANG PATH
m='#omr-mptcp#'; d=/proc/sys/net/mptcp
echo "$m begin 1"
echo "$m kernel"
uname -r 2>/dev/null
echo "$m probe"
if [ -e "$d/enabled" ]; then echo enabled=1; else echo enabled=0; fi
if [ -e "$d/mptcp_enabled" ]; then echo mptcp_enabled=1; else echo mptcp_enabled=0; fi
echo "$m sysctl"
[ -d "$d" ] && (cd "$d" && grep -H '' -- *) 2>/dev/null
echo "$m net"
(cd /proc/sys/net/ipv4 && grep -H '' -- tcp_congestion_control tcp_available_congestion_control tcp_allowed_congestion_control) 2>/dev/null
for s in limits endpoint; do
  echo "$m $s"
  o=$(ip mptcp "$s" show 2>/dev/null); r=$?
  [ -n "$o" ] && printf '%s\n' "$o"
  if [ "$r" -ne 0 ]; then
    echo "$m $s-stderr"
    ip mptcp "$s" show 2>&1 >/dev/null | head -n 5
  fi
  echo "$m $s-rc $r"
done
echo "$m" end"""

# Endpoint flags in the order iproute2 prints them, with their kernel bits
# (include/uapi/linux/mptcp.h), so `rawflags XX` from an older ip can be named.
FLAG_BITS = (
    ('signal', 0x01),
    ('subflow', 0x02),
    ('backup', 0x04),
    ('fullmesh', 0x08),
    ('implicit', 0x10),
    ('laminar', 0x20),
)
FLAG_ORDER = tuple(name for name, _bit in FLAG_BITS)
SETTABLE_FLAGS = ('signal', 'subflow', 'backup', 'fullmesh')
# The only flags `ip mptcp endpoint change` can flip in place.
CHANGEABLE_FLAGS = frozenset(('backup', 'fullmesh'))
# Kernel MPTCP_PM_ADDR_MAX: limits above it are refused.
LIMIT_MAX = 8
LIMIT_KEYS = ('subflows', 'add_addr_accepted')
PM_TYPES = {0: 'kernel', 1: 'userspace'}

_ANSI_RE = re.compile(r'\x1b\[[0-9;]*m')
_INT_RE = re.compile(r'^-?[0-9]+$')


class MptcpParseError(ValueError):
    """The gather output is not what GATHER_SCRIPT prints (truncated, or not ours)."""


def _typed(value):
    value = value.strip()
    if _INT_RE.match(value):
        return int(value)
    return value


def _as_int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def split_sections(stdout):
    """Split GATHER_SCRIPT output into ({section: [lines]}, {section: inline value})."""
    sections = {}
    values = {}
    current = None
    for raw in (stdout or '').splitlines():
        line = raw.rstrip('\r')
        if line.startswith(MARKER):
            parts = line[len(MARKER):].strip().split(None, 1)
            if not parts:
                continue
            current = parts[0]
            sections.setdefault(current, [])
            if len(parts) > 1:
                values[current] = parts[1].strip()
            continue
        if current is not None:
            sections[current].append(line)
    return sections, values


def sort_flags(flags):
    known = [f for f in FLAG_ORDER if f in flags]
    return known + sorted(f for f in set(flags) if f not in FLAG_ORDER)


def _decode_rawflags(text):
    bits = int(text, 16)
    names = []
    for name, bit in FLAG_BITS:
        if bits & bit:
            names.append(name)
            bits &= ~bit
    if bits:
        names.append('0x%02x' % bits)
    return names


def parse_endpoints(text):
    """Parse `ip mptcp endpoint show` output into a list of endpoint dicts.

    Each line is ``ADDRESS [port N] [id N] [FLAG...] [rawflags XX] [dev NAME]``.
    Words that are not a known key are kept as flags, so a newer kernel/iproute2
    flag shows up rather than being dropped.
    """
    endpoints = []
    for raw in (text or '').splitlines():
        words = _ANSI_RE.sub('', raw).split()
        if not words:
            continue
        ep = {'id': None, 'address': words[0], 'dev': None, 'port': None, 'flags': []}
        i = 1
        while i < len(words):
            word = words[i]
            nxt = words[i + 1] if i + 1 < len(words) else None
            if word in ('id', 'port') and nxt is not None:
                ep[word] = _as_int(nxt, nxt)
                i += 2
            elif word == 'dev' and nxt is not None:
                ep['dev'] = nxt
                i += 2
            elif word == 'rawflags' and nxt is not None:
                try:
                    ep['flags'].extend(_decode_rawflags(nxt))
                except ValueError:
                    ep['flags'].append('rawflags:' + nxt)
                i += 2
            else:
                ep['flags'].append(word)
                i += 1
        if ep['port'] == 0:
            ep['port'] = None
        ep['flags'] = sort_flags(ep['flags'])
        endpoints.append(ep)
    return endpoints


def parse_limits(text):
    """Parse `ip mptcp limits show` (``add_addr_accepted N subflows N``); None if absent."""
    words = _ANSI_RE.sub('', text or '').split()
    found = {}
    for key, value in zip(words, words[1:]):
        # The old man page spells it `subflow`; normalise to what ip prints.
        key = 'subflows' if key == 'subflow' else key
        if key in LIMIT_KEYS and _INT_RE.match(value):
            found[key] = int(value)
    if not found:
        return None
    return dict((key, found.get(key)) for key in LIMIT_KEYS)


def _pairs(lines, sep):
    result = {}
    for line in lines:
        if sep not in line:
            continue
        name, value = line.split(sep, 1)
        name = name.strip()
        if not name:
            continue
        # A multi-line value comes back as several `name:line` rows.
        result[name] = (result[name] + ' ' + value.strip()) if name in result else value.strip()
    return result


def parse_sysctl(lines, sep=':'):
    """`grep -H '' *` rows from /proc/sys/net/mptcp -> {'net.mptcp.name': typed value}."""
    pairs = _pairs(lines, sep)
    return dict(('net.mptcp.' + name, _typed(pairs[name])) for name in sorted(pairs))


def _words(value):
    if value is None:
        return []
    return str(value).split()


def parse_gather(stdout):
    """Turn GATHER_SCRIPT output into the ``omr_mptcp`` facts dict."""
    sections, values = split_sections(stdout)
    if 'begin' not in sections or 'end' not in sections:
        raise MptcpParseError('MPTCP gather output is incomplete (missing %s marker)'
                              % ('begin' if 'begin' not in sections else 'end'))

    kernel = '\n'.join(line for line in sections.get('kernel', []) if line.strip()).strip() or None
    probe = _pairs(sections.get('probe', []), '=')
    has_v1 = probe.get('enabled') == '1'
    has_v0 = probe.get('mptcp_enabled') == '1'
    sysctl = parse_sysctl(sections.get('sysctl', []))

    def sc(name):
        return sysctl.get('net.mptcp.' + name)

    if has_v1:
        flavour = 'v1'
        enabled = _as_int(sc('enabled'), 0) != 0
        path_manager = sc('path_manager')
        if path_manager is None and sc('pm_type') is not None:
            pm_type = sc('pm_type')
            path_manager = PM_TYPES.get(pm_type, str(pm_type))
        scheduler = sc('scheduler')
        available_schedulers = _words(sc('available_schedulers'))
        available_path_managers = _words(sc('available_path_managers'))
    elif has_v0:
        flavour = 'v0'
        # mptcp_enabled=2 means "only for apps that ask", still enabled.
        enabled = _as_int(sc('mptcp_enabled'), 0) != 0
        path_manager = sc('mptcp_path_manager')
        scheduler = sc('mptcp_scheduler')
        available_schedulers = []
        available_path_managers = []
    else:
        flavour = 'none'
        enabled = False
        path_manager = None
        scheduler = None
        available_schedulers = []
        available_path_managers = []

    net = _pairs(sections.get('net', []), ':')
    # A container's network namespace may only pick an "allowed" congestion control; a host or
    # VM may load any "available" one. `usable` is what a sysctl here can set.
    congestion = {
        'current': net.get('tcp_congestion_control'),
        'available': _words(net.get('tcp_available_congestion_control')),
        'allowed': _words(net.get('tcp_allowed_congestion_control')),
    }

    limits_ok = values.get('limits-rc') == '0'
    endpoint_ok = values.get('endpoint-rc') == '0'
    ip_mptcp = limits_ok and endpoint_ok
    limits = parse_limits('\n'.join(sections.get('limits', []))) if limits_ok else None
    endpoints = parse_endpoints('\n'.join(sections.get('endpoint', []))) if endpoint_ok else []

    return {
        'flavour': flavour,
        'enabled': enabled,
        'kernel': kernel,
        'sysctl': sysctl,
        'path_manager': None if path_manager is None else str(path_manager),
        'scheduler': None if scheduler is None else str(scheduler),
        'available_schedulers': available_schedulers,
        'available_path_managers': available_path_managers,
        'limits': limits,
        'endpoints': endpoints,
        'ip_mptcp': ip_mptcp,
        'congestion_control': congestion,
    }


# ---------------------------------------------------------------------------
# Endpoint and limits planning (omr.deploy.mptcp_endpoint)
# ---------------------------------------------------------------------------

def normalize_address(address):
    """Canonical text form, so 2001:DB8::0:1 and 2001:db8::1 are the same endpoint."""
    return str(ipaddress.ip_address(str(address).strip()))


def _safe_address(address):
    try:
        return normalize_address(address)
    except ValueError:
        return address


def endpoint_key(endpoint):
    return (_safe_address(endpoint['address']), endpoint.get('port') or None)


def validate_endpoints(endpoints, option='endpoints'):
    """Check and normalise the desired endpoints; raise ValueError naming the option."""
    result = []
    seen = {}
    ids = {}
    for index, item in enumerate(endpoints or []):
        where = '%s[%d]' % (option, index)
        if not isinstance(item, dict) or not item.get('address'):
            raise ValueError('%s.address is required' % where)
        try:
            address = normalize_address(item['address'])
        except ValueError:
            raise ValueError('%s.address: %r is not an IPv4 or IPv6 address' % (where, item['address']))
        port = item.get('port') or None
        if port is not None and not 1 <= int(port) <= 65535:
            raise ValueError('%s.port must be between 1 and 65535, got %s' % (where, port))
        ep_id = item.get('id')
        if ep_id is not None and not 1 <= int(ep_id) <= 255:
            raise ValueError('%s.id must be between 1 and 255, got %s' % (where, ep_id))
        flags = list(item.get('flags') or [])
        unknown = [f for f in flags if f not in SETTABLE_FLAGS]
        if unknown:
            raise ValueError('%s.flags: unsupported flag(s) %s; choose from %s'
                             % (where, ', '.join(unknown), ', '.join(SETTABLE_FLAGS)))
        if 'signal' in flags and 'fullmesh' in flags:
            raise ValueError('%s.flags: signal and fullmesh cannot be combined (the kernel refuses it)' % where)
        if port is not None and 'signal' not in flags:
            raise ValueError('%s.port needs the signal flag (a port is only announced, never used for subflows)' % where)
        ep = {
            'id': None if ep_id is None else int(ep_id),
            'address': address,
            'dev': item.get('dev') or None,
            'port': None if port is None else int(port),
            'flags': sort_flags(flags),
        }
        if item.get('keep_backup'):
            ep['keep_backup'] = True
        key = endpoint_key(ep)
        if key in seen:
            raise ValueError('%s duplicates %s: address %s%s is listed twice'
                             % (where, seen[key], address, '' if port is None else ' port %d' % port))
        seen[key] = where
        if ep['id'] is not None:
            if ep['id'] in ids:
                raise ValueError('%s.id %d is also used by %s' % (where, ep['id'], ids[ep['id']]))
            ids[ep['id']] = where
        result.append(ep)
    return result


def validate_limits(limits, option='limits'):
    """Return {key: int} for the limits that were given; raise ValueError naming the option."""
    result = {}
    for key in LIMIT_KEYS:
        value = (limits or {}).get(key)
        if value is None:
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError('%s.%s must be an integer between 0 and %d, got %r' % (option, key, LIMIT_MAX, value))
        if not 0 <= number <= LIMIT_MAX:
            raise ValueError('%s.%s must be between 0 and %d, got %d' % (option, key, LIMIT_MAX, number))
        result[key] = number
    return result


def _needs_recreate(current, desired):
    if desired['id'] is not None and desired['id'] != current['id']:
        return True
    if desired['dev'] is not None and desired['dev'] != current['dev']:
        return True
    cur = set(current['flags'])
    want = set(desired['flags'])
    # Anything but backup/fullmesh (signal, subflow, implicit...) cannot be changed in place.
    return (cur - CHANGEABLE_FLAGS) != (want - CHANGEABLE_FLAGS)


def plan_endpoints(current, desired, state='present', purge=False, can_change=True):
    """Operations turning `current` into `desired`.

    current: endpoints as parse_endpoints() returns them.
    desired: endpoints as validate_endpoints() returns them. `id` and `dev`
        left as None are not compared; `port` and `flags` always are.
    Endpoints are matched by address + port. Returns a list of dicts, deletes
    first (so ids and addresses are free), then changes, then adds:
      {'action': 'delete', 'endpoint': <current>}
      {'action': 'change', 'endpoint': <current>, 'flags': [<wanted backup/fullmesh>]}
      {'action': 'add', 'endpoint': <desired>}
    Implicit endpoints (made by the kernel) are left alone by purge: the kernel
    recreates them on demand, so deleting them would never be idempotent.
    """
    by_key = {}
    for ep in current:
        by_key.setdefault(endpoint_key(ep), ep)
    deletes, changes, adds = [], [], []

    if state == 'absent':
        for want in desired:
            cur = by_key.get(endpoint_key(want))
            if cur is not None:
                deletes.append({'action': 'delete', 'endpoint': cur})
        return deletes

    wanted_keys = set()
    for want in desired:
        key = endpoint_key(want)
        wanted_keys.add(key)
        cur = by_key.get(key)
        keep_backup = want.get('keep_backup')
        want = dict((k, v) for k, v in want.items() if k != 'keep_backup')
        if cur is not None and keep_backup:
            # Someone else owns the backup flag (the router's quality check): take it as it is now.
            want['flags'] = sort_flags([f for f in want['flags'] if f != 'backup']
                                       + (['backup'] if 'backup' in cur['flags'] else []))
        if cur is None:
            adds.append({'action': 'add', 'endpoint': want})
        elif _needs_recreate(cur, want):
            deletes.append({'action': 'delete', 'endpoint': cur})
            adds.append({'action': 'add', 'endpoint': want})
        elif set(cur['flags']) != set(want['flags']):
            if can_change:
                changes.append({'action': 'change', 'endpoint': cur,
                                'flags': [f for f in ('backup', 'fullmesh') if f in want['flags']]})
            else:
                deletes.append({'action': 'delete', 'endpoint': cur})
                adds.append({'action': 'add', 'endpoint': want})

    if purge:
        for ep in current:
            if endpoint_key(ep) not in wanted_keys and 'implicit' not in ep['flags']:
                deletes.append({'action': 'delete', 'endpoint': ep})

    # An explicit id that a surviving endpoint holds would make `ip` fail halfway.
    freed = set(op['endpoint']['id'] for op in deletes)
    for op in adds:
        want_id = op['endpoint']['id']
        if want_id is None:
            continue
        for ep in current:
            if ep['id'] == want_id and ep['id'] not in freed:
                raise ValueError('endpoint id %d for %s is already used by endpoint %s; '
                                 'choose another id or list that endpoint with purge=true'
                                 % (want_id, op['endpoint']['address'], ep['address']))
    return deletes + changes + adds


def endpoint_args(op):
    """`ip` arguments for one planned operation."""
    ep = op['endpoint']
    if op['action'] == 'delete':
        return ['mptcp', 'endpoint', 'delete', 'id', str(ep['id'])]
    if op['action'] == 'change':
        # The kernel sets backup AND fullmesh from one request, so always send both.
        return ['mptcp', 'endpoint', 'change', 'id', str(ep['id']),
                'backup' if 'backup' in op['flags'] else 'nobackup',
                'fullmesh' if 'fullmesh' in op['flags'] else 'nofullmesh']
    args = ['mptcp', 'endpoint', 'add', ep['address']]
    if ep.get('dev'):
        args += ['dev', ep['dev']]
    if ep.get('id') is not None:
        args += ['id', str(ep['id'])]
    if ep.get('port'):
        args += ['port', str(ep['port'])]
    return args + list(ep['flags'])


def apply_plan(current, ops):
    """Predict the endpoint list after `ops` (check mode); added endpoints without id get None."""
    result = [dict(ep, flags=list(ep['flags'])) for ep in current]
    for op in ops:
        ep = op['endpoint']
        if op['action'] == 'delete':
            result = [e for e in result if not (e['id'] == ep['id'] and endpoint_key(e) == endpoint_key(ep))]
        elif op['action'] == 'change':
            for e in result:
                if e['id'] == ep['id']:
                    keep = [f for f in e['flags'] if f not in CHANGEABLE_FLAGS]
                    e['flags'] = sort_flags(keep + list(op['flags']))
        else:
            result.append(dict(ep, flags=list(ep['flags'])))
    return result


def plan_limits(current, desired):
    """{key: value} of the given limits that differ from `current` (None current = all)."""
    current = current or {}
    return dict((key, value) for key, value in desired.items() if current.get(key) != value)


def limits_args(changes):
    args = ['mptcp', 'limits', 'set']
    for key in LIMIT_KEYS:
        if key in changes:
            args += [key, str(changes[key])]
    return args


def format_command(args, binary='ip'):
    return ' '.join(shlex.quote(a) for a in [binary] + list(args))


def format_state(endpoints, limits):
    """Readable text of endpoints + limits, for --diff."""
    lines = []
    for ep in endpoints:
        words = ['endpoint', ep['address']]
        if ep.get('port'):
            words += ['port', str(ep['port'])]
        if ep.get('id') is not None:
            words += ['id', str(ep['id'])]
        words += list(ep['flags'])
        if ep.get('dev'):
            words += ['dev', ep['dev']]
        lines.append(' '.join(words))
    if limits:
        lines.append('limits ' + ' '.join('%s %s' % (key, limits.get(key)) for key in LIMIT_KEYS))
    return '\n'.join(lines) + '\n'
