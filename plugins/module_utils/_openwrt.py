# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the router plan on an OMR router (OpenWrt, UCI, no Python).

`gather_script` is the one round trip omr.deploy.router_plan makes to such a router (plain
shell: the release, four UCI packages with their secrets masked, addresses, routes; the MPTCP
part comes from _mptcp.GATHER_SCRIPT); `parse_state` reads it on the controller and
`check_omr` refuses a host that is not OMR. `uci_intent` turns the backend-neutral plan
(_router.RouterPlan) into the UCI an OMR router reads: WANs, the WAN zone's members, the MPTCP
limits, the LAN address, the transit links, the proxy and the pairing with the VPS. It leaves
to OMR what OMR derives from that UCI on every reload (metrics, tables, rules, routes, MPTCP
endpoints, sysctls): writing them would fight `/etc/init.d/mptcp`.

Standard library only; the UCI side is _uci.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

try:
    from typing import Dict, List
except ImportError:  # pragma: no cover
    Dict = List = None

from ansible_collections.omr.deploy.plugins.module_utils._mptcp import split_sections
from ansible_collections.omr.deploy.plugins.module_utils._router_runtime import make_lease
from ansible_collections.omr.deploy.plugins.module_utils._uci import (
    UciError, digest, find_section, mask_script, members, parse_show)

PACKAGES = ("network", "firewall", "openmptcprouter", "shadowsocks-libev")
MARKER = "#omr-mptcp#"
# The WAN zone is found by its name, wherever it sits (OMR's scripts say @zone[1]).
WAN_ZONE = "wan"
# The collection's record of what it created, so that it deletes only that.
OWNED = {"package": "openmptcprouter", "name": "omr_deploy", "type": "omr_deploy"}
# OMR's proxy name for shadowsocks-libev, the client section and OMR's pairing defaults.
PROXY_NAME = "shadowsocks"
PROXY_SECTION = "sss0"
PAIRING_DEFAULTS = {"section": "vps", "username": "openmptcprouter", "port": 65500}
# OMR's multipath helper on MPTCPv1 (mptcp/files/usr/bin/multipath): master/on -> subflow
# fullmesh, backup adds backup, off none.
MODE_FLAGS = {"master": ["subflow", "fullmesh"], "on": ["subflow", "fullmesh"],
              "backup": ["subflow", "backup", "fullmesh"], "off": []}


# Interfaces OMR keeps for itself (its init forces them to multipath off).
OMR_INTERFACES = ("lan", "loopback", "omrvpn", "omr6in4", "globals")
_UCI_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


class OpenwrtError(ValueError):
    pass


def gather_script(salt, packages=PACKAGES, mptcp_init="/etc/init.d/mptcp"):
    # type: (str, tuple, str) -> str
    """POSIX sh (busybox ash) printing #omr-mptcp# sections; no `exit`, no trailing newline
    (the MPTCP part follows, see _mptcp.GATHER_SCRIPT)."""
    lines = [
        mask_script(salt),
        'm="%s"; LC_ALL=C; PATH="$PATH:/usr/sbin:/sbin"; export LC_ALL PATH' % MARKER,
        'echo "$m openwrt-begin"',
        'echo "$m openwrt-release"',
        'cat /etc/openwrt_release 2>/dev/null',
        'echo "$m openwrt-tools"',
        'for t in uci ubus ip; do command -v "$t" >/dev/null 2>&1 && echo "$t=1" || echo "$t=0"; done',
        '[ -x %s ] && echo mptcp_init=1 || echo mptcp_init=0' % mptcp_init,
    ]
    for pkg in packages:
        lines += ['echo "$m uci %s"' % pkg, 'uci -q -X show %s 2>/dev/null | omr_uci_mask' % pkg,
                  'echo "$m uci-changes %s"' % pkg, 'uci -q changes %s 2>/dev/null | omr_uci_mask' % pkg]
    lines += [
        'echo "$m openwrt-addresses"',
        'ip -4 -o addr show 2>/dev/null',
        'echo "$m router-routes"',
        'ip -4 -o route show table all 2>/dev/null',
        'echo "$m openwrt-end"',
    ]
    return "\n".join(lines)


def _kv(lines):
    out = {}
    for line in lines:
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip().strip("'\"")
    return out


