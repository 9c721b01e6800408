# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: no compatibility promise, may change in any release.
#
# How much memory does this VPS have, and how much of it can services use?
#
# Everything here parses captured text (/proc, /sys, cgroupfs, command output), so the
# unit tests can feed it real captures. The only I/O goes through a small `fs` object
# (HostFS below, or a fixture-backed stand-in in the tests).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import posixpath

MIB = 1024 * 1024

# cgroup v1 prints PAGE_COUNTER_MAX * PAGE_SIZE for "no limit" (9223372036854771712 with
# 4 KiB pages, a slightly different number with 16/64 KiB pages). Anything this large is
# not a limit anyone set.
UNLIMITED_BYTES = 1 << 62

# Plan sizes MemTotal is rounded up to: (upper bound in MB, step in MB). Providers sell
# 512 MB, 768 MB, 1, 1.5, 2, 3, 4, 6, 8 GB..., all multiples of these steps.
PLAN_STEPS = ((1024, 128), (4096, 256), (16384, 1024), (None, 2048))

# MemTotal is RAM minus what the kernel keeps for itself (its image, the struct page
# array, ~1.6 %, firmware-reserved ranges, a crashkernel area if configured). Measured
# shortfalls are 3-7 % (a "1 GB" KVM reads 960-1000 MB, a 512 MB one ~480 MB); 12 %
# leaves room for those reservations, but a bigger gap is not explained by a plan size,
# so MemTotal is then reported as it is rather than inventing RAM.
PLAN_TOLERANCE = 0.12

# Online memory blocks cover whole blocks (holes included), so they read a little above
# MemTotal. Beyond 25 % they are describing something else (a balloon, hot-unplug, a
# host's RAM seen through a limited view) and are not trusted.
BLOCKS_TOLERANCE = 0.25

# systemd-detect-virt's names for containers (systemd src/basic/virt.c).
CONTAINER_TYPES = frozenset((
    'openvz', 'lxc', 'lxc-libvirt', 'systemd-nspawn', 'docker', 'podman', 'rkt',
    'wsl', 'proot', 'pouch', 'container-other',
))

# DMI sys_vendor/product_name substrings -> systemd-detect-virt names. The cloud names
# are KVM underneath; systemd finds that through CPUID, which Python cannot read.
DMI_VENDORS = (
    ('KVM', 'kvm'), ('OpenStack', 'kvm'), ('KubeVirt', 'kvm'), ('DigitalOcean', 'kvm'),
    ('Hetzner', 'kvm'), ('Vultr', 'kvm'), ('Linode', 'kvm'), ('Scaleway', 'kvm'),
    ('Amazon EC2', 'amazon'), ('Google', 'google'), ('QEMU', 'qemu'),
    ('VMware', 'vmware'), ('VMW', 'vmware'), ('innotek GmbH', 'oracle'),
    ('VirtualBox', 'oracle'), ('Oracle Corporation', 'oracle'), ('Xen', 'xen'),
    ('Bochs', 'bochs'), ('Parallels', 'parallels'), ('BHYVE', 'bhyve'),
    ('Microsoft Corporation', 'microsoft'), ('Hyper-V', 'microsoft'),
)


# ---------------------------------------------------------------------------
# /proc/meminfo
# ---------------------------------------------------------------------------

def parse_meminfo(text):
    """'MemTotal:  1003108 kB' lines -> {'MemTotal': 1003108, ...} (kB)."""
    info = {}
    for line in (text or '').splitlines():
        key, sep, rest = line.partition(':')
        fields = rest.split()
        if sep and fields:
            try:
                info[key.strip()] = int(fields[0])
            except ValueError:
                continue
    return info


def meminfo_total_mb(info):
    return info['MemTotal'] // 1024 if 'MemTotal' in info else None


def meminfo_available_mb(info):
    if 'MemAvailable' in info:
        return info['MemAvailable'] // 1024
    # Kernels before 3.14 have no MemAvailable; this is what free(1) did then.
    parts = [info.get(k) for k in ('MemFree', 'Buffers', 'Cached')]
    if any(p is None for p in parts):
        return None
    return sum(parts) // 1024


def swap_total_mb(info):
    return info.get('SwapTotal', 0) // 1024


# ---------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------

