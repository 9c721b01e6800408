# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_firewall.py, the omr.deploy.vps_firewall_plan filter and the
template that renders the plan (roles/vps/templates/omr-vps-firewall.nft.j2), which nft must accept."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

import jinja2
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.filter import vps_firewall_plan as filter_plugin
from ansible_collections.omr.deploy.plugins.module_utils import _firewall as f

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
TEMPLATE = os.path.join(ROOT, 'roles', 'vps', 'templates', 'omr-vps-firewall.nft.j2')

# What roles/vps/vars/main.yml's __omr_vps_firewall_services gives with the proxy, the VPN and the
# speed test enabled (the lab's speed-test clients).
SERVICES = [
    {'port': 65101, 'proto': 'tcp', 'comment': 'proxy', 'var': 'omr_vps_proxy_port'},
    {'port': 65101, 'proto': 'udp', 'comment': 'proxy', 'var': 'omr_vps_proxy_port'},
    {'port': 65301, 'proto': 'tcp', 'comment': 'VPN', 'var': 'omr_vps_vpn_port'},
    {'port': 65432, 'proto': 'tcp', 'comment': 'speed test', 'var': 'omr_vps_speedtest_port',
     'sources': ['100.64.0.0/16', '198.51.100.20/32'], 'sources_var': 'omr_vps_speedtest_allowed_clients'},
]


def plan(extra=None, **kw):
    kw.setdefault('default_interface', 'eth0')
    kw.setdefault('services', SERVICES)
    return f.plan_firewall(extra or [], **kw)


def rule(p, proto, port):
    found = [r for r in p['rules'] if (r['proto'], r['port']) == (proto, port)]
    assert len(found) == 1, (proto, port)
    return found[0]


def test_the_role_default_plan():
    p = plan()
    assert p['public_interfaces'] == ['eth0']
    assert p['icmp_limit'] == {'rate': 10, 'unit': 'second', 'burst': 20}
    assert p['ssh_ports'] == [22] and p['ssh_port_in_use'] is None
    assert p['tcp'] == [22, 65101, 65301, 65432]
    assert p['udp'] == [65101]
    assert [(r['proto'], r['port']) for r in p['rules']] == [
        ('tcp', 22), ('tcp', 65101), ('tcp', 65301), ('tcp', 65432), ('udp', 65101)]
    speed = rule(p, 'tcp', 65432)
    assert speed['sources'] == ['100.64.0.0/16', '198.51.100.20/32']
    assert speed['comment'] == 'speed test' and speed['vars'] == ['omr_vps_speedtest_port']
    assert rule(p, 'tcp', 22)['sources'] == [] and rule(p, 'tcp', 22)['comment'] == 'ssh'
    assert len(p['digest']) == 16


def test_the_digest_follows_the_plan():
    assert plan()['digest'] == plan()['digest']
    assert plan()['digest'] != plan([{'port': 8443, 'proto': 'tcp'}])['digest']
    assert plan()['digest'] != plan(icmp_rate='5/second')['digest']


@pytest.mark.parametrize('in_use, ssh_ports, opened', [
    (None, 'auto', [22]),           # podman, docker, local: the VPS's sshd on 22
    (2222, 'auto', [2222]),         # auto is the port Ansible came in on, only that one
    ('2222', None, [2222]),
    ('', 'auto', [22]),
    (22, [22, 2222], [22, 2222]),
    (None, [2222], [2222]),         # nothing to protect when Ansible does not come over SSH
    (None, [], []),
    (2222, ['2222', 22, 2222], [22, 2222]),
])
def test_ssh_ports(in_use, ssh_ports, opened):
    p = plan(ssh_ports=ssh_ports, ssh_port_in_use=in_use)
    assert p['ssh_ports'] == opened
    assert [r['port'] for r in p['rules'] if r['comment'] == 'ssh'] == opened


@pytest.mark.parametrize('ssh_ports', [[22], [], [22, 2200]])
def test_a_list_without_the_port_in_use_is_refused(ssh_ports):
    with pytest.raises(ValueError, match=r'^omr_vps_firewall_ssh_ports .* lacks 2222, the SSH port Ansible reaches'):
        plan(ssh_ports=ssh_ports, ssh_port_in_use=2222)


