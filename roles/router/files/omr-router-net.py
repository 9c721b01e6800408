# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-router-net: the OMR router's routing and MPTCP endpoints, as omr.deploy.router planned them.

Reads the plan the role writes (/etc/omr-router/plan.json) and the leases of the DHCP WANs,
compares them with the live state (`ip -j`, `ip mptcp`) and fixes what differs.

  omr-router-net check [--mptcp]   list the differences; exit 3 when there are any
  omr-router-net apply [--mptcp]   fix them (the role runs this when it changed the plan)
  omr-router-net boot              apply with the MPTCP limits and endpoints (omr-router-net.service)
  omr-router-net lease DEV REASON  dhcpcd's hook (omr-router-dhcp-hook): keep the lease, then apply
                                   with the endpoints, so a new lease needs no Ansible run
  omr-router-net quality           ping the VPS from each WAN with thresholds and make its endpoint
                                   a backup while the path is poor (omr-router-quality.timer)
  omr-router-net show              the plan with the current leases, as JSON
  omr-router-net proxy up|down     the LAN's TCP into the proxy, or (down, fallback nat) out by plain
                                   NAT again; run by the proxy unit as it starts and stops
  omr-router-net vpn up|down       the LAN's other traffic into the VPN's tunnel while its device
                                   exists; run by OpenVPN as it configures the tunnel, and by the
                                   unit as it stops

--mptcp adds the MPTCP limits and one endpoint per WAN with an address (all others removed).
"""

from __future__ import absolute_import, division, print_function

import argparse
import fcntl
import json
import os
import sys

# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
import _host  # noqa: E402  pylint: disable=wrong-import-position
import _mptcp  # noqa: E402  pylint: disable=wrong-import-position
import _proxy  # noqa: E402  pylint: disable=wrong-import-position
import _router_runtime as runtime  # noqa: E402  pylint: disable=wrong-import-position

PLAN = '/etc/omr-router/plan.json'
QUALITY_STATE = '/run/omr-router-quality'
NAT_TABLE = ('ip', 'omr_router')
PROXY_TABLE = ('ip', 'omr_router_proxy')
VPN_TABLE = ('ip', 'omr_router_vpn')
# _vpn.RULE_PRIORITY: a plan without a VPN still removes the rule an earlier one added.
VPN_RULE_PRIORITY = 1100


def load_plan(path):
    if path == '-':
        try:
            plan = json.load(sys.stdin)
        except ValueError as exc:
            raise _host.HostError('the plan on standard input is not valid JSON: %s' % exc)
    else:
        plan = _host.load_json(path, 'the router plan')
    if not isinstance(plan, dict) or plan.get('version') != 1 or not isinstance(plan.get('wans'), list):
        raise _host.HostError('%s is not a plan this program knows (version 1); run omr.deploy.router again' % path)
    return plan


class Leases(object):
    """The lease files under the hook's lock: exclusive for whoever changes routes or
    endpoints, shared for readers."""

    def __init__(self, directory=runtime.LEASE_DIR, exclusive=False):
        self.directory = directory
        self.exclusive = exclusive
        self.handle = None

    def __enter__(self):
        if self.exclusive and not os.path.isdir(self.directory):
            os.makedirs(self.directory, 0o755)
        if os.path.isdir(self.directory):
            self.handle = open(os.path.join(self.directory, os.path.basename(runtime.LEASE_LOCK)), 'a')
            fcntl.flock(self.handle, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()

    def read(self, plan):
        return runtime.read_leases(plan['dhcp']['devices'], self.directory)


def nat_body(plan):
    """The LAN's masquerade out of every WAN, or None when the plan wants no NAT."""
    nat = plan['nat']
    if not nat['enabled'] or not nat['devices']:
        return None
    devices = ', '.join('"%s"' % d for d in nat['devices'])
    return ('  chain postrouting {\n'
            '    type nat hook postrouting priority srcnat; policy accept;\n'
            '    oifname { %s } ip saddr %s masquerade\n'
            '  }\n' % (devices, nat['source']))


