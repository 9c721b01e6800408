# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: no compatibility promise, may change in any release.
# Pure Python, standard library only (ipaddress, hashlib): no Ansible imports, so the
# planner can be unit-tested without a controller and reused by modules.
#
# Transit subnets between the OMR router and the bridge devices in front of it (WiFi
# clients, LTE routers in bridge mode, ...). The practice (shared/reference
# seed-omr-article-zh.txt) puts them in a private 172.16.0.0/12 transit network, so they
# never collide with the 192.168.0.0/16 networks those devices hand out or join. OMR's
# shadowsocks bypass list holds all of RFC 1918, 172.16/12 included, so traffic to a
# transit network is never proxied.
#
# The allocator is deterministic and stable:
#   * a link's preferred block is taken from sha256(name): its top bits index the
#     aligned blocks of the link's size in the pool, so the preferred /30 is a half of
#     the preferred /29, and so on;
#   * on a collision it probes start + k*step (mod n) with an odd step also taken from
#     sha256(name): n is a power of two, so the probe visits every block exactly once;
#   * explicit subnets are placed first, then still-valid allocations from an earlier
#     run (`existing`), then the rest in sorted-name order, so list order never matters;
#   * adding or removing a link never moves another one as long as `existing` is
#     passed back in (and, without it, whenever there is no hash collision).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import hashlib
import ipaddress

from collections.abc import Mapping

DEFAULT_POOL = '172.16.0.0/12'
DEFAULT_PREFIX = 29
MIN_PREFIX = 16
MAX_PREFIX = 30          # /30: router + peer, the smallest point-to-point subnet
POOL_VAR = 'omr_router_transit_pool'
LINKS_VAR = 'omr_router_transit_links'


def _pool_var(var_name):
    # The bridge role checks its end as omr_wifi_bridge_transit, with omr_wifi_bridge_transit_pool.
    return POOL_VAR if var_name == LINKS_VAR else var_name + '_pool'


# When no more than this many aligned blocks are free, the first free block in probe
# order is found by ranking the free blocks instead of probing (same answer, no
# million-step loop in an almost full pool).
RANK_FREE_BELOW = 4096


class TransitError(ValueError):
    """A transit allocation that cannot be made, with a message for the user."""


def _is_str(value):
    return isinstance(value, str)