def parse_addresses(lines):
    # type: (List[str]) -> Dict[str, List[str]]
    """`ip -4 -o addr show` -> {device: [cidr, ...]}."""
    out = {}
    for line in lines:
        words = line.split()
        if len(words) < 4 or "inet" not in words:
            continue
        dev = words[1].split("@")[0]
        out.setdefault(dev, []).append(words[words.index("inet") + 1])
    return out


def parse_state(stdout):
    # type: (str) -> dict
    """The gather's sections -> {release, tools, uci (secrets as digests), pending (uci changes
    per package), addresses, routes}."""
    sections, _values = split_sections(stdout)
    if "openwrt-begin" not in sections or "openwrt-end" not in sections:
        raise OpenwrtError("the router's answer is incomplete (no openwrt-end marker)")
    uci_text, pending = [], {}
    # `uci <pkg>` and `uci-changes <pkg>` sections carry the package as their inline value; a
    # marker name repeats, so walk the raw output instead of the dict.
    current = None
    for raw in stdout.splitlines():
        if raw.startswith(MARKER):
            words = raw[len(MARKER):].split()
            current = (words[0], words[1]) if len(words) == 2 and words[0] in ("uci", "uci-changes") else None
            continue
        if current is None or not raw.strip():
            continue
        if current[0] == "uci":
            uci_text.append(raw)
        else:
            pending.setdefault(current[1], []).append(raw)
    try:
        uci, _skipped = parse_show("\n".join(uci_text))
    except UciError as exc:
        raise OpenwrtError("the router's uci printed something that is not `uci show` output: %s" % exc)
    tools = dict((k, v == "1") for k, v in _kv(sections.get("openwrt-tools", [])).items())
    return {"release": _kv(sections.get("openwrt-release", [])), "tools": tools, "uci": uci, "pending": pending,
            "addresses": parse_addresses(sections.get("openwrt-addresses", [])),
            "routes": "\n".join(sections.get("router-routes", []))}


def check_omr(state, host="the router"):
    # type: (dict, str) -> None
    """Refuse a host that is not an OpenMPTCProuter: no uci, or no OMR /etc/init.d/mptcp."""
    tools = state["tools"]
    missing = []
    if not tools.get("uci"):
        missing.append("no `uci` command")
    if not tools.get("mptcp_init"):
        missing.append("no /etc/init.d/mptcp (OMR's MPTCP init)")
    if not tools.get("ip"):
        missing.append("no `ip` command")
    if missing:
        release = state["release"].get("DISTRIB_DESCRIPTION") or state["release"].get("DISTRIB_ID") or "no /etc/openwrt_release"
        raise OpenwrtError("%s is not an OpenMPTCProuter router (%s; %s): omr_router_backend openwrt needs OMR's "
                           "firmware; a Debian router takes omr_router_backend linux"
                           % (host, "; ".join(missing), release))
    if "network" not in state["uci"]:
        raise OpenwrtError("%s: `uci show network` printed nothing; is /etc/config/network there?" % host)


def leases(state, devices):
    # type: (dict, List[str]) -> Dict[str, dict]
    """The addresses netifd's DHCP client holds on `devices`, shaped as _router_runtime's leases
    ({device: {address, prefix, gateway, network}}): the first address, and the gateway of a
    route through the device in any table."""
    out = {}
    routes = state.get("routes") or ""
    for dev in devices:
        cidrs = state["addresses"].get(dev) or []
        if not cidrs:
            continue
        gateway = None
        for line in routes.splitlines():
            words = line.split()
            if "via" in words and "dev" in words and words[words.index("dev") + 1] == dev:
                gateway = words[words.index("via") + 1]
                if words[0] == "default":
                    break
        address, _slash, prefix = cidrs[0].partition("/")
        lease = make_lease(address, prefix or "32", gateway) if gateway else None
        if lease:
            out[dev] = lease
    return out


def _interface_of_link(link, wans):
    """The UCI interface that holds a transit link: the WAN behind it, else one named as the link."""
    for wan in wans:
        if isinstance(wan, dict) and wan.get("transit") == link:
            return wan.get("name")
    return link


