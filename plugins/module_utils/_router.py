# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: validate and plan an OMR router's WANs (pure functions)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

MODES = ("master", "on", "backup", "off")
# OMR's multipath helper on MPTCPv1: master/on -> subflow fullmesh, backup adds backup.
MODE_FLAGS = {
    "master": ["subflow", "fullmesh"],
    "on": ["subflow", "fullmesh"],
    "backup": ["subflow", "backup", "fullmesh"],
    "off": [],
}
TABLE_BASE = 100
QUALITY_KEYS = ("max_loss_pct", "max_rtt_ms", "interval", "count")
QUALITY_DEFAULTS = {"interval": 30, "count": 5}


class RouterPlanError(ValueError):
    pass


def _mode(value):
    # YAML 1.1 turns a bare `on`/`off` into booleans; accept them as OMR's words.
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


def _transit_wan(wan, where_n, transit, transit_links, errors):
    """A WAN behind a bridge device (`transit: <link>`): its device, address and gateway come
    from the transit link and its allocation. Returns the WAN with those filled in, or None."""
    link_name = wan["transit"]
    links = dict((link.get("name"), link) for link in transit_links or [] if isinstance(link, dict))
    if link_name not in links:
        errors.append("%s: transit %r is not a link of omr_router_transit_links (%s)"
                      % (where_n, link_name, ", ".join(sorted(str(n) for n in links)) or "none declared"))
        return None
    device = links[link_name].get("device")
    if wan.get("device") not in (None, device):
        errors.append("%s: device %s differs from the device %s of transit link %s"
                      % (where_n, wan.get("device"), device, link_name))
        return None
    for key in ("address", "gateway"):
        if wan.get(key) is not None:
            errors.append("%s: %s comes from transit link %s; leave it out" % (where_n, key, link_name))
            return None
    filled = dict(wan, device=device)
    if transit is not None:
        alloc = transit.get(link_name)
        if alloc is None:
            errors.append("%s: transit link %s has no allocation" % (where_n, link_name))
            return None
        filled["address"] = "%s/%s" % (alloc["router_address"], alloc["prefix"])
        filled["gateway"] = alloc["peer_address"]
    return filled


def _dhcp_wan(wan, where_n, leases, errors):
    """A WAN whose address comes from DHCP (`address: dhcp`, OMR's proto dhcp): address,
    prefix and gateway come from the lease on its device. Returns the WAN with those filled
    in, the WAN unchanged while there is no lease (pending), or None on an error."""
    if wan.get("gateway") is not None:
        errors.append("%s: gateway comes from the DHCP lease; leave it out" % where_n)
        return None
    lease = (leases or {}).get(wan.get("device"))
    if not lease:
        return wan
    return dict(wan, address="%s/%s" % (lease["address"], lease["prefix"]), gateway=lease["gateway"])


def parse_leases(text):
    """DHCP leases the router's dhcpcd hook keeps, one file per device, from
    `grep -H . <dir>/*.env`: {device: {address, prefix, gateway, network}}. Lines of files
    that lack a value are dropped, so a half-written lease never counts."""
    found = {}
    for line in text.splitlines():
        path, sep, assignment = line.partition(":")
        key, eq, value = assignment.partition("=")
        if not sep or not eq or not path.endswith(".env"):
            continue
        device = path.rsplit("/", 1)[-1][:-len(".env")]
        found.setdefault(device, {})[key.strip().lower()] = value.strip().strip("'\"")
    leases = {}
    for device, values in found.items():
        try:
            iface = ipaddress.ip_interface("%s/%s" % (values["address"], values["prefix"]))
            gateway = ipaddress.ip_address(values["gateway"].split()[0])
        except (KeyError, ValueError, IndexError):
            continue
        leases[device] = {"address": str(iface.ip), "prefix": iface.network.prefixlen,
                          "gateway": str(gateway), "network": str(iface.network)}
    return leases


