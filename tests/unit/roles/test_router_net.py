# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/router/files/omr-router-net.py on captured state: the commands it plans for each subcommand.

Fixtures (tests/unit/fixtures/router/, see the README there):
  configured/  the lab router after a converge (wifi profile): `ip -j` link/addr/route/rule, nft, ip mptcp,
               the plan.json the role wrote and wan2's lease file.
  applied-debian13/  what the program applied on a Debian 13 box (iproute2 6.15).
  fresh/       a network namespace wired like the lab router before its first converge (wan1 and the LAN
               addressed as podman does, wan2 and transit without addresses).
Ping summaries come from tests/unit/fixtures/wifi/ (real iputils captures).
"""

import io
import json
import os

import pytest

from conftest import captured_host, fixture_text, load_program

net = load_program('router', 'omr-router-net.py')
PLAN = json.loads(fixture_text('router', 'configured', 'plan.json'))
LEASE = net.runtime.parse_lease(fixture_text('router', 'configured', 'wan2.env'))
WAN2 = [w for w in PLAN['wans'] if w['name'] == 'wan2'][0]
WIFI = [w for w in PLAN['wans'] if w['name'] == 'wifi'][0]
TRANSIT = PLAN['transit']['wifi1']


def commands(host, plan=PLAN, leases=None, mptcp=True, apply=True):
    out = io.StringIO()
    count = net.converge(host, plan, {'wan2': LEASE} if leases is None else leases, mptcp, apply, out)
    return count, [' '.join(c) if isinstance(c, list) else ' '.join(c[0]) + ' <<' for c in host.ran], out.getvalue()


def test_the_configured_router_matches_its_plan():
    count, ran, out = commands(captured_host('router/configured'), apply=False)
    assert (count, ran, out) == (0, [], '')


def test_what_it_applied_on_debian_13_reads_back_as_planned():
    # iproute2 6.15 and nftables 1.1 print the state it made the way 6.1 does, as far as it reads.
    count, ran, out = commands(captured_host('router/applied-debian13'), apply=False)
    assert (count, ran, out) == (0, [], '')


def test_a_fresh_router_gets_everything_in_order():
    count, ran, out = commands(captured_host('router/fresh'))
    t, wan2 = TRANSIT, LEASE
    assert ran == [
        'ip link set dev transit up',
        'ip addr flush dev transit scope global',
        'ip addr add %s/%s dev transit' % (t['router_address'], t['prefix']),
        'ip route replace 100.64.1.0/24 dev wan1 src 100.64.1.2 table 101',
        'ip route replace default via 100.64.1.254 dev wan1 table 101',
        'ip rule add from 100.64.1.2 lookup 101 priority 1101',
        'ip route replace default via 100.64.1.254 dev wan1 metric 1',
        'ip link set dev wan2 up',
        # dhcpcd holds a DHCP WAN's address: only its routes are ours.
        'ip route replace %s dev wan2 src %s table 102' % (wan2['network'], wan2['address']),
        'ip route replace default via %s dev wan2 table 102' % wan2['gateway'],
        'ip rule add from %s lookup 102 priority 1102' % wan2['address'],
        'ip route replace default via %s dev wan2 metric 11' % wan2['gateway'],
        'ip route replace %s dev transit src %s table 103' % (t['subnet'], t['router_address']),
        'ip route replace default via %s dev transit table 103' % t['peer_address'],
        'ip rule add from %s lookup 103 priority 1103' % t['router_address'],
        'ip route replace default via %s dev transit metric 12' % t['peer_address'],
        'nft -f - <<',
        'ip mptcp limits set subflows 8 add_addr_accepted 8',
        'ip mptcp endpoint add 100.64.1.2 dev wan1 id 1 subflow fullmesh',
        'ip mptcp endpoint add %s dev wan2 id 2 subflow fullmesh' % wan2['address'],
        'ip mptcp endpoint add %s dev transit id 3 subflow fullmesh' % t['router_address'],
    ]
    # One fix per difference, each said before its commands run.
    assert count == len(out.splitlines()) == 17 and out.startswith('fixing: transit up\n')


def test_the_nat_table_masquerades_the_lan_out_of_every_wan():
    host = captured_host('router/fresh')
    commands(host)
    stdin = [c[1] for c in host.ran if isinstance(c, tuple)][0]
    assert stdin.startswith('table ip omr_router\ndelete table ip omr_router\ntable ip omr_router {\n  comment "omr.deploy ')
    assert 'oifname { "wan1", "wan2", "transit" } ip saddr 192.168.100.0/24 masquerade' in stdin
    # The configured router carries the same table, recognised by its comment.
    assert 'comment "%s"' % net._host.nft_comment(net.nat_body(PLAN)) in fixture_text('router', 'configured', 'nft-omr_router.txt')


def test_a_renumbered_lease_moves_table_rule_and_endpoint():
    new = dict(LEASE, address='100.64.2.227')
    count, ran, _out = commands(captured_host('router/configured'), leases={'wan2': new})
    assert ran == [
        'ip route flush table 102',
        'ip route replace %s dev wan2 src 100.64.2.227 table 102' % LEASE['network'],
        'ip route replace default via %s dev wan2 table 102' % LEASE['gateway'],
        'ip rule del priority 1102',
        'ip rule add from 100.64.2.227 lookup 102 priority 1102',
        'ip mptcp endpoint delete id 2',
        'ip mptcp endpoint add 100.64.2.227 dev wan2 id 2 subflow fullmesh',
    ]
    assert count == 4


def test_a_lease_that_is_gone_takes_its_routes_and_endpoint_with_it():
    count, ran, out = commands(captured_host('router/configured'), leases={})
    assert ran == ['ip route flush table 102', 'ip rule del priority 1102',
                   'ip route del default dev wan2 metric 11', 'ip mptcp endpoint delete id 2']
    assert 'wan2: no DHCP lease on wan2 yet' in out and count == 4


def test_check_lists_without_changing():
    host = captured_host('router/fresh')
    count, ran, out = commands(host, apply=False)
    assert ran == [] and count == len(out.splitlines()) and out.startswith('differs: transit up\n')


def test_a_demoted_quality_wan_is_left_a_backup():
    endpoints = fixture_text('router', 'configured', 'mptcp-endpoint.txt').replace(
        'id 3 subflow fullmesh', 'id 3 subflow backup fullmesh')
    host = captured_host('router/configured', {('ip', 'mptcp', 'endpoint', 'show'): endpoints})
    assert commands(host, apply=False)[:2] == (0, [])


def test_no_nat_removes_the_table():
    plan = dict(PLAN, nat=dict(PLAN['nat'], enabled=False))
    _count, ran, _out = commands(captured_host('router/configured'), plan=plan)
    assert ran == ['nft delete table ip omr_router']


# ---------------------------------------------------------------- lease events (dhcpcd's hook)

DHCPCD_ENV = {'new_ip_address': '100.64.2.150', 'new_subnet_cidr': '24', 'new_routers': '100.64.2.254',
              'interface': 'wan2', 'reason': 'BOUND'}


def test_before_the_first_plan_a_lease_is_only_kept(tmp_path):
    host = captured_host('router/fresh')
    out = io.StringIO()
    assert net.on_lease(host, None, 'wan2', 'BOUND', DHCPCD_ENV, str(tmp_path), out) == 0
    assert (tmp_path / 'wan2.env').read_text() == 'ADDRESS=100.64.2.150\nPREFIX=24\nGATEWAY=100.64.2.254\nNETWORK=100.64.2.0/24\n'
    assert host.ran == [] and 'no plan yet' in out.getvalue()
    net.on_lease(host, None, 'wan2', 'EXPIRE', {}, str(tmp_path), out)
    assert not (tmp_path / 'wan2.env').exists()


def test_a_new_lease_is_kept_and_followed_at_once(tmp_path):
    host = captured_host('router/configured')
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(PLAN))
    leases = tmp_path / 'dhcp'
    rc = net.main(['--plan', str(plan_file), '--lease-dir', str(leases), 'lease', 'wan2', 'BOUND'], host=host,
                  env=DHCPCD_ENV)
    assert rc == 0
    assert net.runtime.parse_lease((leases / 'wan2.env').read_text())['address'] == '100.64.2.150'
    assert 'ip rule add from 100.64.2.150 lookup 102 priority 1102' in [' '.join(c) for c in host.ran]
    assert 'ip mptcp endpoint add 100.64.2.150 dev wan2 id 2 subflow fullmesh' in [' '.join(c) for c in host.ran]
    assert (leases / '.lock').exists()


@pytest.mark.parametrize('device, reason', [('wan1', 'BOUND'), ('wan2', 'PREINIT'), ('wan2', 'CARRIER')])
def test_other_devices_and_reasons_change_nothing(tmp_path, device, reason):
    host = captured_host('router/configured')
    assert net.on_lease(host, PLAN, device, reason, DHCPCD_ENV, str(tmp_path), io.StringIO()) == 0
    assert host.ran == [] and not os.listdir(str(tmp_path))


# ---------------------------------------------------------------- quality

def quality_host(ping_fixture, backup=False):
    endpoints = fixture_text('router', 'configured', 'mptcp-endpoint.txt')
    if backup:
        endpoints = endpoints.replace('id 3 subflow fullmesh', 'id 3 subflow backup fullmesh')
    ping = ('ping', '-n', '-q', '-c', '10', '-i', '0.2', '-W', '2', '-I', WIFI['address'], PLAN['vps']['address'])
    rc = 1 if 'all_lost' in ping_fixture else 0
    return captured_host('router/configured', {('ip', 'mptcp', 'endpoint', 'show'): endpoints,
                                               ping: (rc, fixture_text('wifi', ping_fixture))})


def test_a_lossy_path_demotes_the_wan_and_says_why(tmp_path):
    host, out = quality_host('ping_iputils_loss.txt'), io.StringIO()
    net.quality(host, PLAN, {'wan2': LEASE}, str(tmp_path), out)
    assert host.ran == [['ip', 'mptcp', 'endpoint', 'change', 'id', '3', 'backup', 'fullmesh']]
    # The lab's quality check greps for this line.
    assert out.getvalue() == ('<4>wifi: quality poor (loss 41.1765 %% > 20 %%): endpoint 3 (%s) is now a backup\n'
                              % WIFI['address'])
    assert (tmp_path / 'wifi').read_text() == 'poor\n'


def test_a_good_path_restores_a_demoted_wan(tmp_path):
    host, out = quality_host('ping_iputils.txt', backup=True), io.StringIO()
    net.quality(host, PLAN, {'wan2': LEASE}, str(tmp_path), out)
    assert host.ran == [['ip', 'mptcp', 'endpoint', 'change', 'id', '3', 'nobackup', 'fullmesh']]
    assert out.getvalue().startswith('wifi: quality good again (loss 0 %, rtt 0.049 ms): endpoint 3')


@pytest.mark.parametrize('fixture, backup', [('ping_iputils.txt', False), ('ping_iputils_all_lost.txt', True)])
def test_no_change_when_the_flag_already_fits(tmp_path, fixture, backup):
    host = quality_host(fixture, backup=backup)
    net.quality(host, PLAN, {'wan2': LEASE}, str(tmp_path), io.StringIO())
    assert host.ran == []


def test_verdicts():
    sample = {'loss_pct': 0.0, 'rtt_ms': None}
    assert net.quality_verdict(sample, {'max_loss_pct': None, 'max_rtt_ms': 100}) == 'no reply'
    assert net.quality_verdict({'loss_pct': None, 'rtt_ms': 20.0}, {'max_loss_pct': 5, 'max_rtt_ms': 10}) == \
        'loss 100 % > 5 %, rtt 20 ms > 10 ms'
    assert net.quality_verdict({'loss_pct': 1.0, 'rtt_ms': 5.0}, {'max_loss_pct': 5, 'max_rtt_ms': 10}) == ''


# ---------------------------------------------------------------- show, and the plan on stdin

def test_show_resolves_the_dhcp_wan(tmp_path, capsys):
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(PLAN))
    (tmp_path / 'dhcp').mkdir()
    (tmp_path / 'dhcp' / 'wan2.env').write_text(net.runtime.render_lease(LEASE))
    assert net.main(['--plan', str(plan_file), '--lease-dir', str(tmp_path / 'dhcp'), 'show'], host=object()) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [w['address'] for w in shown['wans']] == ['100.64.1.2', LEASE['address'], TRANSIT['router_address']]
    assert len(shown['endpoints']) == 3


def test_a_plan_of_another_version_is_refused(tmp_path, capsys):
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(dict(PLAN, version=2)))
    assert net.main(['--plan', str(plan_file), '--lease-dir', str(tmp_path), 'check'], host=object()) == 1
    assert 'not a plan this program knows' in capsys.readouterr().err


def test_check_exits_3_on_a_difference(tmp_path, monkeypatch):
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(PLAN))
    host = captured_host('router/fresh')
    assert net.main(['--plan', str(plan_file), '--lease-dir', str(tmp_path), 'check'], host=host) == 3
    assert host.ran == []
    monkeypatch.setattr('sys.stdin', io.StringIO(json.dumps(PLAN)))
    assert net.main(['--plan', '-', '--lease-dir', str(tmp_path), 'check'], host=captured_host('router/fresh')) == 3


# ---------------------------------------------------------------------------
# The proxy's redirect follows the proxy unit (ExecStartPost/ExecStopPost run `proxy up|down`).
# ---------------------------------------------------------------------------

PROXY = {'enabled': True, 'unit': 'shadowsocks-libev-redir@omr.service', 'server': '198.51.100.10', 'port': 65101,
         'method': 'chacha20-ietf-poly1305', 'local_port': 1100, 'lan_device': 'lan', 'fallback': 'nat',
         'bypass': ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', '198.51.100.10/32']}
SHOW = ('systemctl', 'show', '--property=ActiveState', '--property=SubState', PROXY['unit'])


def proxy_plan(**change):
    return dict(net.runtime.resolve_plan(PLAN, {'wan2': LEASE}), proxy=dict(PROXY, **change))


def proxy_host(state, table=None):
    answers = {SHOW: 'ActiveState=%s\nSubState=%s\n' % state,
               ('nft', 'list', 'table', 'ip', 'omr_router_proxy'): (0, table) if table else (1, '')}
    return captured_host('router/configured', answers)


def test_a_running_proxy_gets_the_lan_redirect_past_the_bypass():
    host = proxy_host(('active', 'running'))
    fixes = net.proxy_fixes(host, proxy_plan())
    assert [f.description for f in fixes] == ['LAN TCP into the proxy']
    (argv, text), = fixes[0].commands
    assert argv == ['nft', '-f', '-']
    assert 'iifname "lan" ip daddr @bypass return' in text
    assert 'iifname "lan" meta l4proto tcp redirect to :1100' in text
    assert 'priority dstnat + 1' in text and '198.51.100.10' in text


def test_start_post_counts_as_up_and_a_pending_restart_as_down():
    assert net.proxy_unit_state(proxy_host(('activating', 'start-post')), PROXY['unit']) == 'up'
    assert net.proxy_unit_state(proxy_host(('activating', 'auto-restart')), PROXY['unit']) == 'down'
    assert net.proxy_unit_state(proxy_host(('deactivating', 'stop-post')), PROXY['unit']) == 'down'


def test_a_stopped_proxy_with_fallback_nat_loses_its_redirect():
    host = proxy_host(('inactive', 'dead'), table='table ip omr_router_proxy {\n}\n')
    fixes = net.proxy_fixes(host, proxy_plan())
    assert [f.description for f in fixes] == ['LAN TCP into the proxy (removed)']
    assert fixes[0].commands == [['nft', 'delete', 'table', 'ip', 'omr_router_proxy']]


def test_a_stopped_proxy_with_fallback_closed_keeps_it_so_lan_tcp_is_refused():
    host = proxy_host(('failed', 'failed'))
    assert [f.description for f in net.proxy_fixes(host, proxy_plan(fallback='closed'))] == ['LAN TCP into the proxy']


def test_the_unit_says_its_own_state_to_the_proxy_command():
    host = proxy_host(('activating', 'auto-restart'))
    assert net.proxy_fixes(host, proxy_plan(), 'up')[0].description == 'LAN TCP into the proxy'
    host = proxy_host(('active', 'running'), table='x')
    assert net.proxy_fixes(host, proxy_plan(), 'down')[0].description == 'LAN TCP into the proxy (removed)'


def test_the_wan_networks_join_the_bypass():
    # A WAN with a public address: traffic to its own network must not go into the proxy.
    plan = proxy_plan(bypass=[])
    plan['wans'] = [dict(plan['wans'][0], network='192.0.2.0/24')] + plan['wans'][1:]
    assert '192.0.2.0/24' in net.proxy_body(plan)
    assert '192.0.2.0/24' not in net.proxy_body(proxy_plan(bypass=[]))


# ---------------------------------------------------------------------------
# The VPN: the LAN's other traffic is marked and routed into the tunnel while its device exists.
# ---------------------------------------------------------------------------

VPN = {'enabled': True, 'unit': 'openvpn-client@omr.service', 'server': '198.51.100.10', 'port': 65301,
       'device': 'omrvpn', 'table': 100, 'rule_priority': 1100, 'mark': 0x6f6d, 'lan_device': 'lan',
       'source': '192.168.100.0/24', 'carry_tcp': False,
       'bypass': ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', '198.51.100.10/32']}
TUNNEL = {'ifindex': 99, 'ifname': 'omrvpn', 'flags': ['POINTOPOINT', 'UP', 'LOWER_UP'], 'link_type': 'none'}
RP = '/proc/sys/net/ipv4/conf/omrvpn/rp_filter'


def vpn_state(host, tunnel=False, rules=(), routes=()):
    state = net._host.read_state(host)
    if tunnel:
        state['links'] = state['links'] + [TUNNEL]
    state['rules'] = state['rules'] + list(rules)
    state['routes'] = state['routes'] + list(routes)
    return state


def test_without_its_tunnel_the_vpn_marks_but_routes_nothing_so_traffic_falls_back_to_nat():
    host = captured_host('router/configured')
    fixes = net.vpn_fixes(host, dict(proxy_plan(), vpn=VPN), vpn_state(host))
    assert [f.description for f in fixes] == ['LAN traffic into the VPN', 'VPN rule']
    (argv, text), = fixes[0].commands
    assert argv == ['nft', '-f', '-']
    assert 'type filter hook prerouting priority mangle' in text
    assert 'iifname "lan" ip daddr @bypass return\n    iifname "lan" meta l4proto tcp return\n' \
           '    iifname "lan" meta mark set 0x6f6d' in text
    assert 'oifname "omrvpn" ip saddr 192.168.100.0/24 masquerade' in text
    assert fixes[1].commands == [['ip', 'rule', 'add', 'fwmark', '0x6f6d', 'lookup', '100', 'priority', '1100']]


def test_with_its_tunnel_the_vpn_gets_the_route_and_a_loose_reverse_path_filter():
    host = captured_host('router/configured')
    host.files[RP] = '1\n'
    rule = {'priority': 1100, 'src': 'all', 'fwmark': '0x6f6d', 'table': '100'}
    fixes = net.vpn_fixes(host, dict(proxy_plan(), vpn=VPN), vpn_state(host, tunnel=True, rules=[rule]))
    assert [f.description for f in fixes] == ['LAN traffic into the VPN', 'VPN table 100 (tunnel up)',
                                              'VPN tunnel loose reverse-path filter']
    assert fixes[1].commands == [['ip', 'route', 'replace', 'default', 'dev', 'omrvpn', 'table', '100']]
    assert fixes[2].commands == [['sysctl', '-qw', 'net.ipv4.conf.omrvpn.rp_filter=2']]


def test_a_connected_vpn_in_place_needs_nothing():
    host = captured_host('router/configured')
    plan = dict(proxy_plan(), vpn=VPN)
    body = net.vpn_body(plan)
    host.answers[('nft', 'list', 'table', 'ip', 'omr_router_vpn')] = (
        0, 'table ip omr_router_vpn {\n\tcomment "%s"\n}\n' % net._host.nft_comment(body))
    host.files[RP] = '2\n'
    state = vpn_state(host, tunnel=True, rules=[{'priority': 1100, 'src': 'all', 'fwmark': '0x6f6d', 'table': '100'}],
                      routes=[{'dst': 'default', 'dev': 'omrvpn', 'table': '100', 'scope': 'link', 'flags': []}])
    assert net.vpn_fixes(host, plan, state) == []


def test_a_rule_with_another_mark_or_table_is_replaced():
    host = captured_host('router/configured')
    rule = {'priority': 1100, 'src': 'all', 'fwmark': '0x1', 'table': '100'}
    fixes = net.vpn_fixes(host, dict(proxy_plan(), vpn=VPN), vpn_state(host, rules=[rule]))
    assert fixes[1].commands == [['ip', 'rule', 'del', 'priority', '1100'],
                                 ['ip', 'rule', 'add', 'fwmark', '0x6f6d', 'lookup', '100', 'priority', '1100']]


def test_without_the_proxy_the_tunnel_takes_the_lan_tcp_too():
    body = net.vpn_body(dict(proxy_plan(), vpn=dict(VPN, carry_tcp=True)))
    assert 'meta l4proto tcp return' not in body and 'meta mark set 0x6f6d' in body


def test_a_plan_without_the_vpn_removes_what_an_earlier_one_added():
    host = captured_host('router/configured', {('nft', 'list', 'table', 'ip', 'omr_router_vpn'): (0, 'x')})
    rule = {'priority': 1100, 'src': 'all', 'fwmark': '0x6f6d', 'table': '100'}
    fixes = net.vpn_fixes(host, dict(proxy_plan(), vpn={'enabled': False}), vpn_state(host, rules=[rule]))
    assert [f.commands for f in fixes] == [[['nft', 'delete', 'table', 'ip', 'omr_router_vpn']],
                                           [['ip', 'rule', 'del', 'priority', '1100']]]


def test_openvpn_up_runs_the_vpn_command_with_its_own_arguments():
    host = captured_host('router/configured')
    with pytest.raises(SystemExit):
        net.main(['--plan', '/nonexistent', 'vpn'], host=host)
    # OpenVPN appends the device, MTUs, addresses and init|restart: accepted, then the plan is read.
    assert net.main(['--plan', '/nonexistent', 'vpn', 'up', 'omrvpn', '1500', '0', '10.255.252.2', '255.255.255.0', 'init'],
                    host=host) == 1
