# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-mptcp-restore: the VPS's MPTCP endpoints and limits, as omr.deploy.vps declared them.

Endpoints and limits live in the network namespace and are gone after a reboot; this program
(run at boot by omr-mptcp-endpoints.service) puts them back from /etc/omr-vps/mptcp.json:

  {"limits": {"subflows": 8, "add_addr_accepted": 8}, "purge": true, "wait_seconds": 30,
   "endpoints": [{"address": "198.51.100.10", "dev": "eth0", "id": 1, "flags": ["signal"]}],
   "default_route": false}

With "default_route": true (no endpoints declared) it announces the address of the default
route's device as one `signal` endpoint, as OMR's omr-service does, so a changed public address
(DHCP, a provider's stop/start) is followed. It first waits up to wait_seconds for the
addresses it needs.

  omr-mptcp-restore [--config FILE] [check]   check: list the differences, exit 3 if any
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import sys
import time

# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
import _host  # noqa: E402  pylint: disable=wrong-import-position
import _mptcp  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = '/etc/omr-vps/mptcp.json'


def default_route_endpoint(state):
    """A `signal` endpoint (id 1) on the address of the default route's device, or None."""
    for route in _host.routes_in_table(state, 'main'):
        if route.get('dst') == 'default' and route.get('dev'):
            addresses = _host.global_addresses(state, route['dev'])
            if addresses:
                return {'address': addresses[0].split('/')[0], 'dev': route['dev'], 'id': 1, 'flags': ['signal']}
    return None


def missing(config, state):
    """What is not there yet to announce ('' when everything is)."""
    if config.get('default_route'):
        return '' if default_route_endpoint(state) else 'a default IPv4 route with an address'
    for ep in config.get('endpoints') or []:
        if ep.get('dev'):
            have = [cidr.split('/')[0] for cidr in _host.global_addresses(state, ep['dev'], ('inet', 'inet6'))]
            if ep['address'] not in have:
                return '%s on %s' % (ep['address'], ep['dev'])
    return ''


def wanted(config, state):
    if config.get('default_route'):
        endpoint = default_route_endpoint(state)
        return [endpoint] if endpoint else []
    return list(config.get('endpoints') or [])


def fixes(host, config, state):
    """The limits and endpoints, through the collection's one endpoint planner (_mptcp)."""
    _rc, out, _err = host.run(['ip', 'mptcp', 'endpoint', 'show'])
    current = _mptcp.parse_endpoints(out)
    _rc, out, _err = host.run(['ip', 'mptcp', 'limits', 'show'])
    limits = _mptcp.parse_limits(out)
    result = []
    changes = _mptcp.plan_limits(limits, _mptcp.validate_limits(config.get('limits')))
    if changes:
        result.append(_host.Fix('MPTCP limits %s' % ', '.join('%s %s' % kv for kv in sorted(changes.items())),
                                [['ip'] + _mptcp.limits_args(changes)]))
    desired = _mptcp.validate_endpoints(wanted(config, state))
    for op in _mptcp.plan_endpoints(current, desired, purge=bool(config.get('purge', True))):
        ep = op['endpoint']
        result.append(_host.Fix('MPTCP endpoint %s %s (id %s)' % (ep['address'], op['action'], ep.get('id')),
                                [['ip'] + _mptcp.endpoint_args(op)]))
    return result


def main(argv=None, host=None, sleep=time.sleep):
    parser = argparse.ArgumentParser(prog='omr-mptcp-restore', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('command', nargs='?', default='apply', choices=['apply', 'check'])
    args = parser.parse_args(argv)
    host = host or _host.Host()
    try:
        config = _host.load_json(args.config, 'the MPTCP configuration')
        state = _host.read_state(host)
        waited = 0
        while args.command == 'apply' and missing(config, state) and waited < int(config.get('wait_seconds', 30)):
            sleep(1)
            waited += 1
            state = _host.read_state(host)
        gap = missing(config, state)
        if gap and args.command == 'apply':
            raise _host.HostError('gave up waiting %d s for %s' % (waited, gap))
        found = fixes(host, config, state)
        return _host.check_or_apply(host, found, args.command == 'check')
    except (_host.HostError, ValueError) as exc:
        sys.stderr.write('omr-mptcp-restore: %s\n' % exc)
        return 1


if __name__ == '__main__':
    sys.exit(main())