def _int(value):
    """An int from an int or an int-like string; None if it is neither (bool excluded)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if _is_str(value) and value.strip().lstrip('/').isdigit():
        return int(value.strip().lstrip('/'))
    return None


def _parse_pool(pool, pool_var=POOL_VAR):
    try:
        if not _is_str(pool):
            raise ValueError('not a string')
        net = ipaddress.ip_network(pool.strip(), strict=True)
    except ValueError as e:
        raise TransitError('%s %r is not an IPv4 network in CIDR notation (%s)' % (pool_var, pool, e))
    if net.version != 4:
        raise TransitError('%s %s is not an IPv4 network' % (pool_var, net))
    if net.prefixlen > MAX_PREFIX:
        raise TransitError('%s %s is too small: it cannot hold a single /%d' % (pool_var, net, MAX_PREFIX))
    return net


def _parse_reserved(reserved):
    """[(label, IPv4Network)]; IPv6 entries are skipped (they cannot overlap)."""
    if reserved is None:
        return []
    if isinstance(reserved, Mapping) or _is_str(reserved):
        raise TransitError('reserved networks must be a list of {name, network}, got %r' % (reserved,))
    out = []
    for i, item in enumerate(reserved):
        if not isinstance(item, Mapping):
            raise TransitError('reserved[%d] must be a dict with name and network, got %r' % (i, item))
        label = item.get('name')
        if not _is_str(label) or not label.strip():
            raise TransitError('reserved[%d] has no name (a label such as LAN or WAN wan1): %r' % (i, item))
        value = item.get('network')
        try:
            if not _is_str(value):
                raise ValueError('not a string')
            # strict=False: an interface address such as 192.168.100.1/24 stands for its network
            net = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError as e:
            raise TransitError('reserved network %s: %r is not a network in CIDR notation (%s)' % (label, value, e))
        if net.version == 4:
            out.append((label, net))
    return out


def _parse_subnet(value):
    """(IPv4Network, None), or (None, why not) for a value that is no IPv4 network."""
    if not _is_str(value):
        return None, 'is not a string'
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as e:
        return None, 'is not a network in CIDR notation (%s)' % e
    if net.version != 4:
        return None, 'is not an IPv4 network'
    return net, None


def _hash_probe(name, n):
    """(start, step) of the probe sequence of `name` over n (a power of two) blocks."""
    digest = hashlib.sha256(name.encode('utf-8')).digest()
    # the top log2(n) bits: the preferred /30 is then a half of the preferred /29, the
    # /29 an eighth of the /26, ... so changing a link's prefix keeps it nearby
    start = int.from_bytes(digest[:8], 'big') >> (64 - (n.bit_length() - 1))
    step = (int.from_bytes(digest[8:16], 'big') % n) | 1
    return start, step


class _Taken(object):
    """Address ranges no block may overlap, with who took them. Ranges may nest (a /32
    VPS address inside a routed /24), so lookups go through a merged, sorted copy."""

    def __init__(self):
        self.items = []      # (first, last, label), in the order taken
        self._merged = None
        self._starts = None

    def add(self, net, label):
        self.items.append((int(net.network_address), int(net.broadcast_address), label))
        self._merged = None

    def merged(self):
        if self._merged is None:
            out = []
            for f, l, _owner in sorted(self.items):
                if out and f <= out[-1][1] + 1:
                    out[-1][1] = max(out[-1][1], l)
                else:
                    out.append([f, l])
            self._merged = out
            self._starts = [f for f, _last in out]
        return self._merged

    def hit(self, first, last):
        """True if any range overlaps [first, last]."""
        merged = self.merged()
        i = bisect.bisect_right(self._starts, last) - 1
        return i >= 0 and merged[i][1] >= first

    def labels(self, net):
        """Labels of the ranges overlapping `net`, in the order taken."""
        first, last = int(net.network_address), int(net.broadcast_address)
        return [label for f, l, label in self.items if f <= last and l >= first]


def _free_blocks(pool, prefix, taken, limit):
    """(count, indexes) of the free aligned /prefix blocks of `pool`; the indexes are
    listed only when there are no more than `limit` of them, else None."""
    size = 1 << (32 - prefix)
    base, end = int(pool.network_address), int(pool.broadcast_address) + 1
    gaps, cursor = [], base
    for f, l in taken.merged() + [[end, end]]:      # [end, end]: sentinel past the pool
        if l < cursor:
            continue
        gap_end = min(f, end)                        # the gap is [cursor, gap_end)
        if gap_end > cursor:
            lo, hi = -(-(cursor - base) // size), (gap_end - base) // size
            if hi > lo:
                gaps.append((lo, hi))
        cursor = l + 1
        if cursor >= end:
            break
    count = sum(hi - lo for lo, hi in gaps)
    if count > limit:
        return count, None
    return count, [idx for lo, hi in gaps for idx in range(lo, hi)]


def _describe(net):
    return {
        'subnet': str(net),
        'prefix': net.prefixlen,
        'network': str(net.network_address),
        'netmask': str(net.netmask),
        'router_address': str(net.network_address + 1),
        'peer_address': str(net.network_address + 2),
        'hosts': net.num_addresses - 2,
    }


def _validate_links(links, pool, var_name):
    """[(index, name, prefix, explicit IPv4Network or None)] in the order given."""
    if links is None:
        return []
    if isinstance(links, Mapping) or _is_str(links):
        raise TransitError('%s must be a list of {name, prefix, subnet}, got %r' % (var_name, links))
    out, seen = [], {}
    for i, link in enumerate(links):
        where = '%s[%d]' % (var_name, i)
        if not isinstance(link, Mapping):
            raise TransitError('%s must be a dict with at least a name, got %r' % (where, link))
        # device belongs to the router's side of the link; the allocation does not use it.
        unknown = sorted(set(link) - set(('name', 'prefix', 'subnet', 'device', 'peer', 'avoid')))
        if unknown:
            raise TransitError('%s: unknown keys %s (allowed: name, prefix, subnet, device, peer, avoid)' % (where, ', '.join(map(str, unknown))))
        name = link.get('name')
        if not _is_str(name) or not name.strip():
            raise TransitError('%s: name is required and must be a non-empty string, got %r' % (where, name))
        where = '%s (%s)' % (where, name)
        if name in seen:
            raise TransitError('%s: duplicate name %s, already used by %s[%d]' % (where, name, var_name, seen[name]))
        seen[name] = i

        subnet = link.get('subnet')
        explicit = None
        if subnet not in (None, ''):
            explicit, why = _parse_subnet(subnet)
            if explicit is None:
                raise TransitError('%s: subnet %r %s' % (where, subnet, why))

        raw_prefix = link.get('prefix')
        if raw_prefix is None:
            prefix = explicit.prefixlen if explicit is not None else DEFAULT_PREFIX
        else:
            prefix = _int(raw_prefix)
            if prefix is None:
                raise TransitError('%s: prefix must be an integer between %d and %d, got %r'
                                   % (where, MIN_PREFIX, MAX_PREFIX, raw_prefix))
        if not MIN_PREFIX <= prefix <= MAX_PREFIX:
            raise TransitError('%s: prefix /%d is out of range, it must be between /%d and /%d'
                               % (where, prefix, MIN_PREFIX, MAX_PREFIX))
        if explicit is not None and explicit.prefixlen != prefix:
            raise TransitError('%s: subnet %s does not match prefix /%d' % (where, explicit, prefix))
        if prefix < pool.prefixlen:
            raise TransitError('%s: prefix /%d is larger than %s %s'
                               % (where, prefix, _pool_var(var_name), pool))
        if explicit is not None and not explicit.subnet_of(pool):
            raise TransitError('%s: subnet %s is outside %s %s' % (where, explicit, _pool_var(var_name), pool))
        out.append((i, name, prefix, explicit))
    return out


def _existing_subnet(value):
    """The subnet string of an `existing` entry: 'a.b.c.d/p' or a dict with subnet
    (a whole earlier result entry)."""
    if isinstance(value, Mapping):
        value = value.get('subnet')
    return value


def allocate(pool, links, reserved=(), existing=None, var_name=LINKS_VAR):
    """{link name: transit subnet facts} for `links` inside `pool`.

    links: [{name, prefix (default 29), subnet (optional explicit CIDR)}]
    reserved: [{name: label, network: CIDR}] that no allocation may overlap
    existing: {name: subnet} of an earlier run, kept while still valid
    """
    pool = _parse_pool(pool, _pool_var(var_name))
    reserved = _parse_reserved(reserved)
    links = _validate_links(links, pool, var_name)
    if existing is None:
        existing = {}
    if not isinstance(existing, Mapping):
        raise TransitError('existing transit allocations must be a dict of name to subnet, got %r' % (existing,))

    taken = _Taken()
    for label, net in reserved:
        if pool.subnet_of(net) and links:
            raise TransitError('%s %s covers all of %s %s: no transit subnet can be allocated'
                               % (label, net, _pool_var(var_name), pool))
        taken.add(net, '%s %s' % (label, net))

    result = {}

    # 1. explicit subnets, in the order given (errors name the later of two)
    for i, name, prefix, net in links:
        if net is None:
            continue
        where = '%s[%d] (%s)' % (var_name, i, name)
        hits = taken.labels(net)
        if hits:
            raise TransitError('%s: subnet %s overlaps %s' % (where, net, ' and '.join(hits)))
        taken.add(net, '%s subnet %s' % (where, net))
        result[name] = dict(_describe(net), source='explicit')

    # 2. allocations of an earlier run, while still inside the pool, of the right size
    #    and free; sorted by name so that of two that clash the same one always stays
    for i, name, prefix, net in sorted((l for l in links if l[3] is None), key=lambda l: l[1]):
        old, _err = _parse_subnet(_existing_subnet(existing.get(name)))
        if old is None or old.prefixlen != prefix or not old.subnet_of(pool):
            continue
        if taken.hit(int(old.network_address), int(old.broadcast_address)):
            continue
        taken.add(old, '%s[%d] (%s) subnet %s' % (var_name, i, name, old))
        result[name] = dict(_describe(old), source='existing')

    # 3. the rest: hashed, in sorted-name order
    for i, name, prefix, net in sorted((l for l in links if l[1] not in result), key=lambda l: l[1]):
        block = _place(pool, prefix, name, taken)
        if block is None:
            raise TransitError('%s[%d] (%s): %s %s is exhausted, no free /%d left (taken: %s)'
                               % (var_name, i, name, _pool_var(var_name), pool, prefix,
                                  ', '.join(taken.labels(pool))))
        taken.add(block, '%s[%d] (%s) subnet %s' % (var_name, i, name, block))
        result[name] = dict(_describe(block), source='hashed')

    return dict(sorted(result.items()))


def _place(pool, prefix, name, taken):
    """The first free /prefix block of `pool` in the probe order of `name`, or None."""
    n = 1 << (prefix - pool.prefixlen)
    size = 1 << (32 - prefix)
    base = int(pool.network_address)
    start, step = _hash_probe(name, n)

    count, free = _free_blocks(pool, prefix, taken, RANK_FREE_BELOW)
    if count == 0:
        return None
    if free is not None:
        # few free blocks: the one the probe would reach first is the lowest rank
        inverse = pow(step, -1, n) if n > 1 else 0
        idx = min(free, key=lambda b: ((b - start) * inverse) % n)
    else:
        idx = start
        for _step in range(n):
            first = base + idx * size
            if not taken.hit(first, first + size - 1):
                break
            idx = (idx + step) % n
    return ipaddress.IPv4Network((base + idx * size, prefix))