def proxy_body(plan):
    """The redirect of the LAN's TCP into ss-redir, past OMR's bypass and the WANs' own networks
    (as OMR's ss-rules), or None without a proxy. ss-redir reads the original destination."""
    proxy = plan.get('proxy') or {}
    if not proxy.get('enabled'):
        return None
    bypass = _proxy.bypass_networks([], [w['network'] for w in plan['wans']], proxy['bypass'])
    return ('  set bypass {\n'
            '    type ipv4_addr; flags interval;\n'
            '    elements = { %s }\n'
            '  }\n'
            '  chain prerouting {\n'
            '    type nat hook prerouting priority dstnat + 1; policy accept;\n'
            '    iifname "%s" ip daddr @bypass return\n'
            '    iifname "%s" meta l4proto tcp redirect to :%d\n'
            '  }\n' % (', '.join(bypass), proxy['lan_device'], proxy['lan_device'], proxy['local_port']))


def proxy_unit_state(host, unit):
    """'up' while the proxy runs or is running its start-post step (which adds the redirect),
    'down' otherwise, including between a crash and systemd's restart."""
    _rc, out, _err = host.run(['systemctl', 'show', '--property=ActiveState', '--property=SubState', unit], check=False)
    props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
    active, sub = props.get('ActiveState'), props.get('SubState')
    return 'up' if active in ('active', 'reloading') or (active == 'activating' and sub == 'start-post') else 'down'


def proxy_wanted(host, plan, unit_state=None):
    """Whether the redirect belongs in place: with the proxy running, or while it is down and
    the fallback is `closed` (LAN TCP is then refused, not sent out unproxied). unit_state:
    'up' or 'down' when the unit says so itself, else systemd is asked."""
    proxy = plan.get('proxy') or {}
    if not proxy.get('enabled'):
        return False
    if unit_state is None:
        unit_state = proxy_unit_state(host, proxy['unit'])
    return unit_state == 'up' or proxy['fallback'] == 'closed'


def proxy_fixes(host, plan, unit_state=None):
    body = proxy_body(plan) if proxy_wanted(host, plan, unit_state) else None
    return _host.want_nft_table(host, PROXY_TABLE[0], PROXY_TABLE[1], body, 'LAN TCP into the proxy')


def vpn_body(plan):
    """The mark on the LAN's packets bound for the tunnel (all but the bypass, and but TCP while
    the proxy carries it) and the masquerade into it, or None without a VPN."""
    vpn = plan.get('vpn') or {}
    if not vpn.get('enabled'):
        return None
    bypass = _proxy.bypass_networks([], [w['network'] for w in plan['wans']], vpn['bypass'])
    lan = vpn['lan_device']
    tcp = '' if vpn['carry_tcp'] else '    iifname "%s" meta l4proto tcp return\n' % lan
    return ('  set bypass {\n'
            '    type ipv4_addr; flags interval;\n'
            '    elements = { %s }\n'
            '  }\n'
            '  chain prerouting {\n'
            '    type filter hook prerouting priority mangle; policy accept;\n'
            '    iifname "%s" ip daddr @bypass return\n'
            '%s'
            '    iifname "%s" meta mark set 0x%x\n'
            '  }\n'
            '  chain postrouting {\n'
            '    type nat hook postrouting priority srcnat; policy accept;\n'
            '    oifname "%s" ip saddr %s masquerade\n'
            '  }\n' % (', '.join(bypass), lan, tcp, lan, vpn['mark'], vpn['device'], vpn['source']))


