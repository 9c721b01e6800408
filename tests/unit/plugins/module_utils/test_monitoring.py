# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_monitoring.py and its filters: where node_exporter may listen
(never the public side), its arguments, and the textfiles the roles write, which `promtool check
metrics` must accept when promtool is installed (Debian's prometheus package)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import shutil
import subprocess

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.filter import converge_metrics as converge_filter
from ansible_collections.omr.deploy.plugins.filter import node_exporter_plan as plan_filter
from ansible_collections.omr.deploy.plugins.filter import router_metrics as router_filter
from ansible_collections.omr.deploy.plugins.filter import vps_metrics as vps_filter
from ansible_collections.omr.deploy.plugins.module_utils import _monitoring as m

# Ansible's interface facts of a VPS: eth0 public (a provider's 1:1 NAT gives it a private address
# too), ens4 on the provider's private network, omrvpn the VPN's tunnel.
INTERFACES = [
    {'device': 'lo', 'ipv4': {'address': '127.0.0.1'}, 'ipv6': [{'address': '::1'}]},
    {'device': 'eth0', 'ipv4': {'address': '203.0.113.7'}, 'ipv4_secondaries': [{'address': '10.0.0.7'}],
     'ipv6': [{'address': '2001:db8::7', 'prefix': '64', 'scope': 'global'}]},
    {'device': 'ens4', 'ipv4': {'address': '10.20.0.7'}},
    {'device': 'omrvpn', 'ipv4': {'address': '10.255.252.1'}},
]
VPN = [{'address': '10.255.252.1', 'var': "the VPS's end of the VPN, omr_vps_vpn_subnet"}]
TAKEN = {'omr_vps_proxy_port': 65101, 'omr_vps_vpn_port': 65301, 'omr_vps_speedtest_port': 65432}
WANS = [{'name': 'wan1', 'address': '192.0.2.2/24'}, {'name': 'lte', 'address': 'dhcp'},
        {'name': 'wifi', 'address': '172.16.0.2/29'}]
LAN = [{'address': '192.168.100.1/24', 'var': "the LAN's address, omr_router_lan.address"}]

MEMORY = {'meminfo_total_mb': 979, 'effective_mb': 979, 'installed_mb': 1024, 'installed_source': 'memory_blocks'}
MPTCP = {'flavour': 'v1', 'enabled': True, 'limits': {'subflows': 8, 'add_addr_accepted': 8},
         'endpoints': [{'id': 1, 'address': '203.0.113.7', 'dev': 'eth0', 'port': None, 'flags': ['signal']}]}
ROUTER_PLAN = {
    'wans': [
        {'name': 'wan1', 'device': 'eth1', 'multipath': 'master', 'addressing': 'static',
         'endpoint': {'address': '192.0.2.2', 'dev': 'eth1', 'id': 1, 'flags': ['subflow', 'fullmesh']}},
        {'name': 'lte', 'device': 'wwan0', 'multipath': 'on', 'addressing': 'dhcp', 'endpoint': None, 'pending': True},
        {'name': 'spare', 'device': 'eth3', 'multipath': 'off', 'addressing': 'static', 'endpoint': None},
    ],
    'endpoints': [{'address': '192.0.2.2', 'dev': 'eth1', 'id': 1, 'flags': ['subflow', 'fullmesh']}],
    'limits': {'subflows': 8, 'add_addr_accepted': 8},
}


def vps_plan(listen, **kw):
    kw.setdefault('declared', VPN)
    kw.setdefault('interfaces', INTERFACES)
    kw.setdefault('default_interface', 'eth0')
    kw.setdefault('taken', TAKEN)
    return m.plan_exporter(listen, **kw)


def router_plan(listen, **kw):
    kw.setdefault('var', 'omr_router_monitoring_listen')
    kw.setdefault('private_var', 'omr_router_monitoring_private_addresses')
    kw.setdefault('declared', LAN)
    kw.setdefault('wans', WANS)
    kw.setdefault('taken', {'omr_router_proxy_local_port': 1100})
    return m.plan_exporter(listen, **kw)


# ---- where node_exporter listens --------------------------------------------------------------

def test_the_default_is_loopback_with_the_mptcp_counters_and_the_textfile_directory():
    p = vps_plan(m.DEFAULT_LISTEN)
    assert (p['listen'], p['address'], p['port'], p['loopback'], p['declared_by']) == \
        ('127.0.0.1:9100', '127.0.0.1', 9100, True, None)
    assert p['args'] == [
        '--web.listen-address=127.0.0.1:9100',
        '--collector.netstat.fields=' + m.NETSTAT_FIELDS,
        '--collector.textfile.directory=/var/lib/prometheus/node-exporter',
    ]
    assert p['environment'] == 'ARGS="%s"' % ' '.join(p['args'])


def test_the_args_split_alike_under_systemd_and_the_init_script():
    # systemd's $ARGS splits on whitespace; the init script's unquoted $ARGS too, and unquoted they
    # carry no quote, backslash or $ that either would treat differently.
    p = vps_plan('[::1]:9100')
    line = p['environment']
    value = line[len('ARGS="'):-1]
    assert line.startswith('ARGS="') and line.endswith('"') and '"' not in value
    for arg in p['args']:
        assert not re.search(r'[\s"\'\\`]', arg), arg
        assert '$' not in arg[:-1], arg  # the regexp's final anchor is the only $
    assert value.split() == p['args'] == shlex.split(value)
    assert p['args'][0] == '--web.listen-address=[::1]:9100'


def test_the_netstat_fields_keep_the_packages_defaults_and_add_every_mptcpext_counter():
    fields = re.compile(m.NETSTAT_FIELDS)
    for name in ('MPTcpExt_MPCapableFallbackACK', 'MPTcpExt_MPCapableFallbackSYNACK', 'MPTcpExt_MPJoinSynRx',
                 'MPTcpExt_AddAddr', 'TcpExt_TCPSynRetrans', 'Tcp_CurrEstab', 'Udp_InDatagrams', 'Ip_Forwarding',
                 'Icmp_InErrors', 'TcpExt_ListenOverflows'):
        assert fields.match(name), name
    for name in ('TcpExt_TCPOFOQueue', 'MPTcpExtX', 'Tcp_MaxConn'):
        assert not fields.match(name), name


@pytest.mark.parametrize('listen', ['0.0.0.0:9100', '[::]:9100', ':9100', '9100', 9100, '*:9100'])
def test_every_address_is_refused_naming_the_variable(listen):
    with pytest.raises(ValueError, match=r"^omr_vps_monitoring_listen .*(every address|no address).*public one"):
        vps_plan(listen)


@pytest.mark.parametrize('listen,where', [
    ('203.0.113.7:9100', 'an address of eth0, a public interface'),
    # A private address on the public interface: a cloud's 1:1 NAT reaches it from the internet.
    ('10.0.0.7:9100', 'an address of eth0, a public interface'),
    ('[2001:db8::7]:9100', 'an address of eth0, a public interface'),
])
def test_an_address_of_the_public_interfaces_is_refused(listen, where):
    with pytest.raises(ValueError, match=r'^omr_vps_monitoring_listen .*is %s \(omr_vps_firewall_public_interfaces\); '
                                         r'node_exporter must never answer on the public side' % re.escape(where)):
        vps_plan(listen, private_addresses=['10.0.0.7'])


def test_the_public_interfaces_are_the_declared_ones_else_the_default_routes():
    with pytest.raises(ValueError, match='an address of ens4, a public interface'):
        vps_plan('10.20.0.7:9100', private_addresses=['10.20.0.7'], public_interfaces=['ens*'])
    p = vps_plan('10.20.0.7:9100', private_addresses=['10.20.0.7'], public_interfaces=['eth0'])
    assert p['declared_by'] == 'omr_vps_monitoring_private_addresses[0]'
    with pytest.raises(ValueError, match='the address of the default route'):
        vps_plan('10.9.9.9:9100', private_addresses=['10.9.9.9'], interfaces=[],
                 public=[{'address': '10.9.9.9', 'where': 'the address of the default route'}])


def test_the_vpn_end_and_declared_private_addresses_are_accepted():
    p = vps_plan('10.255.252.1:9100')
    assert (p['listen'], p['loopback'], p['declared_by']) == \
        ('10.255.252.1:9100', False, "the VPS's end of the VPN, omr_vps_vpn_subnet")
    assert vps_plan('10.20.0.7:9200', private_addresses=['10.20.0.7/24'])['listen'] == '10.20.0.7:9200'
    assert vps_plan('127.0.0.53:9100')['loopback']


def test_an_undeclared_address_is_refused_listing_what_is_declared():
    with pytest.raises(ValueError, match=r"^omr_vps_monitoring_listen '10.20.0.7:9100': 10.20.0.7 is neither loopback nor "
                                         r"a declared private or tunnel address \(declared: 10.255.252.1 \(the VPS's end "
                                         r"of the VPN, omr_vps_vpn_subnet\)\)\. .*omr_vps_monitoring_private_addresses"):
        vps_plan('10.20.0.7:9100')
    with pytest.raises(ValueError, match=r'declared: none'):
        vps_plan('10.255.252.1:9100', declared=[])


@pytest.mark.parametrize('addresses,message', [
    (['8.8.8.8'], r'omr_vps_monitoring_private_addresses\[0\] 8.8.8.8 is not a private address'),
    (['10.0.0.1', 'eth0'], r"omr_vps_monitoring_private_addresses\[1\] 'eth0' is not an IP address"),
    ('10.0.0.1', r'omr_vps_monitoring_private_addresses must be a list'),
])
def test_bad_private_addresses_are_refused(addresses, message):
    with pytest.raises(ValueError, match=message):
        vps_plan(m.DEFAULT_LISTEN, private_addresses=addresses)


@pytest.mark.parametrize('listen,message', [
    ('localhost:9100', r"'localhost' is not an IP address"),
    ('127.0.0.1:0', r'0 is not a port'),
    ('127.0.0.1:70000', r'70000 is not a port'),
    ('127.0.0.1', r'must be ADDRESS:PORT'),
    ('', r'must be ADDRESS:PORT'),
    (None, r'must be ADDRESS:PORT'),
    ('127.0.0.1:65101', r"port 65101 is omr_vps_proxy_port's"),
])
def test_malformed_addresses_and_taken_ports_are_refused(listen, message):
    with pytest.raises(ValueError, match=r'^omr_vps_monitoring_listen .*' + message):
        vps_plan(listen)


def test_the_router_may_listen_on_its_lan_never_on_a_wan():
    p = router_plan('192.168.100.1:9100')
    assert p['declared_by'] == "the LAN's address, omr_router_lan.address"
    assert router_plan(m.DEFAULT_LISTEN)['loopback']
    for address, wan in (('192.0.2.2', 'wan1'), ('172.16.0.2', 'wifi')):
        with pytest.raises(ValueError, match=r"^omr_router_monitoring_listen '%s:9100': .* is the address of WAN %s "
                                             r"\(omr_router_wans\)" % (re.escape(address), wan)):
            router_plan(address + ':9100', private_addresses=[address])
    with pytest.raises(ValueError, match=r"port 1100 is omr_router_proxy_local_port's"):
        router_plan('127.0.0.1:1100')
    with pytest.raises(ValueError, match=r'omr_router_monitoring_private_addresses'):
        router_plan('10.1.1.1:9100')


def test_the_filter_names_the_variable_and_raises_a_filter_error():
    assert plan_filter.FilterModule().filters() == {'node_exporter_plan': plan_filter.node_exporter_plan}
    assert plan_filter.node_exporter_plan('127.0.0.1:9100')['listen'] == '127.0.0.1:9100'
    with pytest.raises(AnsibleFilterError, match=r'^omr.deploy.node_exporter_plan: omr_router_monitoring_listen'):
        plan_filter.node_exporter_plan('0.0.0.0:9100', var='omr_router_monitoring_listen')


# ---- the text exposition format -------------------------------------------------------------------

def families(text):
    """{name: [(labels, value)]} from exposition text, checking HELP and TYPE come first."""
    out = {}
    current = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('# HELP '):
            current = line.split()[2]
            assert lines[i + 1].startswith('# TYPE %s ' % current)
            out[current] = []
        elif line.startswith('# TYPE '):
            continue
        else:
            mm = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
            assert mm and mm.group(1) == current, line
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', mm.group(3) or ''))
            out[current].append((labels, mm.group(4)))
    return out


def test_render_escapes_label_values_and_help_and_leaves_empty_families_out():
    text = m.render([
        ('a_gauge', 'gauge', 'Help with a \\ and\na newline.', [({'b': 'x"y\\z\nw', 'a': 1}, 2.5)]),
        ('empty', 'gauge', 'No samples.', []),
        ('flag', 'gauge', 'A bool.', [({}, True)]),
        ('big', 'gauge', 'An integral float.', [({}, 1073741824.0)]),
    ])
    assert text == ('# HELP a_gauge Help with a \\\\ and\\na newline.\n'
                    '# TYPE a_gauge gauge\n'
                    'a_gauge{a="1",b="x\\"y\\\\z\\nw"} 2.5\n'
                    '# HELP flag A bool.\n# TYPE flag gauge\nflag 1\n'
                    '# HELP big An integral float.\n# TYPE big gauge\nbig 1073741824\n')
    assert m.render([('nothing', 'gauge', 'x', [])]) == ''


@pytest.mark.parametrize('fams,message', [
    ([('bad-name', 'gauge', 'x', [({}, 1)])], 'invalid or repeated'),
    ([('a', 'gauge', 'x', [({}, 1)]), ('a', 'gauge', 'x', [({}, 1)])], 'invalid or repeated'),
    ([('a', 'summary', 'x', [({}, 1)])], 'type'),
    ([('a', 'gauge', 'x', [({'__name__': 'b'}, 1)])], 'label names'),
    ([('a', 'gauge', 'x', [({'0x': 'b'}, 1)])], 'label names'),
])
def test_render_refuses_what_prometheus_would(fams, message):
    with pytest.raises(ValueError, match=message):
        m.render(fams)


def test_the_vps_textfile():
    text = m.vps_metrics(MEMORY, mptcp=MPTCP, swappiness='10\n', masked=['snapd.socket', 'exim4.service', 'exim4.service'])
    got = families(text)
    assert got['omr_vps_memory_plan_bytes'] == [({}, '1073741824')]
    assert got['omr_vps_memory_effective_bytes'] == [({}, str(979 * 1024 * 1024))]
    assert got['omr_vps_swappiness'] == [({}, '10')]
    assert got['omr_vps_masked_services'] == [({}, '2')]
    assert got['omr_vps_masked_service'] == [({'unit': 'exim4.service'}, '1'), ({'unit': 'snapd.socket'}, '1')]
    assert got['omr_mptcp_flavour'] == [({'flavour': 'v1', 'role': 'vps'}, '1')]
    assert got['omr_mptcp_enabled'] == [({'role': 'vps'}, '1')]
    assert got['omr_mptcp_endpoints'] == [({'role': 'vps'}, '1')]
    assert got['omr_mptcp_limit'] == [({'kind': 'subflows', 'role': 'vps'}, '8'),
                                      ({'kind': 'add_addr_accepted', 'role': 'vps'}, '8')]
    assert got['omr_mptcp_endpoint_info'] == [({'address': '203.0.113.7', 'dev': 'eth0', 'flags': 'signal', 'id': '1'}, '1')]
    # No timestamp: the same state renders the same file, so a second converge changes nothing.
    assert m.vps_metrics(MEMORY, mptcp=MPTCP, swappiness=10, masked=['exim4.service', 'snapd.socket']) == text
    assert 'timestamp' not in text


def test_the_vps_textfile_leaves_unknown_values_out():
    got = families(m.vps_metrics({}, mptcp={'flavour': 'none', 'enabled': False, 'limits': None, 'endpoints': []}))
    assert sorted(got) == ['omr_mptcp_enabled', 'omr_mptcp_endpoints', 'omr_mptcp_flavour']
    assert got['omr_mptcp_flavour'] == [({'flavour': 'none', 'role': 'vps'}, '1')]
    assert got['omr_mptcp_endpoints'] == [({'role': 'vps'}, '0')]
    assert m.vps_metrics(None) == ''
    # Services left alone (omr_vps_services_enabled false): no masked gauges; an empty list is 0.
    assert 'masked' not in m.vps_metrics({}, masked=None)
    assert families(m.vps_metrics({}, masked=[]))['omr_vps_masked_services'] == [({}, '0')]


def test_the_router_textfile_says_per_wan_its_mode_and_whether_it_has_an_endpoint():
    got = families(m.router_metrics(ROUTER_PLAN, mptcp=MPTCP))
    assert got['omr_router_wan_info'] == [
        ({'addressing': 'static', 'device': 'eth1', 'mode': 'master', 'wan': 'wan1'}, '1'),
        ({'addressing': 'dhcp', 'device': 'wwan0', 'mode': 'on', 'wan': 'lte'}, '1'),
        ({'addressing': 'static', 'device': 'eth3', 'mode': 'off', 'wan': 'spare'}, '1'),
    ]
    assert got['omr_router_wan_endpoint'] == [({'device': 'eth1', 'wan': 'wan1'}, '1'),
                                              ({'device': 'wwan0', 'wan': 'lte'}, '0'),
                                              ({'device': 'eth3', 'wan': 'spare'}, '0')]
    assert got['omr_router_wans'] == [({}, '3')]
    # Endpoints and limits as planned, not the live ones in omr_mptcp.
    assert got['omr_mptcp_endpoints'] == [({'role': 'router'}, '1')]
    assert got['omr_mptcp_limit'] == [({'kind': 'subflows', 'role': 'router'}, '8'),
                                      ({'kind': 'add_addr_accepted', 'role': 'router'}, '8')]
    assert 'omr_mptcp_endpoint_info' not in got
    assert m.router_metrics({}) == ''


def test_the_converge_record():
    assert m.converge_metrics(1767225600.9, 'vps') == (
        '# HELP omr_deploy_last_converge_timestamp_seconds Unix time of the last converge of an omr.deploy role '
        'that changed this host.\n'
        '# TYPE omr_deploy_last_converge_timestamp_seconds gauge\n'
        'omr_deploy_last_converge_timestamp_seconds{role="vps"} 1767225600\n')
    with pytest.raises(ValueError, match='role'):
        m.converge_metrics(1, 'a role')
    with pytest.raises(ValueError, match='timestamp'):
        m.converge_metrics('now', 'vps')


def test_the_filters_are_thin_wrappers():
    assert vps_filter.FilterModule().filters() == {'vps_metrics': vps_filter.vps_metrics}
    assert router_filter.FilterModule().filters() == {'router_metrics': router_filter.router_metrics}
    assert converge_filter.FilterModule().filters() == {'converge_metrics': converge_filter.converge_metrics}
    assert vps_filter.vps_metrics(MEMORY, mptcp=MPTCP, swappiness=10) == m.vps_metrics(MEMORY, MPTCP, 10)
    assert router_filter.router_metrics(ROUTER_PLAN, mptcp=MPTCP) == m.router_metrics(ROUTER_PLAN, MPTCP)
    assert converge_filter.converge_metrics(5, role='router').endswith('{role="router"} 5\n')
    with pytest.raises(AnsibleFilterError, match='^omr.deploy.converge_metrics: role'):
        converge_filter.converge_metrics(5, role='')


PROMTOOL = shutil.which('promtool')


# Skipped without promtool, except under CI, which installs it (the Makefile's APT_PACKAGES).
@pytest.mark.skipif(PROMTOOL is None and os.environ.get('CI', '').lower() != 'true',
                    reason="promtool is not installed (Debian's prometheus package)")
@pytest.mark.parametrize('text', [
    m.vps_metrics(MEMORY, mptcp=MPTCP, swappiness=10, masked=['exim4.service', 'snapd.socket']),
    m.router_metrics(ROUTER_PLAN, mptcp=MPTCP),
    m.converge_metrics(1767225600, 'router'),
], ids=['vps', 'router', 'converge'])
def test_promtool_accepts_the_textfiles(text):
    assert PROMTOOL, 'promtool is missing: CI must run this (Debian\'s prometheus package)'
    res = subprocess.run([PROMTOOL, 'check', 'metrics'], input=text, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
