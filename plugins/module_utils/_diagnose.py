# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: playbooks/diagnose.yml's report (filters omr.deploy.diagnose_report
and omr.deploy.diagnose_html).

The five steps of OMR's troubleshooting advice against one router and its VPS: each link alone in
both directions; the VPS's CPU, memory, swap, OOM kills, network IO and top processes; MPTCP on
both ends with a live probe; the bytes per subflow and per interface during a bonded transfer; the
bonded transfer with and without the router's own shaping. `collect()` turns what the playbook
read (probe results, the output of playbooks/files/omr-diagnose.sh, ping, ps, facts) into one
JSON-able report, `verdicts()` says in words what it shows, and `render_html()` makes one
self-contained HTML page of it: inline CSS and SVG, no script, no external resource.

Every figure the page shows carries `data-path` (where it is in the report, dotted), `data-value`
(the report's value, as JSON) and `data-format` (how the visible text is made from it, FORMATS), so
a test can hold the page to the JSON.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import html
import json
import math

from ansible_collections.omr.deploy.plugins.module_utils._host import parse_ping
from ansible_collections.omr.deploy.plugins.module_utils._qdisc import shaping as plan_shaping

try:
    from typing import Any, Dict, List, Optional, Tuple
except ImportError:  # pragma: no cover
    Any = Dict = List = Optional = Tuple = None

MARK = '#omr-diagnose#'
VERSION = 1

# ---- thresholds of the verdicts ---------------------------------------------------------------
# A link alone below this fraction of what it can carry (its shaping, or omr_diagnose_capacity)
# is a bottleneck.
BOTTLENECK_ALONE = 0.6
# A link whose share of the bonded bytes is below this fraction of its share of the links alone
# (its rate alone over the sum of the rates alone) is the bonded transfer's bottleneck...
SHARE_RATIO = 0.5
# ...unless it carries less than this share alone anyway.
MIN_SHARE_ALONE = 0.05
# With interface counters only (curl), a WAN that carried less than this share of the bonded bytes
# carried no subflow.
NO_SUBFLOW_SHARE = 0.02
# A CPU this busy (all of them, or one core) during the bonded transfer was the limit.
CPU_LIMIT_PCT = 90.0
# Bonded at least this fraction of the links alone: bonding works (the lab's bonding check).
EFFICIENCY_OK = 0.9
# OMR's VPS needs at least 1 GB; under this share of its memory available, it is short of memory.
VPS_MIN_MEMORY_MB = 1024
LOW_AVAILABLE_PCT = 10.0
# A sample interval in which the WANs moved at least this fraction of the bonded bytes was part of
# the transfer (the timeline is cut to those, one sample either side).
ACTIVE_FRACTION = 0.01
# MPTcpExt counters that count connections or subflows falling back to plain TCP.
FALLBACK_COUNTERS = ('MPCapableFallbackACK', 'MPCapableFallbackSYNACK', 'MPFallbackTokenInit', 'InfiniteMapTx',
                     'InfiniteMapRx', 'DSSFallback', 'MPFailTx', 'MPFailRx')
# MPTcpExt counters the report shows when they moved, beside those.
MPTCP_COUNTERS = FALLBACK_COUNTERS + ('MPCapableSYNRX', 'MPCapableSYNTX', 'MPCapableACKRX', 'MPJoinSynRx',
                                      'MPJoinSynAckRx', 'MPJoinAckRx', 'MPJoinSynTx', 'MPJoinSynTxCreatSkErr',
                                      'AddAddr', 'AddAddrTx', 'EchoAdd', 'RmAddr', 'MPPrioTx', 'MPPrioRx',
                                      'MPTCPRetrans', 'DSSNotMatching')
TOP_PROCESSES = 5
# What the report keeps of each subflow of a probe.
SUBFLOW_KEYS = ('device', 'local_address', 'remote_address', 'bytes_received', 'bytes_acked', 'bytes_retrans')
# 32-bit routers keep 32-bit interface counters.
COUNTER_WRAP = 1 << 32


# ---------------------------------------------------------------------------
# What omr-diagnose.sh printed
# ---------------------------------------------------------------------------

def sections(text):
    # type: (Optional[str]) -> Dict[str, List[str]]
    """Lines under each "#omr-diagnose# NAME" mark."""
    out = {}  # type: Dict[str, List[str]]
    current = None  # type: Optional[List[str]]
    for line in (text or '').splitlines():
        if line.startswith(MARK + ' '):
            current = out.setdefault(line[len(MARK) + 1:].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return out


def _int(text, default=None):
    # type: (Any, Any) -> Any
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def parse_cpu_lines(lines):
    # type: (List[str]) -> Dict[str, List[int]]
    """/proc/stat's cpu lines -> {'cpu': [user, nice, system, idle, iowait, irq, softirq, steal], 'cpu0': ...}."""
    out = {}
    for line in lines or []:
        words = line.split()
        if words and words[0].startswith('cpu') and len(words) >= 5:
            out[words[0]] = [_int(w, 0) for w in words[1:9]] + [0] * max(0, 9 - len(words))
    return out


def cpu_usage(before, after):
    # type: (Dict[str, List[int]], Dict[str, List[int]]) -> Optional[Dict[str, Any]]
    """Busy share of the CPUs between two /proc/stat readings, in %: all together, each one, and
    the parts spent waiting for IO and stolen by the hypervisor. None without both readings."""
    def split(a, b):
        delta = [max(0, y - x) for x, y in zip(a, b)]
        total = sum(delta[:8])
        if not total:
            return None
        idle = delta[3] + delta[4]
        return {'busy': 100.0 * (total - idle) / total, 'iowait': 100.0 * delta[4] / total,
                'steal': 100.0 * delta[7] / total}
    if 'cpu' not in before or 'cpu' not in after:
        return None
    whole = split(before['cpu'], after['cpu'])
    if whole is None:
        return None
    per_cpu = {}
    for name in sorted((n for n in after if n != 'cpu' and n in before), key=lambda n: _int(n[3:], 0)):
        part = split(before[name], after[name])
        if part is not None:
            per_cpu[name] = round(part['busy'], 1)
    busiest = max(per_cpu, key=lambda n: per_cpu[n]) if per_cpu else None
    return {'busy_pct': round(whole['busy'], 1), 'iowait_pct': round(whole['iowait'], 1),
            'steal_pct': round(whole['steal'], 1), 'cpus': len(per_cpu) or None, 'per_cpu': per_cpu,
            'busiest': busiest, 'busiest_pct': per_cpu[busiest] if busiest else None}


def parse_keyvalue(lines):
    # type: (List[str]) -> Dict[str, int]
    """/proc/vmstat ('pswpout 12') or /proc/meminfo ('MemTotal:  1003108 kB', in kB)."""
    out = {}
    for line in lines or []:
        words = line.replace(':', ' ').split()
        if len(words) >= 2 and _int(words[1]) is not None:
            out[words[0]] = int(words[1])
    return out


def parse_net_dev(lines):
    # type: (List[str]) -> Dict[str, Dict[str, int]]
    """/proc/net/dev -> {dev: {rx_bytes, tx_bytes}}."""
    out = {}
    for line in lines or []:
        name, sep, rest = line.partition(':')
        words = rest.split()
        if sep and len(words) >= 9 and '|' not in line:
            out[name.strip()] = {'rx_bytes': _int(words[0], 0), 'tx_bytes': _int(words[8], 0)}
    return out


def parse_netstat(lines):
    # type: (List[str]) -> Dict[str, Dict[str, int]]
    """/proc/net/netstat: a line of names, then a line of values, per group -> {group: {name: value}}."""
    out = {}  # type: Dict[str, Dict[str, int]]
    lines = [line for line in lines or [] if ':' in line]
    for names, values in zip(lines[0::2], lines[1::2]):
        group, _sep, keys = names.partition(':')
        vgroup, _sep, vals = values.partition(':')
        if group == vgroup:
            out[group.strip()] = dict((k, _int(v, 0)) for k, v in zip(keys.split(), vals.split()))
    return out


def parse_pid_stats(lines):
    # type: (List[str]) -> Dict[int, Dict[str, Any]]
    """/proc/PID/stat lines -> {pid: {comm, ticks (user + system), rss_pages}}. The name is in
    parentheses and may hold spaces and parentheses itself: the fields follow the last ')'."""
    out = {}
    for line in lines or []:
        head, sep, tail = line.rpartition(')')
        pid, _sep, comm = head.partition(' (')
        fields = tail.split()
        if not sep or _int(pid) is None or len(fields) < 22:
            continue
        # After the name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21)
        out[int(pid)] = {'comm': comm, 'ticks': _int(fields[11], 0) + _int(fields[12], 0),
                         'rss_pages': _int(fields[21], 0)}
    return out


def parse_ps(text):
    # type: (Optional[str]) -> List[Dict[str, Any]]
    """`ps -eo pid,user,rss,pcpu,comm` (a header line first) -> [{pid, user, rss_kb, pcpu, comm}]."""
    out = []
    for line in (text or '').splitlines()[1:]:
        words = line.split(None, 4)
        if len(words) == 5 and _int(words[0]) is not None:
            try:
                pcpu = float(words[3])
            except ValueError:
                pcpu = None
            out.append({'pid': int(words[0]), 'user': words[1], 'rss_kb': _int(words[2], 0), 'pcpu': pcpu,
                        'comm': words[4].strip()})
    return out


def parse_snapshot(text):
    # type: (Optional[str]) -> Dict[str, Any]
    """omr-diagnose.sh snapshot -> {uptime, cpu, vmstat, meminfo, net, netstat, clk_tck, pids}."""
    parts = sections(text)
    uptime = (parts.get('uptime') or [''])[0].split()
    try:
        up = float(uptime[0]) if uptime else None
    except ValueError:
        up = None
    return {
        'present': 'end' in parts, 'uptime': up, 'cpu': parse_cpu_lines(parts.get('stat')),
        'vmstat': parse_keyvalue(parts.get('vmstat')), 'meminfo': parse_keyvalue(parts.get('meminfo')),
        'net': parse_net_dev(parts.get('net/dev')), 'netstat': parse_netstat(parts.get('net/netstat')),
        'clk_tck': _int((parts.get('clk_tck') or [''])[0].strip(), 100) or 100,
        'pids': parse_pid_stats(parts.get('pids')),
    }


def parse_samples(text):
    # type: (Optional[str]) -> List[Dict[str, Any]]
    """omr-diagnose.sh's sampler -> [{t, cpu: {...}, dev: {name: (rx, tx) or None}}], in order."""
    samples = []  # type: List[Dict[str, Any]]
    for line in sections(text).get('samples', []):
        words = line.split()
        if not words:
            continue
        if words[0] == 't' and len(words) == 2:
            try:
                samples.append({'t': float(words[1]), 'cpu': {}, 'dev': {}})
            except ValueError:
                continue
        elif samples and words[0].startswith('cpu'):
            samples[-1]['cpu'].update(parse_cpu_lines([line]))
        elif samples and words[0] == 'd' and len(words) == 4:
            rx, tx = _int(words[2]), _int(words[3])
            samples[-1]['dev'][words[1]] = (rx, tx) if rx is not None and tx is not None else None
    return samples


def _grow(a, b):
    # type: (int, int) -> int
    return b - a if b >= a else b + COUNTER_WRAP - a


def active_window(samples, devices, index):
    # type: (List[Dict[str, Any]], List[str], int) -> Tuple[int, int]
    """(first, last) sample of the transfer: from the sample before the first interval that moved
    at least ACTIVE_FRACTION of the devices' bytes to the sample after the last one."""
    if len(samples) < 2:
        return 0, max(0, len(samples) - 1)
    steps = []
    for a, b in zip(samples, samples[1:]):
        moved = 0
        for dev in devices:
            x, y = a['dev'].get(dev), b['dev'].get(dev)
            if x is not None and y is not None:
                moved += _grow(x[index], y[index])
        steps.append(moved)
    total = sum(steps)
    busy = [i for i, moved in enumerate(steps) if total and moved >= ACTIVE_FRACTION * total]
    if not busy:
        return 0, len(samples) - 1
    return busy[0], busy[-1] + 1


def timeline(samples, wans, direction, interval):
    # type: (List[Dict[str, Any]], List[Dict[str, Any]], str, float) -> Dict[str, Any]
    """The WANs' bytes over the bonded transfer: seconds from its start, cumulative bytes per WAN
    (received for a download, sent for an upload), cut to the transfer (active_window)."""
    index = 0 if direction == 'download' else 1
    devices = [w['device'] for w in wans]
    first, last = active_window(samples, devices, index)
    window = samples[first:last + 1]
    out = {'interval': interval, 'direction': direction, 'counter': 'rx_bytes' if index == 0 else 'tx_bytes',
           't': [], 'series': []}
    if len(window) < 2:
        return out
    out['t'] = [round(s['t'] - window[0]['t'], 2) for s in window]
    for wan in wans:
        dev = wan['device']
        values, total, previous = [], 0, None
        for sample in window:
            now = sample['dev'].get(dev)
            if now is not None and previous is not None:
                total += _grow(previous[index], now[index])
            previous = now if now is not None else previous
            values.append(total)
        out['series'].append({'name': wan['name'], 'device': dev, 'bytes': values})
    return out


def window_cpu(samples, first=None, last=None):
    # type: (List[Dict[str, Any]], Optional[int], Optional[int]) -> Optional[Dict[str, Any]]
    if not samples:
        return None
    first = 0 if first is None else first
    last = len(samples) - 1 if last is None else last
    if last <= first:
        return None
    return cpu_usage(samples[first]['cpu'], samples[last]['cpu'])


# ---------------------------------------------------------------------------
# collect()
# ---------------------------------------------------------------------------

def _probe(res):
    # type: (Any) -> Optional[Dict[str, Any]]
    """A registered omr.deploy.mptcp_probe result -> its figures, or {'error': msg} when it failed;
    None when it did not run."""
    if not isinstance(res, dict) or res.get('skipped') or not res:
        return None
    if res.get('failed') or res.get('throughput_mbps') is None:
        return {'error': str(res.get('msg') or 'the probe returned no throughput')}
    return {
        'mbps': round(float(res['throughput_mbps']), 2), 'mptcp': bool(res.get('mptcp')),
        'subflows': _int(res.get('subflows')), 'bytes': _int(res.get('bytes')),
        'seconds': res.get('seconds'), 'warnings': [str(w) for w in res.get('warnings') or []],
        'subflow_details': [dict((k, sf.get(k)) for k in SUBFLOW_KEYS) for sf in res.get('subflow_details') or []],
    }


def _capacity(capacity, name, direction):
    # type: (Dict[str, Any], str, str) -> Optional[float]
    entry = (capacity or {}).get(name) or {}
    value = entry.get(direction, entry.get('down_mbit' if direction == 'download' else 'up_mbit'))
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _mptcp_summary(facts):
    # type: (Any) -> Optional[Dict[str, Any]]
    if not isinstance(facts, dict) or not facts:
        return None
    limits = facts.get('limits') or {}
    return {
        'flavour': facts.get('flavour'), 'enabled': facts.get('enabled'), 'kernel': facts.get('kernel'),
        'path_manager': facts.get('path_manager'), 'scheduler': facts.get('scheduler'),
        'subflows_limit': limits.get('subflows'), 'add_addr_accepted_limit': limits.get('add_addr_accepted'),
        'congestion_control': (facts.get('congestion_control') or {}).get('current'),
        'endpoints': ['%s%s %s' % (e.get('address'), ' dev %s' % e['dev'] if e.get('dev') else '',
                                   ','.join(str(f) for f in e.get('flags') or []))
                      for e in facts.get('endpoints') or []],
    }


def _counter_deltas(before, after, names):
    # type: (Dict[str, Any], Dict[str, Any], Tuple[str, ...]) -> Dict[str, int]
    a = (before.get('netstat') or {}).get('MPTcpExt') or {}
    b = (after.get('netstat') or {}).get('MPTcpExt') or {}
    return dict((n, b[n] - a.get(n, 0)) for n in names if n in b and b[n] - a.get(n, 0))


def _top_processes(before, after, ps, seconds):
    # type: (Dict[str, Any], Dict[str, Any], List[Dict[str, Any]], Optional[float]) -> Tuple[List[Any], List[Any]]
    users = dict((p['pid'], p['user']) for p in ps)
    top_cpu = []
    if seconds and before.get('pids') and after.get('pids'):
        hz = float(after.get('clk_tck') or 100)
        for pid, now in after['pids'].items():
            then = before['pids'].get(pid)
            if then is None or then['comm'] != now['comm']:
                continue
            pct = 100.0 * (now['ticks'] - then['ticks']) / hz / seconds
            if pct > 0:
                top_cpu.append({'pid': pid, 'comm': now['comm'], 'user': users.get(pid), 'cpu_pct': round(pct, 1)})
        top_cpu.sort(key=lambda p: (-p['cpu_pct'], p['pid']))
    top_rss = [{'pid': p['pid'], 'comm': p['comm'], 'user': p['user'], 'rss_mb': round(p['rss_kb'] / 1024.0, 1)}
               for p in sorted(ps, key=lambda p: (-p['rss_kb'], p['pid']))]
    return top_cpu[:TOP_PROCESSES], top_rss[:TOP_PROCESSES]


def _vps(snapshots, samples_text, devices, ps_text, memory, bonded_direction):
    # type: (Dict[str, Any], Optional[str], Optional[List[str]], Optional[str], Any, str) -> Dict[str, Any]
    snaps = dict((k, parse_snapshot(v)) for k, v in (snapshots or {}).items() if v)
    start, before, after, end = (snaps.get(k) or {} for k in ('start', 'before', 'after', 'end'))
    samples = parse_samples(samples_text)
    # The sampler read every device ("all") unless told which.
    devices = [d for d in (devices or (sorted(samples[0]['dev']) if samples else [])) if d != 'lo']
    index = 0 if bonded_direction == 'upload' else 1        # the VPS sends a download
    first, last = active_window(samples, devices, index)
    cpu = window_cpu(samples, first, last)
    source = 'samples'
    if cpu is None and before and after:
        cpu, source = cpu_usage(before.get('cpu') or {}, after.get('cpu') or {}), 'snapshots'
    net = []
    if len(samples) > 1 and last > first:
        seconds = samples[last]['t'] - samples[first]['t']
        for dev in devices:
            a, b = samples[first]['dev'].get(dev), samples[last]['dev'].get(dev)
            if a is None or b is None or not seconds:
                continue
            rx, tx = _grow(a[0], b[0]), _grow(a[1], b[1])
            net.append({'device': dev, 'rx_bytes': rx, 'tx_bytes': tx, 'rx_mbps': round(rx * 8 / seconds / 1e6, 2),
                        'tx_mbps': round(tx * 8 / seconds / 1e6, 2)})
    elif before.get('net') and after.get('net') and after.get('uptime') and before.get('uptime'):
        seconds = after['uptime'] - before['uptime']
        for dev in sorted(after['net']):
            if dev == 'lo' or dev not in before['net'] or seconds <= 0:
                continue
            rx = after['net'][dev]['rx_bytes'] - before['net'][dev]['rx_bytes']
            tx = after['net'][dev]['tx_bytes'] - before['net'][dev]['tx_bytes']
            if rx or tx:
                net.append({'device': dev, 'rx_bytes': rx, 'tx_bytes': tx, 'rx_mbps': round(rx * 8 / seconds / 1e6, 2),
                            'tx_mbps': round(tx * 8 / seconds / 1e6, 2)})
    seconds = (after['uptime'] - before['uptime']) if after.get('uptime') and before.get('uptime') else None
    top_cpu, top_rss = _top_processes(before, after, parse_ps(ps_text), seconds)
    meminfo = (end or after or start).get('meminfo') or {}
    mem = memory if isinstance(memory, dict) else {}
    first_vm, last_vm = (start or before).get('vmstat') or {}, (end or after).get('vmstat') or {}
    swap = None
    if 'pswpout' in last_vm and 'pswpout' in first_vm:
        swap = {'pages_in': last_vm.get('pswpin', 0) - first_vm.get('pswpin', 0),
                'pages_out': last_vm['pswpout'] - first_vm['pswpout']}
    oom = last_vm.get('oom_kill')
    return {
        'reached': bool(snaps), 'cpu': cpu, 'cpu_source': source if cpu else None,
        'memory': {
            'total_mb': meminfo['MemTotal'] // 1024 if 'MemTotal' in meminfo else mem.get('meminfo_total_mb'),
            'available_mb': meminfo['MemAvailable'] // 1024 if 'MemAvailable' in meminfo else mem.get('meminfo_available_mb'),
            'swap_total_mb': meminfo['SwapTotal'] // 1024 if 'SwapTotal' in meminfo else mem.get('swap_total_mb'),
            'swap_free_mb': meminfo['SwapFree'] // 1024 if 'SwapFree' in meminfo else None,
            'installed_mb': mem.get('installed_mb'), 'effective_mb': mem.get('effective_mb'),
            'virtualization': mem.get('virtualization'),
        },
        'swap': swap, 'oom_kills': oom,
        'oom_kills_test': (oom - first_vm['oom_kill']) if oom is not None and 'oom_kill' in first_vm else None,
        'net': net, 'top_cpu': top_cpu, 'top_rss': top_rss,
        'mptcp_counters': _counter_deltas(before, after, MPTCP_COUNTERS) if before and after else {},
    }


def collect(router, wans, single=None, bonded=None, unshaped=None, pings=None, samples=None, interval=0.5,
            vps=None, vps_address=None, vps_snapshots=None, vps_samples=None, vps_devices=None, vps_ps=None,
            vps_memory=None, router_snapshots=None, mptcp=None, qdiscs=None, shaping=None, shaping_result=None,
            capacity=None, backend='linux', client='python', seconds=None, generated=None, check_mode=False,
            notes=None):
    # type: (...) -> Dict[str, Any]
    """What the playbook read -> the report (see the module's docstring and filter diagnose_report).

    wans: the router plan's WANs measured (name, device, address, multipath), in order.
    single: {'download': [probe per WAN], 'upload': [...]}; bonded: {'download': probe, 'upload': probe};
    unshaped: {'download': probe, ...}, the bonded transfer with the router's shaping removed.
    pings: ping's output per WAN. samples: the router's sampler (omr-diagnose.sh sample) during
    the bonded download, every `interval` s. vps_snapshots: omr-diagnose.sh snapshot on the VPS,
    {'start', 'before', 'after', 'end'} (before and after: the bonded download). vps_samples: its
    sampler over the same transfer, of vps_devices. vps_ps: `ps -eo pid,user,rss,pcpu,comm`.
    vps_memory: the omr_memory facts. router_snapshots: {'before', 'after'} the bonded download.
    mptcp: {'router': omr_mptcp facts, 'vps': omr_mptcp facts}. qdiscs: what omr-diagnose.sh qdiscs
    printed of the WANs; shaping: filter diagnose_shaping's result of it (worked out from qdiscs when
    not given); shaping_result: {'removed': bool, 'restored': bool, 'problems': [...], 'skipped': why}.
    capacity: {wan: {download, upload}} in Mbit/s.
    """
    single = single or {}
    bonded = bonded or {}
    unshaped = unshaped or {}
    pings = list(pings or [])
    directions = [d for d in ('download', 'upload') if any(_probe(r) for r in single.get(d) or []) or _probe(bonded.get(d))]
    directions = directions or ['download']
    if shaping is None and qdiscs is not None:
        shaping = plan_shaping(qdiscs, wans)
    shaping = shaping or {}
    shaping_links = dict((link['name'], link) for link in shaping.get('links') or [])
    bonded_dl = _probe(bonded.get('download'))
    details = (bonded_dl or {}).get('subflow_details') or []
    subflow_total = sum(_int(sf.get('bytes_received'), 0) for sf in details if not sf.get('device'))
    router_samples = parse_samples(samples)
    line = timeline(router_samples, wans, 'download', interval)
    interface_total = sum(s['bytes'][-1] for s in line['series']) if line['t'] else 0
    links = []
    for i, wan in enumerate(wans):
        alone = {}
        errors = {}
        for direction in ('download', 'upload'):
            results = single.get(direction) or []
            res = _probe(results[i]) if i < len(results) else None
            alone[direction] = res.get('mbps') if res else None
            if res and 'error' in res:
                errors[direction] = res['error']
        ping = parse_ping(pings[i]) if i < len(pings) and pings[i] else {}
        shaped = shaping_links.get(wan['name']) or {}
        # What the link can carry: what the inventory says it is sold at, else the router's own shaping.
        cap, source = {}, {}
        for direction, tree in (('upload', shaped.get('upload')), ('download', shaped.get('download'))):
            rate = tree.get('rate_mbit') if tree and tree.get('shaping') else None
            if direction == 'download' and rate is None and shaped.get('policer'):
                rate = shaped['policer'].get('rate_mbit')
            cap[direction] = _capacity(capacity, wan['name'], direction)
            source[direction] = 'expected' if cap[direction] is not None else None
            if cap[direction] is None and rate is not None:
                cap[direction], source[direction] = rate, 'shaped'
        mine = [sf for sf in details if sf.get('local_address') == wan.get('address') and not sf.get('device')]
        carried = sum(_int(sf.get('bytes_received'), 0) for sf in mine) if details and client == 'python' else None
        series = [s for s in line['series'] if s['device'] == wan['device']]
        iface = series[0]['bytes'][-1] if series and line['t'] else None
        links.append({
            'name': wan['name'], 'device': wan.get('device'), 'address': wan.get('address'),
            'multipath': wan.get('multipath'), 'rtt_ms': ping.get('rtt_ms'), 'loss_pct': ping.get('loss_pct'),
            'capacity': cap, 'capacity_source': source, 'alone': alone, 'errors': errors,
            # Without per-subflow data (no ctypes, kernel before 5.16) the subflows are not known.
            'subflows': len(mine) if client == 'python' and details else None,
            'subflow_bytes': carried,
            'subflow_share': round(carried / float(subflow_total), 4) if carried is not None and subflow_total else None,
            'interface_bytes': iface,
            'interface_share': round(iface / float(interface_total), 4) if iface is not None and interface_total else None,
        })
    sums = dict((d, round(sum(link['alone'][d] or 0.0 for link in links), 2)) for d in directions)
    bonded_out = {}
    for direction in ('download', 'upload'):
        res = _probe(bonded.get(direction))
        if res and 'error' not in res:
            res.pop('subflow_details', None)
            res['sum_alone_mbps'] = sums.get(direction)
            res['efficiency'] = round(res['mbps'] / sums[direction], 3) if sums.get(direction) else None
        bonded_out[direction] = res
    unshaped_out = {}
    for direction in ('download', 'upload'):
        res = _probe(unshaped.get(direction))
        if res:
            res.pop('subflow_details', None)
        unshaped_out[direction] = res
    result = shaping_result or {}
    trees = []
    for link in shaping.get('links') or []:
        for direction, tree in (('upload', link.get('upload')), ('download', link.get('download'))):
            if tree and tree.get('shaping'):
                trees.append({'link': link['name'], 'device': tree['device'], 'direction': direction,
                              'shaper': tree.get('shaper'), 'kinds': tree.get('kinds'), 'rate_mbit': tree.get('rate_mbit'),
                              'removable': bool(tree.get('removable')), 'reason': tree.get('reason'),
                              'show': tree.get('show')})
        if link.get('policer'):
            trees.append({'link': link['name'], 'device': link['device'], 'direction': 'download', 'shaper': 'police',
                          'kinds': ['ingress'], 'rate_mbit': link['policer'].get('rate_mbit'), 'removable': False,
                          'reason': link['policer'].get('reason'), 'show': None})
    rsnaps = dict((k, parse_snapshot(v)) for k, v in (router_snapshots or {}).items() if v)
    rbefore, rafter = rsnaps.get('before') or {}, rsnaps.get('after') or {}
    first, last = active_window(router_samples, [w['device'] for w in wans], 0)
    router_cpu = window_cpu(router_samples, first, last)
    if router_cpu is None and rbefore and rafter:
        router_cpu = cpu_usage(rbefore.get('cpu') or {}, rafter.get('cpu') or {})
    mptcp = mptcp or {}
    all_notes = list(notes or [])
    if client == 'curl':
        all_notes.append('downloads only: %s, and its curl client only downloads; per WAN, the bonded bytes are its '
                         'interface counters, not its subflows' % (
                             'the router has no Python (omr_router_backend openwrt), so the probe runs with curl'
                             if backend == 'openwrt' else 'the probe ran with curl (omr_diagnose_client)'))
    if check_mode:
        all_notes.append('check mode: the probes ran, but no shaping qdisc was removed')
    return {
        'version': VERSION, 'router': router, 'vps': vps, 'vps_address': vps_address, 'backend': backend,
        'client': client, 'seconds': seconds, 'generated': generated, 'check_mode': bool(check_mode),
        'directions': directions, 'notes': all_notes, 'links': links,
        'bonded': {'download': bonded_out['download'], 'upload': bonded_out['upload'],
                   'subflow_bytes': subflow_total if client == 'python' and details else None,
                   'interface_bytes': interface_total if line['t'] else None},
        'unshaped': unshaped_out,
        'timeline': line,
        'router_cpu': router_cpu,
        'shaping': {'tc': shaping.get('tc', True) if shaping else None, 'shaped': bool(trees), 'trees': trees,
                    'removed': bool(result.get('removed')), 'restored': result.get('restored'),
                    'problems': list(result.get('problems') or []), 'skipped': result.get('skipped')},
        'vps_stats': _vps(vps_snapshots, vps_samples, vps_devices, vps_ps, vps_memory, 'download') if vps else None,
        'mptcp': {'router': _mptcp_summary(mptcp.get('router')), 'vps': _mptcp_summary(mptcp.get('vps')),
                  'router_counters': _counter_deltas(rbefore, rafter, MPTCP_COUNTERS) if rbefore and rafter else {}},
    }


# ---------------------------------------------------------------------------
# verdicts()
# ---------------------------------------------------------------------------

def _mbit(value):
    # type: (float) -> str
    return '%.1f' % value if value < 100 else '%.0f' % value


def _rate(value):
    # type: (float) -> str
    """20.0 -> '20', 6.14 -> '6.1': a capacity as people write it."""
    return ('%.1f' % value).rstrip('0').rstrip('.')


def verdicts(report):
    # type: (Dict[str, Any]) -> List[Dict[str, str]]
    """What the report shows, in words: [{level: problem|warning|ok|info, topic, text}], problems
    first. The thresholds are this module's constants."""
    out = []  # type: List[Dict[str, str]]

    def say(level, topic, text):
        out.append({'level': level, 'topic': topic, 'text': text})

    links = report.get('links') or []
    bonded = report.get('bonded') or {}
    client = report.get('client')
    for link in links:
        for direction, error in sorted((link.get('errors') or {}).items()):
            say('problem', 'links', '%s carried nothing alone (%s): %s' % (link['name'], direction, error))
    # 1. Each link alone, against what it can carry.
    for link in links:
        for direction in report.get('directions') or ['download']:
            alone, cap = link['alone'].get(direction), link['capacity'].get(direction)
            if alone is None or not cap or alone >= BOTTLENECK_ALONE * cap:
                continue
            word = 'shaped' if link['capacity_source'].get(direction) == 'shaped' else 'expected'
            say('problem', 'links', '%s is the bottleneck: %s of %s Mbit/s %s (%s, alone)'
                % (link['name'], _mbit(alone), _rate(cap), word, direction))
    # 2. The bonded transfer: MPTCP, every link's part, the efficiency.
    down = bonded.get('download')
    if down and 'error' in down:
        say('problem', 'mptcp', 'the bonded transfer failed: %s' % down['error'])
    elif down:
        if not down.get('mptcp'):
            say('problem', 'mptcp', 'MPTCP fell back to plain TCP on the bonded transfer%s'
                % (': %s' % down['warnings'][0] if down.get('warnings') else ''))
        else:
            sums = down.get('sum_alone_mbps') or 0.0
            for link in links:
                if link['multipath'] == 'backup':
                    continue
                share = link['subflow_share'] if client == 'python' else link['interface_share']
                no_subflow = (link['subflows'] == 0) if client == 'python' else (
                    share is not None and share < NO_SUBFLOW_SHARE)
                if no_subflow:
                    say('problem', 'mptcp', 'MPTCP fell back on %s: %s' % (
                        link['name'], 'no subflow left from %s' % link['address'] if client == 'python'
                        else 'it carried %.1f %% of the bonded bytes' % (100.0 * (share or 0))))
                    continue
                alone = link['alone'].get('download')
                if share is None or not alone or not sums:
                    continue
                expected = alone / sums
                if expected >= MIN_SHARE_ALONE and share < SHARE_RATIO * expected:
                    say('problem', 'links', '%s is the bottleneck of the bonded transfer: it carried %.1f %% of the '
                        'bytes against %.1f %% of what the links carry alone' % (link['name'], 100 * share, 100 * expected))
        eff = down.get('efficiency')
        if down.get('mptcp') and eff is not None:
            if eff >= EFFICIENCY_OK:
                say('ok', 'mptcp', 'bonding works: %s Mbit/s bonded, %.2f of the links alone (%s Mbit/s)'
                    % (_mbit(down['mbps']), eff, _mbit(down['sum_alone_mbps'])))
            else:
                say('warning', 'mptcp', 'bonded %s Mbit/s is only %.2f of the links alone (%s Mbit/s)'
                    % (_mbit(down['mbps']), eff, _mbit(down['sum_alone_mbps'])))
    for side in ('router', 'vps'):
        state = (report.get('mptcp') or {}).get(side)
        name = 'the router' if side == 'router' else 'the VPS'
        if state and (state.get('flavour') != 'v1' or not state.get('enabled')):
            say('problem', 'mptcp', 'MPTCP is not on on %s (flavour %s, enabled %s)'
                % (name, state.get('flavour'), state.get('enabled')))
    router_mptcp = (report.get('mptcp') or {}).get('router') or {}
    extra = len([link for link in links if link['multipath'] in ('on', 'backup')])
    limit = router_mptcp.get('subflows_limit')
    if limit is not None and limit < extra:
        say('problem', 'mptcp', 'the router allows %d extra subflow(s) for its %d extra WAN(s)' % (limit, extra))
    # 3. The VPS.
    stats = report.get('vps_stats')
    if report.get('vps') is None:
        say('warning', 'vps', 'the VPS at %s is not in the inventory: its CPU, memory and MPTCP were not read'
            % report.get('vps_address'))
    elif stats:
        cpu = stats.get('cpu')
        if cpu and cpu['busy_pct'] >= CPU_LIMIT_PCT:
            say('problem', 'vps', "the VPS's CPU was the limit: %.0f %% busy" % cpu['busy_pct'])
        elif cpu and cpu.get('busiest_pct') is not None and cpu['busiest_pct'] >= CPU_LIMIT_PCT and (cpu.get('cpus') or 0) > 1:
            say('problem', 'vps', "one of the VPS's CPUs was the limit: %s %.0f %% busy" % (cpu['busiest'], cpu['busiest_pct']))
        if cpu and cpu.get('steal_pct', 0) >= 10:
            say('warning', 'vps', "the VPS's hypervisor took %.0f %% of its CPU (steal)" % cpu['steal_pct'])
        swap = stats.get('swap')
        if swap and swap['pages_out'] > 0:
            say('problem', 'vps', 'the VPS swapped: %d pages out during the test' % swap['pages_out'])
        elif swap and swap['pages_in'] > 0:
            say('warning', 'vps', 'the VPS read %d pages back from swap during the test' % swap['pages_in'])
        if stats.get('oom_kills'):
            say('problem', 'vps', '%d OOM kills since boot on the VPS' % stats['oom_kills'])
        mem = stats.get('memory') or {}
        if mem.get('installed_mb') and mem['installed_mb'] < VPS_MIN_MEMORY_MB:
            say('problem', 'vps', 'the VPS has %d MB of memory, below the 1 GB OMR needs' % mem['installed_mb'])
        if mem.get('available_mb') is not None and mem.get('total_mb') and \
                100.0 * mem['available_mb'] / mem['total_mb'] < LOW_AVAILABLE_PCT:
            say('problem', 'vps', 'the VPS had only %d of %d MB available' % (mem['available_mb'], mem['total_mb']))
        if cpu and cpu['busy_pct'] < CPU_LIMIT_PCT and not (swap and (swap['pages_out'] or swap['pages_in'])) \
                and not stats.get('oom_kills'):
            say('ok', 'vps', "the VPS kept up: CPU %.0f %% busy, no swapping, no OOM kill" % cpu['busy_pct'])
    rcpu = report.get('router_cpu')
    if rcpu and rcpu['busy_pct'] >= CPU_LIMIT_PCT:
        say('problem', 'router', "the router's CPU was the limit: %.0f %% busy" % rcpu['busy_pct'])
    elif rcpu and rcpu.get('busiest_pct') is not None and rcpu['busiest_pct'] >= CPU_LIMIT_PCT and (rcpu.get('cpus') or 0) > 1:
        say('problem', 'router', "one of the router's CPUs was the limit: %s %.0f %% busy" % (rcpu['busiest'], rcpu['busiest_pct']))
    # 4. The router's own shaping.
    shaping = report.get('shaping') or {}
    unshaped = report.get('unshaped') or {}
    if shaping.get('tc') is False:
        say('warning', 'shaping', "the router has no tc: its qdiscs were not read")
    elif not shaping.get('shaped'):
        say('info', 'shaping', "no shaping qdisc on the router (only the kernel's default)")
    for tree in shaping.get('trees') or []:
        what = 'the router shapes %s with %s%s (%s)' % (
            tree['link'], tree['shaper'], ' at %s Mbit/s' % _rate(tree['rate_mbit']) if tree.get('rate_mbit') else '',
            tree['direction'] + 's' if tree['direction'] else '')
        compared = unshaped.get(tree['direction'])
        with_it = bonded.get(tree['direction'])
        if compared and 'error' not in compared and with_it and 'error' not in with_it:
            say('info', 'shaping', '%s; without it bonded %s vs %s Mbit/s with it' % (
                what, _mbit(compared['mbps']), _mbit(with_it['mbps'])))
        elif not tree['removable']:
            say('warning', 'shaping', '%s; not removed: %s' % (what, tree['reason']))
        elif report.get('check_mode'):
            say('info', 'shaping', '%s; check mode: not removed, so not compared' % what)
        elif shaping.get('skipped'):
            say('info', 'shaping', '%s; not removed: %s' % (what, shaping['skipped']))
        elif compared and 'error' in compared:
            say('problem', 'shaping', '%s; without it the bonded transfer failed: %s' % (what, compared['error']))
        else:
            say('info', 'shaping', '%s; no bonded %s to compare' % (what, tree['direction']))
    if shaping.get('removed') and shaping.get('restored') is False:
        say('problem', 'shaping', 'the shaping was NOT put back as it was: %s' % '; '.join(shaping.get('problems') or []))
    elif shaping.get('removed') and shaping.get('restored'):
        say('ok', 'shaping', 'the shaping was put back as it was (tc shows the same qdiscs and classes)')
    order = {'problem': 0, 'warning': 1, 'ok': 2, 'info': 3}
    return sorted(out, key=lambda v: order[v['level']])


def report(raw):
    # type: (Dict[str, Any]) -> Dict[str, Any]
    """collect() and verdicts() in one: the JSON the playbook writes."""
    out = collect(**raw)
    out['verdicts'] = verdicts(out)
    return out


# ---------------------------------------------------------------------------
# render_html()
# ---------------------------------------------------------------------------

# How a figure's visible text is made from its value (data-format); None always shows as '-'.
FORMATS = {
    'str': str,
    'int': lambda v: '%d' % v,
    'f1': lambda v: '%.1f' % v,
    'f2': lambda v: '%.2f' % v,
    'f3': lambda v: '%.3f' % v,
    'pct': lambda v: '%.1f' % (100.0 * v),      # a ratio, shown in %
    'mb': lambda v: '%.1f' % (v / 1e6),         # bytes, shown in MB
    'bool': lambda v: 'yes' if v else 'no',
    'list': lambda v: ', '.join(str(x) for x in v) if v else '-',
}
NONE_TEXT = '-'
COLORS = {'download': '#2b6cb0', 'upload': '#c05621', 'bonded': '#2f855a', 'unshaped': '#805ad5'}
SERIES_COLORS = ('#2b6cb0', '#c05621', '#2f855a', '#805ad5', '#b7791f', '#c53030', '#319795', '#4a5568')
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1em 1.5em;color:#1a202c}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:1px solid #cbd5e0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #cbd5e0;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#edf2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
ul.verdicts{list-style:none;padding:0}ul.verdicts li{margin:.3em 0;padding:.35em .7em;border-left:5px solid #a0aec0;background:#f7fafc}
li.problem{border-color:#c53030!important;background:#fff5f5!important}li.warning{border-color:#d69e2e!important;background:#fffff0!important}
li.ok{border-color:#2f855a!important;background:#f0fff4!important}
svg{display:block;max-width:100%;height:auto;margin:.5em 0}svg text{font:12px system-ui,sans-serif;fill:#1a202c}
svg .axis{stroke:#4a5568;stroke-width:1}svg .grid{stroke:#e2e8f0;stroke-width:1}
.meta{color:#4a5568}pre{background:#f7fafc;padding:.5em;overflow-x:auto}div.scroll{overflow-x:auto;max-width:100%}
"""


def _esc(value):
    # type: (Any) -> str
    return html.escape(str(value), quote=True)


def _lookup(data, path):
    # type: (Any, str) -> Any
    for part in path.split('.'):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _text(value, fmt):
    # type: (Any, str) -> str
    return NONE_TEXT if value is None else FORMATS[fmt](value)


def _attrs(report, path, fmt):
    # type: (Dict[str, Any], str, str) -> Tuple[Any, str]
    value = _lookup(report, path)
    return value, ' data-path="%s" data-format="%s" data-value="%s"' % (
        _esc(path), _esc(fmt), _esc(json.dumps(value, sort_keys=True)))


def _fig(report, path, fmt, unit=''):
    # type: (Dict[str, Any], str, str, str) -> str
    """One figure of the report: its visible text and where it comes from."""
    value, attrs = _attrs(report, path, fmt)
    return '<span class="fig"%s>%s</span>%s' % (attrs, _esc(_text(value, fmt)), _esc(unit) if value is not None else '')


def _nice_max(value):
    # type: (float) -> Tuple[float, float]
    """An axis top at or above `value` and its step: 1, 2 or 5 times a power of ten, 4-5 steps."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4.0
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * power
        if step >= raw:
            break
    return step * math.ceil(value / step - 1e-9), step


def _num(value):
    # type: (float) -> str
    return ('%.2f' % value).rstrip('0').rstrip('.')


def _rates_chart(report):
    # type: (Dict[str, Any]) -> str
    """Bars: each link alone (download, upload), then the bonded transfer (and without shaping)."""
    groups = []  # (label, [(kind, direction, path)])
    for i, link in enumerate(report['links']):
        bars = [('alone', d, 'links.%d.alone.%s' % (i, d)) for d in report['directions']]
        groups.append((link['name'] + ' alone', bars))
    bars = [('bonded', d, 'bonded.%s.mbps' % d) for d in report['directions']
            if report['bonded'].get(d) and 'mbps' in report['bonded'][d]]
    groups.append(('bonded', bars))
    unshaped = [('unshaped', d, 'unshaped.%s.mbps' % d) for d in ('download', 'upload')
                if (report.get('unshaped') or {}).get(d) and 'mbps' in report['unshaped'][d]]
    if unshaped:
        groups.append(('bonded, no shaping', unshaped))
    sums = [(d, 'bonded.%s.sum_alone_mbps' % d) for d in report['directions']
            if report['bonded'].get(d) and report['bonded'][d].get('sum_alone_mbps')]
    values = [_lookup(report, p) or 0.0 for _label, bars in groups for _k, _d, p in bars]
    values += [_lookup(report, p) for _d, p in sums]
    top, step = _nice_max(max(values + [0.0]))
    bar_w, gap, left, right, ptop, bottom = 34, 26, 60, 20, 30, 60
    legend = [(name, color, extra) for name, color, extra in (
        ('download', COLORS['download'], ''), ('upload', COLORS['upload'], ' fill-opacity="0.6"'),
        ('bonded', COLORS['bonded'], ''), ('bonded without shaping', COLORS['unshaped'], ''), ('links alone, summed', None, ''))
        if not (name == 'upload' and 'upload' not in report['directions'])
        and not (name == 'bonded without shaping' and not unshaped) and not (color is None and not sums)]

    def group_width(label, bars):
        # type: (str, List[Any]) -> int
        return max(len(bars) * bar_w, 7 * len(label) + 4)

    width = max(left + right + sum(group_width(name, b) + gap for name, b in groups) + gap,
                left + right + sum(30 + 7 * len(name) for name, _c, _e in legend))
    height = 320
    plot_h = height - ptop - bottom
    out = ['<svg id="chart-rates" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" '
           'role="img" aria-labelledby="chart-rates-title" data-chart="rates" data-bars="%d">'
           % (width, height, width, height, sum(len(b) for _l, b in groups)),
           '<title id="chart-rates-title">Each link alone and bonded, in Mbit/s</title>']

    def y(v):
        # type: (float) -> float
        return ptop + plot_h - plot_h * (v / top)

    tick = 0.0
    while tick <= top + 1e-9:
        out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (left, width - right, y(tick), y(tick)))
        out.append('<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y(tick) + 4, _num(tick)))
        tick += step
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, left, ptop, ptop + plot_h))
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, width - right, ptop + plot_h, ptop + plot_h))
    out.append('<text class="axis-label" x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">Mbit/s</text>'
               % (ptop + plot_h // 2, ptop + plot_h // 2))
    x = left + gap
    for label, bars in groups:
        start = x
        x += (group_width(label, bars) - len(bars) * bar_w) // 2
        for kind, direction, path in bars:
            value, attrs = _attrs(report, path, 'f1')
            v = value or 0.0
            color = COLORS['bonded' if kind == 'bonded' else 'unshaped' if kind == 'unshaped' else direction]
            opacity = '' if direction == 'download' else ' fill-opacity="0.6"'
            out.append('<rect class="bar %s %s" x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"%s%s '
                       'data-kind="%s" data-direction="%s"><title>%s %s: %s Mbit/s</title></rect>'
                       % (kind, direction, x, y(v), bar_w - 4, plot_h * v / top, color, opacity, attrs,
                          kind, direction, _esc(label), direction, _esc(_text(value, 'f1'))))
            total = [p for d, p in sums if d == direction and kind == 'bonded']
            # Above the bar, and above the dashed mark of the links alone when it is higher.
            top_v = max(v, _lookup(report, total[0])) if total else v
            out.append('<text class="bar-value" x="%d" y="%.1f" text-anchor="middle"%s>%s</text>'
                       % (x + (bar_w - 4) // 2, y(top_v) - 4, attrs, _esc(_text(value, 'f1'))))
            out.append('<text class="bar-direction" x="%d" y="%d" text-anchor="middle">%s</text>'
                       % (x + (bar_w - 4) // 2, ptop + plot_h + 14, 'down' if direction == 'download' else 'up'))
            if total:
                # What the links carry alone, summed: the mark the bonded bar is measured against.
                value, attrs = _attrs(report, total[0], 'f1')
                out.append('<line class="sum-alone" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#1a202c" '
                           'stroke-width="2" stroke-dasharray="4 3"%s><title>the links alone, summed: %s Mbit/s</title></line>'
                           % (x - 2, x + bar_w - 2, y(value), y(value), attrs, _esc(_text(value, 'f1'))))
            x += bar_w
        out.append('<text class="group" x="%d" y="%d" text-anchor="middle">%s</text>'
                   % (start + group_width(label, bars) // 2 - 2, ptop + plot_h + 32, _esc(label)))
        x = start + group_width(label, bars) + gap
    lx = left
    for name, color, extra in legend:
        if color is None:
            out.append('<line class="legend" x1="%d" x2="%d" y1="%d" y2="%d" stroke="#1a202c" stroke-width="2" '
                       'stroke-dasharray="4 3"/>' % (lx, lx + 12, height - 12, height - 12))
        else:
            out.append('<rect class="legend" x="%d" y="%d" width="12" height="12" fill="%s"%s/>' % (lx, height - 18, color, extra))
        out.append('<text class="legend" x="%d" y="%d">%s</text>' % (lx + 16, height - 8, _esc(name)))
        lx += 30 + 7 * len(name)
    out.append('</svg>')
    return '\n'.join(out)


def _timeline_chart(report):
    # type: (Dict[str, Any]) -> str
    """Lines: each WAN's cumulative bytes (interface counters) over the bonded transfer."""
    line = report['timeline']
    if not line['t']:
        return '<p class="missing" id="chart-timeline-missing">No interface samples: the sampler on the router gave none.</p>'
    width, height, left, right, ptop, bottom = 760, 320, 70, 150, 20, 50
    plot_w, plot_h = width - left - right, height - ptop - bottom
    tmax = max(line['t'][-1], 0.5)
    top, step = _nice_max(max([s['bytes'][-1] for s in line['series']] + [1]) / 1e6)
    tstep = _nice_max(tmax)[1]

    def x(t):
        # type: (float) -> float
        return left + plot_w * t / tmax

    def y(b):
        # type: (float) -> float
        return ptop + plot_h - plot_h * (b / 1e6) / top

    out = ['<svg id="chart-timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" '
           'role="img" aria-labelledby="chart-timeline-title" data-chart="timeline" data-lines="%d"%s>'
           % (width, height, width, height, len(line['series']), _attrs(report, 'timeline.t', 'list')[1]),
           '<title id="chart-timeline-title">Bytes each WAN carried during the bonded %s, in MB</title>' % _esc(line['direction'])]
    tick = 0.0
    while tick <= top + 1e-9:
        out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (left, left + plot_w, y(tick * 1e6), y(tick * 1e6)))
        out.append('<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y(tick * 1e6) + 4, _num(tick)))
        tick += step
    tick = 0.0
    while tick <= tmax + 1e-9:
        out.append('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x(tick), ptop + plot_h + 16, _num(tick)))
        tick += tstep
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, left, ptop, ptop + plot_h))
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, left + plot_w, ptop + plot_h, ptop + plot_h))
    out.append('<text class="axis-label" x="%d" y="%d" text-anchor="middle">seconds into the transfer</text>'
               % (left + plot_w // 2, height - 10))
    out.append('<text class="axis-label" x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">MB (%s)</text>'
               % (ptop + plot_h // 2, ptop + plot_h // 2, _esc(line['counter'])))
    for i, series in enumerate(line['series']):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        points = ' '.join('%.1f,%.1f' % (x(t), y(b)) for t, b in zip(line['t'], series['bytes']))
        attrs = _attrs(report, 'timeline.series.%d.bytes' % i, 'list')[1]
        # Every other line dashed: equal WANs draw the same line, and both must show.
        dash = ' stroke-dasharray="7 4"' if i % 2 else ''
        out.append('<polyline class="series" fill="none" stroke="%s" stroke-width="2"%s points="%s" data-series="%s" '
                   'data-points="%d"%s/>' % (color, dash, points, _esc(series['name']), len(series['bytes']), attrs))
        ly = ptop + 14 + 18 * i
        out.append('<line class="legend" x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"%s/>'
                   % (left + plot_w + 12, left + plot_w + 30, ly - 4, ly - 4, color, dash))
        out.append('<text class="legend" x="%d" y="%d">%s (%s) %s MB</text>' % (
            left + plot_w + 34, ly, _esc(series['name']), _esc(series['device']),
            '<tspan%s>%s</tspan>' % (_attrs(report, 'timeline.series.%d.bytes.%d' % (i, len(series['bytes']) - 1), 'mb')[1],
                                     _esc(_text(series['bytes'][-1], 'mb')))))
    out.append('</svg>')
    return '\n'.join(out)


def _table(head, rows):
    # type: (List[str], List[List[str]]) -> str
    """head: plain text; rows: cells already HTML (from _fig or escaped)."""
    out = ['<div class="scroll"><table><thead><tr>%s</tr></thead><tbody>' % ''.join('<th>%s</th>' % _esc(h) for h in head)]
    for row in rows:
        out.append('<tr>%s</tr>' % ''.join('<td>%s</td>' % c for c in row))
    out.append('</tbody></table></div>')
    return '\n'.join(out)


def render_html(report):
    # type: (Dict[str, Any]) -> str
    """The report as one self-contained HTML page (see the module's docstring)."""
    r = report

    def f(path, fmt, unit=''):
        # type: (str, str, str) -> str
        return _fig(r, path, fmt, unit)

    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             # Nothing from outside, no script: the page is whole by itself.
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<title>OMR diagnosis: %s</title>' % _esc(r['router']), '<style>%s</style>' % CSS, '</head><body>',
             '<h1>OMR diagnosis: %s</h1>' % f('router', 'str'),
             '<p class="meta">VPS %s at %s; router backend %s, probe client %s, %s s per transfer; %s%s</p>' % (
                 f('vps', 'str'), f('vps_address', 'str'), f('backend', 'str'), f('client', 'str'), f('seconds', 'int'),
                 f('generated', 'str'), ' (check mode)' if r.get('check_mode') else '')]
    parts.append('<section id="verdicts"><h2>Verdicts</h2><ul class="verdicts">')
    for i, verdict in enumerate(r.get('verdicts') or []):
        value, attrs = _attrs(r, 'verdicts.%d.text' % i, 'str')
        parts.append('<li class="%s" data-topic="%s"%s>%s</li>' % (_esc(verdict['level']), _esc(verdict['topic']), attrs,
                                                                   _esc(value)))
    parts.append('</ul></section>')
    if r.get('notes'):
        parts.append('<section id="notes"><h2>Notes</h2><ul>%s</ul></section>' % ''.join(
            '<li>%s</li>' % f('notes.%d' % i, 'str') for i in range(len(r['notes']))))
    # Step 1: the links alone, and bonded.
    parts.append('<section id="rates"><h2>1. Each link alone, and bonded</h2>')
    parts.append(_rates_chart(r))
    rows = []
    for i, link in enumerate(r['links']):
        p = 'links.%d.' % i
        rows.append([f(p + 'name', 'str'), f(p + 'device', 'str'), f(p + 'address', 'str'), f(p + 'multipath', 'str'),
                     f(p + 'rtt_ms', 'f2'), f(p + 'loss_pct', 'f1')]
                    + [f(p + 'alone.%s' % d, 'f1') for d in r['directions']]
                    + ['%s %s' % (f(p + 'capacity.%s' % d, 'f1'), f(p + 'capacity_source.%s' % d, 'str')) for d in r['directions']]
                    + [f(p + 'subflows', 'int'), f(p + 'subflow_bytes', 'mb'), f(p + 'subflow_share', 'pct'),
                       f(p + 'interface_bytes', 'mb'), f(p + 'interface_share', 'pct')])
    parts.append(_table(['WAN', 'device', 'address', 'mode', 'RTT ms', 'loss %']
                        + ['alone %s Mbit/s' % d for d in r['directions']]
                        + ['can carry %s Mbit/s' % d for d in r['directions']]
                        + ['subflows', 'subflow MB', 'subflow share %', 'interface MB', 'interface share %'], rows))
    rows = []
    for direction in ('download', 'upload'):
        res = r['bonded'].get(direction)
        p = 'bonded.%s.' % direction
        if res and 'error' in res:
            rows.append([_esc(direction), f(p + 'error', 'str'), '', '', '', ''])
        elif res:
            rows.append([_esc(direction), f(p + 'mbps', 'f1'), f(p + 'mptcp', 'bool'), f(p + 'subflows', 'int'),
                         f(p + 'sum_alone_mbps', 'f1'), f(p + 'efficiency', 'f3')])
    for direction in ('download', 'upload'):
        res = (r.get('unshaped') or {}).get(direction)
        p = 'unshaped.%s.' % direction
        if res and 'error' in res:
            rows.append([_esc(direction + ', no shaping'), f(p + 'error', 'str'), '', '', '', ''])
        elif res:
            rows.append([_esc(direction + ', no shaping'), f(p + 'mbps', 'f1'), f(p + 'mptcp', 'bool'), f(p + 'subflows', 'int'), '', ''])
    parts.append(_table(['bonded', 'Mbit/s', 'MPTCP', 'subflows', 'links alone Mbit/s', 'efficiency'], rows))
    parts.append('</section>')
    # Step 2: the VPS.
    parts.append('<section id="vps"><h2>2. The VPS</h2>')
    stats = r.get('vps_stats')
    if stats is None:
        parts.append('<p>The VPS at %s is not in the inventory: not read.</p>' % f('vps_address', 'str'))
    else:
        rows = [['CPU busy % (during the bonded transfer)', f('vps_stats.cpu.busy_pct', 'f1') if stats.get('cpu') else _esc(NONE_TEXT)]]
        if stats.get('cpu'):
            rows += [['busiest CPU', '%s %s' % (f('vps_stats.cpu.busiest', 'str'), f('vps_stats.cpu.busiest_pct', 'f1', ' %'))],
                     ['IO wait %', f('vps_stats.cpu.iowait_pct', 'f1')], ['steal %', f('vps_stats.cpu.steal_pct', 'f1')],
                     ['CPUs', f('vps_stats.cpu.cpus', 'int')]]
        memory = '%s / %s / %s' % (f('vps_stats.memory.installed_mb', 'int'), f('vps_stats.memory.total_mb', 'int'),
                                   f('vps_stats.memory.available_mb', 'int'))
        rows += [['memory MB (installed / MemTotal / available)', memory],
                 ['swap MB (total / free)', '%s / %s' % (f('vps_stats.memory.swap_total_mb', 'int'),
                                                         f('vps_stats.memory.swap_free_mb', 'int'))],
                 ['virtualization', f('vps_stats.memory.virtualization', 'str')]]
        if stats.get('swap'):
            rows.append(['swap pages in / out during the test', '%s / %s' % (
                f('vps_stats.swap.pages_in', 'int'), f('vps_stats.swap.pages_out', 'int'))])
        rows.append(['OOM kills since boot (during the test)', '%s (%s)' % (
            f('vps_stats.oom_kills', 'int'), f('vps_stats.oom_kills_test', 'int'))])
        parts.append(_table(['', 'value'], rows))
        parts.append('<h3>Network IO during the bonded transfer</h3>')
        parts.append(_table(['device', 'received MB', 'sent MB', 'in Mbit/s', 'out Mbit/s'], [
            [f('vps_stats.net.%d.device' % i, 'str'), f('vps_stats.net.%d.rx_bytes' % i, 'mb'),
             f('vps_stats.net.%d.tx_bytes' % i, 'mb'), f('vps_stats.net.%d.rx_mbps' % i, 'f1'),
             f('vps_stats.net.%d.tx_mbps' % i, 'f1')] for i in range(len(stats['net']))]))
        parts.append('<h3>Top processes by CPU during the bonded transfer</h3>')
        parts.append(_table(['pid', 'name', 'user', 'CPU %'], [
            [f('vps_stats.top_cpu.%d.pid' % i, 'int'), f('vps_stats.top_cpu.%d.comm' % i, 'str'),
             f('vps_stats.top_cpu.%d.user' % i, 'str'), f('vps_stats.top_cpu.%d.cpu_pct' % i, 'f1')]
            for i in range(len(stats['top_cpu']))]))
        parts.append('<h3>Top processes by memory</h3>')
        parts.append(_table(['pid', 'name', 'user', 'RSS MB'], [
            [f('vps_stats.top_rss.%d.pid' % i, 'int'), f('vps_stats.top_rss.%d.comm' % i, 'str'),
             f('vps_stats.top_rss.%d.user' % i, 'str'), f('vps_stats.top_rss.%d.rss_mb' % i, 'f1')]
            for i in range(len(stats['top_rss']))]))
    if r.get('router_cpu'):
        parts.append('<p>The router\'s CPU during the bonded transfer: %s %% busy (busiest %s %s).</p>' % (
            f('router_cpu.busy_pct', 'f1'), f('router_cpu.busiest', 'str'), f('router_cpu.busiest_pct', 'f1', ' %')))
    parts.append('</section>')
    # Step 3: MPTCP on both ends.
    parts.append('<section id="mptcp"><h2>3. MPTCP on both ends</h2>')
    keys = (('flavour', 'str'), ('enabled', 'bool'), ('kernel', 'str'), ('path_manager', 'str'), ('scheduler', 'str'),
            ('subflows_limit', 'int'), ('add_addr_accepted_limit', 'int'), ('congestion_control', 'str'), ('endpoints', 'list'))
    rows = []
    for key, fmt in keys:
        row = [_esc(key.replace('_', ' '))]
        for side in ('router', 'vps'):
            row.append(f('mptcp.%s.%s' % (side, key), fmt) if r['mptcp'].get(side) else _esc(NONE_TEXT))
        rows.append(row)
    parts.append(_table(['', 'router', 'VPS'], rows))
    counters = []
    for side, path in (('router', 'mptcp.router_counters'), ('VPS', 'vps_stats.mptcp_counters')):
        data = _lookup(r, path) if (side == 'router' or stats) else {}
        for name in sorted(data or {}):
            counters.append([_esc(side), _esc(name), f('%s.%s' % (path, name), 'int')])
    parts.append('<p>MPTcpExt counters that moved during the bonded transfer (every connection of the host, not only the '
                 'probe\'s):</p>')
    parts.append(_table(['host', 'counter', 'change'], counters))
    parts.append('</section>')
    # Step 4: the bytes per WAN over time.
    parts.append('<section id="timeline"><h2>4. Bytes per WAN during the bonded %s</h2>' % _esc(r['timeline']['direction']))
    parts.append(_timeline_chart(r))
    parts.append('<p class="meta">The router\'s interface counters (%s), sampled every %s s; the subflows\' own byte '
                 'counts are in the table above.</p>' % (f('timeline.counter', 'str'), f('timeline.interval', 'str')))
    parts.append('</section>')
    # Step 5: shaping.
    parts.append('<section id="shaping"><h2>5. The router\'s own shaping</h2>')
    shaping = r['shaping']
    if not shaping['trees']:
        parts.append('<p>No shaping qdisc on the router (only the kernel\'s default).</p>' if shaping.get('tc') is not False
                     else '<p>No tc on the router: its qdiscs were not read.</p>')
    else:
        parts.append(_table(['WAN', 'device', 'direction', 'shaper', 'rate Mbit/s', 'removable', 'why not'], [
            [f('shaping.trees.%d.link' % i, 'str'), f('shaping.trees.%d.device' % i, 'str'),
             f('shaping.trees.%d.direction' % i, 'str'), f('shaping.trees.%d.shaper' % i, 'str'),
             f('shaping.trees.%d.rate_mbit' % i, 'f1'), f('shaping.trees.%d.removable' % i, 'bool'),
             f('shaping.trees.%d.reason' % i, 'str')] for i in range(len(shaping['trees']))]))
        parts.append('<p>Removed for a comparison: %s; put back as it was: %s.</p>' % (
            f('shaping.removed', 'bool'), f('shaping.restored', 'bool')))
        for i, tree in enumerate(shaping['trees']):
            if tree.get('show'):
                parts.append('<pre>%s</pre>' % f('shaping.trees.%d.show' % i, 'str'))
    parts.append('</section></body></html>')
    return '\n'.join(parts) + '\n'
