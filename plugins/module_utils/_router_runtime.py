# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the parts of the router plan the router evaluates itself.

A DHCP WAN's address changes while nobody runs Ansible, so the plan written to the router
(`/etc/omr-router/plan.json`, shaped as `_router.RouterPlan`) leaves it out, and the router's
programs fill it in from the lease its dhcpcd hook keeps. This file defines that lease file,
once, and how a planned WAN is resolved against it; the controller's planner
(`_router.plan_router`) and the router's program (`roles/router/files/omr-router-net.py`,
which gets a copy of this file beside it) both use it.

Standard library only and no imports from the collection: it runs on the router as a
plain module next to the program.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os

LEASE_DIR = '/run/omr-router/dhcp'
# The hook holds it exclusively while it writes a lease and moves the WAN's routes and
# endpoint; readers take it shared, so a lease is seen only with its routes and endpoint.
LEASE_LOCK = LEASE_DIR + '/.lock'
LEASE_SUFFIX = '.env'
# One `KEY=value` line each; shell-readable on purpose (operators `cat` and `.` it).
LEASE_KEYS = ('ADDRESS', 'PREFIX', 'GATEWAY', 'NETWORK')
# dhcpcd's reasons for a usable lease, and for one that is gone (dhcpcd-run-hooks(8)).
LEASE_BOUND = ('BOUND', 'RENEW', 'REBIND', 'REBOOT', 'RECONFIGURE', 'STATIC')
LEASE_GONE = ('EXPIRE', 'FAIL', 'NAK', 'RELEASE', 'STOP', 'NOCARRIER', 'DEPARTED')
# The fields of a planned WAN that come from its address (static, transit or lease).
ADDRESS_FIELDS = ('address', 'prefix', 'cidr', 'network', 'gateway')


def lease_path(device, directory=LEASE_DIR):
    return os.path.join(directory, device + LEASE_SUFFIX)


def make_lease(address, prefix, gateway):
    """A lease dict {address, prefix, gateway, network}, or None when a value is missing or wrong."""
    try:
        iface = ipaddress.ip_interface('%s/%s' % (str(address).strip(), str(prefix).strip()))
        gw = ipaddress.ip_address(str(gateway).split()[0])
    except (ValueError, IndexError):
        return None
    if iface.version != 4 or gw.version != 4:
        return None
    return {'address': str(iface.ip), 'prefix': iface.network.prefixlen,
            'gateway': str(gw), 'network': str(iface.network)}


def lease_from_dhcpcd(env):
    """The lease in dhcpcd's hook environment (new_ip_address, new_subnet_cidr, new_routers), or None."""
    return make_lease(env.get('new_ip_address', ''), env.get('new_subnet_cidr', ''), env.get('new_routers', ''))


def render_lease(lease):
    values = {'ADDRESS': lease['address'], 'PREFIX': lease['prefix'], 'GATEWAY': lease['gateway'],
              'NETWORK': lease['network']}
    return ''.join('%s=%s\n' % (key, values[key]) for key in LEASE_KEYS)


def parse_lease(text):
    """One lease file's text -> lease dict, or None when it lacks a value (half written)."""
    values = {}
    for line in (text or '').splitlines():
        key, eq, value = line.partition('=')
        if eq:
            values[key.strip().upper()] = value.strip().strip('\'"')
    if not all(values.get(key) for key in ('ADDRESS', 'PREFIX', 'GATEWAY')):
        return None
    return make_lease(values['ADDRESS'], values['PREFIX'], values['GATEWAY'])


def parse_lease_files(text):
    """`grep -H . DIR/*.env` output -> {device: lease}; files that lack a value are left out."""
    by_file = {}
    for line in (text or '').splitlines():
        path, sep, rest = line.partition(':')
        if sep and path.endswith(LEASE_SUFFIX):
            by_file.setdefault(path, []).append(rest)
    leases = {}
    for path, lines in by_file.items():
        lease = parse_lease('\n'.join(lines))
        if lease is not None:
            leases[os.path.basename(path)[:-len(LEASE_SUFFIX)]] = lease
    return leases


def read_leases(devices, directory=LEASE_DIR):
    """{device: lease} read from the lease files of `devices` (the caller holds the lock)."""
    leases = {}
    for device in devices:
        try:
            with open(lease_path(device, directory), encoding='utf-8') as f:
                lease = parse_lease(f.read())
        except (IOError, OSError):
            continue
        if lease is not None:
            leases[device] = lease
    return leases


def wan_endpoint(wan):
    """The MPTCP endpoint a resolved WAN needs ({address, dev, id, flags[, keep_backup]}), or
    None (multipath off, or no address yet). A WAN with quality thresholds leaves its backup
    flag to the quality check, which demotes and restores it."""
    if not wan.get('flags') or not wan.get('address'):
        return None
    endpoint = {'address': wan['address'], 'dev': wan['device'], 'id': wan['endpoint_id'],
                'flags': list(wan['flags'])}
    if wan.get('keep_backup'):
        endpoint['keep_backup'] = True
    return endpoint


def resolve_wan(wan, lease):
    """A planned WAN with the address fields of a DHCP WAN taken from its lease (None: pending)."""
    if wan.get('addressing') != 'dhcp':
        return dict(wan)
    out = dict(wan)
    for key in ADDRESS_FIELDS:
        out[key] = None
    if lease:
        out.update(address=lease['address'], prefix=lease['prefix'], gateway=lease['gateway'],
                   network=lease['network'], cidr='%s/%s' % (lease['address'], lease['prefix']))
    out['pending'] = out['address'] is None
    out['endpoint'] = wan_endpoint(out)
    return out


def resolve_plan(plan, leases):
    """The plan with every DHCP WAN resolved against `leases` ({device: lease}) and the
    endpoint list rebuilt from the WANs."""
    out = dict(plan)
    out['wans'] = [resolve_wan(wan, leases.get(wan['device'])) for wan in plan['wans']]
    out['endpoints'] = [wan['endpoint'] for wan in out['wans'] if wan.get('endpoint')]
    return out


def strip_leases(plan):
    """The plan as the router keeps it: no DHCP WAN carries an address (they change without
    Ansible), so the file only changes when the inventory or the allocation does."""
    return resolve_plan(plan, {})