def vpn_fixes(host, plan, state):
    """The mark, its rule, and the tunnel's table: a default route into the device while it
    exists (OpenVPN makes it as it connects); empty otherwise, so marked packets fall through to
    the main table and leave by plain NAT rather than vanish."""
    vpn = plan.get('vpn') or {}
    if not vpn.get('enabled'):
        fixes = _host.want_nft_table(host, VPN_TABLE[0], VPN_TABLE[1], None, 'LAN traffic into the VPN')
        if any(r.get('priority') == VPN_RULE_PRIORITY and 'fwmark' in r for r in state['rules']):
            fixes += _host.want_no_rule(state, VPN_RULE_PRIORITY, 'VPN rule')
        return fixes
    fixes = _host.want_nft_table(host, VPN_TABLE[0], VPN_TABLE[1], vpn_body(plan), 'LAN traffic into the VPN')
    fixes += _host.want_mark_rule(state, vpn['rule_priority'], vpn['mark'], vpn['table'], 'VPN rule')
    up = any(link.get('ifname') == vpn['device'] for link in state['links'])
    routes = [{'dst': 'default', 'dev': vpn['device']}] if up else []
    fixes += _host.want_table(state, vpn['table'], routes, 'VPN table %s (%s)' % (vpn['table'], 'tunnel up' if up else 'no tunnel'))
    # Replies arrive in the tunnel from addresses the main table routes out of a WAN: a strict
    # reverse-path filter would drop them. The kernel takes the looser of `all` and the device's.
    key = 'net/ipv4/conf/%s/rp_filter' % vpn['device']
    if up and (host.read('/proc/sys/' + key) or '').strip() not in ('0', '2'):
        fixes.append(_host.Fix('VPN tunnel loose reverse-path filter', [['sysctl', '-qw', '%s=2' % key.replace('/', '.')]]))
    return fixes


def network_fixes(host, plan, state, out=sys.stdout):
    """Fixes for forwarding, transit addresses, each WAN's table, rule and default route, the
    LAN and its NAT. `plan` has the DHCP WANs resolved against their leases."""
    fixes = _host.want_forwarding(state)
    # Transit links first: a WAN behind a bridge routes over its transit address.
    for name, link in sorted(plan['transit'].items()):
        fixes += _host.want_link_up(state, link['device'])
        fixes += _host.want_address(state, link['device'], '%s/%s' % (link['router_address'], link['prefix']),
                                    exclusive=True, label='transit %s address' % name)
    for wan in plan['wans']:
        name, dev, table = wan['name'], wan['device'], wan['table']
        if wan['addressing'] != 'transit':       # the transit link is brought up above
            fixes += _host.want_link_up(state, dev)
        if wan['pending']:
            out.write('%s: no DHCP lease on %s yet; its routes follow when one comes\n' % (name, dev))
            fixes += _host.want_table(state, table, [], '%s table %s (no lease)' % (name, table))
            fixes += _host.want_no_rule(state, wan['rule_priority'], '%s rule (no lease)' % name)
            fixes += _host.want_no_default_route(state, dev, wan['metric'], '%s default route (no lease)' % name)
            continue
        if wan['addressing'] == 'static':
            fixes += _host.want_address(state, dev, wan['cidr'], label='%s address' % name)
        fixes += _host.want_table(state, table, [
            {'dst': wan['network'], 'dev': dev, 'prefsrc': wan['address']},
            {'dst': 'default', 'gateway': wan['gateway'], 'dev': dev},
        ], '%s table %s' % (name, table))
        fixes += _host.want_rule(state, wan['rule_priority'], wan['address'], table, '%s rule' % name)
        if wan['default_route']:
            fixes += _host.want_default_route(state, wan['gateway'], dev, wan['metric'], '%s default route' % name)
    lan = plan['lan']
    fixes += _host.want_link_up(state, lan['device'])
    fixes += _host.want_address(state, lan['device'], lan['cidr'], label='LAN address')
    fixes += _host.want_nft_table(host, NAT_TABLE[0], NAT_TABLE[1], nat_body(plan), 'LAN NAT')
    fixes += proxy_fixes(host, plan)
    fixes += vpn_fixes(host, plan, state)
    return fixes


def read_mptcp(host):
    _rc, out, _err = host.run(['ip', 'mptcp', 'endpoint', 'show'])
    endpoints = _mptcp.parse_endpoints(out)
    _rc, out, _err = host.run(['ip', 'mptcp', 'limits', 'show'])
    return endpoints, _mptcp.parse_limits(out)


def mptcp_fixes(host, plan):
    """The limits and one endpoint per WAN with an address, through the collection's one
    endpoint planner (_mptcp.plan_endpoints, as omr.deploy.mptcp_endpoint uses it)."""
    endpoints, limits = read_mptcp(host)
    desired = _mptcp.validate_endpoints(plan['endpoints'])
    fixes = []
    changes = _mptcp.plan_limits(limits, _mptcp.validate_limits(plan['limits']))
    if changes:
        fixes.append(_host.Fix('MPTCP limits %s' % ', '.join('%s %s' % kv for kv in sorted(changes.items())),
                               [['ip'] + _mptcp.limits_args(changes)]))
    for op in _mptcp.plan_endpoints(endpoints, desired, purge=True):
        ep = op['endpoint']
        fixes.append(_host.Fix('MPTCP endpoint %s %s (id %s)' % (ep['address'], op['action'], ep.get('id')),
                               [['ip'] + _mptcp.endpoint_args(op)]))
    return fixes


