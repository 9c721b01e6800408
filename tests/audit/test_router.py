"""Audit of an OMR router configured by omr.deploy.router, on both backends, from raw host state.

Nothing here needs Python on the router: every read is `host.run` of plain shell (testinfra's ssh
backend runs it with the router's own shell), parsed on the controller with the collection's
parsers. What the router should be comes from the router itself and from the inventory:
- linux: the plan it keeps (`omr-router-net show`: /etc/omr-router/plan.json with the DHCP leases),
  and `omr-router-net check --mptcp`, which compares everything the plan covers;
- openwrt: the UCI OMR reads (`uci show` of network, firewall, openmptcprouter and
  shadowsocks-libev, their secrets masked on the router before they are printed);
and the inventory's omr_router_* variables over the role's defaults (the `router` fixture).
The live state: `ip -4 -o addr`, `ip mptcp endpoint show`, `ip mptcp limits show`, `ip rule`,
`ip route show table N`, /proc/sys/net/mptcp.
"""
import ipaddress
import json
import re
import secrets

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _mptcp, _uci
from ansible_collections.omr.deploy.plugins.module_utils._openwrt import MODE_FLAGS, OMR_INTERFACES, WAN_ZONE, parse_addresses

pytestmark = pytest.mark.usefixtures("routers_only")

# OMR's binaries live in sbin directories a non-login shell may not have on its PATH.
SH = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH; '
ROUTER_NET = "omr-router-net"
PLAN_FILE = "/etc/omr-router/plan.json"
DEFAULT_LIMITS = {"subflows": 8, "add_addr_accepted": 8}
UCI_PACKAGES = (("network", "-X "), ("firewall", "-X "), ("openmptcprouter", ""), ("shadowsocks-libev", ""))


def run(host, command):
    return host.run(SH + command)


def on(value):
    return str(value).strip().lower() in ("true", "yes", "on", "1")


def mode(value):
    """A WAN's multipath as OMR spells it (YAML 1.1 reads a bare on/off as a boolean)."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value or "off")


def declared_wans(router):
    return [dict(w, multipath=mode(w.get("multipath"))) for w in router["omr_router_wans"] or [] if isinstance(w, dict)]


def declared_limits(router):
    return dict(DEFAULT_LIMITS, **dict((k, int(v)) for k, v in (router["omr_router_mptcp_limits"] or {}).items()))


def read_uci(host):
    """{package: config} as `uci show` prints it, with every secret option masked on the router
    (omr_uci_mask, as omr.deploy.router_plan reads it) and masked again here."""
    salt = secrets.token_hex(8)
    script = _uci.mask_script(salt)
    config = {}
    for package, flags in UCI_PACKAGES:
        out = run(host, "%s\nuci -q %sshow %s 2>/dev/null | omr_uci_mask" % (script, flags, package)).stdout
        parsed, _skipped = _uci.parse_show(out, strict=False)
        config.update(_uci.masked(parsed))
    return config


def uci_options(uci, package, name):
    sec = _uci.find_section(uci, package, name=name)
    return sec["options"] if sec else None


def openwrt_wans(router, uci):
    """The WANs as the router's UCI holds them: those the inventory declares, else every
    interface with a multipath mode that is not one of OMR's own."""
    names = [w["name"] for w in declared_wans(router)]
    if not names:
        names = [sec["name"] for sec in uci.get("network", []) if sec["type"] == "interface"
                 and sec["name"] not in OMR_INTERFACES and sec["options"].get("multipath") not in (None, "off")]
    wans = []
    for name in names:
        net = uci_options(uci, "network", name)
        omr = uci_options(uci, "openmptcprouter", name) or {}
        if net is None:
            wans.append({"name": name, "device": None, "multipath": None, "address": None, "missing": True})
            continue
        static = net.get("proto") == "static"
        wans.append({"name": name, "device": net.get("device") or net.get("ifname"),
                     "multipath": net.get("multipath") or omr.get("multipath") or "off",
                     "address": net.get("ipaddr") if static else None, "pending": False, "keep_backup": False,
                     "missing": False})
    return wans