def saved_allocation(uci, links, wans):
    # type: (dict, List[dict], List[dict]) -> Dict[str, str]
    """{link: subnet} as the router's UCI holds them (its transit interfaces' ipaddr/netmask):
    the allocation stays where an earlier run put it."""
    out = {}
    for link in links or []:
        sec = find_section(uci, "network", name=_interface_of_link(link.get("name"), wans))
        if not sec:
            continue
        addr, mask = sec["options"].get("ipaddr"), sec["options"].get("netmask")
        if isinstance(addr, str) and isinstance(mask, str):
            try:
                out[link["name"]] = str(ipaddress.ip_interface("%s/%s" % (addr, mask)).network)
            except ValueError:
                continue
    return out


def check_config(cfg, wans):
    # type: (dict, list) -> None
    """What only the openwrt backend refuses, naming the variable. `cfg` is _router._config's."""
    errors = []
    for i, wan in enumerate(wans or []):
        if not isinstance(wan, dict):
            continue
        where = "omr_router_wans[%d] (%s)" % (i, wan.get("name"))
        if wan.get("table") is not None:
            errors.append("%s: table is not supported with omr_router_backend openwrt: OMR derives each WAN's "
                          "routing table from its metric; pin metric instead, or leave both out" % where)
        metric = wan.get("metric")
        if metric is not None and (isinstance(metric, bool) or not str(metric).isdigit() or not 1 < int(metric) < 1000):
            errors.append("%s: metric %r must be a number from 2 to 999 (OMR keeps 1 for itself and takes "
                          "1000 off larger ones)" % (where, metric))
        name = str(wan.get("name") or "")
        if name in OMR_INTERFACES:
            errors.append("%s: %s is one of OMR's own interfaces; name the WAN otherwise" % (where, name))
        elif name and not _UCI_NAME_RE.match(name):
            errors.append("%s: the name becomes a UCI section (network.%s): letters, digits and _ only" % (where, name))
    for i, link in enumerate(cfg.get("transit_links") or []):
        name = str(link.get("name") or "") if isinstance(link, dict) else ""
        if name and (name in OMR_INTERFACES or not _UCI_NAME_RE.match(name)):
            errors.append("omr_router_transit_links[%d] (%s): the name becomes a UCI interface when no WAN uses the "
                          "link: letters, digits and _ only, and none of OMR's own (%s)"
                          % (i, name, ", ".join(OMR_INTERFACES)))
    if errors:
        raise OpenwrtError("; ".join(errors))


def check_pairing(pairing, backend):
    # type: (dict, str) -> dict
    """The pairing with the VPS's omr-admin (omr_router_pairing_*), checked without the key."""
    pairing = dict(PAIRING_DEFAULTS, **(pairing or {}))
    enabled = pairing.get("enabled", False)
    if not isinstance(enabled, bool):
        raise OpenwrtError("omr_router_pairing_enabled must be true or false, got %r" % (enabled,))
    if not enabled:
        return {"enabled": False}
    if backend != "openwrt":
        raise OpenwrtError("omr_router_pairing_enabled pairs an OMR router with the VPS's omr-admin; it needs "
                           "omr_router_backend openwrt (this router's is %s)" % backend)
    if not pairing.get("key_set"):
        raise OpenwrtError("omr_router_pairing_enabled is true but omr_router_pairing_server_key is empty and no VPS "
                           "in the play harvested one (omr.deploy.vps with omr_vps_stack omr): the router logs in "
                           "to omr-admin with the VPS's Server key (`Your OpenMPTCProuter Server key` in "
                           "/root/openmptcprouter_config.txt on the VPS); put it in a vault")
    section = str(pairing.get("section") or "")
    if not section.replace("_", "").isalnum():
        raise OpenwrtError("omr_router_pairing_section %r must be a uci section name (letters, digits, _)" % (section,))
    username = str(pairing.get("username") or "")
    if not username or any(c in username for c in "'\"\n\\"):
        raise OpenwrtError("omr_router_pairing_username %r must be a plain user name" % (username,))
    try:
        port = int(pairing.get("port"))
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise OpenwrtError("omr_router_pairing_port must be a port number, got %r" % (pairing.get("port"),))
    return {"enabled": True, "section": section, "username": username, "port": port}


def _netmask(prefix):
    return str(ipaddress.ip_network("0.0.0.0/%d" % int(prefix)).netmask)