def _quality(wan, mode, where_n, errors):
    """Thresholds under which an `on` WAN is treated as a backup (OMR users do this by hand
    for flaky WiFi and 4G links). None when the WAN has none."""
    quality = wan.get("quality")
    if quality is None:
        return None
    if not isinstance(quality, dict):
        errors.append("%s: quality must be a dict with max_loss_pct and/or max_rtt_ms" % where_n)
        return None
    unknown = sorted(set(quality) - set(QUALITY_KEYS))
    if unknown:
        errors.append("%s: quality has unknown keys %s (allowed: %s)" % (where_n, ", ".join(unknown), ", ".join(QUALITY_KEYS)))
        return None
    if quality.get("max_loss_pct") is None and quality.get("max_rtt_ms") is None:
        errors.append("%s: quality needs max_loss_pct or max_rtt_ms" % where_n)
        return None
    if mode != "on":
        errors.append("%s: quality applies to multipath on links only (this one is %s)" % (where_n, mode))
        return None
    out = dict(QUALITY_DEFAULTS)
    out.update((k, v) for k, v in quality.items() if v is not None)
    limits = {"max_loss_pct": (0, 100), "max_rtt_ms": (1, 60000), "interval": (1, 86400), "count": (1, 100)}
    for key, (low, high) in limits.items():
        if key not in out:
            continue
        try:
            out[key] = float(out[key]) if key.startswith("max_") else int(out[key])
        except (TypeError, ValueError):
            errors.append("%s: quality.%s %r is not a number" % (where_n, key, out[key]))
            return None
        if not low <= out[key] <= high:
            errors.append("%s: quality.%s %s is outside %s-%s" % (where_n, key, out[key], low, high))
            return None
    return out


