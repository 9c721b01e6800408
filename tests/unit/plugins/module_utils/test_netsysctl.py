# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_netsysctl.py and the omr.deploy.vps_net_sysctls filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.filter import vps_net_sysctls as filter_plugin
from ansible_collections.omr.deploy.plugins.module_utils import _netsysctl as n
from ansible_collections.omr.deploy.plugins.module_utils._memory import gather


def _sibling(name):
    # tests/ has no packages (no __init__.py): load the fixture reader from test_memory.py
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + '.py')
    spec = importlib.util.spec_from_file_location('_omr_' + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FixtureFS = _sibling('test_memory').FixtureFS
MIB = 1024 * 1024
HOST = FixtureFS('host-docker-cgv1')
# captured on the lab machine: "reno bbr cubic" (sysctl -n output)
HOST_CC = HOST.cmd('sysctl_net.ipv4.tcp_available_congestion_control')


def pages(triple):
    return [int(x) for x in triple.split(' ')]


def test_matches_omr_net_mem_own_test_vector():
    # Ysurac/openmptcprouter-vps tests/test_net_mem.sh @ 0d87b2ae: MemTotal 982016 kB
    # (959 MB, 245504 pages) -> tcp "29460 39280 58920", udp "23016 30688 46032"
    mem = n.socket_mem(959)
    assert mem['ram_pages'] == 245504
    assert mem['tcp_mem'] == (29460, 39280, 58920)
    assert mem['udp_mem'] == (23016, 30688, 46032)
    plan = n.vps_net_sysctls(959)
    assert plan['net.ipv4.tcp_mem'] == '29460 39280 58920'
    assert plan['net.ipv4.udp_mem'] == '23016 30688 46032'


# mb: (tcp_mem, udp_mem, buffer max, somaxconn)
PLANS = {
    512: ('11796 15728 23592', '12288 16384 24576', 32 * MIB, '4096'),
    1024: ('31457 41943 62914', '24576 32768 49152', 64 * MIB, '16384'),
    2048: ('62914 83886 125829', '49152 65536 98304', 64 * MIB, '16384'),
    8192: ('251658 335544 503316', '196608 262144 393216', 64 * MIB, '16384'),
}


@pytest.mark.parametrize('mb', sorted(PLANS))
def test_plan(mb):
    tcp, udp, buf, somaxconn = PLANS[mb]
    plan = n.vps_net_sysctls(mb, congestion_controls=HOST_CC)
    assert plan['net.ipv4.tcp_mem'] == tcp
    assert plan['net.ipv4.udp_mem'] == udp
    assert plan['net.core.rmem_max'] == plan['net.core.wmem_max'] == str(buf)
    assert plan['net.ipv4.tcp_rmem'] == plan['net.ipv4.tcp_wmem'] == '4096 131072 %d' % buf
    assert plan['net.core.somaxconn'] == somaxconn
    assert plan['net.ipv4.tcp_congestion_control'] == 'bbr'


def test_1g_tcp_mem_stays_far_below_ram():
    ram_pages = 1024 * MIB // 4096
    low, pressure, high = pages(n.vps_net_sysctls(1024)['net.ipv4.tcp_mem'])
    assert high * 4096 <= 0.25 * 1024 * MIB          # 246 MB of 1024
    assert high + pages(n.vps_net_sysctls(1024)['net.ipv4.udp_mem'])[2] < ram_pages // 2
    # the installer's static value, for contrast: a ceiling of 6.4 GB on a 1 GB VPS
    assert 1638400 * 4096 > 6 * 1024 * MIB


def test_1g_kvm_reading_979_gets_the_1g_tier():
    # MemTotal reads short; the 16 % tier starts at 768 MB for that reason
    assert n.tcp_percent(979) == 16
    assert pages(n.vps_net_sysctls(979)['net.ipv4.tcp_mem'])[1] > 0.9 * pages(n.vps_net_sysctls(1024)['net.ipv4.tcp_mem'])[1]


@pytest.mark.parametrize('mb', [64, 128, 191, 192, 256, 384, 512, 767, 768, 979, 1024, 1536,
                                2048, 4096, 8192, 16384, 24105, 65536])
def test_invariants(mb):
    plan = n.vps_net_sysctls(mb, congestion_controls=HOST_CC)
    ram_pages = mb * MIB // 4096
    tcp, udp = pages(plan['net.ipv4.tcp_mem']), pages(plan['net.ipv4.udp_mem'])
    assert tcp[0] < tcp[1] < tcp[2] and udp[0] < udp[1] < udp[2]
    assert tcp[2] + udp[2] < ram_pages * 3 // 4                     # omr-net-mem's ceiling
    assert tcp[1] >= ram_pages // 16 and udp[1] >= ram_pages // 8   # never below the kernel's
    buf = int(plan['net.core.wmem_max'])
    # one socket never passes the pressure threshold, let alone the high mark
    assert buf <= tcp[1] * 4096 < tcp[2] * 4096
    assert buf <= 64 * MIB
    assert buf == min(max(4 * MIB, min(64 * MIB, mb * MIB // 16)), tcp[1] * 4096)
    rmin, rdef, rmax = pages(plan['net.ipv4.tcp_rmem'])
    assert rmin <= rdef <= rmax == buf
    for key, value in plan.items():
        assert isinstance(value, str)
        assert value == ' '.join(value.split())       # single spaces, no tabs
        assert not key.startswith('net.mptcp.mptcp_')  # never the v0 keys


def test_fixed_and_mptcp_keys():
    plan = n.vps_net_sysctls(1024)
    assert {k: plan[k] for k in n.FIXED} == {
        'net.core.netdev_max_backlog': '10000',
        'net.ipv4.tcp_fastopen': '3',
        'net.ipv4.tcp_slow_start_after_idle': '0',
        'net.ipv4.tcp_notsent_lowat': '131072',
        'net.ipv4.tcp_mtu_probing': '1',
        'net.ipv4.tcp_fin_timeout': '30',
        'net.ipv4.tcp_tw_reuse': '1',
        'net.ipv4.ip_local_port_range': '9999 65000',
        'net.ipv4.tcp_max_syn_backlog': '4096',
        'net.mptcp.enabled': '1',
        'net.mptcp.checksum_enabled': '0',
        'net.mptcp.allow_join_initial_addr_port': '1',
        'net.mptcp.add_addr_timeout': '120',
        'net.mptcp.stale_loss_cnt': '4',
    }
    assert len(plan) == len(n.FIXED) + 7        # + mem, buffers, somaxconn; no congestion control asked


@pytest.mark.parametrize('cc, chosen', [
    (HOST_CC, 'bbr'),                # captured "reno bbr cubic\n"
    ('reno\tbbr', 'bbr'),            # a lab container's allowed list
    ('reno cubic', 'cubic'),
    ('reno', 'reno'),
    ('', None),
    (None, None),
    ([], None),
    ('bbr2 cubic2', None),
])
def test_bbr_then_cubic_then_reno_by_default(cc, chosen):
    plan = n.vps_net_sysctls(1024, congestion_controls=cc)
    assert plan.get('net.ipv4.tcp_congestion_control') == chosen


@pytest.mark.parametrize('cc, chosen', [
    (HOST_CC, 'cubic'),
    ('reno\tbbr', 'reno'),           # a lab container's allowed list: never bbr
    (['reno', 'bbr'], 'reno'),
    ('bbr', None),
])
def test_loss_based_never_bbr(cc, chosen):
    plan = n.vps_net_sysctls(1024, congestion_controls=cc, congestion_control_choice='loss')
    assert plan.get('net.ipv4.tcp_congestion_control') == chosen


def test_a_named_control_must_be_offered():
    assert n.vps_net_sysctls(1024, congestion_controls='reno bbr', congestion_control_choice='reno')[
        'net.ipv4.tcp_congestion_control'] == 'reno'
    kept = n.vps_net_sysctls(1024, congestion_controls='reno bbr', congestion_control_choice='kernel')
    assert 'net.ipv4.tcp_congestion_control' not in kept
    with pytest.raises(ValueError, match='omr_router_congestion_control cubic is not offered by this host '
                                         r'\(it offers reno bbr\)'):
        n.vps_net_sysctls(1024, congestion_controls='reno bbr', congestion_control_choice='cubic',
                          var='omr_router_congestion_control')


@pytest.mark.parametrize('page_size', [4096, 16384, 65536])
def test_page_size_scales_pages_not_bytes(page_size):
    base = pages(n.vps_net_sysctls(2048)['net.ipv4.tcp_mem'])
    got = pages(n.vps_net_sysctls(2048, page_size=page_size)['net.ipv4.tcp_mem'])
    assert abs(got[1] * page_size - base[1] * 4096) < page_size * 2


def test_sized_from_captured_machines():
    # effective memory of the captured podman --memory 512m container -> the 512 plan
    fs = FixtureFS('podman-512m-cgv1')
    facts = gather(fs, systemd_detect_virt=fs.cmd('systemd-detect-virt'), page_size=4096)
    plan = n.vps_net_sysctls(facts['effective_mb'], page_size=facts['page_size'],
                             congestion_controls=HOST_CC)
    assert plan['net.ipv4.tcp_mem'] == PLANS[512][0]
    # the lab machine itself: its kernel sized tcp_mem for 24 GB at 1/16; we use 16 %
    facts = gather(HOST, systemd_detect_virt=HOST.cmd('systemd-detect-virt'), page_size=4096)
    kernel = pages(HOST.cmd('sysctl_net.ipv4.tcp_mem').replace('\t', ' ').strip())
    ours = pages(n.vps_net_sysctls(facts['effective_mb'])['net.ipv4.tcp_mem'])
    assert kernel[1] < ours[1] < facts['effective_mb'] * MIB // 4096 // 4


@pytest.mark.parametrize('bad', [0, -1, 'abc', None, True, 1.5])
def test_rejects_bad_memory(bad):
    with pytest.raises(ValueError):
        n.vps_net_sysctls(bad)


def test_accepts_int_like():
    assert n.vps_net_sysctls('1024') == n.vps_net_sysctls(1024) == n.vps_net_sysctls(1024.0)


def test_too_little_memory_is_refused():
    # at 2 MB the kernel's 128-page minimum pushes the ceilings to 75 % of RAM
    with pytest.raises(ValueError, match='75%'):
        n.vps_net_sysctls(2)
    assert n.vps_net_sysctls(3)


def test_filter_plugin():
    filters = filter_plugin.FilterModule().filters()
    assert list(filters) == ['vps_net_sysctls']
    f = filters['vps_net_sysctls']
    assert f(512, congestion_controls='reno bbr') == n.vps_net_sysctls(512, 4096, 'reno bbr')
    with pytest.raises(AnsibleFilterError, match='vps_net_sysctls'):
        f('lots')


def test_filter_docs_parse():
    import yaml
    doc = yaml.safe_load(filter_plugin.DOCUMENTATION)
    assert doc['name'] == 'vps_net_sysctls'
    assert set(doc['options']) == {'_input', 'page_size', 'congestion_controls', 'congestion_control', 'var'}
    assert yaml.safe_load(filter_plugin.RETURN)['_value']['type'] == 'dict'
    assert os.path.basename(filter_plugin.__file__).startswith('vps_net_sysctls')
