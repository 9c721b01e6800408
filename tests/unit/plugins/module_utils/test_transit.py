# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_transit.py and the omr.deploy.transit_allocate filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import itertools

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.filter import transit_allocate as filter_plugin
from ansible_collections.omr.deploy.plugins.module_utils import _transit as t
from ansible_collections.omr.deploy.plugins.module_utils._transit import TransitError, allocate

POOL = '172.16.0.0/12'
LAN = {'name': 'LAN', 'network': '192.168.100.0/24'}


def links(*names, **kw):
    return [dict(name=n, **kw) for n in names]


def subnets(result):
    return {name: entry['subnet'] for name, entry in result.items()}


def net(entry):
    return ipaddress.ip_network(entry['subnet'])


def preferred(name, pool=POOL, prefix=29):
    """The block the hash prefers for `name`, before any probing."""
    pool = ipaddress.ip_network(pool)
    n = 1 << (prefix - pool.prefixlen)
    start, _step = t._hash_probe(name, n)
    return ipaddress.ip_network((int(pool.network_address) + start * (1 << (32 - prefix)), prefix))


def colliding_pair(pool, prefix=29):
    """Two names that prefer the same block of `pool` (searched, so still deterministic)."""
    seen = {}
    for i in range(1000):
        name = 'bridge-%03d' % i
        block = preferred(name, pool, prefix)
        if block in seen:
            return seen[block], name
        seen[block] = name
    raise AssertionError('no collision found')


def assert_sane(result, pool=POOL, reserved=()):
    pool = ipaddress.ip_network(pool)
    nets = [net(e) for e in result.values()]
    for entry, n in zip(result.values(), nets):
        assert n.subnet_of(pool)
        assert entry['prefix'] == n.prefixlen
        assert entry['network'] == str(n.network_address)
        assert entry['netmask'] == str(n.netmask)
        assert entry['router_address'] == str(n.network_address + 1)
        assert entry['peer_address'] == str(n.network_address + 2)
        assert entry['hosts'] == n.num_addresses - 2
        for r in reserved:
            assert not n.overlaps(ipaddress.ip_network(r['network'], strict=False)), (n, r)
    for a, b in itertools.combinations(nets, 2):
        assert not a.overlaps(b), (a, b)


# ---------------------------------------------------------------- the default allocation

def test_default_pool_example():
    result = allocate(POOL, links('wifi1', 'wifi2', 'lte-bridge'))
    # pinned: the hash is part of the contract, a change here renumbers every router
    assert subnets(result) == {
        'lte-bridge': '172.19.118.80/29',
        'wifi1': '172.23.213.48/29',
        'wifi2': '172.20.37.240/29',
    }
    assert result['wifi1'] == {
        'subnet': '172.23.213.48/29',
        'prefix': 29,
        'network': '172.23.213.48',
        'netmask': '255.255.255.248',
        'router_address': '172.23.213.49',
        'peer_address': '172.23.213.50',
        'hosts': 6,
        'source': 'hashed',
    }
    assert list(result) == sorted(result)
    assert_sane(result)


def test_prefixes_and_defaults():
    result = allocate(POOL, [{'name': 'a'}, {'name': 'b', 'prefix': 30}, {'name': 'c', 'prefix': '24'},
                             {'name': 'd', 'prefix': 16}])
    assert [result[n]['prefix'] for n in 'abcd'] == [29, 30, 24, 16]
    assert result['b']['hosts'] == 2 and result['b']['netmask'] == '255.255.255.252'
    assert result['c']['hosts'] == 254
    assert_sane(result)
    assert allocate(POOL, []) == allocate(POOL, None) == {}


def test_a_shorter_prefix_prefers_the_block_around_the_longer_one():
    # the index is the top bits of sha256: the /30 is a half of the /29, the /29 inside the /24
    for name in ('wifi1', 'wifi2', 'lte-bridge'):
        p30, p29, p24 = (net(allocate(POOL, [{'name': name, 'prefix': p}])[name]) for p in (30, 29, 24))
        assert p30.subnet_of(p29) and p29.subnet_of(p24)