def plan_wans(wans, var="omr_router_wans", transit=None, transit_links=None, leases=None):
    """Check the WAN list and return it with table, metric, network and endpoint flags filled in.

    A WAN may name a transit link (`transit: wifi1`) instead of device, address and gateway:
    the bridge device at the other end is its gateway. Without `transit` (the allocation),
    such WANs are checked but planned without addresses (address, network and endpoint None).
    A WAN with `address: dhcp` takes its address and gateway from `leases` (parse_leases);
    without a lease for its device it is planned the same way, pending.
    """
    if not isinstance(wans, list) or not wans:
        raise RouterPlanError("%s must list at least one WAN" % var)
    errors, seen_names, seen_devices, seen_tables = [], {}, {}, {}
    planned = []
    for i, wan in enumerate(wans):
        where = "%s[%d]" % (var, i)
        name = wan.get("name")
        where_n = "%s (%s)" % (where, name)
        if not name:
            errors.append("%s: name is required" % where)
            continue
        pending = False
        if wan.get("transit") is not None:
            wan = _transit_wan(wan, where_n, transit, transit_links, errors)
            if wan is None:
                continue
            pending = transit is None
        dhcp = str(wan.get("address")).lower() == "dhcp"
        if dhcp:
            if not wan.get("device"):
                errors.append("%s: device is required" % where_n)
                continue
            wan = _dhcp_wan(wan, where_n, leases, errors)
            if wan is None:
                continue
            pending = str(wan.get("address")).lower() == "dhcp"
        if name in seen_names:
            errors.append("%s: duplicate WAN name %r (also %s[%d])" % (where_n, name, var, seen_names[name]))
        seen_names.setdefault(name, i)
        device = wan.get("device")
        if device in seen_devices:
            errors.append("%s: device %s is already used by %s[%d]" % (where_n, device, var, seen_devices[device]))
        seen_devices.setdefault(device, i)
        mode = _mode(wan.get("multipath"))
        if mode not in MODES:
            errors.append("%s: multipath %r is not one of %s" % (where_n, mode, ", ".join(MODES)))
        table = int(wan.get("table") or TABLE_BASE + i + 1)
        if table in seen_tables:
            errors.append("%s: routing table %d is already used by %s[%d]" % (where_n, table, var, seen_tables[table]))
        seen_tables.setdefault(table, i)
        metric = wan.get("metric")
        if metric is None:
            metric = 1 if mode == "master" else 10 + i
        quality = _quality(wan, mode, where_n, errors)
        if pending:
            planned.append({
                "name": name, "device": wan["device"], "multipath": mode, "transit": wan.get("transit"),
                "dhcp": dhcp, "address": None, "prefix": None, "cidr": None, "network": None, "gateway": None,
                "table": table, "metric": int(metric), "endpoint_id": i + 1,
                "flags": MODE_FLAGS.get(mode, []), "endpoint": None, "quality": quality,
            })
            continue
        try:
            iface = ipaddress.ip_interface(str(wan.get("address")))
            if iface.network.prefixlen == iface.max_prefixlen:
                raise ValueError("no prefix length")
        except ValueError:
            errors.append("%s: address %r must be dhcp or an address with a prefix length, e.g. 100.64.1.2/24"
                          % (where_n, wan.get("address")))
            continue
        try:
            gateway = ipaddress.ip_address(str(wan.get("gateway")))
        except ValueError:
            errors.append("%s: gateway %r is not an IP address" % (where_n, wan.get("gateway")))
            continue
        if gateway not in iface.network:
            errors.append("%s: gateway %s is not on the link's network %s" % (where_n, gateway, iface.network))
        planned.append({
            "name": name, "device": device, "multipath": mode, "transit": wan.get("transit"),
            "dhcp": dhcp, "address": str(iface.ip), "prefix": iface.network.prefixlen, "cidr": str(iface),
            "network": str(iface.network), "gateway": str(gateway),
            "table": table, "metric": int(metric), "endpoint_id": i + 1,
            "flags": MODE_FLAGS.get(mode, []), "quality": quality,
            # Ready for omr.deploy.mptcp_endpoint; None for `off` links.
            "endpoint": {"address": str(iface.ip), "dev": device, "id": i + 1, "flags": MODE_FLAGS[mode]}
            if mode in MODE_FLAGS and mode != "off" else None,
        })
    masters = [w.get("name") for w in wans if _mode(w.get("multipath")) == "master"]
    if len(masters) != 1:
        errors.append("%s: exactly one WAN must have multipath master, as OMR enforces; found %d (%s)"
                      % (var, len(masters), ", ".join(str(m) for m in masters) or "none"))
    if errors:
        raise RouterPlanError("; ".join(errors))
    return planned


def parse_routes(text, exclude_devices=()):
    """Networks the router already routes, from `ip -4 -o route show table all`."""
    skip_types = ("default", "local", "broadcast", "multicast", "unreachable", "prohibit", "blackhole", "throw", "nat", "anycast")
    nets = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in skip_types:
            continue
        if "table" in words and words[words.index("table") + 1] == "local":
            continue
        dev = words[words.index("dev") + 1] if "dev" in words else None
        if dev in exclude_devices:
            continue
        try:
            net = ipaddress.ip_network(words[0], strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            continue
        entry = {"name": "route %s%s" % (net, " dev %s" % dev if dev else ""), "network": str(net)}
        if entry not in nets:
            nets.append(entry)
    return nets


def plan_lan(lan, var="omr_router_lan"):
    """Check the LAN declaration and add its network and prefix."""
    if not isinstance(lan, dict) or not lan.get("device"):
        raise RouterPlanError("%s.device is required" % var)
    try:
        iface = ipaddress.ip_interface(str(lan.get("address")))
        if iface.network.prefixlen == iface.max_prefixlen:
            raise ValueError("no prefix length")
    except ValueError:
        raise RouterPlanError("%s.address %r must be an address with a prefix length, e.g. 192.168.100.1/24"
                              % (var, lan.get("address")))
    return {"device": lan["device"], "address": str(iface.ip), "prefix": iface.network.prefixlen,
            "cidr": str(iface), "network": str(iface.network)}