def openwrt_transit(router, uci):
    """{link: {device, router_address, prefix, subnet}} of the inventory's transit links, as UCI
    holds them (the interface of the WAN behind the link, else one named as the link)."""
    links = {}
    wans = declared_wans(router)
    for link in router["omr_router_transit_links"] or []:
        name = link.get("name")
        iface = next((w["name"] for w in wans if w.get("transit") == name), name)
        net = uci_options(uci, "network", iface) or {}
        entry = {"device": link.get("device"), "interface": iface, "router_address": None, "prefix": None, "subnet": None}
        if net.get("ipaddr") and net.get("netmask"):
            iface_addr = ipaddress.ip_interface("%s/%s" % (net["ipaddr"], net["netmask"]))
            entry.update(device=net.get("device") or entry["device"], router_address=str(iface_addr.ip),
                         prefix=iface_addr.network.prefixlen, subnet=str(iface_addr.network))
        links[name] = entry
    return links


@pytest.fixture(scope="module")
def state(host, router):
    """Everything the checks compare, read once per router."""
    backend = router["omr_router_backend"]
    out = {"backend": backend, "plan": None, "plan_error": None, "uci": None}
    if backend == "openwrt":
        out["uci"] = read_uci(host)
        out["wans"] = openwrt_wans(router, out["uci"])
        out["transit"] = openwrt_transit(router, out["uci"])
    else:
        shown = run(host, ROUTER_NET + " show")
        text = shown.stdout if shown.rc == 0 else run(host, "cat " + PLAN_FILE).stdout
        try:
            out["plan"] = json.loads(text)
        except ValueError:
            out["plan_error"] = "%s show: %s" % (ROUTER_NET, (shown.stderr or shown.stdout).strip()[:200] or "rc %d" % shown.rc)
        plan = out["plan"] or {}
        out["wans"] = [dict(w, missing=False) for w in plan.get("wans") or []]
        out["transit"] = plan.get("transit") or {}
    out["addresses"] = parse_addresses(run(host, "ip -4 -o addr show").stdout.splitlines())
    out["endpoints"] = _mptcp.parse_endpoints(run(host, "ip mptcp endpoint show").stdout)
    out["limits"] = _mptcp.parse_limits(run(host, "ip mptcp limits show").stdout)
    return out


def need_plan(state):
    if state["backend"] == "linux" and state["plan"] is None:
        pytest.fail("the router has no plan (%s): run omr.deploy.router (playbooks/router.yml or site.yml)" % state["plan_error"])


def need_uci(state):
    if state["backend"] == "openwrt" and not state["uci"].get("network"):
        pytest.fail("`uci show network` printed nothing: not an OMR router, or omr_router_backend is wrong")


def test_router_kernel_runs_mptcp_v1(host):
    enabled = run(host, "cat /proc/sys/net/mptcp/enabled")
    assert enabled.rc == 0, "no upstream MPTCP (v1) in this kernel: /proc/sys/net/mptcp/enabled is missing"
    assert run(host, "test -e /proc/sys/net/mptcp/mptcp_enabled").rc != 0, "out-of-tree MPTCP v0 kernel"
    assert enabled.stdout.strip() == "1", "net.mptcp.enabled is %s" % enabled.stdout.strip()


def test_router_wans_are_the_declared_ones(router, state):
    """The router holds the inventory's WANs with their multipath modes (linux: in the plan it
    keeps; openwrt: in UCI, network.<wan> with its device, and OMR's multipath)."""
    declared = declared_wans(router)
    if not declared:
        pytest.skip("the inventory declares no omr_router_wans to compare with")
    need_plan(state)
    need_uci(state)
    if state["backend"] == "linux":
        have = [(w["name"], w["multipath"]) for w in state["wans"]]
        want = [(w["name"], w["multipath"]) for w in declared]
        assert have == want, "the router's plan has the WANs %s, the inventory %s: run omr.deploy.router" % (have, want)
        return
    problems = []
    by_name = dict((w["name"], w) for w in state["wans"])
    for wan in declared:
        have = by_name[wan["name"]]
        if have["missing"]:
            problems.append("%s: no network.%s in UCI" % (wan["name"], wan["name"]))
            continue
        if have["multipath"] != wan["multipath"]:
            problems.append("%s: multipath %s in UCI, %s declared" % (wan["name"], have["multipath"], wan["multipath"]))
        if wan.get("device") and not wan.get("transit") and have["device"] != wan["device"]:
            problems.append("%s: device %s in UCI, %s declared" % (wan["name"], have["device"], wan["device"]))
    assert not problems, "; ".join(problems)