def test_every_allocation_in_the_default_pool_many_links():
    many = [{'name': 'bridge-%d' % i, 'prefix': (29, 30, 28, 24)[i % 4]} for i in range(300)]
    result = allocate(POOL, many, reserved=[LAN])
    assert len(result) == 300
    assert_sane(result, reserved=[LAN])


# ---------------------------------------------------------------- determinism and stability

def test_order_independence():
    given = [{'name': 'wifi1'}, {'name': 'wifi2', 'prefix': 30}, {'name': 'lte-bridge'},
             {'name': 'fixed', 'subnet': '172.16.0.0/29'}]
    expected = allocate(POOL, given, reserved=[LAN])
    for perm in itertools.permutations(given):
        assert allocate(POOL, list(perm), reserved=[LAN]) == expected
    assert expected['fixed']['source'] == 'explicit'


def test_adding_and_removing_a_link_without_existing():
    two = allocate(POOL, links('wifi1', 'wifi2'))
    three = allocate(POOL, links('wifi1', 'wifi2', 'lte-bridge'))
    assert subnets(three)['wifi1'] == subnets(two)['wifi1']
    assert subnets(three)['wifi2'] == subnets(two)['wifi2']
    one = allocate(POOL, links('wifi1', 'lte-bridge'))
    assert subnets(one) == {k: v for k, v in subnets(three).items() if k != 'wifi2'}


def test_adding_and_removing_a_link_with_existing():
    two = allocate(POOL, links('wifi1', 'wifi2'))
    three = allocate(POOL, links('wifi1', 'wifi2', 'lte-bridge'), existing=subnets(two))
    assert {n: three[n]['subnet'] for n in two} == subnets(two)
    assert three['wifi1']['source'] == three['wifi2']['source'] == 'existing'
    assert three['lte-bridge']['source'] == 'hashed'
    # a whole earlier result works as `existing` too; stale names are ignored
    again = allocate(POOL, links('wifi2', 'lte-bridge'), existing=three)
    assert subnets(again) == {'wifi2': three['wifi2']['subnet'], 'lte-bridge': three['lte-bridge']['subnet']}
    assert {e['source'] for e in again.values()} == {'existing'}


def test_forced_collision_existing_keeps_the_old_allocation():
    pool = '172.16.0.0/26'                      # 8 blocks of /29: collisions are easy
    first, second = colliding_pair(pool)        # first < second, same preferred block
    assert first < second and preferred(first, pool) == preferred(second, pool)

    before = allocate(pool, links(second))
    assert before[second]['subnet'] == str(preferred(second, pool))

    # without `existing` the newcomer sorts first, wins the block and moves `second`
    moved = allocate(pool, links(first, second))
    assert moved[first]['subnet'] == str(preferred(first, pool))
    assert moved[second]['subnet'] != before[second]['subnet']

    # with `existing` the old allocation stays and the newcomer probes on
    kept = allocate(pool, links(first, second), existing=subnets(before))
    assert kept[second]['subnet'] == before[second]['subnet']
    assert kept[second]['source'] == 'existing'
    assert kept[first]['subnet'] != before[second]['subnet']
    assert kept[first]['source'] == 'hashed'
    assert_sane(kept, pool)

    # removing the winner: without `existing` the loser returns home, with it stays put
    assert subnets(allocate(pool, links(second))) == subnets(before)
    assert allocate(pool, links(second), existing=subnets(moved))[second]['subnet'] == moved[second]['subnet']


def test_existing_is_dropped_when_no_longer_valid():
    base = allocate(POOL, links('wifi1'))['wifi1']['subnet']
    kept = allocate(POOL, links('wifi1'), existing={'wifi1': '172.16.0.8/29'})['wifi1']
    assert (kept['subnet'], kept['router_address'], kept['peer_address'], kept['source']) == \
        ('172.16.0.8/29', '172.16.0.9', '172.16.0.10', 'existing')
    for stale in ('10.0.0.0/29',            # outside the pool
                  '172.16.0.0/30',          # wrong prefix for the link
                  '172.16.5.8/29',          # now reserved
                  '172.16.9.0/29',          # now taken by an explicit subnet
                  '172.16.0.1/29',          # not a network
                  'garbage', 42, None, {'subnet': None}):
        result = allocate(POOL, links('wifi1') + [{'name': 'fixed', 'subnet': '172.16.9.0/28'}],
                          reserved=[{'name': 'hotspot network', 'network': '172.16.5.0/24'}],
                          existing={'wifi1': stale})
        assert result['wifi1']['source'] == 'hashed', stale
        assert result['wifi1']['subnet'] == base


