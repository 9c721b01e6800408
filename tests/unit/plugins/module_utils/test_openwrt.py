# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_openwrt: the read of an OMR router (its shell run under busybox ash against the lab's uci and
captured `ip` output), what only the openwrt backend refuses, the UCI it plans for a router plan
(static, DHCP and transit WANs, a transit link, pinned metrics, the proxy, the pairing, what the
collection owned before), and the checks verify makes (endpoints, OMR's status)."""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _openwrt as o
from ansible_collections.omr.deploy.plugins.module_utils import _uci as u
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import GATHER_SCRIPT, parse_gather
from ansible_collections.omr.deploy.plugins.module_utils._router import RouterPlanError, check_config, plan_router

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "uci")
UCI = os.path.join(ROOT, "lab", "omr", "uci")
BUSYBOX = shutil.which("busybox")

WANS = [{"name": "wan1", "device": "eth1", "address": "100.64.21.2/24", "gateway": "100.64.21.1", "multipath": "master"},
        {"name": "wan2", "device": "eth2", "address": "dhcp", "multipath": "on", "metric": 20, "quality": {"max_loss_pct": 20}},
        {"name": "wifi", "transit": "wifi1", "multipath": "backup"}]
LINKS = [{"name": "wifi1", "device": "eth3", "prefix": 29}, {"name": "cam", "device": "eth4", "prefix": 30}]
CONFIG = {"backend": "openwrt", "wans": WANS, "lan": {"device": "br-lan", "address": "192.168.100.1/24"},
          "vps": {"address": "198.51.100.10"}, "transit_links": LINKS,
          "proxy": {"enabled": True, "port": 65101, "method": "chacha20-ietf-poly1305", "local_port": 1100},
          "vpn": {"enabled": True}, "pairing": {"enabled": True, "key_set": True}}
LEASES = {"eth2": {"address": "100.64.22.120", "prefix": 24, "gateway": "100.64.22.1", "network": "100.64.22.0/24"}}
ROUTES = "default via 100.64.22.1 dev eth2 proto dhcp src 100.64.22.120 metric 20\n10.9.0.0/16 via 100.64.21.1 dev eth1\n"


def planned(config=None, uci=None):
    config = config or CONFIG
    plan = plan_router(config, {"leases": LEASES, "routes": ROUTES, "saved": {"allocations": {}}})
    return plan, o.uci_intent(plan, check_config(config)["config"], uci or {})


def by(intent, package, name=None, stype=None):
    for spec in intent["sections"]:
        if spec["package"] == package and (name is None or spec.get("name") == name) and \
                (stype is None or spec["type"] == stype):
            return spec
    return None


# --- the read -------------------------------------------------------------------------------------

