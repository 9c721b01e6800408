# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the router's own traffic shaping as `tc` prints it, for
playbooks/diagnose.yml (filter omr.deploy.diagnose_shaping).

Which WAN a queue discipline shapes (its root: uploads; the root of the IFB its ingress redirects
to, OMR's SQM: downloads), at what rate, and the `tc` commands that take the shaping away and put
it back as it was. The text form of `tc qdisc show` is parsed, not `tc -j`: it is what every tc
prints (OpenWrt's tc-tiny too) and, with a few words rewritten, what tc reads back. A tree is only
rebuilt when it can be exactly: qdiscs of kinds listed in REBUILDABLE, htb classes, and no filter
on it (tc cannot print a filter back as a command). The playbook rehearses the rebuild on a
scratch IFB device and compares what tc then shows before it removes anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

try:
    from typing import Any, Dict, List, Optional
except ImportError:  # pragma: no cover
    Any = Dict = List = Optional = None

MARK = '#omr-diagnose#'

# Queue disciplines that order or drop packets but set no rate: the kernel's defaults (pfifo_fast,
# fq_codel, noqueue, mq), what net.core.default_qdisc may make the default (fq, sfq, pie, ...),
# and the hooks filters hang on (ingress, clsact). Anything else (tbf, htb, hfsc, cake, netem, an
# unknown kind) is taken for shaping; fq only with a maxrate, cake only with a bandwidth.
NOT_SHAPING = frozenset((
    'pfifo_fast', 'fq_codel', 'noqueue', 'mq', 'fq', 'pfifo', 'bfifo', 'pfifo_head_drop', 'sfq',
    'codel', 'pie', 'fq_pie', 'noop', 'prio', 'multiq', 'mqprio', 'ingress', 'clsact', 'choke', 'red',
))
# Kinds whose options `tc qdisc show` prints in a form `tc qdisc add` reads back (after REWRITES).
REBUILDABLE = frozenset(('tbf', 'htb', 'cake', 'netem', 'pfifo', 'bfifo', 'pfifo_fast'))
# Kinds that make classes of their own, which `tc class show` lists and nobody adds.
AUTO_CLASSES = frozenset(('tbf', 'cake', 'netem', 'mq', 'mqprio', 'prio', 'multiq', 'fq_codel', 'sfq', 'fq',
                          'pfifo_fast', 'fq_pie', 'choke', 'red'))
# Words tc prints that are counters or state, never options: dropped before comparing and rebuilding.
COUNTERS = {'refcnt': 1, 'direct_packets_stat': 1}
# The scratch device a rebuild is rehearsed on (at most 15 characters).
REHEARSAL_DEVICE = 'omr-diag-rh'
# Rates as tc prints them (sprint_rate): bit/s with SI or IEC prefixes, or bytes/s ("bps").
_RATE_RE = re.compile(r'^([0-9.]+)([KMGT]?i?)(bit|bps)$', re.IGNORECASE)
_PREFIX = {'': 1, 'k': 1e3, 'm': 1e6, 'g': 1e9, 't': 1e12, 'ki': 1024.0, 'mi': 1024.0 ** 2, 'gi': 1024.0 ** 3,
           'ti': 1024.0 ** 4}
_REDIRECT_RE = re.compile(r'mirred \((?:Egress|Ingress) Redirect to device ([^)\s]+)\)')
_POLICE_RE = re.compile(r'\bpolice\b.*?\brate (\S+)')
# An htb class's burst and cburst are kept in clock ticks and printed rounded down, so what tc
# prints does not read back to itself (1593b comes back as 1590b). Left out, tc sets its default
# again: the MTU, 1600 bytes, with a high-resolution clock, which it prints as 1580-1600 bytes.
_HTB_DEFAULT_BURST = re.compile(r'^1(5[89][0-9]|600)b$')


class QdiscError(ValueError):
    """tc output that cannot be read."""


def rate_mbit(text):
    # type: (Optional[str]) -> Optional[float]
    """'20Mbit' -> 20.0, '500Kbit' -> 0.5, '2500Kbps' (bytes) -> 20.0; None when not a rate."""
    match = _RATE_RE.match((text or '').strip())
    if not match:
        return None
    value = float(match.group(1)) * _PREFIX[match.group(2).lower()]
    if match.group(3).lower() == 'bps':
        value *= 8
    return round(value / 1e6, 3)


def _strip_counters(words):
    # type: (List[str]) -> List[str]
    out, skip = [], 0
    for word in words:
        if skip:
            skip -= 1
            continue
        if word in COUNTERS:
            skip = COUNTERS[word]
            continue
        out.append(word)
    return out


def _lines(text):
    # type: (str) -> List[str]
    """tc's lines, with indented continuation lines joined to the line they continue."""
    out = []  # type: List[str]
    for raw in (text or '').splitlines():
        if not raw.strip():
            continue
        if raw[:1] in (' ', '\t') and out:
            out[-1] += ' ' + raw.strip()
        else:
            out.append(raw.strip())
    return out


def parse_qdiscs(text):
    # type: (str) -> List[Dict[str, Any]]
    """`tc qdisc show [dev X]` -> [{kind, handle, parent ('root' or a class id), dev, options}].

    options are the words after the parent and the refcount, counters dropped."""
    qdiscs = []
    for line in _lines(text):
        words = line.split()
        if len(words) < 3 or words[0] != 'qdisc':
            continue
        kind, handle, rest = words[1], words[2], words[3:]
        dev = None
        if rest[:1] == ['dev'] and len(rest) > 1:
            dev, rest = rest[1], rest[2:]
        parent = None
        if rest[:1] == ['root']:
            parent, rest = 'root', rest[1:]
        elif rest[:1] == ['parent'] and len(rest) > 1:
            parent, rest = rest[1], rest[2:]
        elif rest[:1] == ['ingress']:
            parent, rest = 'ingress', rest[1:]
        options = [w for w in _strip_counters(rest) if not re.match(r'^-+$', w)]
        qdiscs.append({'kind': kind, 'handle': handle, 'parent': parent, 'dev': dev, 'options': options})
    return qdiscs


def parse_classes(text):
    # type: (str) -> List[Dict[str, Any]]
    """`tc class show dev X` -> [{kind, classid, parent ('root' or an id), leaf, options}]."""
    classes = []
    for line in _lines(text):
        words = line.split()
        if len(words) < 3 or words[0] != 'class':
            continue
        kind, classid, rest = words[1], words[2], words[3:]
        parent = None
        if rest[:1] == ['root']:
            parent, rest = 'root', rest[1:]
        elif rest[:1] == ['parent'] and len(rest) > 1:
            parent, rest = rest[1], rest[2:]
        leaf = None
        if rest[:1] == ['leaf'] and len(rest) > 1:
            leaf, rest = rest[1], rest[2:]
        classes.append({'kind': kind, 'classid': classid, 'parent': parent, 'leaf': leaf,
                        'options': _strip_counters(rest)})
    return classes


def _option(options, name):
    # type: (List[str], str) -> Optional[str]
    for i, word in enumerate(options[:-1]):
        if word == name:
            return options[i + 1]
    return None


def qdisc_rate(qdisc, classes=None):
    # type: (Dict[str, Any], Optional[List[Dict[str, Any]]]) -> Optional[float]
    """The rate a qdisc holds traffic to, in Mbit/s: tbf's rate, cake's bandwidth, fq's maxrate,
    netem's rate, an htb's highest top-level ceil; None when it sets none."""
    kind, options = qdisc['kind'], qdisc['options']
    if kind in ('tbf', 'netem'):
        return rate_mbit(_option(options, 'rate'))
    if kind == 'cake':
        return rate_mbit(_option(options, 'bandwidth'))
    if kind == 'fq':
        return rate_mbit(_option(options, 'maxrate'))
    if kind in ('htb', 'hfsc'):
        major = qdisc['handle']
        tops = [c for c in classes or [] if c['parent'] == 'root' and c['classid'].split(':')[0] + ':' == major]
        rates = [rate_mbit(_option(c['options'], 'ceil') or _option(c['options'], 'rate')) for c in tops]
        rates = [r for r in rates if r is not None]
        return max(rates) if rates else None
    return None


def is_shaping(qdisc):
    # type: (Dict[str, Any]) -> bool
    if qdisc['kind'] == 'fq':
        return _option(qdisc['options'], 'maxrate') is not None
    if qdisc['kind'] == 'cake':
        # cake without a bandwidth only manages its queue.
        return _option(qdisc['options'], 'bandwidth') not in (None, 'unlimited')
    return qdisc['kind'] not in NOT_SHAPING


def _rebuild_options(kind, options):
    # type: (str, List[str]) -> List[str]
    """What tc printed -> what `tc qdisc add` takes."""
    out = list(options)
    if kind == 'tbf':
        out = ['latency' if w == 'lat' else w for w in out]
    elif kind == 'cake':
        # cake prints "bandwidth unlimited" but reads a bare "unlimited".
        joined = ' '.join(out).replace('bandwidth unlimited', 'unlimited')
        out = joined.split()
    elif kind == 'pfifo':
        out = [w[:-1] if i and out[i - 1] == 'limit' and w.endswith('p') else w for i, w in enumerate(out)]
    elif kind == 'pfifo_fast':
        out = []            # bands and priomap are fixed; it takes no options
    return out


def _htb_class_options(options):
    # type: (List[str]) -> List[str]
    out = []  # type: List[str]
    skip = False
    for i, word in enumerate(options):
        if skip:
            skip = False
            continue
        if word in ('burst', 'cburst') and i + 1 < len(options) and _HTB_DEFAULT_BURST.match(options[i + 1]):
            skip = True
            continue
        out.append(word)
    return out


def _tc(device, words):
    # type: (str, List[str]) -> List[str]
    return ['tc'] + words[:1] + ['add', 'dev', device] + words[1:]


def tree_commands(device, qdiscs, classes):
    # type: (str, List[Dict[str, Any]], List[Dict[str, Any]]) -> List[List[str]]
    """The commands that build the root tree (qdiscs and htb classes) of `device` as parsed:
    each qdisc and class after its parent. Raises QdiscError when the tree cannot be rebuilt."""
    tree = [q for q in qdiscs if q['parent'] not in (None, 'ingress') and not q['parent'].startswith('ffff:')]
    for qdisc in tree:
        if qdisc['kind'] not in REBUILDABLE:
            raise QdiscError('%s: a %s qdisc is not rebuilt from what tc prints (only %s)'
                             % (device, qdisc['kind'], ', '.join(sorted(REBUILDABLE))))
    kinds = dict((q['handle'], q['kind']) for q in tree)
    own = []
    for cls in classes:
        major = cls['classid'].split(':')[0] + ':'
        if kinds.get(major) in AUTO_CLASSES:
            continue
        if cls['kind'] != 'htb':
            raise QdiscError('%s: a %s class is not rebuilt from what tc prints (only htb classes)' % (device, cls['kind']))
        own.append(cls)
    commands = []  # type: List[List[str]]
    built = set()
    pending = [('qdisc', q) for q in tree] + [('class', c) for c in own]
    while pending:
        progress = False
        # Level by level: what this pass builds hangs on what earlier passes built.
        ready = set(built)
        for item in list(pending):
            what, obj = item
            if what == 'qdisc':
                parent = obj['parent']
                if parent != 'root' and parent not in ready:
                    continue
                where = ['root'] if parent == 'root' else ['parent', parent]
                handle = [] if obj['handle'] in ('0:', '') else ['handle', obj['handle']]
                commands.append(_tc(device, ['qdisc'] + where + handle + [obj['kind']]
                                    + _rebuild_options(obj['kind'], obj['options'])))
                built.add(obj['handle'])
            else:
                major = obj['classid'].split(':')[0] + ':'
                parent = major if obj['parent'] == 'root' else obj['parent']
                if parent not in ready:
                    continue
                commands.append(_tc(device, ['class', 'parent', parent, 'classid', obj['classid'], 'htb']
                                    + _htb_class_options(obj['options'])))
                built.add(obj['classid'])
            pending.remove(item)
            progress = True
        if not progress:
            raise QdiscError('%s: %s has no parent tc showed' % (device, pending[0][1].get('handle') or pending[0][1].get('classid')))
    return commands


def normalize(qdisc_text, class_text=''):
    # type: (str, str) -> List[str]
    """What `tc qdisc show dev X` and `tc class show dev X` say of the root tree, without counters,
    device names and the ingress hook, sorted: equal before the removal and after the restore when
    it was put back exactly."""
    out = []
    for line in _lines(qdisc_text) + _lines(class_text):
        words = _strip_counters(line.split())
        if words[:1] == ['qdisc'] and len(words) > 1 and words[1] in ('ingress', 'clsact'):
            continue            # not part of the root tree, never removed
        if len(words) > 3 and words[3] == 'dev':
            del words[3:5]
        out.append(' '.join(words))
    return sorted(out)


# ---------------------------------------------------------------------------
# What `omr-diagnose.sh qdiscs DEV...` printed
# ---------------------------------------------------------------------------

def parse_dump(text):
    # type: (str) -> Dict[str, Any]
    """{'tc': bool, 'devices': {dev: {qdisc, class, filter, ingress: text, redirect_of: WAN or None}}}"""
    devices = {}  # type: Dict[str, Dict[str, Any]]
    current = None  # type: Optional[Dict[str, Any]]
    section = None  # type: Optional[str]
    tc = True
    for raw in (text or '').splitlines():
        if raw.startswith(MARK + ' '):
            words = raw[len(MARK) + 1:].split()
            if words[:1] == ['notc']:
                tc = False
            elif words[:1] == ['dev'] and len(words) > 1:
                # A device read twice (a WAN's IFB, asked for by name too) is the same: keep the last.
                current = devices[words[1]] = {'qdisc': '', 'class': '', 'filter': '', 'ingress': '',
                                               'redirect_of': words[3] if len(words) > 3 else None}
                section = None
            elif current is not None and words:
                section = words[0]
            continue
        if current is not None and section in ('qdisc', 'class', 'filter', 'ingress'):
            current[section] += raw + '\n'
    return {'tc': tc, 'devices': devices}


def _quote(argv):
    # type: (List[str]) -> str
    return ' '.join(shlex.quote(a) for a in argv)


def _tree(device, info):
    # type: (str, Dict[str, Any]) -> Dict[str, Any]
    """One device's root tree: what shapes, at what rate, and how to take it away and rebuild it."""
    qdiscs = parse_qdiscs(info['qdisc'])
    classes = parse_classes(info['class'])
    tree = [q for q in qdiscs if q['parent'] not in (None, 'ingress') and not (q['parent'] or '').startswith('ffff:')]
    shapers = [q for q in tree if is_shaping(q)]
    # The rate of the whole tree is its root's; a child's only holds its own class.
    rates = [r for r in (qdisc_rate(q, classes) for q in sorted(shapers, key=lambda q: q['parent'] != 'root'))
             if r is not None]
    out = {
        'device': device, 'kinds': [q['kind'] for q in tree], 'shaping': bool(shapers),
        'shaper': shapers[0]['kind'] if shapers else None, 'rate_mbit': rates[0] if rates else None,
        'show': info['qdisc'].strip(), 'classes': info['class'].strip(), 'before': normalize(info['qdisc'], info['class']),
        'removable': False, 'reason': None, 'remove': [], 'restore': [],
    }
    if not shapers:
        return out
    if info['filter'].strip():
        out['reason'] = ('filters steer traffic into the classes of %s on %s, and tc cannot print a filter back '
                         'as a command' % (shapers[0]['kind'], device))
        return out
    try:
        commands = tree_commands(device, qdiscs, classes)
    except QdiscError as exc:
        out['reason'] = str(exc)
        return out
    out.update(removable=True, remove=[['tc', 'qdisc', 'del', 'dev', device, 'root']], restore=commands)
    return out


def shaping(text, wans):
    # type: (str, List[Dict[str, Any]]) -> Dict[str, Any]
    """What `omr-diagnose.sh qdiscs` printed for the WANs' devices -> the router's shaping:

    {'tc': bool, 'shaped': bool, 'links': [{name, device, upload: tree, download: tree or None,
    policer: {rate_mbit} or None}], 'targets': [trees that shape and can be removed], 'blocked':
    [trees that shape and cannot], 'rehearse': shell that rebuilds every target on a scratch IFB and
    shows it, 'remove': shell, 'restore': shell}. A tree's `upload` is its WAN's root (egress);
    `download` the root of the IFB its ingress filters redirect to."""
    dump = parse_dump(text)
    devices = dump['devices']
    links = []
    for wan in wans:
        dev = wan['device']
        info = devices.get(dev)
        if info is None:
            links.append({'name': wan['name'], 'device': dev, 'upload': None, 'download': None, 'policer': None})
            continue
        upload = _tree(dev, info)
        upload['direction'] = 'upload'
        download = None
        targets = _REDIRECT_RE.findall(info['ingress'])
        if targets and targets[0] in devices:
            download = _tree(targets[0], devices[targets[0]])
            download.update(via=dev, direction='download')
        policer = None
        police = _POLICE_RE.search(' '.join(_lines(info['ingress'])))
        if police and not targets:
            policer = {'rate_mbit': rate_mbit(police.group(1)),
                       'reason': 'an ingress policer on %s: tc cannot print its filter back as a command' % dev}
        links.append({'name': wan['name'], 'device': dev, 'upload': upload, 'download': download, 'policer': policer})
    trees = [t for link in links for t in (link['upload'], link['download']) if t and t['shaping']]
    targets = [t for t in trees if t['removable']]
    blocked = [t for t in trees if not t['removable']]
    blocked += [dict(device=link['device'], shaper='police', rate_mbit=link['policer']['rate_mbit'],
                     reason=link['policer']['reason']) for link in links if link['policer']]
    rehearse = []
    for tree in targets:
        dev = REHEARSAL_DEVICE
        rebuilt = [_quote([a if a != tree['device'] else dev for a in cmd]) for cmd in tree['restore']]
        rehearse.append('echo "%s dev %s"; ip link del %s 2>/dev/null; ip link add %s type ifb && { %s; '
                        'echo "%s qdisc"; tc qdisc show dev %s; echo "%s class"; tc class show dev %s; }; '
                        'ip link del %s 2>/dev/null'
                        % (MARK, tree['device'], dev, dev, ' && '.join(rebuilt), MARK, dev, MARK, dev, dev))
    return {
        'tc': dump['tc'], 'shaped': bool(trees), 'links': links, 'targets': targets, 'blocked': blocked,
        'devices': [t['device'] for t in targets],
        'directions': sorted(set(t['direction'] for t in targets)),
        'rehearse': '; '.join(rehearse) or ':',
        'remove': '; '.join(_quote(c) for t in targets for c in t['remove']) or ':',
        # Each tree as one chain: the default qdisc the removal left goes first; a failed step stops its tree.
        'restore': '; '.join('{ tc qdisc del dev %s root 2>/dev/null; %s; }' % (
            shlex.quote(t['device']), ' && '.join(_quote(c) for c in t['restore'])) for t in targets) or ':',
    }


def compare(targets, text):
    # type: (List[Dict[str, Any]], str) -> List[str]
    """Each target tree against what a later dump (the rehearsal's, or the one after the restore)
    shows for its device: the differences in words, empty when every tree is as it was."""
    devices = parse_dump(text)['devices']
    problems = []
    for tree in targets:
        info = devices.get(tree['device'])
        if info is None:
            problems.append('%s: tc showed nothing for it' % tree['device'])
            continue
        now = normalize(info['qdisc'], info['class'])
        if now != tree['before']:
            problems.append('%s: was [%s], is [%s]' % (tree['device'], '; '.join(tree['before']), '; '.join(now)))
    return problems