def test_existing_clash_is_settled_by_name():
    result = allocate(POOL, links('b', 'a'), existing={'a': '172.16.0.0/29', 'b': '172.16.0.0/29'})
    assert result['a']['source'] == 'existing' and result['a']['subnet'] == '172.16.0.0/29'
    assert result['b']['source'] == 'hashed'
    assert_sane(result)


def test_existing_never_overrides_explicit():
    result = allocate(POOL, [{'name': 'wifi1', 'subnet': '172.16.8.0/29'}], existing={'wifi1': '172.16.0.0/29'})
    assert result['wifi1']['subnet'] == '172.16.8.0/29' and result['wifi1']['source'] == 'explicit'


# ---------------------------------------------------------------- reserved networks

def test_hashed_allocation_skips_a_reserved_network_inside_the_pool():
    hotspot = {'name': 'hotspot network', 'network': '172.16.5.0/24'}
    # a name whose preferred block lies inside the hotspot's network (searched)
    name = next('hotspot-bridge-%d' % i for i in itertools.count()
                if preferred('hotspot-bridge-%d' % i).subnet_of(ipaddress.ip_network('172.16.5.0/24')))
    assert allocate(POOL, links(name))[name]['subnet'] == str(preferred(name))
    result = allocate(POOL, links(name, 'wifi1'), reserved=[LAN, hotspot])
    assert not net(result[name]).overlaps(ipaddress.ip_network('172.16.5.0/24'))
    assert result[name]['source'] == 'hashed'
    assert_sane(result, reserved=[LAN, hotspot])


def test_crowded_pool_with_reserved_half():
    # 172.16.4.0/23: 64 blocks of /29, the upper 32 reserved by the hotspot
    pool, hotspot = '172.16.4.0/23', {'name': 'hotspot network', 'network': '172.16.5.0/24'}
    names = ['bridge-%02d' % i for i in range(32)]
    assert any(preferred(n, pool).subnet_of(ipaddress.ip_network('172.16.5.0/24')) for n in names)
    result = allocate(pool, links(*names), reserved=[hotspot])
    assert_sane(result, pool, reserved=[hotspot])
    assert {str(net(e).supernet(new_prefix=24)) for e in result.values()} == {'172.16.4.0/24'}
    with pytest.raises(TransitError, match='exhausted'):
        allocate(pool, links(*names + ['one-more']), reserved=[hotspot])


def test_vps_address_and_routes_are_skipped():
    name = 'wifi1'
    home = preferred(name)
    reserved = [{'name': 'VPS', 'network': '%s/32' % (home.network_address + 3)},
                {'name': 'route 172.16.0.0/16', 'network': '172.16.0.0/16'},
                {'name': 'IPv6 route', 'network': '2001:db8::/32'}]        # ignored
    result = allocate(POOL, links(name, 'wifi2', 'lte-bridge'), reserved=reserved)
    assert result[name]['subnet'] != str(home)
    assert_sane(result, reserved=reserved[:2])


def test_reserved_covering_the_pool():
    with pytest.raises(TransitError) as e:
        allocate('172.16.0.0/24', links('wifi1'), reserved=[{'name': 'hotspot network', 'network': '172.16.0.0/12'}])
    assert str(e.value) == ('hotspot network 172.16.0.0/12 covers all of omr_router_transit_pool '
                            '172.16.0.0/24: no transit subnet can be allocated')


# ---------------------------------------------------------------- errors