@pytest.fixture
def router(tmp_path):
    """A bin directory with the lab's uci on a copy of an OMR 0.64 configuration and an `ip` that
    prints captured output, as busybox ash on an OMR router would find them."""
    conf, save, bin_dir = tmp_path / "config", tmp_path / "save", tmp_path / "bin"
    for d in (conf, save, bin_dir):
        d.mkdir()
    cfg, _unused = u.parse_show(open(os.path.join(FIXTURES, "omr-064-show.txt"), encoding="utf-8").read())
    cfg["shadowsocks-libev"][1]["options"]["key"] = "a-proxy-key"
    for pkg, sections in cfg.items():
        lines = []
        for sec in sections:
            lines.append("config %s%s" % (sec["type"], "" if sec["anonymous"] else " '%s'" % sec["name"]))
            for opt, value in sec["options"].items():
                for v in value if isinstance(value, list) else [value]:
                    lines.append("\t%s %s %s" % ("list" if isinstance(value, list) else "option", opt, u.quote(v)))
        (conf / pkg).write_text("\n".join(lines) + "\n")
    (bin_dir / "uci").write_text('#!/bin/sh\nexec %s sh %s -c %s -t %s "$@"\n' % (BUSYBOX, UCI, conf, save))
    (bin_dir / "ip").write_text("""#!/bin/sh
case "$*" in
  "-4 -o addr show")
    echo '2: eth1    inet 100.64.21.2/24 brd 100.64.21.255 scope global eth1\\       valid_lft forever'
    echo '3: eth2    inet 100.64.22.120/24 scope global eth2' ;;
  "-4 -o route show table all") cat <<'EOF'
""" + ROUTES + """EOF
    ;;
  "mptcp limits show") echo 'add_addr_accepted 8 subflows 8' ;;
  "mptcp endpoint show") echo '100.64.21.2 id 3 subflow fullmesh dev eth1 ' ;;
  *) exit 1 ;;
esac
""")
    (bin_dir / "mptcp").write_text("#!/bin/sh\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(not BUSYBOX, reason="busybox is not installed")
def test_one_read_of_an_omr_router_under_busybox_ash(router):
    salt = "5a175a17"
    script = o.gather_script(salt, mptcp_init=str(router / "mptcp")) + "\n" + GATHER_SCRIPT
    res = subprocess.run([BUSYBOX, "sh", "-c", script], capture_output=True, text=True, check=False,
                         env={"PATH": "%s:/usr/bin:/bin" % router})
    assert res.returncode == 0, res.stderr
    assert "a-proxy-key" not in res.stdout                      # secrets never leave the router
    state = o.parse_state(res.stdout)
    o.check_omr(state)
    assert state["tools"] == {"uci": True, "ubus": False, "ip": True, "mptcp_init": True}
    zone = u.find_section(state["uci"], "firewall", stype="zone", match={"name": "wan"})
    assert zone["name"] == "cfg03dc81" and zone["position"] == "@zone[1]"
    assert o.has_secret(state["uci"], "shadowsocks-libev.sss0.key", salt)
    assert not o.has_secret(state["uci"], "openmptcprouter.vps.password", salt)
    assert state["addresses"] == {"eth1": ["100.64.21.2/24"], "eth2": ["100.64.22.120/24"]}
    assert o.leases(state, ["eth2"]) == {"eth2": LEASES["eth2"]}
    assert state["pending"] == {}
    assert parse_gather(res.stdout)["limits"] == {"add_addr_accepted": 8, "subflows": 8}


def test_a_host_that_is_not_omr_is_refused():
    state = {"tools": {"uci": False, "mptcp_init": False, "ip": True}, "release": {}, "uci": {}}
    with pytest.raises(o.OpenwrtError) as err:
        o.check_omr(state, "router1")
    assert "router1 is not an OpenMPTCProuter router (no `uci` command; no /etc/init.d/mptcp" in str(err.value)
    assert "omr_router_backend linux" in str(err.value)


def test_an_incomplete_answer_is_refused():
    with pytest.raises(o.OpenwrtError):
        o.parse_state("#omr-mptcp# openwrt-begin\n")


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"wans": [dict(WANS[0], table=200)] + WANS[1:]}, "omr_router_wans[0] (wan1): table is not supported with omr_router_backend openwrt"),
    ({"wans": [WANS[0], dict(WANS[1], multipath="master"), WANS[2]]}, "exactly one WAN must have multipath master"),
    ({"wans": [WANS[0], dict(WANS[1], multipath="handover"), WANS[2]]}, "'handover' is not one of master, on, backup, off"),
    ({"pairing": {"enabled": True, "key_set": False}}, "omr_router_pairing_enabled is true but omr_router_pairing_server_key is empty"),
    ({"pairing": {"enabled": "yes", "key_set": True}}, "omr_router_pairing_enabled must be true or false"),
    ({"pairing": {"enabled": True, "key_set": True, "port": 0}}, "omr_router_pairing_port must be a port number"),
    ({"backend": "linux", "pairing": {"enabled": True, "key_set": True}}, "it needs omr_router_backend openwrt"),
    ({"wans": [WANS[0], dict(WANS[1], metric=1)]}, "omr_router_wans[1] (wan2): metric 1 must be a number from 2 to 999"),
    ({"wans": [WANS[0], dict(WANS[1], name="lan")]}, "lan is one of OMR's own interfaces"),
    ({"wans": [WANS[0], dict(WANS[1], name="wan-2")]}, "the name becomes a UCI section"),
])
def test_bad_settings_are_refused_naming_the_variable(change, message):
    with pytest.raises(RouterPlanError) as err:
        check_config(dict(CONFIG, **change))
    assert message in str(err.value)