def _wan_spec(wan, pinned_metric):
    proto = "dhcp" if wan["addressing"] == "dhcp" else "static"
    options = {"device": wan["device"], "proto": proto, "multipath": wan["multipath"],
               "defaultroute": "0", "peerdns": "0"}
    if proto == "static":
        options.update(ipaddr=wan["address"], netmask=_netmask(wan["prefix"]), gateway=wan["gateway"])
    else:
        # A WAN that was static before: its address would stay beside the lease.
        options.update(ipaddr=None, netmask=None, gateway=None)
    specs = [
        # ip4table: OMR's wizard writes `wan`, its init then the metric; set it only when absent.
        {"package": "network", "type": "interface", "name": wan["name"], "options": options,
         "defaults": {"ip4table": "wan"}},
        {"package": "network", "type": "device", "name": wan["name"] + "_dev", "options": {"name": wan["device"]}},
    ]
    omr = {"multipath": wan["multipath"]}
    if pinned_metric is not None:
        omr["metric"] = str(pinned_metric)
    specs.append({"package": "openmptcprouter", "type": "interface", "name": wan["name"], "options": omr})
    return specs


def uci_intent(plan, config, uci):
    # type: (dict, dict, dict) -> dict
    """The UCI an OMR router must hold for `plan` (a _router.RouterPlan of backend openwrt).

    config: the role's settings (_router._config's, with `pairing` from check_pairing and the
    WANs as given, for their pinned metrics); uci: the router's current UCI (parse_state), for
    what the collection owned before. Returns {sections: [omr.deploy.uci section specs],
    interfaces: [the UCI interfaces it manages], secrets: {"pkg.section.option": what the
    role must fill in}}. No secret is in it: the role adds them to omr.deploy.uci's `secrets`."""
    pinned = dict((w.get("name"), w.get("metric")) for w in config.get("wans") or [] if isinstance(w, dict))
    sections = []
    interfaces = []
    for wan in plan["wans"]:
        sections += _wan_spec(wan, pinned.get(wan["name"]))
        interfaces.append(wan["name"])
    # Transit links no WAN uses still get their address, outside MPTCP.
    used = set(w.get("transit") for w in plan["wans"] if w.get("transit"))
    for name, link in sorted(plan["transit"].items()):
        if name in used:
            continue
        sections += [
            {"package": "network", "type": "interface", "name": name,
             "options": {"device": link["device"], "proto": "static", "ipaddr": link["router_address"],
                         "netmask": link["netmask"], "multipath": "off", "defaultroute": "0", "peerdns": "0"}},
            {"package": "openmptcprouter", "type": "interface", "name": name, "options": {"multipath": "off"}},
        ]
        interfaces.append(name)
    # What the collection created before and no longer declares goes, and nothing else.
    owned_before = members((find_section(uci, OWNED["package"], name=OWNED["name"]) or {"options": {}})["options"].get("interface"))
    gone = [n for n in owned_before if n not in interfaces]
    for name in gone:
        sections += [{"package": "network", "type": "interface", "name": name, "state": "absent"},
                     {"package": "network", "type": "device", "name": name + "_dev", "state": "absent"},
                     {"package": "openmptcprouter", "type": "interface", "name": name, "state": "absent"}]
    zone = {"package": "firewall", "type": "zone", "match": {"name": WAN_ZONE}, "lists": {"network": interfaces}}
    if gone:
        zone["remove_members"] = {"network": gone}
    sections.append(zone)
    sections.append({"package": "network", "type": "globals", "name": "globals",
                     "options": {"mptcp_subflows": str(plan["limits"]["subflows"]),
                                 "mptcp_add_addr_accepted": str(plan["limits"]["add_addr_accepted"])}})
    # The LAN's address; its device stays OMR's (br-lan, eth0, ...).
    sections.append({"package": "network", "type": "interface", "name": "lan",
                     "options": {"proto": "static", "ipaddr": plan["lan"]["address"], "netmask": _netmask(plan["lan"]["prefix"])}})
    secrets = {}
    proxy = plan.get("proxy") or {}
    if proxy.get("enabled"):
        sections += [
            {"package": "openmptcprouter", "type": "settings", "name": "settings", "options": {"proxy": PROXY_NAME}},
            {"package": "shadowsocks-libev", "type": "server", "name": PROXY_SECTION,
             "options": {"server": proxy["server"], "server_port": str(proxy["port"]), "method": proxy["method"],
                         "disabled": "0"}},
        ]
        secrets["shadowsocks-libev.%s.key" % PROXY_SECTION] = "proxy"
    pairing = config.get("pairing") or {}
    if pairing.get("enabled"):
        sections.append({"package": "openmptcprouter", "type": "server", "name": pairing["section"],
                         "options": {"username": pairing["username"], "port": str(pairing["port"]),
                                     "master": "1", "backup": "0", "disabled": "0"},
                         "exact_lists": {"ip": [plan["vps"]["address"]]},
                         # The router pulls every other key from omr-admin when this is set.
                         "on_change": {"get_config": "1"}})
        secrets["openmptcprouter.%s.password" % pairing["section"]] = "pairing"
    sections.append(dict(OWNED, exact_lists={"interface": interfaces}))
    return {"sections": sections, "interfaces": interfaces, "secrets": secrets, "removed": gone}


