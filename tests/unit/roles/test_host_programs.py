# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VPS's roles/vps/files/omr-mptcp-restore.py and the WiFi bridge's
roles/wifi_bridge/files/omr-wifi-bridge-net.py on captured state (tests/unit/fixtures/vps/ and
bridge/, see the README there), and the helpers they share (plugins/module_utils/_host.py)."""

import json

from conftest import FakeHost, captured_host, fixture_text, load_program

restore = load_program('vps', 'omr-mptcp-restore.py')
bridge = load_program('wifi_bridge', 'omr-wifi-bridge-net.py')
host_tools = restore._host

VPS_CONFIG = json.loads(fixture_text('vps', 'configured', 'mptcp.json'))
BRIDGE_CONFIG = json.loads(fixture_text('bridge', 'configured', 'net.json'))


def ran(host):
    return [' '.join(c) if isinstance(c, list) else ' '.join(c[0]) + ' <<' for c in host.ran]


# ---------------------------------------------------------------- omr-mptcp-restore

def test_the_configured_vps_needs_nothing(tmp_path):
    config = tmp_path / 'mptcp.json'
    config.write_text(json.dumps(VPS_CONFIG))
    host = captured_host('vps/configured')
    assert restore.main(['--config', str(config), 'check'], host=host) == 0 and host.ran == []


def test_after_a_reboot_the_default_routes_address_is_announced_again(tmp_path):
    config = tmp_path / 'mptcp.json'
    config.write_text(json.dumps(VPS_CONFIG))
    host = captured_host('vps/configured', {('ip', 'mptcp', 'endpoint', 'show'): '',
                                            ('ip', 'mptcp', 'limits', 'show'): 'add_addr_accepted 0 subflows 2 \n'})
    assert restore.main(['--config', str(config)], host=host) == 0
    assert ran(host) == ['ip mptcp limits set subflows 8 add_addr_accepted 8',
                         'ip mptcp endpoint add 198.51.100.10 dev eth0 id 1 signal']


def test_it_waits_for_the_default_route(tmp_path):
    config = tmp_path / 'mptcp.json'
    config.write_text(json.dumps(dict(VPS_CONFIG, wait_seconds=3)))
    no_route = captured_host('vps/configured', {('ip', '-j', '-4', 'route', 'show', 'table', 'all'): '[]'})
    slept = []
    assert restore.main(['--config', str(config)], host=no_route, sleep=slept.append) == 1
    assert slept == [1, 1, 1] and no_route.ran == []


def test_declared_endpoints_are_restored_as_declared(tmp_path):
    config = tmp_path / 'mptcp.json'
    declared = [{'address': '198.51.100.10', 'dev': 'eth0', 'id': 5, 'flags': ['signal']},
                {'address': '192.0.2.99', 'dev': None, 'id': None, 'flags': ['signal']}]
    config.write_text(json.dumps(dict(VPS_CONFIG, default_route=False, endpoints=declared)))
    host = captured_host('vps/configured')
    assert restore.main(['--config', str(config)], host=host) == 0
    assert ran(host) == ['ip mptcp endpoint delete id 1', 'ip mptcp endpoint add 198.51.100.10 dev eth0 id 5 signal',
                         'ip mptcp endpoint add 192.0.2.99 signal']


# ---------------------------------------------------------------- omr-wifi-bridge-net

def test_the_configured_bridge_matches_its_configuration():
    assert bridge.fixes(captured_host('bridge/configured'), BRIDGE_CONFIG,
                        host_tools.read_state(captured_host('bridge/configured'))) == []


def test_a_renumbered_transit_link_replaces_the_address_and_the_nat():
    config = dict(BRIDGE_CONFIG, subnet='172.16.5.0/29', address='172.16.5.2', prefix=29)
    host = captured_host('bridge/configured')
    host_tools.apply_fixes(host, bridge.fixes(host, config, host_tools.read_state(host)), out=_Sink())
    assert ran(host) == ['ip addr flush dev transit scope global', 'ip addr add 172.16.5.2/29 dev transit', 'nft -f - <<']
    rules = host.ran[-1][1]
    assert 'iifname "transit" oifname "uplink" ip saddr 172.16.5.0/29 accept' in rules
    assert 'oifname "uplink" ip saddr 172.16.5.0/29 masquerade' in rules


def test_the_bridge_configuration_must_be_complete(tmp_path, capsys):
    config = tmp_path / 'net.json'
    config.write_text(json.dumps({'uplink_device': 'wlan0'}))
    assert bridge.main(['--config', str(config), 'check'], host=FakeHost()) == 1
    assert 'lacks transit_device, subnet, address, prefix' in capsys.readouterr().err


class _Sink(object):
    def write(self, text):
        pass


# ---------------------------------------------------------------- _host

def test_a_missing_device_is_an_error():
    state = host_tools.read_state(captured_host('router/fresh'))
    try:
        host_tools.want_link_up(state, 'wan7')
    except host_tools.HostError as exc:
        assert 'device wan7 does not exist' in str(exc)
    else:
        raise AssertionError('no error for a missing device')


def test_a_rule_with_another_selector_is_replaced():
    state = {'rules': [{'priority': 1101, 'src': '100.64.1.2', 'table': '101', 'iif': 'lan'}]}
    fixes = host_tools.want_rule(state, 1101, '100.64.1.2', '101', 'wan1 rule')
    assert [f.commands for f in fixes] == [[['ip', 'rule', 'del', 'priority', '1101'],
                                            ['ip', 'rule', 'add', 'from', '100.64.1.2', 'lookup', '101', 'priority', '1101']]]


def test_ping_summaries():
    assert host_tools.parse_ping(fixture_text('wifi', 'ping_iputils_loss.txt')) == {
        'transmitted': 17, 'received': 10, 'loss_pct': 41.1765, 'rtt_ms': 0.046, 'errors': 0}
    assert host_tools.parse_ping(fixture_text('wifi', 'ping_iputils_all_lost.txt'))['rtt_ms'] is None
    assert host_tools.parse_ping('')['loss_pct'] is None