def test_quality_thresholds_are_left_to_omr_and_the_vpn_is_omr_own():
    plan, _intent = planned()
    assert plan["vpn"] == {"enabled": False}
    assert check_config(CONFIG)["config"]["pairing"] == {"enabled": True, "section": "vps", "username": "openmptcprouter", "port": 65500}


# --- the UCI it plans -----------------------------------------------------------------------------

def test_a_static_wan_as_omr_reads_it():
    _plan, intent = planned()
    assert by(intent, "network", "wan1") == {
        "package": "network", "type": "interface", "name": "wan1",
        "options": {"device": "eth1", "proto": "static", "multipath": "master", "defaultroute": "0", "peerdns": "0",
                    "ipaddr": "100.64.21.2", "netmask": "255.255.255.0", "gateway": "100.64.21.1"},
        "defaults": {"ip4table": "wan"}}
    assert by(intent, "network", "wan1_dev")["options"] == {"name": "eth1"}
    assert by(intent, "openmptcprouter", "wan1")["options"] == {"multipath": "master"}


def test_a_dhcp_wan_takes_proto_dhcp_and_loses_a_static_address_and_its_pinned_metric_goes_to_omr():
    _plan, intent = planned()
    assert by(intent, "network", "wan2")["options"] == {"device": "eth2", "proto": "dhcp", "multipath": "on",
                                                        "defaultroute": "0", "peerdns": "0", "ipaddr": None,
                                                        "netmask": None, "gateway": None}
    assert by(intent, "openmptcprouter", "wan2")["options"] == {"multipath": "on", "metric": "20"}


def test_a_transit_wan_and_a_transit_link_from_the_same_allocation():
    plan, intent = planned()
    wifi = by(intent, "network", "wifi")["options"]
    assert wifi["device"] == "eth3" and wifi["multipath"] == "backup"
    assert wifi["ipaddr"] == plan["transit"]["wifi1"]["router_address"]
    assert wifi["gateway"] == plan["transit"]["wifi1"]["peer_address"] and wifi["netmask"] == "255.255.255.248"
    cam = by(intent, "network", "cam")["options"]
    assert cam["multipath"] == "off" and cam["netmask"] == "255.255.255.252"
    assert cam["ipaddr"] == plan["transit"]["cam"]["router_address"]
    zone = {"package": "firewall", "type": "zone", "match": {"name": "wan"}, "lists": {"network": ["wan1", "wan2", "wifi", "cam"]}}
    assert by(intent, "firewall", stype="zone") == zone


def test_an_allocation_the_router_holds_is_kept():
    uci, _unused = u.parse_show("network.cam=interface\nnetwork.cam.ipaddr='172.31.255.249'\nnetwork.cam.netmask='255.255.255.252'\n")
    saved = o.saved_allocation(uci, CONFIG["transit_links"], WANS)
    assert saved == {"cam": "172.31.255.248/30"}
    plan = plan_router(CONFIG, {"leases": LEASES, "routes": ROUTES, "saved": {"allocations": saved}})
    assert plan["transit"]["cam"]["subnet"] == "172.31.255.248/30"


