# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_memory.py on captured text.

The fixtures (tests/unit/fixtures/memory/README.md) are real captures from this lab
machine and from podman containers on it (cgroup v1, hybrid mode). This machine has no
pure cgroup v2 and is no KVM guest, so the v2 and KVM fixtures are crafted from those
captures, following a Debian 12 systemd host's layout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import posixpath

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _memory as m

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'memory')


class FixtureFS:
    """A read-only filesystem made of one fixture directory (same interface as HostFS)."""

    def __init__(self, name):
        self.dir = os.path.join(FIXTURES, name)
        self.files = {}
        tree = os.path.join(self.dir, 'tree')
        for dirpath, dummy, filenames in os.walk(tree):
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                with open(full, 'rb') as f:
                    self.files['/' + os.path.relpath(full, tree)] = f.read().decode('utf-8')
        grep = os.path.join(self.dir, 'files.grep')
        if os.path.exists(grep):
            with open(grep) as f:
                for line in f.read().splitlines():
                    path, dummy, value = line.partition(':')
                    if value == '<exists>':
                        self.files[path] = ''
                    else:
                        self.files[path] = self.files.get(path, '') + value + '\n'

    def cmd(self, name):
        path = os.path.join(self.dir, 'cmd', name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def without(self, prefix):
        self.files = {k: v for k, v in self.files.items() if not k.startswith(prefix)}
        return self

    def read(self, path):
        return self.files.get(posixpath.normpath(path))

    def exists(self, path):
        return posixpath.normpath(path) in self.files or self.isdir(path)

    def isdir(self, path):
        prefix = posixpath.normpath(path).rstrip('/') + '/'
        return any(k.startswith(prefix) for k in self.files)

    def listdir(self, path):
        prefix = posixpath.normpath(path).rstrip('/') + '/'
        return sorted(set(k[len(prefix):].split('/')[0] for k in self.files if k.startswith(prefix)))


def gather(name, fs=None):
    fs = fs or FixtureFS(name)
    return m.gather(fs, systemd_detect_virt=fs.cmd('systemd-detect-virt'),
                    page_size=int(fs.cmd('getconf_PAGESIZE')))


# ---------------------------------------------------------------------------
# the whole estimate, per machine
# ---------------------------------------------------------------------------

# name: (cgroup_version, cgroup_limit_mb, effective_mb, installed_mb, installed_source,
#        virtualization, container, meminfo_total_mb)
EXPECTED = {
    # captured
    'host-docker-cgv1': (1, None, 24105, 24576, 'memory_blocks', 'docker', True, 24105),
    'podman-512m-cgv1': (1, 512, 512, 512, 'cgroup', 'podman', True, 24105),
    'podman-unlimited-cgv1': (1, None, 24105, 24576, 'memory_blocks', 'podman', True, 24105),
    'podman-systemd-1g-cgv1': (1, 1024, 1024, 1024, 'cgroup', 'podman', True, 24105),
    # crafted
    'kvm-1g-cgv2': (2, None, 979, 1024, 'memory_blocks', 'kvm', False, 979),
    'kvm-512m-cgv2': (2, None, 480, 512, 'memory_blocks', 'kvm', False, 480),
    'systemd-host-cgv2': (2, 1024, 1024, 1024, 'cgroup', 'kvm', False, 1967),
    'podman-cgns-512m-cgv2': (2, 512, 512, 512, 'cgroup', 'podman', True, 24105),
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_gather_fixture(name):
    facts = gather(name)
    got = tuple(facts[k] for k in ('cgroup_version', 'cgroup_limit_mb', 'effective_mb', 'installed_mb',
                                   'installed_source', 'virtualization', 'container', 'meminfo_total_mb'))
    assert got == EXPECTED[name]
    assert facts['page_size'] == 4096
    assert facts['swap_total_mb'] == 0
    assert 0 < facts['meminfo_available_mb'] <= facts['meminfo_total_mb']


def test_gather_returns_exactly_the_documented_keys():
    assert sorted(gather('kvm-1g-cgv2')) == sorted([
        'meminfo_total_mb', 'meminfo_available_mb', 'swap_total_mb', 'cgroup_version',
        'cgroup_limit_mb', 'effective_mb', 'installed_mb', 'installed_source',
        'virtualization', 'container', 'page_size'])


def test_podman_512m_meminfo_shows_the_host_but_the_limit_binds():
    # the lab note's observation, on the captured text
    fs = FixtureFS('podman-512m-cgv1')
    assert fs.read('/sys/fs/cgroup/memory/memory.limit_in_bytes').strip() == '536870912'
    assert m.parse_meminfo(fs.read('/proc/meminfo'))['MemTotal'] == 24683656
    facts = gather('podman-512m-cgv1', fs)
    assert facts['effective_mb'] == 512 and facts['installed_mb'] == 512


def test_v1_container_limit_sits_at_the_mount_root():
    # /proc/self/cgroup names /libpod_parent/libpod-ID, mountinfo shows that path as the
    # mount's root: the container's own limit is at /sys/fs/cgroup/memory
    fs = FixtureFS('podman-512m-cgv1')
    cg = m.parse_proc_cgroup(fs.read('/proc/self/cgroup'))
    mount = m.find_v1_mount(m.parse_mountinfo(fs.read('/proc/self/mountinfo')), 'memory')
    assert cg['controllers']['memory'].startswith('/libpod_parent/libpod-')
    assert mount['root'] == cg['controllers']['memory']
    assert m.cgroup_dir(mount, cg['controllers']['memory']) == '/sys/fs/cgroup/memory'


def test_v1_without_mountinfo_probes_the_path():
    fs = FixtureFS('podman-512m-cgv1').without('/proc/self/mountinfo')
    facts = gather('podman-512m-cgv1', fs)
    assert (facts['cgroup_version'], facts['cgroup_limit_mb']) == (1, 512)


def test_v1_hierarchical_limit_covers_ancestors_the_mount_hides():
    # a limit above the container's view only shows in memory.stat
    fs = FixtureFS('podman-unlimited-cgv1')
    fs.files['/sys/fs/cgroup/memory/memory.stat'] = 'cache 0\nhierarchical_memory_limit 805306368\n'
    assert gather('podman-unlimited-cgv1', fs)['cgroup_limit_mb'] == 768


def test_host_walks_the_v1_path_and_finds_no_limit():
    fs = FixtureFS('host-docker-cgv1')
    cg = m.parse_proc_cgroup(fs.read('/proc/self/cgroup'))
    mounts = m.parse_mountinfo(fs.read('/proc/self/mountinfo'))
    leaf = m.cgroup_dir(m.find_v1_mount(mounts, 'memory'), cg['controllers']['memory'])
    dirs = m.dirs_up_to(leaf, '/sys/fs/cgroup/memory')
    assert dirs == [leaf, '/sys/fs/cgroup/memory/process_api', '/sys/fs/cgroup/memory']
    limits = [fs.read(d + '/memory.limit_in_bytes').strip() for d in dirs]
    assert limits == ['9223372036854771712'] * 3
    assert m.effective_limit([m.parse_limit_bytes(x) for x in limits]) is None


def test_v2_limit_is_the_minimum_along_the_path():
    # session scope 1.5 GB, user-0.slice max, user.slice 1 GB: the ancestor binds
    fs = FixtureFS('systemd-host-cgv2')
    assert fs.read('/sys/fs/cgroup/user.slice/user-0.slice/session-5.scope/memory.max').strip() == '1610612736'
    assert gather('systemd-host-cgv2', fs)['cgroup_limit_mb'] == 1024
    # without the ancestor's limit the leaf's counts
    fs.files['/sys/fs/cgroup/user.slice/memory.max'] = 'max\n'
    facts = gather('systemd-host-cgv2', fs)
    assert facts['cgroup_limit_mb'] == 1536
    assert facts['effective_mb'] == 1536
    # a limit below MemTotal is taken as the plan (documented caveat for MemoryMax=)
    assert (facts['installed_mb'], facts['installed_source']) == (1536, 'cgroup')
    # no limit at all: the 16 blocks of 128 MB
    fs.files['/sys/fs/cgroup/user.slice/user-0.slice/session-5.scope/memory.max'] = 'max\n'
    facts = gather('systemd-host-cgv2', fs)
    assert (facts['cgroup_limit_mb'], facts['effective_mb']) == (None, 1967)
    assert (facts['installed_mb'], facts['installed_source']) == (2048, 'memory_blocks')


def test_v2_cgroup_namespace_root():
    fs = FixtureFS('podman-cgns-512m-cgv2')
    assert m.parse_proc_cgroup(fs.read('/proc/self/cgroup'))['unified'] == '/'
    assert gather('podman-cgns-512m-cgv2', fs)['cgroup_limit_mb'] == 512
    # booted with systemd, the process sits in /init.scope (memory.max "max") below the root
    fs.files['/proc/self/cgroup'] = '0::/init.scope\n'
    assert gather('podman-cgns-512m-cgv2', fs)['cgroup_limit_mb'] == 512


def test_v2_without_memory_controller_reports_no_cgroup():
    fs = FixtureFS('kvm-1g-cgv2')
    fs.files['/sys/fs/cgroup/cgroup.controllers'] = 'cpu io pids\n'
    facts = gather('kvm-1g-cgv2', fs)
    assert (facts['cgroup_version'], facts['cgroup_limit_mb']) == (None, None)


def test_hybrid_mode_memory_is_v1():
    # the unified mount of hybrid mode has no memory controller
    fs = FixtureFS('podman-systemd-1g-cgv1')
    mounts = m.parse_mountinfo(fs.read('/proc/self/mountinfo'))
    assert m.find_v2_mount(mounts)['mountpoint'] == '/sys/fs/cgroup/unified'
    assert fs.read('/sys/fs/cgroup/unified/cgroup.controllers').strip() == ''
    assert gather('podman-systemd-1g-cgv1', fs)['cgroup_version'] == 1


# ---------------------------------------------------------------------------
# KVM plans: installed vs MemTotal
# ---------------------------------------------------------------------------

def test_kvm_1g_reads_980_but_is_a_1024_plan():
    facts = gather('kvm-1g-cgv2')
    assert 960 <= facts['meminfo_total_mb'] <= 1000
    assert facts['installed_mb'] == 1024


def test_kvm_1g_without_memory_blocks_rounds_meminfo():
    fs = FixtureFS('kvm-1g-cgv2').without('/sys/devices/system/memory')
    facts = gather('kvm-1g-cgv2', fs)
    assert (facts['installed_mb'], facts['installed_source']) == (1024, 'meminfo')


@pytest.mark.parametrize('drop_blocks', [False, True])
def test_kvm_512_is_512_and_below_1024(drop_blocks):
    fs = FixtureFS('kvm-512m-cgv2')
    if drop_blocks:
        fs.without('/sys/devices/system/memory')
    facts = gather('kvm-512m-cgv2', fs)
    assert facts['installed_mb'] == 512 < 1024
    assert facts['installed_source'] == ('meminfo' if drop_blocks else 'memory_blocks')
    assert facts['effective_mb'] == 480


def test_memory_blocks_from_capture():
    fs = FixtureFS('host-docker-cgv1')
    base = '/sys/devices/system/memory'
    assert m.parse_block_size(fs.read(base + '/block_size_bytes')) == 128 * m.MIB
    states = [fs.read('%s/%s/state' % (base, n)) for n in fs.listdir(base) if n.startswith('memory')]
    assert len(states) == 192
    assert m.memory_blocks_mb(fs.read(base + '/block_size_bytes'), states) == 24576


def test_offline_blocks_do_not_count():
    assert m.memory_blocks_mb('8000000\n', ['online\n', 'offline\n', 'online\n']) == 256
    assert m.memory_blocks_mb('8000000\n', []) is None
    assert m.memory_blocks_mb('', ['online']) is None


@pytest.mark.parametrize('total, plan', [
    (979, 1024), (960, 1024), (1000, 1024), (1024, 1024), (480, 512), (512, 512),
    (1967, 2048), (3900, 4096), (7900, 8192), (24105, 24576),
    (200, 200),     # 256 would be a 22 % gap: not a plan size, keep MemTotal
    (1100, 1100),   # 1280 would be 14 %
    (1200, 1280),   # 6 %
])
def test_round_up_to_plan(total, plan):
    assert m.round_up_to_plan(total) == plan


@pytest.mark.parametrize('total, limit, blocks, expected', [
    (24105, 512, 24576, (512, 'cgroup')),
    (512, 512, 24576, (512, 'cgroup')),             # lxcfs: MemTotal already is the limit
    (24105, 65536, 24576, (24576, 'memory_blocks')),  # a limit above the host does not bind
    (979, None, 1024, (1024, 'memory_blocks')),
    (1000, None, 4096, (1024, 'meminfo')),           # blocks far above MemTotal: a balloon, not trusted
    (979, None, None, (1024, 'meminfo')),
    (None, None, None, (None, None)),
])
def test_estimate_installed(total, limit, blocks, expected):
    assert m.estimate_installed(total, limit, blocks) == expected


# ---------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------

def test_parse_meminfo_capture():
    info = m.parse_meminfo(FixtureFS('host-docker-cgv1').read('/proc/meminfo'))
    assert info['MemTotal'] == 24683656
    assert m.meminfo_total_mb(info) == 24105
    assert m.meminfo_available_mb(info) == 24274708 // 1024
    assert m.swap_total_mb(info) == 0
    assert info['HugePages_Total'] == 0


def test_meminfo_available_fallback_for_old_kernels():
    info = m.parse_meminfo('MemTotal: 1000000 kB\nMemFree: 102400 kB\nBuffers: 10240 kB\nCached: 51200 kB\n')
    assert m.meminfo_available_mb(info) == 160
    assert m.meminfo_available_mb({'MemTotal': 1}) is None


@pytest.mark.parametrize('text, expected', [
    ('9223372036854771712\n', None),   # v1 page-counter max, 4 KiB pages
    ('9223372036854710272\n', None),   # the same with 64 KiB pages
    ('max\n', None),
    ('536870912\n', 536870912),
    ('', None),
    (None, None),
    ('garbage', None),
])
def test_parse_limit_bytes(text, expected):
    assert m.parse_limit_bytes(text) == expected


def test_parse_proc_cgroup_capture():
    cg = m.parse_proc_cgroup(FixtureFS('host-docker-cgv1').read('/proc/self/cgroup'))
    assert cg['unified'] == '/'
    assert cg['controllers']['memory'] == '/process_api/577d795e65b172cdba853a97ab4d3fa3'
    assert cg['controllers']['name=systemd'] == '/'


def test_mountinfo_later_mount_hides_earlier():
    # podman's systemd mode mounts the host's name=systemd hierarchy over the container's
    mounts = m.parse_mountinfo(FixtureFS('podman-systemd-1g-cgv1').read('/proc/self/mountinfo'))
    systemd = [x for x in mounts if 'name=systemd' in x['options']]
    assert len(systemd) == 2 and systemd[0]['root'] != '/'
    assert m.find_v1_mount(mounts, 'name=systemd')['root'] == '/'


def test_mountinfo_unescapes_octal():
    mounts = m.parse_mountinfo('40 31 0:37 / /sys/fs/cgroup/odd\\040dir rw - cgroup cgroup rw,memory\n')
    assert mounts[0]['mountpoint'] == '/sys/fs/cgroup/odd dir'


def test_cgroup_dir_outside_the_mount():
    mount = {'root': '/libpod_parent/libpod-a', 'mountpoint': '/sys/fs/cgroup/memory'}
    assert m.cgroup_dir(mount, '/libpod_parent/libpod-a/sub') == '/sys/fs/cgroup/memory/sub'
    assert m.cgroup_dir(mount, '/libpod_parent/libpod-ab') is None
    assert m.cgroup_dir(mount, '/other') is None


# ---------------------------------------------------------------------------
# virtualization
# ---------------------------------------------------------------------------

HOST_FLAGS = FixtureFS('host-docker-cgv1').read('/proc/cpuinfo')
PODMAN_ENV = FixtureFS('podman-512m-cgv1').read('/proc/1/environ')


@pytest.mark.parametrize('kwargs, expected', [
    (dict(systemd_detect_virt='kvm\n', containerenv=True), 'kvm'),   # its answer wins
    (dict(systemd_detect_virt='none\n', cpuinfo=HOST_FLAGS), 'none'),
    (dict(containerenv=True, cpuinfo=HOST_FLAGS), 'podman'),
    (dict(dockerenv=True), 'docker'),
    (dict(pid1_environ=PODMAN_ENV), 'podman'),
    (dict(pid1_environ='container=lxc\0PATH=/bin\0'), 'lxc'),
    (dict(pid1_environ='container=oci\0'), 'container-other'),
    (dict(user_beancounters=True), 'openvz'),
    (dict(user_beancounters=True, proc_bc=True), 'none'),   # the OpenVZ host node itself
    (dict(dmi_sys_vendor='Red Hat\n', dmi_product_name='KVM\n', cpuinfo=HOST_FLAGS), 'kvm'),
    (dict(dmi_sys_vendor='Hetzner\n', dmi_product_name='vServer\n'), 'kvm'),
    (dict(dmi_sys_vendor='QEMU\n'), 'qemu'),
    (dict(dmi_sys_vendor='Microsoft Corporation\n', dmi_product_name='Virtual Machine\n'), 'microsoft'),
    (dict(cpuinfo=HOST_FLAGS), 'vm-other'),
    (dict(cpuinfo='flags\t\t: fpu vme de pse\n'), 'none'),
    (dict(), 'none'),
])
def test_detect_virtualization(kwargs, expected):
    assert m.detect_virtualization(**kwargs) == expected


def test_host_capture_pid1_environ_unreadable():
    # on this lab machine /proc/1/environ is not readable even for root; /.dockerenv decides
    fs = FixtureFS('host-docker-cgv1')
    assert fs.read('/proc/1/environ') is None
    assert m.detect_virtualization(dockerenv=fs.exists('/.dockerenv')) == 'docker'


# ---------------------------------------------------------------------------
# systemd units
# ---------------------------------------------------------------------------

def unit(name, unit_name):
    fs = FixtureFS(name)
    show = m.parse_systemctl_show(fs.cmd('systemctl_show_' + unit_name))
    return m.unit_memory(fs, show, m.parse_mountinfo(fs.read('/proc/self/mountinfo')))


def test_parse_systemctl_show_ignores_order():
    show = m.parse_systemctl_show(FixtureFS('podman-systemd-1g-cgv1').cmd('systemctl_show_systemd-journald.service'))
    # captured: systemd printed MainPID and ControlGroup before Id, not in -p order
    assert show['MainPID'] == '34' and show['LoadState'] == 'loaded' and show['ActiveState'] == 'active'
    assert show['ControlGroup'].endswith('/system.slice/systemd-journald.service')


def test_unit_journald_in_podman_systemd_v1():
    # ControlGroup includes /libpod_parent/libpod-ID: it resolves in the host-rooted
    # name=systemd mount podman puts on top
    assert unit('podman-systemd-1g-cgv1', 'systemd-journald.service') == {
        'present': True, 'active': True, 'pids': [34], 'rss_mb': round(7665 / 1024.0, 1)}


def test_unit_not_found():
    assert unit('podman-systemd-1g-cgv1', 'nonexistent.service') == {
        'present': False, 'active': False, 'pids': [], 'rss_mb': 0.0}


def test_unit_v2_prefers_pss():
    got = unit('systemd-host-cgv2', 'ssh.service')
    assert got == {'present': True, 'active': True, 'pids': [612], 'rss_mb': 7.5}


def test_unit_v2_sub_cgroups_and_vmrss_fallback():
    # user@0.service keeps its processes in init.scope/app.slice below it, and pid 1201
    # has no readable smaps_rollup: VmRSS (12452 kB) stands in
    got = unit('systemd-host-cgv2', 'user@0.service')
    assert got == {'present': True, 'active': True, 'pids': [1201], 'rss_mb': 12.2}


def test_unit_pids_that_vanished_are_skipped():
    fs = FixtureFS('systemd-host-cgv2')
    fs.files['/sys/fs/cgroup/system.slice/ssh.service/cgroup.procs'] = '612\n999\n'
    show = m.parse_systemctl_show(fs.cmd('systemctl_show_ssh.service'))
    got = m.unit_memory(fs, show, m.parse_mountinfo(fs.read('/proc/self/mountinfo')))
    assert got['pids'] == [612]


def test_unit_inactive_has_no_pids():
    fs = FixtureFS('systemd-host-cgv2')
    show = {'Id': 'omr-admin.service', 'LoadState': 'loaded', 'ActiveState': 'inactive',
            'MainPID': '0', 'ControlGroup': ''}
    assert m.unit_memory(fs, show, []) == {'present': True, 'active': False, 'pids': [], 'rss_mb': 0.0}


def test_pss_and_vmrss_parsers_on_capture():
    fs = FixtureFS('podman-systemd-1g-cgv1')
    assert m.parse_pss_kb(fs.read('/proc/34/smaps_rollup')) == 7665
    assert m.parse_vmrss_kb(fs.read('/proc/34/status')) == 12452
    assert m.parse_pss_kb(None) is None and m.parse_vmrss_kb('Name:\tkthreadd\n') is None