def test_explicit_subnet_outside_the_pool():
    given = links('a', 'b') + [{'name': 'wifi1', 'subnet': '10.0.0.0/29'}]
    with pytest.raises(TransitError) as e:
        allocate(POOL, given)
    assert str(e.value) == ('omr_router_transit_links[2] (wifi1): subnet 10.0.0.0/29 is outside '
                            'omr_router_transit_pool 172.16.0.0/12')


def test_explicit_subnet_overlapping_the_lan():
    given = [{'name': 'wifi1', 'subnet': '192.168.100.0/24'}]
    with pytest.raises(TransitError) as e:
        allocate('192.168.0.0/16', given, reserved=[LAN])
    assert str(e.value) == 'omr_router_transit_links[0] (wifi1): subnet 192.168.100.0/24 overlaps LAN 192.168.100.0/24'
    # in the default pool it is simply outside
    with pytest.raises(TransitError) as e:
        allocate(POOL, given, reserved=[LAN])
    assert str(e.value) == ('omr_router_transit_links[0] (wifi1): subnet 192.168.100.0/24 is outside '
                            'omr_router_transit_pool 172.16.0.0/12')


@pytest.mark.parametrize('reserved, subnet, shown', [
    ({'name': 'WAN wan1', 'network': '172.16.1.1/24'}, '172.16.1.8/29', 'WAN wan1 172.16.1.0/24'),
    ({'name': 'route 172.20.0.0/16', 'network': '172.20.0.0/16'}, '172.20.3.0/29', 'route 172.20.0.0/16 172.20.0.0/16'),
    ({'name': 'VPS', 'network': '172.18.0.5/32'}, '172.18.0.0/29', 'VPS 172.18.0.5/32'),
])
def test_explicit_subnet_overlapping_wan_route_vps(reserved, subnet, shown):
    given = links('wifi2') + [{'name': 'wifi1', 'subnet': subnet}]
    with pytest.raises(TransitError) as e:
        allocate(POOL, given, reserved=[LAN, reserved])
    assert str(e.value) == 'omr_router_transit_links[1] (wifi1): subnet %s overlaps %s' % (subnet, shown)


def test_two_explicit_subnets_overlapping():
    given = [{'name': 'wifi1', 'subnet': '172.16.0.0/29'}, {'name': 'wifi2', 'subnet': '172.16.0.0/28'}]
    with pytest.raises(TransitError) as e:
        allocate(POOL, given)
    assert str(e.value) == ('omr_router_transit_links[1] (wifi2): subnet 172.16.0.0/28 overlaps '
                            'omr_router_transit_links[0] (wifi1) subnet 172.16.0.0/29')


def test_exhaustion_with_a_tiny_pool():
    assert len(allocate('172.16.0.0/28', links('a', 'b'))) == 2
    with pytest.raises(TransitError) as e:
        allocate('172.16.0.0/28', links('a', 'b', 'c'))
    msg = str(e.value)
    assert msg.startswith('omr_router_transit_links[2] (c): omr_router_transit_pool 172.16.0.0/28 is exhausted, '
                          'no free /29 left')
    assert '172.16.0.0/29' in msg and '172.16.0.8/29' in msg
    # a /30 still fits where a /29 does not
    with pytest.raises(TransitError, match='exhausted'):
        allocate('172.16.0.0/28', links('a') + [{'name': 'b', 'subnet': '172.16.0.12/30'}, {'name': 'c'}])
    assert allocate('172.16.0.0/28', links('a') + [{'name': 'b', 'subnet': '172.16.0.12/30'},
                                                   {'name': 'c', 'prefix': 30}])['c']['subnet'] == '172.16.0.8/30'


def test_duplicate_names():
    with pytest.raises(TransitError) as e:
        allocate(POOL, links('wifi1', 'wifi2', 'wifi1'))
    assert str(e.value) == ('omr_router_transit_links[2] (wifi1): duplicate name wifi1, '
                            'already used by omr_router_transit_links[0]')