def test_limits_lan_proxy_pairing_and_ownership():
    _plan, intent = planned()
    assert by(intent, "network", "globals")["options"] == {"mptcp_subflows": "8", "mptcp_add_addr_accepted": "8"}
    # Only the LAN's address: its device stays OMR's (br-lan, eth0, ...).
    assert by(intent, "network", "lan")["options"] == {"proto": "static", "ipaddr": "192.168.100.1", "netmask": "255.255.255.0"}
    assert by(intent, "openmptcprouter", "settings")["options"] == {"proxy": "shadowsocks"}
    assert by(intent, "shadowsocks-libev", "sss0")["options"] == {"server": "198.51.100.10", "server_port": "65101",
                                                                  "method": "chacha20-ietf-poly1305", "disabled": "0"}
    vps = by(intent, "openmptcprouter", "vps")
    assert vps["exact_lists"] == {"ip": ["198.51.100.10"]} and vps["on_change"] == {"get_config": "1"}
    assert intent["secrets"] == {"shadowsocks-libev.sss0.key": "proxy", "openmptcprouter.vps.password": "pairing"}
    assert "password" not in json.dumps(intent["sections"]) and "key" not in by(intent, "shadowsocks-libev", "sss0")["options"]
    assert by(intent, "openmptcprouter", "omr_deploy")["exact_lists"] == {"interface": ["wan1", "wan2", "wifi", "cam"]}
    # Nothing is written for routes, rules, tables, endpoints or sysctls.
    written = set(k for s in intent["sections"] for k in list(s.get("options", {})) + list(s.get("defaults", {})))
    assert not written & {"metric_table", "ip4table_id", "endpoint", "route", "rule", "sysctl"}


def test_only_what_the_collection_owned_is_deleted():
    uci, _unused = u.parse_show("openmptcprouter.omr_deploy=omr_deploy\nopenmptcprouter.omr_deploy.interface='wan1' 'wan3'\n")
    _plan, intent = planned(uci=uci)
    assert intent["removed"] == ["wan3"]
    gone = [(s["package"], s["name"]) for s in intent["sections"] if s.get("state") == "absent"]
    assert gone == [("network", "wan3"), ("network", "wan3_dev"), ("openmptcprouter", "wan3")]
    assert by(intent, "firewall", stype="zone")["remove_members"] == {"network": ["wan3"]}
    # wan4, OMR's and never the collection's, stays.
    assert "wan4" not in json.dumps(intent["sections"])


def test_the_planned_uci_on_a_fresh_omr_router_then_nothing(tmp_path):
    # The whole intent through the planner: a first batch, then (after it) an empty one.
    uci, _unused = u.parse_show(open(os.path.join(FIXTURES, "omr-064-show.txt"), encoding="utf-8").read())
    _plan, intent = planned(uci=uci)
    first = u.plan_batch(uci, intent["sections"], digests=True, salt="s")
    assert "add_list firewall.cfg03dc81.network='wifi'" in first["batch"]
    assert not any("ip4table" in line for line in first["batch"] if "wan1" in line or "wan2" in line)
    after, _unused = u.parse_show("\n".join(u.show_lines(first["after"])))
    assert u.plan_batch(after, intent["sections"], digests=False)["batch"] == []


# --- what verify checks ---------------------------------------------------------------------------

def test_endpoint_drift_against_omr_modes():
    plan, _unused = planned()
    good = [{"address": "100.64.21.2", "dev": "eth1", "id": 3, "flags": ["subflow", "fullmesh"]},
            {"address": "100.64.22.120", "dev": "eth2", "id": 4, "flags": ["fullmesh", "subflow"]},
            {"address": plan["transit"]["wifi1"]["router_address"], "dev": "eth3", "id": 5,
             "flags": ["subflow", "backup", "fullmesh"]}]
    assert o.endpoint_drift(good, plan["wans"]) == []
    bad = [dict(good[0], address="100.64.21.9"), dict(good[2], flags=["subflow", "fullmesh"])]
    assert o.endpoint_drift(bad, plan["wans"]) == [
        "wan1 (eth1, master): endpoint address 100.64.21.9, planned 100.64.21.2",
        "wan2 (eth2, on): 0 endpoints, one planned (fullmesh subflow)",
        "wifi (eth3, backup): flags subflow fullmesh, planned backup fullmesh subflow"]


def test_omr_status_against_the_plan():
    plan, _unused = planned()
    with open(os.path.join(FIXTURES, "ubus-status.json"), encoding="utf-8") as f:
        text = f.read() + "\n0\n"
    status = o.omr_status(text, plan["wans"][:2])
    assert status["admin_error"] == "0"
    assert status["problems"] == ["wan2: not in the WAN firewall zone (zonewan NO)"]
    assert o.omr_status("Command failed: Not found\n", plan["wans"])["problems"]
