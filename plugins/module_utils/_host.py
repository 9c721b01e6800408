# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: what the collection's programs on the hosts share.

The router's `omr-router-net`, the WiFi bridge's `omr-wifi-bridge-net` and monitor and the
VPS's endpoint restore are static programs fed by JSON; each role copies this file beside
them. They read the live state as `ip -j` prints it and turn each difference from what their
JSON declares into a `Fix`: a description and the commands that remove it. `check` lists
the fixes, `apply` runs them. Reading goes through a `Host`, so the unit tests can feed
captured `ip -j` output and assert the planned commands.

Standard library only and no imports from the collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C'}
# A program's `check` exits with this when the host differs from what it declares.
DRIFT = 3


class HostError(Exception):
    """A command the program needs failed; the message says which and why."""


class Host(object):
    """Runs commands on this host; tests replace it with one that answers from captures."""

    def run(self, argv, stdin=None, check=True):
        """(returncode, stdout, stderr) of argv; raises HostError on failure when `check`."""
        env = dict(os.environ, **C_LOCALE)
        # OpenVPN runs its `up` command with no PATH at all.
        env.setdefault('PATH', DEFAULT_PATH)
        try:
            proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, env=env, check=False)
        except OSError as exc:
            raise HostError('%s: %s' % (argv[0], exc))
        if check and proc.returncode != 0:
            raise HostError('%s failed (rc=%d): %s' % (' '.join(argv), proc.returncode,
                                                       (proc.stderr or proc.stdout).strip()))
        return proc.returncode, proc.stdout, proc.stderr

    def read(self, path):
        """The text of a file, or None when it cannot be read."""
        try:
            with open(path, encoding='utf-8') as f:
                return f.read()
        except (IOError, OSError):
            return None

    def write(self, path, text):
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)


class Fix(object):
    """One difference from the declared state, and the commands that remove it. A command
    is an argv list, or (argv, stdin text) for one that reads its input (nft -f -)."""

    def __init__(self, description, commands):
        self.description = description
        self.commands = list(commands)

    def __repr__(self):
        return 'Fix(%r, %r)' % (self.description, self.commands)


def command_text(command):
    argv, stdin = (command if isinstance(command, tuple) else (command, None))
    text = ' '.join(argv)
    return text + (' <<EOF\n%sEOF' % stdin if stdin else '')


def apply_fixes(host, fixes, out=sys.stdout):
    """Run every fix's commands in order; stops at the first failing command."""
    for fix in fixes:
        out.write('fixing: %s\n' % fix.description)
        for command in fix.commands:
            argv, stdin = (command if isinstance(command, tuple) else (command, None))
            host.run(argv, stdin=stdin)


def report_fixes(fixes, out=sys.stdout):
    for fix in fixes:
        out.write('differs: %s\n' % fix.description)


def check_or_apply(host, fixes, check, out=sys.stdout):
    """A program's `check` (list the fixes, exit DRIFT when there are any) or `apply` (run them, exit 0)."""
    if check:
        report_fixes(fixes, out)
        return DRIFT if fixes else 0
    apply_fixes(host, fixes, out)
    return 0


# ---------------------------------------------------------------------------
# The live state, as `ip -j` prints it (iproute2 6.1 and 6.15 are tested)
# ---------------------------------------------------------------------------

def ip_json(host, args):
    _rc, out, _err = host.run(['ip', '-j'] + list(args))
    text = out.strip()
    return json.loads(text) if text else []


def read_state(host):
    """{links, addresses, routes, rules, ip_forward}: what the network checks compare with."""
    forward = host.read('/proc/sys/net/ipv4/ip_forward')
    return {
        'links': ip_json(host, ['link', 'show']),
        'addresses': ip_json(host, ['addr', 'show']),
        'routes': ip_json(host, ['-4', 'route', 'show', 'table', 'all']),
        'rules': ip_json(host, ['-4', 'rule', 'show']),
        'ip_forward': (forward or '').strip(),
    }


def _link(state, device):
    for link in state['links']:
        if link.get('ifname') == device:
            return link
    return None