@pytest.mark.parametrize('link, match', [
    ({'name': 'wifi1', 'prefix': 31}, r'\(wifi1\): prefix /31 is out of range, it must be between /16 and /30'),
    ({'name': 'wifi1', 'prefix': 15}, r'prefix /15 is out of range'),
    ({'name': 'wifi1', 'prefix': 'abc'}, r'prefix must be an integer'),
    ({'name': 'wifi1', 'prefix': True}, r'prefix must be an integer'),
    ({'name': 'wifi1', 'prefix': 29.5}, r'prefix must be an integer'),
    ({'name': 'wifi1', 'subnet': '172.16.0.0/24', 'prefix': 29}, r'subnet 172.16.0.0/24 does not match prefix /29'),
    ({'name': 'wifi1', 'subnet': '172.16.0.0/31'}, r'prefix /31 is out of range'),
    ({'name': 'wifi1', 'subnet': '172.16.0.1/29'}, r"subnet '172.16.0.1/29' is not a network .*host bits set"),
    ({'name': 'wifi1', 'subnet': '2001:db8::/64'}, r'is not an IPv4 network'),
    ({'name': 'wifi1', 'subnet': 29}, r'is not a string'),
    ({'name': ''}, r': name is required'),
    ({'prefix': 29}, r': name is required'),
    ({'name': 7}, r': name is required'),
    ({'name': 'wifi1', 'subnet_': '172.16.0.0/29'}, r'unknown keys subnet_'),
    ('wifi1', r'must be a dict'),
])
def test_bad_links(link, match):
    with pytest.raises(TransitError, match=r'^omr_router_transit_links\[0\]' + '.*' + match):
        allocate(POOL, [link])


def test_prefix_shorter_than_the_pool():
    with pytest.raises(TransitError) as e:
        allocate('172.16.0.0/24', [{'name': 'wifi1', 'prefix': 20}])
    assert str(e.value) == 'omr_router_transit_links[0] (wifi1): prefix /20 is larger than omr_router_transit_pool 172.16.0.0/24'


@pytest.mark.parametrize('pool', ['foo', '172.16.0.1/12', '2001:db8::/32', None, '172.16.0.0/31', ''])
def test_bad_pool(pool):
    with pytest.raises(TransitError, match='^omr_router_transit_pool'):
        allocate(pool, links('wifi1'))


@pytest.mark.parametrize('reserved, match', [
    ([{'network': '10.0.0.0/8'}], r'reserved\[0\] has no name'),
    ([{'name': 'LAN', 'network': 'lan'}], r"reserved network LAN: 'lan' is not a network"),
    (['10.0.0.0/8'], r'reserved\[0\] must be a dict'),
    ({'name': 'LAN', 'network': '10.0.0.0/8'}, r'must be a list'),
])
def test_bad_reserved(reserved, match):
    with pytest.raises(TransitError, match=match):
        allocate(POOL, links('wifi1'), reserved=reserved)


def test_bad_existing_and_links_types():
    with pytest.raises(TransitError, match='existing'):
        allocate(POOL, links('wifi1'), existing=['172.16.0.0/29'])
    with pytest.raises(TransitError, match='must be a list'):
        allocate(POOL, {'name': 'wifi1'})


def test_var_name_is_used_in_messages():
    with pytest.raises(TransitError, match=r'^omr_hotspot_links\[1\] \(a\): duplicate name a'):
        allocate(POOL, links('a', 'a'), var_name='omr_hotspot_links')


def test_errors_are_value_errors():
    assert issubclass(TransitError, ValueError)


# ---------------------------------------------------------------- internals

@pytest.mark.parametrize('pool, reserved', [
    ('172.16.4.0/23', ['172.16.5.0/24']),
    ('172.16.0.0/22', ['172.16.0.0/23', '172.16.2.64/26', '172.16.3.3/32']),
    ('10.0.0.0/20', ['10.0.0.0/21', '10.0.12.0/22']),
])
def test_ranking_free_blocks_equals_probing(monkeypatch, pool, reserved):
    # the short cut for almost full pools must pick exactly what the probe picks
    reserved = [{'name': 'r%d' % i, 'network': r} for i, r in enumerate(reserved)]
    given = [{'name': 'bridge-%d' % i, 'prefix': (29, 30, 28)[i % 3]} for i in range(24)]
    monkeypatch.setattr(t, 'RANK_FREE_BELOW', 1 << 30)
    ranked = allocate(pool, given, reserved=reserved)
    monkeypatch.setattr(t, 'RANK_FREE_BELOW', -1)
    probed = allocate(pool, given, reserved=reserved)
    assert ranked == probed
    assert_sane(ranked, pool, reserved)