def converge(host, plan, leases, mptcp, apply, out=sys.stdout):
    """check (apply=False) or apply; returns the number of differences found."""
    resolved = runtime.resolve_plan(plan, leases)
    fixes = network_fixes(host, resolved, _host.read_state(host), out)
    if mptcp:
        fixes += mptcp_fixes(host, resolved)
    if apply:
        _host.apply_fixes(host, fixes, out)
    else:
        _host.report_fixes(fixes, out)
    return len(fixes)


def wan_for_device(plan, device):
    for wan in plan['wans']:
        if wan['device'] == device and wan['addressing'] == 'dhcp':
            return wan
    return None


def on_lease(host, plan, device, reason, env, directory=runtime.LEASE_DIR, out=sys.stdout):
    """dhcpcd's event for `device`: keep or drop its lease, then converge with the endpoints.
    The whole update holds the lock exclusively."""
    path = runtime.lease_path(device, directory)
    if plan is None:
        lease = runtime.lease_from_dhcpcd(env) if reason in runtime.LEASE_BOUND else None
        with Leases(directory, exclusive=True):
            if lease:
                _host.write_atomic(path, runtime.render_lease(lease))
                out.write('%s: %s %s/%s kept; no plan yet, omr.deploy.router plans with it\n'
                          % (device, reason, lease['address'], lease['prefix']))
            elif reason in runtime.LEASE_GONE and os.path.exists(path):
                os.unlink(path)
        return 0
    wan = wan_for_device(plan, device)
    if wan is None:
        return 0
    if reason in runtime.LEASE_BOUND:
        lease = runtime.lease_from_dhcpcd(env)
        if lease is None:
            return 0
        with Leases(directory, exclusive=True) as held:
            _host.write_atomic(path, runtime.render_lease(lease))
            converge(host, plan, held.read(plan), True, True, out)
        out.write('%s (%s): %s %s/%s via %s; table %s, rule and MPTCP endpoint %s follow\n'
                  % (wan['name'], device, reason, lease['address'], lease['prefix'], lease['gateway'],
                     wan['table'], wan['endpoint_id']))
    elif reason in runtime.LEASE_GONE:
        if not os.path.exists(path):
            return 0
        with Leases(directory, exclusive=True) as held:
            os.unlink(path)
            converge(host, plan, held.read(plan), True, True, out)
        out.write('%s (%s): %s, lease %s gone; table %s, rule and MPTCP endpoint %s removed\n'
                  % (wan['name'], device, reason, env.get('old_ip_address') or '?', wan['table'], wan['endpoint_id']))
    return 0


def quality_verdict(sample, quality):
    """Why the path is poor ('' when it is good), from parse_ping's sample and the thresholds."""
    loss = sample['loss_pct'] if sample['loss_pct'] is not None else 100.0
    why = []
    if quality.get('max_loss_pct') is not None and loss > quality['max_loss_pct']:
        why.append('loss %g %% > %g %%' % (loss, quality['max_loss_pct']))
    if quality.get('max_rtt_ms') is not None:
        if sample['rtt_ms'] is None:
            why.append('no reply')
        elif sample['rtt_ms'] > quality['max_rtt_ms']:
            why.append('rtt %g ms > %g ms' % (sample['rtt_ms'], quality['max_rtt_ms']))
    return ', '.join(why)


