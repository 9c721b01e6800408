# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-wifi-bridge-net: the WiFi bridge's end of its transit link, and NAT onto the uplink.

Reads /etc/omr-wifi-bridge/net.json, which omr.deploy.wifi_bridge writes from the router's plan:

  {"uplink_device": "wlan0", "transit_device": "eth1", "subnet": "172.17.29.136/29",
   "address": "172.17.29.138", "prefix": 29, "router_address": "172.17.29.137"}

and keeps forwarding on, the transit address as the link's only address, and an nftables table
that forwards only the transit network onto the uplink and masquerades it there. The OMR router
sees the bridge as one more WAN gateway.

  omr-wifi-bridge-net check   list the differences; exit 3 when there are any
  omr-wifi-bridge-net apply   fix them (run at boot by omr-wifi-bridge-net.service)
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import sys

# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
import _host  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = '/etc/omr-wifi-bridge/net.json'
TABLE = ('ip', 'omr_wifi_bridge')
KEYS = ('uplink_device', 'transit_device', 'subnet', 'address', 'prefix')


def load_config(path):
    config = _host.load_json(path, 'the bridge configuration')
    missing = [key for key in KEYS if not config.get(key)]
    if missing:
        raise _host.HostError('%s lacks %s' % (path, ', '.join(missing)))
    return config


def nat_body(config):
    uplink, transit, subnet = config['uplink_device'], config['transit_device'], config['subnet']
    return ('  chain forward {\n'
            '    type filter hook forward priority filter; policy drop;\n'
            '    ct state established,related accept\n'
            '    iifname "%s" oifname "%s" ip saddr %s accept\n'
            '  }\n'
            '  chain postrouting {\n'
            '    type nat hook postrouting priority srcnat; policy accept;\n'
            '    oifname "%s" ip saddr %s masquerade\n'
            '  }\n' % (transit, uplink, subnet, uplink, subnet))


def fixes(host, config, state):
    transit = config['transit_device']
    found = _host.want_forwarding(state)
    found += _host.want_link_up(state, transit)
    # The device belongs to the link: an address left from an earlier allocation goes.
    found += _host.want_address(state, transit, '%s/%s' % (config['address'], config['prefix']),
                                exclusive=True, label='transit address')
    found += _host.want_nft_table(host, TABLE[0], TABLE[1], nat_body(config), 'NAT')
    return found


def main(argv=None, host=None):
    parser = argparse.ArgumentParser(prog='omr-wifi-bridge-net', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('command', choices=['check', 'apply'])
    args = parser.parse_args(argv)
    host = host or _host.Host()
    try:
        config = load_config(args.config)
        found = fixes(host, config, _host.read_state(host))
        return _host.check_or_apply(host, found, args.command == 'check')
    except (_host.HostError, ValueError) as exc:
        sys.stderr.write('omr-wifi-bridge-net %s: %s\n' % (args.command, exc))
        return 1


if __name__ == '__main__':
    sys.exit(main())
