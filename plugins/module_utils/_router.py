# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the OMR router's plan, computed once, on the controller.

`plan_router(config, state, peers)` turns the role's variables and one round trip of raw
state from the router (leases, routes, the plan saved there) into a `RouterPlan`: what the
router must look like, whatever backend makes it so. The action plugin `omr.deploy.router_plan`
calls it once per converge; the router keeps the result as `/etc/omr-router/plan.json` and its
programs read that file. `check_config` is the part that needs no host: bad input fails there,
naming the variable, before anything is read or changed.

The shapes below are the one description of the plan; every reader (the role's tasks, the
router's programs, verify, playbooks/speedtest.yml, omr.deploy.wifi_bridge) relies on them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import json

try:
    from typing import Dict, List, Optional, TypedDict
except ImportError:  # Python < 3.8 has no TypedDict; the shapes are documentation there
    Dict = List = Optional = None
    TypedDict = None

from ansible_collections.omr.deploy.plugins.module_utils._mptcp import LIMIT_MAX, validate_limits
from ansible_collections.omr.deploy.plugins.module_utils._openwrt import MODE_FLAGS, OpenwrtError, check_pairing
from ansible_collections.omr.deploy.plugins.module_utils._openwrt import check_config as check_openwrt
from ansible_collections.omr.deploy.plugins.module_utils._proxy import ProxyError, bypass_networks, check_proxy
from ansible_collections.omr.deploy.plugins.module_utils._vpn import TABLE as VPN_TABLE
from ansible_collections.omr.deploy.plugins.module_utils._vpn import VpnError, check_vpn, vpn_plan
from ansible_collections.omr.deploy.plugins.module_utils._router_runtime import (
    LEASE_DIR, resolve_plan, strip_leases, wan_endpoint)
from ansible_collections.omr.deploy.plugins.module_utils._transit import (
    DEFAULT_POOL, TransitError, allocate)

PLAN_VERSION = 1
BACKENDS = ("linux", "openwrt")
MODES = ("master", "on", "backup", "off")
TABLE_BASE = 100
RULE_BASE = 1000
QUALITY_KEYS = ("max_loss_pct", "max_rtt_ms", "interval", "count")
QUALITY_DEFAULTS = {"interval": 30, "count": 5}
# OMR's router UCI defaults since 2024-11 (mptcp-defaults, commit 77f1deb1): 8 and 8.
DEFAULT_LIMITS = {"subflows": 8, "add_addr_accepted": 8}
PROXY_FALLBACKS = ("nat", "closed")
# OMR's own ports on the VPS (omr.deploy.vps's list): the router's proxy port may be 65101 only.
OMR_VPS_PORTS = [443, 65001, 65222, 65279, 65280, 65301, 65311, 65312, 65390, 65400, 65401, 65443, 65500,
                 [65201, 65208], [65228, 65231], [65248, 65252], [65351, 65358]]

if TypedDict is not None:
    class Endpoint(TypedDict, total=False):
        """One MPTCP endpoint, ready for omr.deploy.mptcp_endpoint."""
        address: str
        dev: str
        id: int
        flags: List[str]        # subflow, fullmesh, backup, as OMR maps the mode
        keep_backup: bool       # the quality check owns the backup flag

    class QualityPlan(TypedDict):
        max_loss_pct: Optional[float]
        max_rtt_ms: Optional[float]
        count: int
        interval: int

    class WanPlan(TypedDict):
        """One upstream link. The address fields are None for a DHCP WAN without a lease,
        and always None for DHCP WANs in the plan the router keeps (it reads its lease)."""
        name: str
        device: str
        multipath: str              # master, on, backup, off
        addressing: str             # static, dhcp, transit
        transit: Optional[str]      # the transit link's name, for a WAN behind a bridge
        dhcp: bool
        address: Optional[str]
        prefix: Optional[int]
        cidr: Optional[str]
        network: Optional[str]
        gateway: Optional[str]
        table: int                  # its routing table, with a source rule
        rule_priority: int
        metric: int                 # of its default route in the main table
        default_route: bool         # False for multipath off
        endpoint_id: int
        flags: List[str]            # the endpoint's flags; empty for off
        keep_backup: bool
        quality: Optional[QualityPlan]
        pending: bool               # DHCP WAN without a lease yet
        endpoint: Optional[Endpoint]

    class TransitPlan(TypedDict):
        """A transit link to a bridge device, as omr.deploy.transit_allocate describes it."""
        name: str
        device: str
        peer: Optional[str]
        subnet: str
        prefix: int
        network: str
        netmask: str
        router_address: str         # the router's end
        peer_address: str           # the bridge's end, the WAN's gateway
        hosts: int
        source: str                 # explicit, existing, hashed
        preferred: str              # the block the name alone hashes to

    class LanPlan(TypedDict):
        device: str
        address: str
        prefix: int
        cidr: str
        network: str

    class NatPlan(TypedDict):
        enabled: bool
        source: str                 # the LAN network
        devices: List[str]          # masqueraded out of these (every WAN's device)

    class ProxyPlan(TypedDict):
        """The LAN's TCP into ss-redir, which carries it to the VPS over MPTCP (no key: that
        stays in the unit's 0600 configuration)."""
        enabled: bool
        unit: str                   # shadowsocks-libev-redir@<name>.service
        server: str                 # the VPS
        port: int
        method: str
        local_port: int             # ss-redir's, the redirect's target
        lan_device: str
        fallback: str               # nat: plain NAT while the proxy is down; closed: refused
        bypass: List[str]           # never proxied (the WANs' networks are added on the router)

    class VpnPlan(TypedDict):
        """The LAN's other traffic (all of it without the proxy) into OpenVPN's tunnel, which
        runs under mptcpize to the VPS (the credentials stay in the client's 0600 configuration)."""
        enabled: bool
        unit: str                   # openvpn-client@<name>.service
        server: str
        port: int
        device: str                 # the tunnel's interface
        table: int                  # its routing table: default dev <device> while the tunnel is up
        rule_priority: int          # fwmark <mark> lookup <table>
        mark: int
        lan_device: str
        source: str                 # the LAN network, masqueraded into the tunnel
        carry_tcp: bool             # false while the proxy carries the LAN's TCP
        bypass: List[str]           # never into the tunnel (the WANs' networks are added on the router)

    class RouterPlan(TypedDict):
        version: int
        backend: str
        config_digest: str          # of the inventory's settings this plan was made from
        vps: Dict[str, object]      # address, speedtest_port
        lan: LanPlan
        nat: NatPlan
        wans: List[WanPlan]
        transit: Dict[str, TransitPlan]
        reserved: List[Dict[str, str]]  # {name, network}: what the allocation avoided (not in the router's copy)
        limits: Dict[str, int]      # subflows, add_addr_accepted
        endpoints: List[Endpoint]   # one per WAN with an address and multipath not off
        dhcp: Dict[str, object]     # devices, lease_dir, timeout
        quality: Dict[str, object]  # wans (names), interval (the shortest), vps
        pending: List[str]          # DHCP WANs without a lease
        proxy: ProxyPlan
        vpn: VpnPlan


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
    out = dict(QUALITY_DEFAULTS, max_loss_pct=None, max_rtt_ms=None)
    out.update((k, v) for k, v in quality.items() if v is not None)
    limits = {"max_loss_pct": (0, 100), "max_rtt_ms": (1, 60000), "interval": (1, 86400), "count": (1, 100)}
    for key, (low, high) in limits.items():
        if out.get(key) is None:
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
    """Check the WAN list and return it planned (see WanPlan).

    A WAN may name a transit link (`transit: wifi1`) instead of device, address and gateway:
    the bridge device at the other end is its gateway. Without `transit` (the allocation),
    such WANs are checked but planned without addresses (address, network and endpoint None).
    A WAN with `address: dhcp` takes its address and gateway from `leases`
    (_router_runtime.parse_lease_files);
    without a lease for its device it is planned the same way, pending.
    """
    if not isinstance(wans, list) or not wans:
        raise RouterPlanError("%s must list at least one WAN" % var)
    errors, seen_names, seen_devices, seen_tables = [], {}, {}, {}
    planned = []
    for i, wan in enumerate(wans):
        where = "%s[%d]" % (var, i)
        if not isinstance(wan, dict):
            errors.append("%s must be a dict with name, multipath and device/address/gateway or transit" % where)
            continue
        name = wan.get("name")
        where_n = "%s (%s)" % (where, name)
        if not name:
            errors.append("%s: name is required" % where)
            continue
        pending = False
        addressing = "static"
        if wan.get("transit") is not None:
            addressing = "transit"
            wan = _transit_wan(wan, where_n, transit, transit_links, errors)
            if wan is None:
                continue
            pending = transit is None
        dhcp = str(wan.get("address")).lower() == "dhcp"
        if dhcp:
            addressing = "dhcp"
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
        if not device:
            errors.append("%s: device is required" % where_n)
            continue
        if device in seen_devices:
            errors.append("%s: device %s is already used by %s[%d]" % (where_n, device, var, seen_devices[device]))
        seen_devices.setdefault(device, i)
        mode = _mode(wan.get("multipath"))
        if mode not in MODES:
            errors.append("%s: multipath %r is not one of %s" % (where_n, mode, ", ".join(MODES)))
        try:
            table = int(wan.get("table") or TABLE_BASE + i + 1)
        except (TypeError, ValueError):
            errors.append("%s: table %r is not a number" % (where_n, wan.get("table")))
            continue
        if table in seen_tables:
            errors.append("%s: routing table %d is already used by %s[%d]" % (where_n, table, var, seen_tables[table]))
        seen_tables.setdefault(table, i)
        metric = wan.get("metric")
        if metric is None:
            metric = 1 if mode == "master" else 10 + i
        quality = _quality(wan, mode, where_n, errors)
        entry = {
            "name": name, "device": device, "multipath": mode, "addressing": addressing,
            "transit": wan.get("transit"), "dhcp": dhcp,
            "address": None, "prefix": None, "cidr": None, "network": None, "gateway": None,
            "table": table, "rule_priority": RULE_BASE + table, "metric": int(metric),
            "default_route": mode != "off", "endpoint_id": i + 1,
            "flags": list(MODE_FLAGS.get(mode, [])), "keep_backup": quality is not None,
            "quality": quality, "pending": pending, "endpoint": None,
        }
        if not pending:
            try:
                iface = ipaddress.ip_interface(str(wan.get("address")))
                if iface.version != 4 or iface.network.prefixlen == iface.max_prefixlen:
                    raise ValueError("no prefix length")
            except ValueError:
                errors.append("%s: address %r must be dhcp or an address with a prefix length (IPv4), e.g. 100.64.1.2/24"
                              % (where_n, wan.get("address")))
                continue
            try:
                gateway = ipaddress.ip_address(str(wan.get("gateway")))
            except ValueError:
                errors.append("%s: gateway %r is not an IP address" % (where_n, wan.get("gateway")))
                continue
            if gateway not in iface.network:
                errors.append("%s: gateway %s is not on the link's network %s" % (where_n, gateway, iface.network))
            entry.update(address=str(iface.ip), prefix=iface.network.prefixlen, cidr=str(iface),
                         network=str(iface.network), gateway=str(gateway))
            entry["endpoint"] = wan_endpoint(entry) if mode in MODE_FLAGS else None
        planned.append(entry)
    masters = [w.get("name") for w in wans if isinstance(w, dict) and _mode(w.get("multipath")) == "master"]
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
    for line in (text or "").splitlines():
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


def _vps(vps):
    if not isinstance(vps, dict):
        raise RouterPlanError("omr_router_vps must be a dict with address and speedtest_port, got %r" % (vps,))
    try:
        address = ipaddress.ip_address(str(vps.get("address") or "").strip())
        if address.version != 4:
            raise ValueError("not IPv4")
    except ValueError:
        raise RouterPlanError("omr_router_vps.address must be the VPS's IPv4 address, got %r" % (vps.get("address"),))
    try:
        port = int(vps.get("speedtest_port") or 65432)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise RouterPlanError("omr_router_vps.speedtest_port must be a port number, got %r" % (vps.get("speedtest_port"),))
    return {"address": str(address), "speedtest_port": port}


def _limits(limits):
    """OMR's limits unless the settings say otherwise, checked as omr.deploy.mptcp_endpoint checks them."""
    try:
        given = validate_limits(dict((k, v) for k, v in (limits or {}).items() if not isinstance(v, bool)),
                                option="omr_router_mptcp_limits")
    except ValueError as exc:
        raise RouterPlanError(str(exc))
    for key, value in (limits or {}).items():
        if isinstance(value, bool):
            raise RouterPlanError("omr_router_mptcp_limits.%s must be an integer between 0 and %d, got %r"
                                  % (key, LIMIT_MAX, value))
    return dict(DEFAULT_LIMITS, **given)


def _reserved_links(links, peers):
    """What the transit links ask to avoid: declared networks, and the uplink network each
    link's peer (an omr.deploy.wifi_bridge host) received from its hotspot."""
    out = []
    for link in links or []:
        if not isinstance(link, dict):
            continue
        for net in link.get("avoid") or []:
            out.append({"name": "network %s (omr_router_transit_links %s avoid)" % (net, link.get("name")), "network": net})
        peer = link.get("peer")
        network = (peers or {}).get(peer) if peer else None
        if network:
            out.append({"name": "hotspot network of %s %s" % (peer, network), "network": network})
    return out


def _static_reserved(lan, vps, wans, links, peers):
    reserved = [{"name": "LAN " + lan["cidr"], "network": lan["cidr"]},
                {"name": "VPS " + vps["address"], "network": vps["address"] + "/32"}]
    reserved += _reserved_links(links, peers)
    reserved += [{"name": "WAN " + w["name"], "network": w["network"]}
                 for w in wans if w["addressing"] != "transit" and w["network"]]
    return reserved


def _switched(settings, what):
    """A concern's settings ({enabled, ...}) checked to be a dict with a boolean switch."""
    settings = settings or {}
    if not isinstance(settings, dict):
        raise RouterPlanError("the router's %s settings must be a dict, got %r" % (what, settings))
    if not isinstance(settings.get("enabled", False), bool):
        raise RouterPlanError("omr_router_%s_enabled must be true or false, got %r" % (what.lower(), settings["enabled"]))
    return dict(settings, enabled=settings.get("enabled", False))


def _proxy(proxy, vps):
    """The proxy's settings (omr_router_proxy_*), checked without the key (the role checks that)."""
    proxy = _switched(proxy, "proxy")
    if not proxy["enabled"]:
        return {"enabled": False}
    fallback = proxy.get("fallback", "nat")
    if fallback not in PROXY_FALLBACKS:
        raise RouterPlanError("omr_router_proxy_fallback %r is not one of %s" % (fallback, ", ".join(PROXY_FALLBACKS)))
    name = str(proxy.get("name") or "omr")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise RouterPlanError("omr_router_proxy_name %r must be letters, digits, - and _" % (name,))
    try:
        checked = check_proxy({"port": proxy.get("port", 65101), "method": proxy.get("method", "chacha20-ietf-poly1305"),
                               "local_port": proxy.get("local_port", 1100)}, "omr_router_proxy",
                              taken={"omr_router_vps.speedtest_port": vps["speedtest_port"]},
                              reserved=OMR_VPS_PORTS, own_port=65101)
        bypass = bypass_networks([vps["address"]], [], proxy.get("bypass") or [])
    except ProxyError as exc:
        raise RouterPlanError(str(exc))
    return {"enabled": True, "name": name, "port": checked["port"], "method": checked["method"],
            "local_port": checked["local_port"], "fallback": fallback, "bypass": bypass}


def _vpn(vpn, vps, proxy):
    """The VPN's settings (omr_router_vpn_*), checked without the credentials (the role checks those)."""
    vpn = _switched(vpn, "VPN")
    if not vpn["enabled"]:
        return {"enabled": False}
    taken = {"omr_router_vps.speedtest_port": vps["speedtest_port"]}
    if proxy["enabled"]:
        taken["omr_router_proxy_port"] = proxy["port"]
    try:
        checked = check_vpn({"name": vpn.get("name", "omr"), "port": vpn.get("port", 65301),
                             "device": vpn.get("device", "omrvpn")}, "omr_router_vpn",
                            taken=taken, reserved=OMR_VPS_PORTS, own_port=65301)
    except VpnError as exc:
        raise RouterPlanError(str(exc))
    return dict(checked, enabled=True)


def _config(config):
    """The settings the plan is made from, checked; raises RouterPlanError naming the variable."""
    if not isinstance(config, dict):
        raise RouterPlanError("the router configuration must be a dict, got %r" % (config,))
    backend = config.get("backend") or "linux"
    if backend not in BACKENDS:
        raise RouterPlanError("omr_router_backend %r is not one of %s" % (backend, ", ".join(BACKENDS)))
    links = config.get("transit_links") or []
    if not isinstance(links, list):
        raise RouterPlanError("omr_router_transit_links must be a list, got %r" % (links,))
    for i, link in enumerate(links):
        if not isinstance(link, dict) or not link.get("device"):
            raise RouterPlanError("omr_router_transit_links[%d] (%s): device is required"
                                  % (i, link.get("name") if isinstance(link, dict) else link))
    try:
        timeout = int(config.get("dhcp_timeout", 30))
    except (TypeError, ValueError):
        timeout = -1
    if timeout < 0:
        raise RouterPlanError("omr_router_dhcp_timeout must be a number of seconds, got %r" % (config.get("dhcp_timeout"),))
    lan_nat = config.get("lan_nat", True)
    if not isinstance(lan_nat, bool):
        raise RouterPlanError("omr_router_lan_nat must be true or false, got %r" % (lan_nat,))
    vps = _vps(config.get("vps"))
    proxy = _proxy(config.get("proxy"), vps)
    try:
        pairing = check_pairing(config.get("pairing"), backend)
        if backend == "openwrt":
            check_openwrt(config, config.get("wans"))
    except OpenwrtError as exc:
        raise RouterPlanError(str(exc))
    # OMR brings its own VPN (glorytun-tcp by default, keyed by the pairing): the linux backend's
    # OpenVPN client is not written to an OMR router.
    vpn = _vpn(config.get("vpn"), vps, proxy) if backend == "linux" else {"enabled": False}
    checked = {
        "backend": backend,
        "proxy": proxy,
        "vpn": vpn,
        "wans": [dict(w, multipath=_mode(w.get("multipath"))) if isinstance(w, dict) else w
                 for w in config.get("wans") or []],
        "lan": config.get("lan"),
        "lan_nat": lan_nat,
        "vps": vps,
        "transit_pool": config.get("transit_pool") or DEFAULT_POOL,
        "transit_links": links,
        "limits": _limits(config.get("limits")),
        "dhcp_timeout": timeout,
    }
    if backend == "openwrt":
        checked["pairing"] = pairing
    return checked


def config_digest(config):
    """sha256 of the checked settings: the plan records it, verify compares it with the inventory."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_config(config, peers=None):
    """Everything checkable without the host. Returns {config, digest, dhcp_devices}; raises
    RouterPlanError naming the variable. `peers`: {inventory name: uplink network} of the
    transit links' peers, as far as the controller knows them."""
    cfg = _config(config)
    lan = plan_lan(cfg["lan"])
    wans = plan_wans(cfg["wans"], transit_links=cfg["transit_links"])
    if cfg["vpn"]["enabled"]:
        for i, wan in enumerate(wans):
            if wan["table"] == VPN_TABLE:
                raise RouterPlanError("omr_router_wans[%d] (%s): table %d is the VPN's; pick another, or leave it out"
                                      % (i, wan["name"], VPN_TABLE))
    reserved = _static_reserved(lan, cfg["vps"], wans, cfg["transit_links"], peers)
    try:
        allocate(cfg["transit_pool"], cfg["transit_links"], reserved=reserved)
    except TransitError as exc:
        raise RouterPlanError(str(exc))
    return {"config": cfg, "digest": config_digest(cfg),
            "dhcp_devices": [w["device"] for w in wans if w["addressing"] == "dhcp"]}


def _saved_allocation(saved):
    """{link: subnet} from the plan the router keeps (or the 0.1 local fact, {'allocations': ...})."""
    if not isinstance(saved, dict):
        return {}
    if isinstance(saved.get("transit"), dict):
        return dict((name, t.get("subnet")) for name, t in saved["transit"].items() if isinstance(t, dict))
    if isinstance(saved.get("allocations"), dict):
        return dict(saved["allocations"])
    return {}


def _proxy_plan(proxy, vps, lan):
    if not proxy["enabled"]:
        return {"enabled": False}
    return {"enabled": True, "unit": "shadowsocks-libev-redir@%s.service" % proxy["name"], "server": vps["address"],
            "port": proxy["port"], "method": proxy["method"], "local_port": proxy["local_port"],
            "lan_device": lan["device"], "fallback": proxy["fallback"], "bypass": proxy["bypass"]}


def _vpn_plan(vpn, proxy, vps, lan):
    if not vpn["enabled"]:
        return {"enabled": False}
    # What the proxy never carries, the tunnel does not either: the user's list extends both.
    bypass = bypass_networks([vps["address"]], [], proxy.get("bypass") or [])
    return vpn_plan(vpn, vps["address"], lan["device"], lan["network"], bypass, carry_tcp=not proxy["enabled"])


def plan_router(config, state=None, peers=None):
    """The whole plan (RouterPlan) from the role's settings and the router's raw state.

    state: {leases: {device: lease}, routes: `ip -4 -o route show table all` text,
            saved: the plan.json the router keeps (or None)}
    peers: {inventory name: uplink network} for transit links with a `peer`.
    The returned plan has the DHCP WANs resolved against their leases; `host_plan` gives
    the version the router keeps.
    """
    state = state or {}
    checked = check_config(config, peers)
    cfg = checked["config"]
    leases = state.get("leases") or {}
    lan = plan_lan(cfg["lan"])
    links = cfg["transit_links"]
    # Leases first: a DHCP WAN's network is known only from its lease, and is reserved too.
    wans = plan_wans(cfg["wans"], transit_links=links, leases=leases)
    own_devices = [link["device"] for link in links] + [w["device"] for w in wans] + [lan["device"]]
    reserved = _static_reserved(lan, cfg["vps"], wans, links, peers)
    reserved += parse_routes(state.get("routes") or "", own_devices)
    try:
        transit = allocate(cfg["transit_pool"], links, reserved=reserved, existing=_saved_allocation(state.get("saved")))
        preferred = allocate(cfg["transit_pool"], [{"name": link["name"], "prefix": link.get("prefix") or 29}
                                                   for link in links])
    except TransitError as exc:
        raise RouterPlanError(str(exc))
    by_name = dict((link["name"], link) for link in links)
    for name, alloc in transit.items():
        alloc.update(name=name, device=by_name[name]["device"], peer=by_name[name].get("peer"),
                     preferred=preferred[name]["subnet"])
    wans = plan_wans(cfg["wans"], transit=transit, transit_links=links, leases=leases)
    quality_wans = [w for w in wans if w["quality"]]
    plan = {
        "version": PLAN_VERSION,
        "backend": cfg["backend"],
        "config_digest": checked["digest"],
        "vps": cfg["vps"],
        "lan": lan,
        "nat": {"enabled": cfg["lan_nat"], "source": lan["network"], "devices": [w["device"] for w in wans]},
        "wans": wans,
        "transit": transit,
        "reserved": reserved,
        "limits": cfg["limits"],
        "endpoints": [],
        "dhcp": {"devices": checked["dhcp_devices"], "lease_dir": LEASE_DIR, "timeout": cfg["dhcp_timeout"]},
        "quality": {"wans": [w["name"] for w in quality_wans],
                    "interval": min(w["quality"]["interval"] for w in quality_wans) if quality_wans else None},
        "pending": [],
        "proxy": _proxy_plan(cfg["proxy"], cfg["vps"], lan),
        "vpn": _vpn_plan(cfg["vpn"], cfg["proxy"], cfg["vps"], lan),
    }
    plan = resolve_plan(plan, leases)
    plan["pending"] = [w["name"] for w in plan["wans"] if w["pending"]]
    return plan


def host_plan(plan):
    """The plan as the router keeps it (/etc/omr-router/plan.json): without lease addresses and
    without `reserved` (it follows the routes and the bridges' facts of the moment) and without the
    allocations' `source`, so the file changes only when the inventory or the allocation does."""
    out = strip_leases(plan)
    out["pending"] = []
    out.pop("reserved", None)
    # `source` says hashed on the first run and existing afterwards; the subnet is what counts.
    out["transit"] = dict((name, dict((k, v) for k, v in t.items() if k != "source"))
                          for name, t in plan["transit"].items())
    return out