def global_addresses(state, device, families=('inet',)):
    """The device's global addresses (IPv4 unless `families` says otherwise) as CIDR strings,
    in the kernel's order."""
    out = []
    for entry in state['addresses']:
        if entry.get('ifname') != device:
            continue
        for info in entry.get('addr_info') or []:
            if info.get('family') in families and info.get('scope') == 'global':
                out.append('%s/%s' % (info['local'], info['prefixlen']))
    return out


def routes_in_table(state, table):
    """Routes of one table ('main' for the main table, which `ip -j` prints without a table key)."""
    table = str(table)
    return [r for r in state['routes'] if str(r.get('table', 'main')) == table]


def want_forwarding(state):
    if state['ip_forward'] == '1':
        return []
    return [Fix('ip_forward', [['sysctl', '-qw', 'net.ipv4.ip_forward=1']])]


def want_link_up(state, device):
    link = _link(state, device)
    if link is None:
        raise HostError('device %s does not exist on this host' % device)
    if 'UP' in (link.get('flags') or []):
        return []
    return [Fix('%s up' % device, [['ip', 'link', 'set', 'dev', device, 'up']])]


def want_address(state, device, cidr, exclusive=False, label=None):
    """cidr on device; with `exclusive`, as its only global address (a link the role owns)."""
    have = global_addresses(state, device)
    label = label or '%s address %s' % (device, cidr)
    if exclusive:
        if have == [cidr]:
            return []
        return [Fix(label, [['ip', 'addr', 'flush', 'dev', device, 'scope', 'global'],
                            ['ip', 'addr', 'add', cidr, 'dev', device]])]
    if cidr in have:
        return []
    return [Fix(label, [['ip', 'addr', 'add', cidr, 'dev', device]])]


def _route_key(route):
    return (route.get('dst'), route.get('gateway'), route.get('dev'), route.get('prefsrc'))


def want_table(state, table, routes, label):
    """Exactly `routes` ({dst, dev, gateway, prefsrc}) in routing table `table`."""
    have = sorted(_route_key(r) for r in routes_in_table(state, table))
    want = sorted(_route_key(r) for r in routes)
    if have == want:
        return []
    commands = [['ip', 'route', 'flush', 'table', str(table)]] if have else []
    for route in routes:
        argv = ['ip', 'route', 'replace', route['dst']]
        if route.get('gateway'):
            argv += ['via', route['gateway']]
        argv += ['dev', route['dev']]
        if route.get('prefsrc'):
            argv += ['src', route['prefsrc']]
        commands.append(argv + ['table', str(table)])
    return [Fix(label, commands)]


def want_rule(state, priority, source, table, label):
    """Exactly one rule at `priority`: from `source` lookup `table`."""
    have = [r for r in state['rules'] if r.get('priority') == priority]
    # Any other selector (iif, fwmark, ...) would narrow the rule: only these keys may appear.
    if len(have) == 1 and have[0].get('src') == source and str(have[0].get('table')) == str(table) \
            and int(have[0].get('srclen', 32)) == 32 and set(have[0]) <= set(('priority', 'src', 'srclen', 'table')):
        return []
    commands = [['ip', 'rule', 'del', 'priority', str(priority)] for _rule in have]
    commands.append(['ip', 'rule', 'add', 'from', source, 'lookup', str(table), 'priority', str(priority)])
    return [Fix(label, commands)]


def want_mark_rule(state, priority, mark, table, label):
    """Exactly one rule at `priority`: fwmark `mark` lookup `table`."""
    have = [r for r in state['rules'] if r.get('priority') == priority]
    if len(have) == 1 and have[0].get('src', 'all') == 'all' and str(have[0].get('table')) == str(table) \
            and int(str(have[0].get('fwmark', '0')), 0) == int(mark) and 'fwmask' not in have[0] \
            and set(have[0]) <= set(('priority', 'src', 'fwmark', 'table')):
        return []
    commands = [['ip', 'rule', 'del', 'priority', str(priority)] for _rule in have]
    commands.append(['ip', 'rule', 'add', 'fwmark', '0x%x' % int(mark), 'lookup', str(table), 'priority', str(priority)])
    return [Fix(label, commands)]


def want_no_rule(state, priority, label):
    have = [r for r in state['rules'] if r.get('priority') == priority]
    return [Fix(label, [['ip', 'rule', 'del', 'priority', str(priority)] for _rule in have])] if have else []