def quality(host, plan, leases, state_dir=QUALITY_STATE, out=sys.stdout):
    """One round of the quality check: ping the VPS from each WAN with thresholds (from its own
    address, so over its own table) and flip its endpoint's backup flag (MP_PRIO follows)."""
    resolved = runtime.resolve_plan(plan, leases)
    endpoints, _limits = read_mptcp(host)
    by_id = dict((ep['id'], ep) for ep in endpoints)
    for wan in resolved['wans']:
        q = wan.get('quality')
        if not q:
            continue
        if not wan['address']:
            out.write('%s: no DHCP lease, nothing to check\n' % wan['name'])
            continue
        _rc, text, _err = host.run(['ping', '-n', '-q', '-c', str(q['count']), '-i', '0.2', '-W', '2',
                                    '-I', wan['address'], plan['vps']['address']], check=False)
        sample = _host.parse_ping(text)
        why = quality_verdict(sample, q)
        _host.write_atomic(os.path.join(state_dir, wan['name']), ('poor' if why else 'good') + '\n')
        current = by_id.get(wan['endpoint_id'])
        if current is None or current['address'] != wan['address']:
            continue
        backup = 'backup' in current['flags']
        if why and not backup:
            flags = ['backup', 'fullmesh']
            message = '<4>%s: quality poor (%s): endpoint %s (%s) is now a backup'
        elif not why and backup:
            flags = ['fullmesh']
            message = '%s: quality good again (loss %g %%, rtt %s ms): endpoint %s (%s) carries traffic again'
        else:
            continue
        host.run(['ip'] + _mptcp.endpoint_args({'action': 'change', 'endpoint': current, 'flags': flags}))
        if why:
            out.write(message % (wan['name'], why, wan['endpoint_id'], wan['address']) + '\n')
        else:
            rtt = '%g' % sample['rtt_ms'] if sample['rtt_ms'] is not None else '?'
            out.write(message % (wan['name'], sample['loss_pct'] or 0, rtt, wan['endpoint_id'], wan['address']) + '\n')
    return 0


def main(argv=None, host=None, env=None):
    parser = argparse.ArgumentParser(prog='omr-router-net', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--plan', default=PLAN)
    parser.add_argument('--lease-dir', default=runtime.LEASE_DIR)
    sub = parser.add_subparsers(dest='command')
    for name in ('check', 'apply'):
        sub.add_parser(name).add_argument('--mptcp', action='store_true')
    sub.add_parser('boot')
    lease = sub.add_parser('lease')
    lease.add_argument('device')
    lease.add_argument('reason')
    sub.add_parser('quality')
    sub.add_parser('show')
    sub.add_parser('proxy').add_argument('state', choices=('up', 'down'))
    vpn = sub.add_parser('vpn')
    vpn.add_argument('state', choices=('up', 'down'))
    # OpenVPN's `up` appends the device, MTUs, addresses and init|restart.
    vpn.add_argument('openvpn', nargs='*', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.command:
        parser.error('a command is required (check, apply, boot, lease, quality, show, proxy, vpn)')
    host = host or _host.Host()
    try:
        if args.command == 'lease':
            # Before the role's first plan the lease is only kept: the plan is made from it.
            plan = load_plan(args.plan) if args.plan == '-' or os.path.exists(args.plan) else None
            return on_lease(host, plan, args.device, args.reason, os.environ if env is None else env, args.lease_dir)
        plan = load_plan(args.plan)
        exclusive = args.command in ('apply', 'boot', 'proxy', 'vpn')
        with Leases(args.lease_dir, exclusive=exclusive) as held:
            leases = held.read(plan)
            if args.command == 'show':
                json.dump(runtime.resolve_plan(plan, leases), sys.stdout, indent=2, sort_keys=True)
                sys.stdout.write('\n')
                return 0
            if args.command == 'quality':
                return quality(host, plan, leases)
            if args.command == 'proxy':
                _host.apply_fixes(host, proxy_fixes(host, runtime.resolve_plan(plan, leases), args.state))
                return 0
            if args.command == 'vpn':
                # The device says whether the tunnel is up; `down` runs after OpenVPN removed it.
                _host.apply_fixes(host, vpn_fixes(host, runtime.resolve_plan(plan, leases), _host.read_state(host)))
                return 0
            mptcp = args.command == 'boot' or args.mptcp
            found = converge(host, plan, leases, mptcp, apply=args.command != 'check')
            return _host.DRIFT if args.command == 'check' and found else 0
    except (_host.HostError, ValueError) as exc:
        sys.stderr.write('omr-router-net %s: %s\n' % (args.command, exc))
        return 1


if __name__ == '__main__':
    sys.exit(main())