def test_the_refusal_names_the_port_in_use():
    with pytest.raises(ValueError) as e:
        plan(ssh_ports=[2222], ssh_port_in_use=22)
    assert str(e.value).startswith('omr_vps_firewall_ssh_ports [2222] lacks 22,')
    assert 'Add 22 to the list' in str(e.value)


def test_extra_ports_with_sources_split_by_family():
    p = plan([{'port': 8443, 'proto': 'TCP', 'comment': 'admin', 'sources': ['2001:db8::1/32', '192.0.2.7/24', '192.0.2.0/24']},
              {'port': 51820, 'proto': 'udp'}])
    admin = rule(p, 'tcp', 8443)
    assert admin['sources'] == ['192.0.2.0/24', '2001:db8::/32']       # host bits cleared, deduplicated
    assert admin['sources_ipv4'] == ['192.0.2.0/24'] and admin['sources_ipv6'] == ['2001:db8::/32']
    assert admin['comment'] == 'admin'
    wg = rule(p, 'udp', 51820)
    assert wg['comment'] == 'omr_vps_firewall_extra_ports[1]' and wg['sources'] == []
    assert p['udp'] == [51820, 65101]


def test_a_port_asked_for_twice_alike_is_one_rule():
    p = plan([{'port': 65101, 'proto': 'tcp', 'comment': 'proxy again'}, {'port': 22, 'proto': 'tcp'}])
    proxy = rule(p, 'tcp', 65101)
    assert proxy['comment'] == 'proxy, proxy again'
    assert proxy['vars'] == ['omr_vps_proxy_port', 'omr_vps_firewall_extra_ports[0]']
    assert rule(p, 'tcp', 22)['vars'] == ['omr_vps_firewall_ssh_ports', 'omr_vps_firewall_extra_ports[1]']


def test_signal_endpoints_with_a_port_are_opened():
    p = plan(mptcp_endpoints=[{'address': '198.51.100.10', 'port': 65350},
                              {'address': '198.51.100.11', 'port': 65351, 'flags': ['subflow']},
                              {'address': '198.51.100.12', 'port': None, 'flags': ['signal']},
                              {'address': '198.51.100.13', 'flags': ['signal', 'backup'], 'port': 65352}])
    assert [r['port'] for r in p['rules'] if r['comment'] == 'MPTCP subflows'] == [65350, 65352]