def has_secret(uci, path, salt):
    # type: (dict, str, str) -> bool
    """Whether the router holds a non-empty value at `path` (pkg.section.option), read as a digest."""
    pkg, sec_name, opt = path.split(".", 2)
    sec = find_section(uci, pkg, name=sec_name)
    value = (sec or {"options": {}})["options"].get(opt)
    return value is not None and value != digest(salt, "''")


def endpoint_drift(endpoints, wans):
    # type: (List[dict], List[dict]) -> List[str]
    """What differs between the live endpoints (omr_mptcp.endpoints) and the WANs as planned:
    OMR gives every WAN not off one endpoint on its device with the flags of its mode (the
    address of a DHCP WAN is whatever its lease is; ids are OMR's)."""
    problems = []
    for wan in wans or []:
        mine = [e for e in endpoints or [] if e.get("dev") == wan.get("device")]
        want = sorted(MODE_FLAGS.get(wan.get("multipath"), []))
        name = "%s (%s, %s)" % (wan.get("name"), wan.get("device"), wan.get("multipath"))
        if not want:
            if mine:
                problems.append("%s: %d endpoint(s), none planned" % (name, len(mine)))
            continue
        if len(mine) != 1:
            problems.append("%s: %d endpoints, one planned (%s)" % (name, len(mine), " ".join(want)))
            continue
        have = mine[0]
        if sorted(have.get("flags") or []) != want:
            problems.append("%s: flags %s, planned %s" % (name, " ".join(have.get("flags") or []) or "none", " ".join(want)))
        if wan.get("address") and have.get("address") != wan["address"]:
            problems.append("%s: endpoint address %s, planned %s" % (name, have.get("address"), wan["address"]))
    return problems


def omr_status(text, wans):
    # type: (str, List[dict]) -> dict
    """`ubus call openmptcprouter status` (JSON) followed by one line, the pairing's admin_error,
    against the planned WANs -> {problems, admin_error, wans, summary}. OMR's rpcd lists every
    interface under `wans` with `name`, `multipath`, `status` (OK, WARNING, ERROR) and `zonewan`
    (OK when the interface is in the WAN firewall zone)."""
    text = text or ""
    end = text.rfind("}")
    try:
        status = json.loads(text[text.find("{"):end + 1]) if end >= 0 else {}
    except ValueError:
        return {"problems": ["`ubus call openmptcprouter status` did not print JSON"], "admin_error": None,
                "wans": [], "summary": ""}
    tail = text[end + 1:].strip().splitlines() if end >= 0 else text.strip().splitlines()
    admin_error = tail[-1].strip() if tail else ""
    by_name = dict((w.get("name"), w) for w in status.get("wans") or [] if isinstance(w, dict))
    problems, seen = [], []
    for wan in wans or []:
        got = by_name.get(wan.get("name"))
        if got is None:
            problems.append("%s: not in OMR's status" % wan.get("name"))
            continue
        if got.get("zonewan") != "OK":
            problems.append("%s: not in the WAN firewall zone (zonewan %s)" % (wan["name"], got.get("zonewan")))
        if got.get("multipath") != wan.get("multipath"):
            problems.append("%s: multipath %s in OMR, planned %s" % (wan["name"], got.get("multipath"), wan.get("multipath")))
        seen.append("%s %s (%s)" % (wan["name"], got.get("status") or "?", got.get("multipath")))
    return {"problems": problems, "admin_error": admin_error, "wans": seen,
            "summary": "OMR status: " + ", ".join(seen) + ("; pairing admin_error %s" % admin_error if admin_error else "")}