def want_no_default_route(state, device, metric, label):
    for route in routes_in_table(state, 'main'):
        if route.get('dst') == 'default' and route.get('dev') == device and int(route.get('metric', 0)) == int(metric):
            return [Fix(label, [['ip', 'route', 'del', 'default', 'dev', device, 'metric', str(metric)]])]
    return []


def want_default_route(state, gateway, device, metric, label):
    """A default route via gateway on device with metric, in the main table."""
    for route in routes_in_table(state, 'main'):
        if route.get('dst') == 'default' and route.get('gateway') == gateway and route.get('dev') == device \
                and int(route.get('metric', 0)) == int(metric):
            return []
    return [Fix(label, [['ip', 'route', 'replace', 'default', 'via', gateway, 'dev', device, 'metric', str(metric)]])]


def nft_comment(body):
    """A table comment naming the ruleset, so a check needs to compare one line."""
    return 'omr.deploy %s' % hashlib.sha256(body.encode('utf-8')).hexdigest()[:16]


def nft_table_text(family, name, body):
    """`nft -f` input replacing table family/name with one holding `body` (chains, sets)."""
    return ('table %s %s\ndelete table %s %s\ntable %s %s {\n  comment "%s"\n%s}\n'
            % (family, name, family, name, family, name, nft_comment(body), body))


def want_nft_table(host, family, name, body, label):
    """Table family/name holding `body`, or no such table when body is None."""
    rc, out, _err = host.run(['nft', 'list', 'table', family, name], check=False)
    present = rc == 0
    if body is None:
        if not present:
            return []
        return [Fix(label + ' (removed)', [['nft', 'delete', 'table', family, name]])]
    if present and re.search(r'^\s*comment "%s"' % re.escape(nft_comment(body)), out, re.M):
        return []
    return [Fix(label, [(['nft', '-f', '-'], nft_table_text(family, name, body))])]


# ---------------------------------------------------------------------------
# ping's summary and atomic files
# ---------------------------------------------------------------------------

PING_STATS_RE = re.compile(
    r'(\d+) packets transmitted, (\d+) (?:packets )?received,(?P<extra>[^\n]*?)([0-9.]+)% packet loss')
PING_RTT_RE = re.compile(
    r'(?:rtt|round-trip) min/avg/max(?:/(?:mdev|stddev))? = ([0-9.]+)/([0-9.]+)/([0-9.]+)(?:/[0-9.]+)? ms')
PING_ERRORS_RE = re.compile(r'\+(\d+) errors')


def parse_ping(text):
    """ping's summary (iputils or busybox) -> dict(transmitted, received, loss_pct, rtt_ms, errors).

    rtt_ms is the average round trip; None when no reply came back (no rtt line).
    All values are None when the text has no statistics line.
    """
    result = {'transmitted': None, 'received': None, 'loss_pct': None, 'rtt_ms': None, 'errors': 0}
    stats = PING_STATS_RE.search(text or '')
    if stats:
        result['transmitted'] = int(stats.group(1))
        result['received'] = int(stats.group(2))
        result['loss_pct'] = float(stats.group(4))
        errors = PING_ERRORS_RE.search(stats.group('extra'))
        if errors:
            result['errors'] = int(errors.group(1))
    rtt = PING_RTT_RE.search(text or '')
    if rtt:
        result['rtt_ms'] = float(rtt.group(2))
    return result


def write_atomic(path, text, mode=0o644, dir_mode=0o755, owner=None, check=None):
    """Write `text` to a temporary file next to `path`, then rename it over `path`.

    `owner` is (uid, gid) for the file; `check`, called with the temporary file's path before the
    rename, raises to leave `path` as it was (the temporary file is removed either way)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, dir_mode)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner is not None:
                os.fchown(f.fileno(), owner[0], owner[1])
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_json(path, what):
    """The JSON a program is fed, or HostError naming the file."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (IOError, OSError) as exc:
        raise HostError('cannot read %s %s: %s' % (what, path, exc))
    except ValueError as exc:
        raise HostError('%s %s is not valid JSON: %s' % (what, path, exc))
