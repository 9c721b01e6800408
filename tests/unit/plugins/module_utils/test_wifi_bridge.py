# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WiFi bridge's end of its transit link: plugins/module_utils/_wifi_bridge.py."""

import pytest

from ansible_collections.omr.deploy.plugins.module_utils._transit import TransitError
from ansible_collections.omr.deploy.plugins.module_utils._wifi_bridge import bridge_transit

LAN = '192.168.100.1/24'
HOTSPOT = '172.23.208.0/20'


def test_the_routers_subnet_gives_both_ends():
    assert bridge_transit('wifi1', '172.17.29.136/29', lan=LAN, uplink=HOTSPOT) == {
        'name': 'wifi1', 'subnet': '172.17.29.136/29', 'prefix': 29,
        'address': '172.17.29.138', 'router_address': '172.17.29.137'}


def test_no_subnet_yet():
    assert bridge_transit('wifi1', '', lan=LAN) == {}


def test_explicit_addresses():
    out = bridge_transit('wifi1', '172.16.5.0/29', address='172.16.5.6', router_address='172.16.5.1')
    assert (out['address'], out['router_address']) == ('172.16.5.6', '172.16.5.1')


@pytest.mark.parametrize('kwargs, message', [
    ({'subnet': '172.23.209.0/29', 'uplink': HOTSPOT, 'uplink_label': 'hotspot network 172.23.208.0/20 on uplink'},
     'omr_wifi_bridge_transit[0] (wifi1): subnet 172.23.209.0/29 overlaps hotspot network 172.23.208.0/20 on uplink'),
    ({'subnet': '192.168.100.8/29', 'pool': '192.168.0.0/16'}, 'overlaps LAN 192.168.100.1/24'),
    ({'subnet': '10.0.0.0/29'}, 'outside omr_wifi_bridge_transit_pool 172.16.0.0/12'),
    ({'subnet': '172.16.5.0/29', 'address': '172.16.9.2'}, 'omr_wifi_bridge_transit.address 172.16.9.2 is not an address'),
    ({'subnet': '172.16.5.0/29', 'address': '172.16.5.1'}, 'address and router_address are both 172.16.5.1'),
])
def test_bad_subnets_are_refused_naming_the_variable(kwargs, message):
    args = dict({'lan': LAN}, **kwargs)
    with pytest.raises(TransitError) as err:
        bridge_transit('wifi1', args.pop('subnet'), **args)
    assert message in str(err.value)