def test_router_wan_endpoints(router, state):
    """Every WAN that is not off has exactly one MPTCP endpoint, on its device, with the flags of
    its mode (master/on: subflow fullmesh; backup: subflow backup fullmesh), as OMR's multipath
    helper makes them; an off WAN has none. A WAN with quality thresholds (linux) may carry backup
    while the quality check demotes it."""
    if not on(router["omr_router_mptcp_enabled"]):
        pytest.skip("omr_router_mptcp_enabled is false")
    need_plan(state)
    need_uci(state)
    if not state["wans"]:
        pytest.skip("no WAN declared or found on the router")
    problems = []
    for wan in state["wans"]:
        if wan.get("missing"):
            continue  # test_router_wans_are_the_declared_ones names it
        name = "%s (%s, %s)" % (wan["name"], wan["device"], wan["multipath"])
        mine = [e for e in state["endpoints"] if e.get("dev") == wan["device"]]
        want = sorted(wan["flags"] if "flags" in wan else MODE_FLAGS.get(wan["multipath"], []))
        if not want:
            if mine:
                problems.append("%s: %d endpoint(s), none wanted" % (name, len(mine)))
            continue
        if wan.get("pending"):
            problems.append("%s: no DHCP lease, so no endpoint" % name)
            continue
        if len(mine) != 1:
            problems.append("%s: %d endpoints, one wanted (%s)" % (name, len(mine), " ".join(_mptcp.sort_flags(want))))
            continue
        have = sorted(mine[0]["flags"])
        if wan.get("keep_backup"):
            have = sorted(f for f in have if f != "backup")
            want = sorted(f for f in want if f != "backup")
        if have != want:
            problems.append("%s: flags %s, wanted %s" % (name, " ".join(mine[0]["flags"]) or "none", " ".join(_mptcp.sort_flags(want))))
        if wan.get("address") and mine[0]["address"] != wan["address"]:
            problems.append("%s: endpoint address %s, the WAN's is %s" % (name, mine[0]["address"], wan["address"]))
    assert not problems, "; ".join(problems)


def test_router_mptcp_limits(router, state):
    """The kernel's limits are the declared ones (omr_router_mptcp_limits, default 8/8); on OMR,
    network.globals holds them too, or OMR's next reload sets others."""
    if not on(router["omr_router_mptcp_enabled"]):
        pytest.skip("omr_router_mptcp_enabled is false")
    want = declared_limits(router)
    assert state["limits"] == want, "MPTCP limits %s, declared %s" % (state["limits"], want)
    if state["backend"] == "openwrt":
        need_uci(state)
        globals_ = uci_options(state["uci"], "network", "globals") or {}
        have = {"subflows": globals_.get("mptcp_subflows"), "add_addr_accepted": globals_.get("mptcp_add_addr_accepted")}
        assert have == dict((k, str(v)) for k, v in want.items()), "network.globals holds limits %s, declared %s" % (have, want)
    else:
        need_plan(state)
        assert state["plan"]["limits"] == want, "the plan's limits %s, declared %s: run omr.deploy.router" % (state["plan"]["limits"], want)


def test_router_wan_tables_and_rules(router, host, state):
    """linux: each WAN's routing table has its default route through the WAN's gateway, and a
    source rule sends the WAN's address to that table (OMR does both itself on openwrt)."""
    if state["backend"] != "linux":
        pytest.skip("left to OMR's /etc/init.d/mptcp on openwrt")
    if not on(router["omr_router_network_enabled"]):
        pytest.skip("omr_router_network_enabled is false")
    need_plan(state)
    rules = run(host, "ip -4 rule show").stdout
    problems = []
    for wan in state["wans"]:
        if wan.get("pending") or not wan.get("address"):
            problems.append("%s (%s): no address (no DHCP lease), so no table or rule" % (wan["name"], wan["device"]))
            continue
        table = run(host, "ip -4 route show table %d" % wan["table"]).stdout
        if not re.search(r"^default via %s dev %s(\s|$)" % (re.escape(wan["gateway"]), re.escape(wan["device"])), table, re.M):
            problems.append("%s: table %d has no default via %s dev %s" % (wan["name"], wan["table"], wan["gateway"], wan["device"]))
        if not re.search(r"^\d+:\s+from %s lookup %d(\s|$)" % (re.escape(wan["address"]), wan["table"]), rules, re.M):
            problems.append("%s: no rule from %s lookup %d" % (wan["name"], wan["address"], wan["table"]))
    assert not problems, "; ".join(problems)