def test_probe_visits_every_block_once():
    for name in ('wifi1', 'wifi2', 'lte-bridge'):
        for n in (1, 2, 8, 64):
            start, step = t._hash_probe(name, n)
            assert sorted((start + k * step) % n for k in range(n)) == list(range(n))


# ---------------------------------------------------------------- the filter

def test_filter_plugin():
    filters = filter_plugin.FilterModule().filters()
    assert list(filters) == ['transit_allocate']
    f = filters['transit_allocate']
    given = links('wifi1', 'wifi2', 'lte-bridge')
    assert f(given) == allocate(POOL, given)
    assert f(given, pool='10.99.0.0/16', reserved=[LAN], existing={'wifi1': '10.99.0.0/29'}) == \
        allocate('10.99.0.0/16', given, reserved=[LAN], existing={'wifi1': '10.99.0.0/29'})


def test_filter_error_type_and_message():
    f = filter_plugin.FilterModule().filters()['transit_allocate']
    given = [{'name': 'wifi1', 'subnet': '192.168.100.0/24'}]
    with pytest.raises(TransitError) as plain:
        allocate('192.168.0.0/16', given, reserved=[LAN])
    with pytest.raises(AnsibleFilterError) as e:
        f(given, pool='192.168.0.0/16', reserved=[LAN])
    assert not isinstance(e.value, ValueError)
    assert e.value.message == str(plain.value)
    with pytest.raises(AnsibleFilterError, match='omr_router_transit_pool'):
        f(given, pool='nope')


def test_filter_docs_parse():
    doc = yaml.safe_load(filter_plugin.DOCUMENTATION)
    assert doc['name'] == 'transit_allocate'
    assert doc['options']['pool']['default'] == POOL == t.DEFAULT_POOL
    assert yaml.safe_load(filter_plugin.EXAMPLES)
    assert yaml.safe_load(filter_plugin.RETURN)['_value']['sample']['wifi1']['subnet'] == \
        allocate(POOL, links('wifi1'))['wifi1']['subnet']


def test_other_callers_name_their_own_variables():
    with pytest.raises(TransitError) as err:
        allocate('172.16.0.0/12', [{'name': 'wifi1', 'subnet': '10.9.0.0/29'}], var_name='omr_wifi_bridge_transit')
    assert str(err.value) == 'omr_wifi_bridge_transit[0] (wifi1): subnet 10.9.0.0/29 is outside omr_wifi_bridge_transit_pool 172.16.0.0/12'
    with pytest.raises(TransitError) as err:
        allocate('172.16.0.0/12', [{'name': 'wifi1', 'subnet': '172.23.209.0/29'}], var_name='omr_wifi_bridge_transit',
                 reserved=[{'name': 'hotspot network 172.23.208.0/20 on uplink', 'network': '172.23.208.0/20'}])
    assert 'omr_wifi_bridge_transit[0] (wifi1): subnet 172.23.209.0/29 overlaps hotspot network 172.23.208.0/20' in str(err.value)


def test_a_hotspot_network_moves_the_hashed_block():
    # The lab's hotspot hands out 172.23.208.0/20, which covers the block wifi1 hashes to.
    free = allocate('172.16.0.0/12', [{'name': 'wifi1'}])['wifi1']['subnet']
    moved = allocate('172.16.0.0/12', [{'name': 'wifi1'}],
                     reserved=[{'name': 'hotspot', 'network': '172.23.208.0/20'}])['wifi1']['subnet']
    assert free == '172.23.213.48/29'
    assert moved != free and not ipaddress.ip_network(moved).overlaps(ipaddress.ip_network('172.23.208.0/20'))