def parse_proc_cgroup(text):
    """/proc/self/cgroup -> {'unified': path or None, 'controllers': {name: path}}.

    v1 lines are 'ID:ctrl1,ctrl2:/path' (named hierarchies as 'name=systemd'), the v2
    line is '0::/path'.
    """
    result = {'unified': None, 'controllers': {}}
    for line in (text or '').splitlines():
        parts = line.strip().split(':', 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        if hid == '0' and ctrls == '':
            result['unified'] = path
        else:
            for ctrl in ctrls.split(','):
                if ctrl:
                    result['controllers'][ctrl] = path
    return result


def _unescape_mount(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == '\\' and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return ''.join(out)


def parse_mountinfo(text):
    """cgroup entries of /proc/self/mountinfo, in mount order.

    Each is {'root', 'mountpoint', 'fstype', 'options'}: root is the directory of the
    hierarchy the mount shows (a container sees '/libpod_parent/libpod-ID' or '/'),
    options are the super options ('memory', 'name=systemd', 'nsdelegate', ...).
    """
    mounts = []
    for line in (text or '').splitlines():
        left, sep, right = line.partition(' - ')
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3 or rf[0] not in ('cgroup', 'cgroup2'):
            continue
        mounts.append({
            'root': _unescape_mount(lf[3]),
            'mountpoint': _unescape_mount(lf[4]),
            'fstype': rf[0],
            'options': rf[2].split(','),
        })
    return mounts


def _visible_mounts(mounts):
    """Drop mounts hidden by a later mount on the same mount point.

    podman's systemd mode mounts the host's name=systemd hierarchy (root '/') over the
    container's own one; only the last mount on a path is what a reader sees.
    """
    last = {}
    for m in mounts:
        last[m['mountpoint']] = m
    return [m for m in mounts if last[m['mountpoint']] is m]


def find_v1_mount(mounts, controller):
    found = None
    for m in _visible_mounts(mounts):
        if m['fstype'] == 'cgroup' and controller in m['options']:
            found = m
    return found


def find_v2_mount(mounts):
    """The cgroup2 mount: /sys/fs/cgroup when unified, /sys/fs/cgroup/unified in hybrid mode."""
    found = None
    for m in _visible_mounts(mounts):
        if m['fstype'] == 'cgroup2' and (found is None or m['mountpoint'] == '/sys/fs/cgroup'):
            found = m
    return found


def cgroup_dir(mount, path):
    """Directory under a mount that holds cgroup `path` (as /proc/self/cgroup names it).

    The mount shows the hierarchy from mount['root'] down, so a container whose
    /sys/fs/cgroup/memory is its own cgroup (root == path) finds its files at the mount
    point; in a cgroup namespace root and path are both '/'. None when `path` is outside
    what the mount shows.
    """
    root = mount['root'].rstrip('/')
    if not path.startswith('/'):
        return None
    if root and path != root and not path.startswith(root + '/'):
        return None
    rel = path[len(root):].strip('/')
    return posixpath.join(mount['mountpoint'], rel) if rel else mount['mountpoint']


def probe_cgroup_dir(fs, mountpoint, path):
    """Without mountinfo: the longest tail of `path` that exists under `mountpoint`.

    Handles a container whose mount root is its own cgroup: '/a/b/c' is tried as
    mp/a/b/c, mp/b/c, mp/c, then mp.
    """
    parts = [p for p in path.split('/') if p]
    for i in range(len(parts) + 1):
        candidate = posixpath.join(mountpoint, *parts[i:]) if parts[i:] else mountpoint
        if fs.isdir(candidate):
            return candidate
    return None


def dirs_up_to(leaf, mountpoint):
    """leaf, its parent, ..., mountpoint (inclusive)."""
    dirs = []
    cur = posixpath.normpath(leaf)
    top = posixpath.normpath(mountpoint)
    while True:
        dirs.append(cur)
        if cur == top or cur == '/' or not cur.startswith(top + '/'):
            break
        cur = posixpath.dirname(cur)
    return dirs


def parse_limit_bytes(text):
    """v2 memory.max or v1 memory.limit_in_bytes -> bytes, None when unlimited/unreadable."""
    value = (text or '').strip()
    if not value or value == 'max':
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return None if n >= UNLIMITED_BYTES else n


def parse_hierarchical_limit(memory_stat):
    """v1 memory.stat 'hierarchical_memory_limit': the kernel's own minimum over all
    ancestors, including those above what a container's mount shows."""
    for line in (memory_stat or '').splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == 'hierarchical_memory_limit':
            return parse_limit_bytes(fields[1])
    return None


def effective_limit(limits):
    """The limit that binds: the smallest one set anywhere on the path (None if none)."""
    set_limits = [n for n in limits if n is not None]
    return min(set_limits) if set_limits else None


# ---------------------------------------------------------------------------
# memory blocks, plan sizes, the estimate
# ---------------------------------------------------------------------------

def parse_block_size(text):
    """/sys/devices/system/memory/block_size_bytes is hex without 0x ('8000000' = 128 MiB)."""
    try:
        return int((text or '').strip(), 16) or None
    except ValueError:
        return None


def memory_blocks_mb(block_size_text, states):
    """Online RAM from the memory block devices: block size x blocks whose state is 'online'."""
    size = parse_block_size(block_size_text)
    online = sum(1 for s in states if (s or '').strip() == 'online')
    if not size or not online:
        return None
    return size * online // MIB


def round_up_to_plan(mb):
    """MemTotal (MB) -> the plan size it most likely comes from, or mb itself."""
    if not mb or mb <= 0:
        return mb
    for bound, step in PLAN_STEPS:
        if bound is None or mb <= bound:
            plan = -(-mb // step) * step
            break
    if plan - mb <= PLAN_TOLERANCE * plan:
        return plan
    return mb


def estimate_installed(total_mb, limit_mb, blocks_mb):
    """Best estimate of the RAM the plan has -> (mb, source).

    - 'cgroup': a limit at or below MemTotal is the plan of an LXC/OpenVZ/podman VPS
      (at, not only below: with lxcfs MemTotal already shows the limit).
    - 'memory_blocks': whole blocks of RAM the kernel onlined; a KVM "1 GB" plan reads
      1024 here while MemTotal says ~980. Without a limit, a container sees the host's
      blocks, which is then the right answer.
    - 'meminfo': MemTotal rounded up to a plan size (see PLAN_TOLERANCE).
    """
    if total_mb is None:
        return None, None
    if limit_mb is not None and limit_mb <= total_mb:
        return limit_mb, 'cgroup'
    if blocks_mb and total_mb <= blocks_mb and blocks_mb - total_mb <= BLOCKS_TOLERANCE * blocks_mb:
        return blocks_mb, 'memory_blocks'
    return round_up_to_plan(total_mb), 'meminfo'


# ---------------------------------------------------------------------------
# virtualization
# ---------------------------------------------------------------------------

def _environ_container(environ):
    for item in (environ or '').split('\0'):
        if item.startswith('container='):
            return item.split('=', 1)[1].strip() or None
    return None


def detect_virtualization(systemd_detect_virt=None, containerenv=False, dockerenv=False,
                          pid1_environ=None, user_beancounters=False, proc_bc=False,
                          proc_xen=False, cpuinfo=None, dmi_sys_vendor=None,
                          dmi_product_name=None):
    """systemd-detect-virt's answer when it gave one, else the same checks it makes,
    innermost first: a container inside a VM reports the container."""
    answer = (systemd_detect_virt or '').strip().splitlines()
    if answer and answer[0].strip():
        return answer[0].strip()
    if containerenv:
        return 'podman'
    if dockerenv:
        return 'docker'
    env = _environ_container(pid1_environ)
    if env:
        return {'oci': 'container-other'}.get(env, env)
    # OpenVZ: the container has /proc/user_beancounters but not /proc/bc (the host has both)
    if user_beancounters and not proc_bc:
        return 'openvz'
    for text in (dmi_sys_vendor, dmi_product_name):
        for needle, name in DMI_VENDORS:
            if text and needle in text:
                return name
    if proc_xen:
        return 'xen'
    for line in (cpuinfo or '').splitlines():
        if line.startswith('flags') and 'hypervisor' in line.split():
            return 'vm-other'
    return 'none'


# ---------------------------------------------------------------------------
# systemd units
# ---------------------------------------------------------------------------

def parse_systemctl_show(text):
    """'Key=Value' lines of `systemctl show -p ...` (not --value: systemd prints the
    properties in its own order, not in the order -p asked for them)."""
    props = {}
    for line in (text or '').splitlines():
        key, sep, value = line.partition('=')
        if sep:
            props[key.strip()] = value.strip()
    return props


def parse_pids(text):
    pids = []
    for line in (text or '').split():
        if line.isdigit():
            pids.append(int(line))
    return pids


def parse_pss_kb(smaps_rollup):
    """Pss from /proc/PID/smaps_rollup: shared pages split between their users, so
    summing it over a unit's processes does not count shared libraries n times."""
    for line in (smaps_rollup or '').splitlines():
        if line.startswith('Pss:'):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
    return None


def parse_vmrss_kb(status):
    for line in (status or '').splitlines():
        if line.startswith('VmRSS:'):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
    return None


def systemd_hierarchy(mounts):
    """Where systemd keeps its unit cgroups: the name=systemd v1 hierarchy (legacy and
    hybrid mode), else the cgroup2 one; None when mountinfo says neither."""
    return find_v1_mount(mounts, 'name=systemd') or find_v2_mount(mounts)


def process_memory_kb(fs, pid):
    """(kB, 'pss'|'rss') for a pid, None when it has gone (or is unreadable)."""
    kb = parse_pss_kb(fs.read('/proc/%d/smaps_rollup' % pid))
    if kb is not None:
        return kb, 'pss'
    # smaps_rollup needs ptrace access (root) and a 4.14+ kernel; VmRSS counts shared
    # pages in full, so it overstates, but it is readable by everyone.
    kb = parse_vmrss_kb(fs.read('/proc/%d/status' % pid))
    if kb is not None:
        return kb, 'rss'
    return None


def _walk_pids(fs, directory, depth=0):
    pids = parse_pids(fs.read(posixpath.join(directory, 'cgroup.procs')))
    if depth < 16:
        for name in sorted(fs.listdir(directory)):
            child = posixpath.join(directory, name)
            if fs.isdir(child):
                pids.extend(_walk_pids(fs, child, depth + 1))
    return pids


def unit_cgroup_dirs(fs, mounts, control_group):
    """Candidate directories for a unit's ControlGroup, most likely first."""
    candidates = []
    m = systemd_hierarchy(mounts)
    if m:
        d = cgroup_dir(m, control_group)
        if d:
            candidates.append(d)
        candidates.append(probe_cgroup_dir(fs, m['mountpoint'], control_group))
    for mp in ('/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'):
        candidates.append(posixpath.join(mp, control_group.lstrip('/')))
    seen, result = set(), []
    for c in candidates:
        if c and c not in seen:
            seen.add(c)
            result.append(c)
    return result


def unit_memory(fs, show, mounts):
    """`systemctl show` properties of one unit -> {present, active, pids, rss_mb}.

    pids are every process in the unit's cgroup and its sub-cgroups; rss_mb sums their
    Pss (VmRSS where Pss cannot be read), in MB with one decimal.
    """
    load = show.get('LoadState', '')
    result = {
        'present': bool(load) and load != 'not-found',
        'active': show.get('ActiveState') == 'active',
        'pids': [],
        'rss_mb': 0.0,
    }
    cg = show.get('ControlGroup', '')
    pids = []
    if cg:
        for d in unit_cgroup_dirs(fs, mounts, cg):
            if fs.isdir(d):
                pids = _walk_pids(fs, d)
                break
    main_pid = show.get('MainPID', '0')
    if not pids and main_pid.isdigit() and int(main_pid) > 0:
        pids = [int(main_pid)]
    total_kb = 0
    alive = []
    for pid in sorted(set(pids)):
        mem = process_memory_kb(fs, pid)
        if mem is None:
            continue
        alive.append(pid)
        total_kb += mem[0]
    result['pids'] = alive
    result['rss_mb'] = round(total_kb / 1024.0, 1)
    return result


# ---------------------------------------------------------------------------
# putting it together
# ---------------------------------------------------------------------------

class HostFS:
    """The real filesystem, read-only. Unreadable and missing files read as None."""

    def read(self, path):
        try:
            with open(path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except (IOError, OSError):
            return None

    def exists(self, path):
        return os.path.exists(path)

    def isdir(self, path):
        return os.path.isdir(path)

    def listdir(self, path):
        try:
            return os.listdir(path)
        except (IOError, OSError):
            return []


def _memory_cgroup(fs, mounts, proc_cgroup):
    """(version, limit in bytes or None) for the memory controller of this process."""
    v1 = find_v1_mount(mounts, 'memory')
    v2 = find_v2_mount(mounts)
    if not mounts:
        # mountinfo unreadable: assume the usual mount points
        if fs.exists('/sys/fs/cgroup/memory/memory.limit_in_bytes'):
            v1 = {'root': '/', 'mountpoint': '/sys/fs/cgroup/memory', 'fstype': 'cgroup',
                  'options': ['memory']}
        elif fs.exists('/sys/fs/cgroup/cgroup.controllers'):
            v2 = {'root': '/', 'mountpoint': '/sys/fs/cgroup', 'fstype': 'cgroup2',
                  'options': []}

    if v1 is not None:
        path = proc_cgroup['controllers'].get('memory', '/')
        leaf = cgroup_dir(v1, path)
        if not leaf or not fs.isdir(leaf):
            leaf = probe_cgroup_dir(fs, v1['mountpoint'], path) or v1['mountpoint']
        limits = [parse_limit_bytes(fs.read(posixpath.join(d, 'memory.limit_in_bytes')))
                  for d in dirs_up_to(leaf, v1['mountpoint'])]
        limits.append(parse_hierarchical_limit(fs.read(posixpath.join(leaf, 'memory.stat'))))
        return 1, effective_limit(limits)

    if v2 is not None:
        controllers = (fs.read(posixpath.join(v2['mountpoint'], 'cgroup.controllers')) or '').split()
        if 'memory' not in controllers:
            return None, None
        path = proc_cgroup['unified'] or '/'
        leaf = cgroup_dir(v2, path)
        if not leaf or not fs.isdir(leaf):
            leaf = probe_cgroup_dir(fs, v2['mountpoint'], path) or v2['mountpoint']
        # the real root cgroup has no memory.max; a namespace's root (a container) has
        limits = [parse_limit_bytes(fs.read(posixpath.join(d, 'memory.max')))
                  for d in dirs_up_to(leaf, v2['mountpoint'])]
        return 2, effective_limit(limits)

    return None, None


def gather(fs, systemd_detect_virt=None, page_size=None):
    """All omr_memory facts except `units`, from `fs` (HostFS or a fixture)."""
    info = parse_meminfo(fs.read('/proc/meminfo'))
    total_mb = meminfo_total_mb(info)
    mounts = parse_mountinfo(fs.read('/proc/self/mountinfo'))
    proc_cgroup = parse_proc_cgroup(fs.read('/proc/self/cgroup'))
    version, limit_bytes = _memory_cgroup(fs, mounts, proc_cgroup)
    limit_mb = limit_bytes // MIB if limit_bytes is not None else None

    base = '/sys/devices/system/memory'
    states = [fs.read(posixpath.join(base, name, 'state'))
              for name in fs.listdir(base) if name.startswith('memory') and name[6:].isdigit()]
    blocks_mb = memory_blocks_mb(fs.read(posixpath.join(base, 'block_size_bytes')), states)

    installed_mb, installed_source = estimate_installed(total_mb, limit_mb, blocks_mb)
    effective_mb = total_mb
    if limit_mb is not None and total_mb is not None:
        effective_mb = min(total_mb, limit_mb)

    virt = detect_virtualization(
        systemd_detect_virt=systemd_detect_virt,
        containerenv=fs.exists('/run/.containerenv'),
        dockerenv=fs.exists('/.dockerenv'),
        pid1_environ=fs.read('/proc/1/environ'),
        user_beancounters=fs.exists('/proc/user_beancounters'),
        proc_bc=fs.exists('/proc/bc'),
        proc_xen=fs.exists('/proc/xen'),
        cpuinfo=fs.read('/proc/cpuinfo'),
        dmi_sys_vendor=fs.read('/sys/class/dmi/id/sys_vendor'),
        dmi_product_name=fs.read('/sys/class/dmi/id/product_name'),
    )

    return {
        'meminfo_total_mb': total_mb,
        'meminfo_available_mb': meminfo_available_mb(info),
        'swap_total_mb': swap_total_mb(info),
        'cgroup_version': version,
        'cgroup_limit_mb': limit_mb,
        'effective_mb': effective_mb,
        'installed_mb': installed_mb,
        'installed_source': installed_source,
        'virtualization': virt,
        'container': virt in CONTAINER_TYPES,
        'page_size': page_size,
    }