@pytest.mark.parametrize('extra, kw, message', [
    ([{'port': 70000, 'proto': 'tcp'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.port 70000 is not a port \(1-65535\)'),
    ([{'port': 0, 'proto': 'udp'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.port 0 is not a port'),
    ([{'port': 'https', 'proto': 'tcp'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.port must be a port number'),
    ([{'port': True, 'proto': 'tcp'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.port must be a port number'),
    ([{'proto': 'tcp'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.port must be a port number'),
    ([{'port': 53, 'proto': 'icmp'}], {}, r"^omr_vps_firewall_extra_ports\[0\]\.proto must be tcp or udp, got 'icmp'"),
    ([{'port': 53}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.proto must be tcp or udp'),
    ([{'port': 53, 'proto': 'udp', 'sources': ['10.0.0.0/8', 'example.org']}], {},
     r"^omr_vps_firewall_extra_ports\[0\]\.sources\[1\] 'example.org' is not a network"),
    ([{'port': 53, 'proto': 'udp', 'sources': ['10.0.0.0/33']}], {}, r'sources\[0\] .* is not a network'),
    ([{'port': 53, 'proto': 'udp', 'sources': '10.0.0.0/8'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.sources must be a list'),
    ([{'port': 53, 'proto': 'udp', 'comment': 'say "hi"'}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.comment must be'),
    ([{'port': 53, 'proto': 'udp', 'comment': 'x' * 101}], {}, r'^omr_vps_firewall_extra_ports\[0\]\.comment must be'),
    ([8443], {}, r'^omr_vps_firewall_extra_ports\[0\] must be a dict'),
    ({'port': 8443}, {}, r'^omr_vps_firewall_extra_ports must be a list'),
    ([{'port': 65432, 'proto': 'tcp'}], {},
     r'^omr_vps_firewall_extra_ports\[0\] opens tcp 65432 to everybody, but omr_vps_speedtest_port opens it to '
     r'100\.64\.0\.0/16, 198\.51\.100\.20/32: one port, one list of sources'),
    ([{'port': 22, 'proto': 'tcp', 'sources': ['192.0.2.0/24']}], {},
     r'^omr_vps_firewall_extra_ports\[0\] opens tcp 22 to 192\.0\.2\.0/24, but omr_vps_firewall_ssh_ports opens it to everybody'),
    ([{'port': 8443, 'proto': 'tcp', 'sources': ['192.0.2.0/24']}, {'port': 8443, 'proto': 'tcp'}], {},
     r'^omr_vps_firewall_extra_ports\[1\] opens tcp 8443 to everybody, but omr_vps_firewall_extra_ports\[0\] opens it'),
    ([], {'ssh_ports': [22, 65536]}, r'^omr_vps_firewall_ssh_ports\[1\] 65536 is not a port'),
    ([], {'ssh_ports': 'ssh'}, r"^omr_vps_firewall_ssh_ports must be auto or a list of ports, got 'ssh'"),
    ([], {'ssh_ports': 22}, r'^omr_vps_firewall_ssh_ports must be a list'),
    ([], {'public_interfaces': ['eth0', 'eth 1']}, r"^omr_vps_firewall_public_interfaces\[1\] 'eth 1' is not an interface name"),
    ([], {'public_interfaces': ['averyveryverylongname']}, r'^omr_vps_firewall_public_interfaces\[0\]'),
    ([], {'public_interfaces': ['"eth0"']}, r'^omr_vps_firewall_public_interfaces\[0\]'),
    ([], {'public_interfaces': [], 'default_interface': None},
     r'^omr_vps_firewall_public_interfaces is empty and the host has no default IPv4 route'),
    ([], {'icmp_rate': 'fast'}, r"^omr_vps_firewall_icmp_rate must be a rate such as '10/second burst 20'"),
    ([], {'icmp_rate': '10/week'}, r'^omr_vps_firewall_icmp_rate must be a rate'),
    ([], {'icmp_rate': '0/second'}, r'^omr_vps_firewall_icmp_rate: rate and burst must be at least 1'),
    ([], {'services': [{'port': 99999, 'proto': 'tcp', 'var': 'omr_vps_vpn_port'}]}, r'^omr_vps_vpn_port 99999 is not a port'),
    ([], {'services': [{'port': 65432, 'proto': 'tcp', 'var': 'omr_vps_speedtest_port', 'sources': ['nowhere'],
                        'sources_var': 'omr_vps_speedtest_allowed_clients'}]},
     r"^omr_vps_speedtest_allowed_clients\[0\] 'nowhere' is not a network"),
    ([], {'mptcp_endpoints': [{'address': '198.51.100.10', 'port': 70000}]}, r'^omr_vps_mptcp_endpoints\[0\]\.port 70000'),
])
def test_bad_input_is_refused_naming_the_variable(extra, kw, message):
    with pytest.raises(ValueError, match=message):
        plan(extra, **kw)


def test_interfaces():
    assert plan(public_interfaces=['ens3', 'wg*', 'ens3'])['public_interfaces'] == ['ens3', 'wg*']
    assert plan(public_interfaces=[], default_interface='ens18')['public_interfaces'] == ['ens18']


@pytest.mark.parametrize('text, limit', [
    ('10/second burst 20', {'rate': 10, 'unit': 'second', 'burst': 20}),
    ('100/minute', {'rate': 100, 'unit': 'minute', 'burst': 100}),
    (' 5 / second burst 8 packets ', {'rate': 5, 'unit': 'second', 'burst': 8}),
])
def test_icmp_rate(text, limit):
    assert f.parse_icmp_rate(text) == limit


def test_the_filter_names_itself_and_the_variable():
    assert filter_plugin.FilterModule().filters()['vps_firewall_plan'] is filter_plugin.vps_firewall_plan
    p = filter_plugin.vps_firewall_plan([], default_interface='eth0', ssh_port_in_use=2222)
    assert p['ssh_ports'] == [2222]
    with pytest.raises(AnsibleFilterError, match=r'^omr.deploy.vps_firewall_plan: omr_vps_firewall_ssh_ports \[22\] lacks 2222'):
        filter_plugin.vps_firewall_plan([], default_interface='eth0', ssh_ports=[22], ssh_port_in_use=2222)


# ---- node_exporter's port stays closed (omr_vps_monitoring_enabled) ------------------------------

EXPORTER = [{'port': 9100, 'proto': 'tcp', 'var': 'omr_vps_monitoring_listen', 'why': 'where node_exporter listens'}]


def test_a_closed_port_asked_for_is_refused_naming_both_variables():
    p = plan(closed=EXPORTER)
    assert 9100 not in p['tcp'] and 9100 not in p['udp']
    # Not part of the plan: turning monitoring on does not change the digest, nor reload the table.
    assert p == plan()
    with pytest.raises(ValueError, match=r'^omr_vps_firewall_extra_ports\[0\] opens tcp 9100, where node_exporter '
                                         r'listens \(omr_vps_monitoring_listen\): the firewall never opens it'):
        plan([{'port': 9100, 'proto': 'tcp', 'sources': ['192.0.2.0/24']}], closed=EXPORTER)
    # UDP 9100 is another port.
    assert plan([{'port': 9100, 'proto': 'udp'}], closed=EXPORTER)['udp'] == [9100, 65101]


def role_vars(**overrides):
    """roles/vps's defaults and vars, templated by Ansible as the role sees them."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    loader = DataLoader()
    variables = {}
    for name in ('defaults', 'vars'):
        variables.update(loader.load_from_file(os.path.join(ROOT, 'roles', 'vps', name, 'main.yml'),
                                               trusted_as_template=True))
    variables.update(overrides)
    return Templar(loader=loader, variables=variables), variables


def test_the_roles_firewall_keeps_the_exporters_port_closed_with_every_concern_on():
    # Monitoring on, on the VPN's end (what a scrape through the tunnel uses), with every concern that
    # opens a port: the plan the role makes opens neither 9100 nor anything monitoring asks for.
    templar, variables = role_vars(
        omr_vps_monitoring_enabled=True, omr_vps_monitoring_listen='10.255.252.1:9100',
        omr_vps_speedtest_enabled=True, omr_vps_speedtest_allowed_clients=['100.64.0.0/16'],
        omr_vps_mptcp_endpoints=[{'address': '203.0.113.7', 'port': 65010, 'flags': ['signal']}],
        __omr_vps_monitoring_plan={'port': 9100, 'listen': '10.255.252.1:9100'})
    services = templar.template(variables['__omr_vps_firewall_services'])
    closed = templar.template(variables['__omr_vps_firewall_closed'])
    assert closed == EXPORTER
    p = f.plan_firewall([], default_interface='eth0', services=services, closed=closed,
                        mptcp_endpoints=templar.template(variables['omr_vps_mptcp_endpoints']))
    assert p['tcp'] == [22, 65010, 65101, 65301, 65432] and p['udp'] == [65101]
    assert not [r for r in p['rules'] if r['port'] == 9100 or any('monitoring' in v for v in r['vars'])]
    # Off, nothing is kept closed (and nothing opened either).
    templar, variables = role_vars(omr_vps_monitoring_enabled=False)
    assert templar.template(variables['__omr_vps_firewall_closed']) == []


# ---- the template ------------------------------------------------------------------------------

def render(p):
    # As ansible.builtin.template renders it (trim_blocks on); the template only reads the plan.
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    with open(TEMPLATE, encoding='utf-8') as fh:
        return env.from_string(fh.read()).render(__omr_vps_firewall_plan=p, ansible_managed='Ansible managed')


FULL = dict(extra=[{'port': 8443, 'proto': 'tcp', 'comment': 'admin', 'sources': ['192.0.2.0/24', '2001:db8::/32']},
                   {'port': 51820, 'proto': 'udp', 'comment': 'WireGuard'}],
            public_interfaces=['eth0', 'ens*'], ssh_ports=[22, 2222], ssh_port_in_use=2222, icmp_rate='5/second burst 9',
            mptcp_endpoints=[{'address': '198.51.100.10', 'port': 65350}])


def test_the_template_renders_the_plan():
    text = render(plan(**FULL))
    lines = [line.strip() for line in text.splitlines()]
    # Replacing only its own table, atomically: never `flush ruleset`.
    body = [line for line in lines if line and not line.startswith('#')]
    assert body[:3] == ['table inet omr_vps_firewall {}', 'delete table inet omr_vps_firewall', 'table inet omr_vps_firewall {']
    assert 'flush' not in text
    assert 'type filter hook input priority filter; policy drop;' in lines
    assert not [line for line in lines if 'hook forward' in line or 'hook output' in line]
    assert 'comment "omr.deploy.vps %s"' % plan(**FULL)['digest'] in lines
    assert 'iifname != "eth0" iifname != "ens*" accept comment "not a public interface"' in lines
    assert 'ct state established,related accept' in lines and 'ct state invalid drop' in lines
    nd = [line for line in lines if 'nd-neighbor-solicit' in line][0]
    assert 'limit' not in nd and nd.endswith('accept comment "neighbour discovery"')
    # Per source address, and before conntrack (a ping's echo requests are one established flow);
    # errors about the VPS's own connections (related) are never limited.
    drop4 = ('meta l4proto icmp ct state != related update @icmp_sources4 { ip saddr limit rate over 5/second '
             'burst 9 packets } drop comment "ICMP above the rate"')
    drop6 = ('meta l4proto 58 ct state != related update @icmp_sources6 { ip6 saddr limit rate over 5/second '
             'burst 9 packets } drop comment "ICMPv6 above the rate"')
    assert lines.index(nd) < lines.index(drop4) < lines.index(drop6) < lines.index('ct state established,related accept')
    assert lines.index('ct state invalid drop') < lines.index('meta l4proto { 1, 58 } accept comment "ICMP"')
    assert 'ip saddr { 192.0.2.0/24 } tcp dport 8443 accept comment "admin"' in lines
    assert 'ip6 saddr { 2001:db8::/32 } tcp dport 8443 accept comment "admin"' in lines
    assert 'ip saddr { 100.64.0.0/16, 198.51.100.20/32 } tcp dport 65432 accept comment "speed test"' in lines
    assert not [line for line in lines if 'ip6 saddr' in line and '65432' in line]
    for port in (22, 2222, 65101, 65301, 65350):
        assert [line for line in lines if line.startswith('tcp dport %d accept' % port)], port
    for port in (51820, 65101):
        assert [line for line in lines if line.startswith('udp dport %d accept' % port)], port
    # Loopback and the non-public side come before anything that drops.
    assert lines.index('iifname "lo" accept') < lines.index('ct state invalid drop')
    # The same plan renders the same file: a second run changes nothing.
    assert text == render(plan(**FULL))


NFT = shutil.which('nft') or ('/usr/sbin/nft' if os.path.exists('/usr/sbin/nft') else None)


@pytest.mark.skipif(NFT is None, reason='nft (nftables) is not installed')
@pytest.mark.skipif(os.geteuid() != 0, reason='nft -c needs CAP_NET_ADMIN')
@pytest.mark.parametrize('kw', [{}, FULL, {'services': [], 'ssh_ports': [], 'icmp_rate': '1/day'}],
                         ids=['defaults', 'full', 'bare'])
def test_nft_accepts_the_rendered_file(tmp_path, kw):
    # `nft -c` checks the file against the kernel and changes nothing (the role's validate: step).
    p = plan(**kw)
    path = tmp_path / 'firewall.nft'
    path.write_text(render(p))
    res = subprocess.run([NFT, '-c', '-f', str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