def test_router_as_planned(router, host, state):
    """linux: `omr-router-net check --mptcp` finds no difference between the router and its plan
    (addresses, tables, rules, routes, NAT, the proxy's redirect, the VPN's route, endpoints, limits)."""
    if state["backend"] != "linux":
        pytest.skip("omr-router-net runs on the linux backend only")
    need_plan(state)
    res = run(host, ROUTER_NET + " check" + (" --mptcp" if on(router["omr_router_mptcp_enabled"]) else ""))
    assert res.rc == 0, "%s check: %s" % (ROUTER_NET, "; ".join(line.strip() for line in (res.stdout + res.stderr).splitlines() if line.strip())[:1000])


def test_router_transit_addresses(router, state):
    """Each transit link to a bridge has the router's address on its device, inside the pool
    (omr_router_transit_pool, 172.16.0.0/12 by default)."""
    need_plan(state)
    need_uci(state)
    if not state["transit"]:
        pytest.skip("no transit links")
    pool = ipaddress.ip_network(str(router["omr_router_transit_pool"]))
    problems = []
    for name, link in sorted(state["transit"].items()):
        if not link.get("router_address"):
            problems.append("%s: no address in UCI (network.%s)" % (name, link.get("interface")))
            continue
        cidr = "%s/%s" % (link["router_address"], link["prefix"])
        if cidr not in state["addresses"].get(link["device"], []):
            have = ", ".join(state["addresses"].get(link["device"], [])) or "none"
            problems.append("%s: %s is not on %s (it has %s)" % (name, cidr, link["device"], have))
        if not ipaddress.ip_network(link["subnet"]).subnet_of(pool):
            problems.append("%s: %s is outside the transit pool %s" % (name, link["subnet"], pool))
    assert not problems, "; ".join(problems)


def test_router_wans_in_wan_zone(router, state):
    """openwrt: every WAN, and every transit link no WAN uses, is in the firewall zone named wan
    (OMR masquerades and filters by that zone, wherever it sits)."""
    if state["backend"] != "openwrt":
        pytest.skip("no UCI firewall on the linux backend")
    need_uci(state)
    zone = _uci.find_section(state["uci"], "firewall", stype="zone", match={"name": WAN_ZONE})
    assert zone is not None, "no firewall zone named %s" % WAN_ZONE
    members = _uci.members(zone["options"].get("network"))
    wanted = [w["name"] for w in state["wans"]]
    wanted += [link["interface"] for link in state["transit"].values() if link["interface"] not in wanted]
    missing = [name for name in wanted if name not in members]
    assert not missing, "not in the firewall zone %s: %s (its networks: %s)" % (WAN_ZONE, ", ".join(missing), " ".join(members))


def test_router_proxy_runs(router, host, state):
    """omr_router_proxy_enabled: the LAN's TCP is bonded only through the proxy, so it runs
    (linux: shadowsocks-libev-redir@<name>; openwrt: ss-redir, pointed at the declared VPS)."""
    if not on(router["omr_router_proxy_enabled"]):
        pytest.skip("omr_router_proxy_enabled is false")
    if state["backend"] == "openwrt":
        need_uci(state)
        assert run(host, "pidof ss-redir").rc == 0, "no ss-redir runs: the LAN's TCP is not bonded (logread -e ss-redir)"
        server = uci_options(state["uci"], "shadowsocks-libev", "sss0") or {}
        vps = (router["omr_router_vps"] or {}).get("address")
        if vps:
            assert server.get("server") == vps, "shadowsocks-libev.sss0 points at %s, the VPS is %s" % (server.get("server"), vps)
            assert server.get("disabled") != "1", "shadowsocks-libev.sss0 is disabled"
        return
    plan_proxy = (state["plan"] or {}).get("proxy") or {}
    unit = plan_proxy.get("unit") or "shadowsocks-libev-redir@%s.service" % router["omr_router_proxy_name"]
    active = run(host, "systemctl is-active %s" % unit).stdout.strip()
    assert active == "active", "%s is %s: the LAN's TCP is not bonded (journalctl -u %s)" % (unit, active or "unknown", unit)
