# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router's one plan: plugins/module_utils/_router.py (plan_router, check_config, host_plan)
and what the router evaluates itself, plugins/module_utils/_router_runtime.py."""

import copy
import json

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _router_runtime as runtime
from ansible_collections.omr.deploy.plugins.module_utils._router import (
    RouterPlanError, check_config, host_plan, plan_router)

# The lab's settings (lab/profiles/wifi.yml and lab/group_vars/omr_router.yml).
CONFIG = {
    "backend": "linux",
    "wans": [
        {"name": "wan1", "device": "wan1", "address": "100.64.1.2/24", "gateway": "100.64.1.254", "multipath": "master"},
        {"name": "wan2", "device": "wan2", "address": "dhcp", "multipath": True},
        {"name": "wifi", "transit": "wifi1", "multipath": "on", "quality": {"max_loss_pct": 20, "count": 10, "interval": 10}},
    ],
    "lan": {"device": "lan", "address": "192.168.100.1/24"},
    "lan_nat": True,
    "vps": {"address": "198.51.100.10", "speedtest_port": 65432},
    "transit_pool": "172.16.0.0/12",
    "transit_links": [{"name": "wifi1", "device": "transit", "prefix": 29, "peer": "omr-lab-wifi"}],
    "limits": {"subflows": 8, "add_addr_accepted": 8},
    "dhcp_timeout": 30,
}
# `ip -4 -o route show table all` on the lab router before its first converge (podman's
# kernel routes, dhcpcd's subnet route for wan2), with iproute2's trailing spaces.
ROUTES = """100.64.1.0/24 dev wan1 proto kernel scope link src 100.64.1.2
100.64.2.0/24 dev wan2 proto dhcp scope link src 100.64.2.134 metric 1003
192.168.100.0/24 dev lan proto kernel scope link src 192.168.100.1
10.8.0.0/24 via 100.64.1.254 dev wan1
local 100.64.1.2 dev wan1 table local proto kernel scope host src 100.64.1.2
""".replace("\n", " \n")
LEASE = {"address": "100.64.2.134", "prefix": 24, "gateway": "100.64.2.254", "network": "100.64.2.0/24"}
PEERS = {"omr-lab-wifi": "172.23.208.0/20"}
STATE = {"leases": {"wan2": LEASE}, "routes": ROUTES, "saved": None}


def plan(config=None, state=None, peers=None):
    return plan_router(config or CONFIG, STATE if state is None else state, PEERS if peers is None else peers)


def test_the_lab_plan():
    p = plan()
    assert p["version"] == 1 and p["backend"] == "linux" and p["pending"] == []
    wan1, wan2, wifi = p["wans"]
    assert (wan1["addressing"], wan1["table"], wan1["rule_priority"], wan1["metric"]) == ("static", 101, 1101, 1)
    assert (wan2["addressing"], wan2["multipath"], wan2["cidr"], wan2["gateway"]) == ("dhcp", "on", "100.64.2.134/24", "100.64.2.254")
    assert (wan2["table"], wan2["metric"]) == (102, 11)
    # The hotspot's 172.23.208.0/20 covers the block wifi1 hashes to: the link steps around it.
    transit = p["transit"]["wifi1"]
    assert transit["preferred"] == "172.23.213.48/29" and transit["subnet"] != transit["preferred"]
    assert transit["source"] == "hashed" and transit["device"] == "transit" and transit["peer"] == "omr-lab-wifi"
    assert (wifi["addressing"], wifi["address"], wifi["gateway"]) == ("transit", transit["router_address"], transit["peer_address"])
    assert wifi["keep_backup"] and wifi["quality"]["interval"] == 10
    assert p["endpoints"] == [
        {"address": "100.64.1.2", "dev": "wan1", "id": 1, "flags": ["subflow", "fullmesh"]},
        {"address": "100.64.2.134", "dev": "wan2", "id": 2, "flags": ["subflow", "fullmesh"]},
        {"address": transit["router_address"], "dev": "transit", "id": 3, "flags": ["subflow", "fullmesh"], "keep_backup": True},
    ]
    assert p["limits"] == {"subflows": 8, "add_addr_accepted": 8}
    assert p["nat"] == {"enabled": True, "source": "192.168.100.0/24", "devices": ["wan1", "wan2", "transit"]}
    assert p["dhcp"]["devices"] == ["wan2"] and p["quality"] == {"wans": ["wifi"], "interval": 10}
    names = [r["name"] for r in p["reserved"]]
    assert "hotspot network of omr-lab-wifi 172.23.208.0/20" in names and "WAN wan2" in names
    assert "route 10.8.0.0/24 dev wan1" not in names          # the router's own WANs' routes are not counted
    json.dumps(p)                                            # a fact: plain JSON


def test_the_default_limits_are_omrs_8_and_8():
    config = dict(CONFIG)
    del config["limits"]
    assert plan(config)["limits"] == {"subflows": 8, "add_addr_accepted": 8}


def test_the_routers_copy_has_no_lease_and_no_reserved_networks():
    kept = host_plan(plan())
    wan2 = kept["wans"][1]
    assert wan2["address"] is None and wan2["endpoint"] is None and wan2["pending"]
    assert [e["dev"] for e in kept["endpoints"]] == ["wan1", "transit"]
    assert "reserved" not in kept and kept["pending"] == []
    # A new lease changes the fact, never the router's copy.
    renumbered = dict(STATE, leases={"wan2": dict(LEASE, address="100.64.2.227")})
    assert host_plan(plan(state=renumbered)) == kept
    # And the router resolves its copy to the same plan the controller made.
    resolved = runtime.resolve_plan(kept, {"wan2": LEASE})
    assert resolved["wans"] == plan()["wans"] and resolved["endpoints"] == plan()["endpoints"]


def test_planning_again_from_the_saved_plan_writes_the_same_file():
    first = host_plan(plan())
    again = plan(state=dict(STATE, saved=json.loads(json.dumps(first))))
    assert again["transit"]["wifi1"]["source"] == "existing"
    assert host_plan(again) == first


def test_a_dhcp_wan_without_a_lease_is_pending():
    p = plan(state=dict(STATE, leases={}))
    assert p["pending"] == ["wan2"] and p["wans"][1]["endpoint"] is None
    assert [e["dev"] for e in p["endpoints"]] == ["wan1", "transit"]


def test_the_saved_allocation_is_kept_in_both_formats():
    first = plan()["transit"]["wifi1"]["subnet"]
    for saved in ({"transit": {"wifi1": {"subnet": "172.20.0.8/29"}}},     # the plan a router keeps
                  {"allocations": {"wifi1": "172.20.0.8/29"}, "pool": "172.16.0.0/12"}):  # 0.1's local fact
        kept = plan(state=dict(STATE, saved=saved))["transit"]["wifi1"]
        assert (kept["subnet"], kept["source"]) == ("172.20.0.8/29", "existing")
    assert plan(state=dict(STATE, saved={"transit": "garbage"}))["transit"]["wifi1"]["subnet"] == first


def test_a_saved_allocation_that_now_collides_moves():
    saved = {"transit": {"wifi1": {"subnet": "172.23.208.8/29"}}}      # inside the hotspot network
    moved = plan(state=dict(STATE, saved=saved))["transit"]["wifi1"]
    assert moved["subnet"] != "172.23.208.8/29" and moved["source"] == "hashed"


def test_the_digest_follows_the_settings_only():
    digest = check_config(CONFIG)["digest"]
    assert plan()["config_digest"] == digest == plan(state=dict(STATE, leases={}))["config_digest"]
    # YAML's `on` and the word "on" are the same setting.
    same = copy.deepcopy(CONFIG)
    same["wans"][1]["multipath"] = "on"
    assert check_config(same)["digest"] == digest
    other = copy.deepcopy(CONFIG)
    other["wans"][0]["metric"] = 5
    assert check_config(other)["digest"] != digest


def test_check_config_needs_no_host():
    checked = check_config(CONFIG, PEERS)
    assert checked["dhcp_devices"] == ["wan2"] and checked["config"]["limits"] == {"subflows": 8, "add_addr_accepted": 8}


@pytest.mark.parametrize("change, message", [
    ({"vps": {"address": "vps.example"}}, "omr_router_vps.address must be the VPS's IPv4 address"),
    ({"limits": {"subflows": 9}}, "omr_router_mptcp_limits.subflows must be between 0 and 8, got 9"),
    ({"limits": {"add_addr_accepted": True}}, "omr_router_mptcp_limits.add_addr_accepted must be an integer"),
    ({"limits": {"add_addr_accepted": "x"}}, "omr_router_mptcp_limits.add_addr_accepted must be an integer"),
    ({"backend": "vyos"}, "omr_router_backend 'vyos' is not one of linux, openwrt"),
    ({"lan": {"device": "lan", "address": "192.168.100.1"}}, "omr_router_lan.address"),
    ({"lan_nat": "yes"}, "omr_router_lan_nat must be true or false"),
    ({"dhcp_timeout": "soon"}, "omr_router_dhcp_timeout must be a number of seconds"),
    ({"transit_links": [{"name": "wifi1"}]}, "omr_router_transit_links[0] (wifi1): device is required"),
    ({"transit_links": [{"name": "wifi1", "device": "transit", "subnet": "192.168.100.0/29"}],
      "transit_pool": "192.168.0.0/16"}, "overlaps LAN 192.168.100.1/24"),
    ({"transit_links": [{"name": "wifi1", "device": "transit", "subnet": "172.23.209.0/29", "peer": "omr-lab-wifi"}]},
     "overlaps hotspot network of omr-lab-wifi 172.23.208.0/20"),
    ({"wans": [dict(CONFIG["wans"][0]), dict(CONFIG["wans"][0], name="wan9", device="wan9")]},
     "exactly one WAN must have multipath master"),
])
def test_bad_settings_are_refused_naming_the_variable(change, message):
    config = dict(CONFIG, **change)
    with pytest.raises(RouterPlanError) as err:
        check_config(config, PEERS)
    assert message in str(err.value)


def test_a_transit_subnet_on_a_leased_network_is_refused_once_the_lease_is_known():
    config = dict(CONFIG, transit_pool="100.64.0.0/10",
                  transit_links=[{"name": "wifi1", "device": "transit", "subnet": "100.64.2.0/29"}])
    check_config(config)                                     # the network is not known yet
    with pytest.raises(RouterPlanError, match="overlaps WAN wan2"):
        plan(config)


def test_no_nat_and_no_quality():
    config = dict(CONFIG, lan_nat=False, wans=CONFIG["wans"][:2], transit_links=[])
    p = plan(config)
    assert p["nat"]["enabled"] is False and p["quality"] == {"wans": [], "interval": None} and p["transit"] == {}


# ---------------------------------------------------------------- the lease file

def test_lease_from_dhcpcd_and_back():
    env = {"new_ip_address": "100.64.2.134", "new_subnet_cidr": "24", "new_routers": "100.64.2.254 100.64.2.253"}
    lease = runtime.lease_from_dhcpcd(env)
    assert lease == LEASE
    text = runtime.render_lease(lease)
    assert text == "ADDRESS=100.64.2.134\nPREFIX=24\nGATEWAY=100.64.2.254\nNETWORK=100.64.2.0/24\n"
    assert runtime.parse_lease(text) == lease
    assert runtime.lease_from_dhcpcd({"new_ip_address": "100.64.2.134"}) is None
    assert runtime.parse_lease("ADDRESS=100.64.2.134\n") is None


def test_a_lease_file_written_by_0_1_reads_the_same(tmp_path):
    # 0.1's shell hook wrote NETWORK as number/prefix too.
    (tmp_path / "wan2.env").write_text("ADDRESS=100.64.2.134\nPREFIX=24\nGATEWAY=100.64.2.254\nNETWORK=100.64.2.0/24\n")
    (tmp_path / "wwan0.env").write_text("ADDRESS=10.0.0.5\n")
    assert runtime.read_leases(["wan2", "wwan0", "eth9"], str(tmp_path)) == {"wan2": LEASE}


PROXY = {"enabled": True, "name": "omr", "port": "65101", "method": "chacha20-ietf-poly1305", "local_port": "1100",
         "fallback": "nat", "bypass": []}


def test_the_proxy_is_planned_without_a_key():
    planned = plan(dict(CONFIG, proxy=PROXY))["proxy"]
    assert planned == {"enabled": True, "unit": "shadowsocks-libev-redir@omr.service", "server": "198.51.100.10",
                       "port": 65101, "method": "chacha20-ietf-poly1305", "local_port": 1100, "lan_device": "lan",
                       "fallback": "nat", "bypass": planned["bypass"]}
    assert "198.51.100.10/32" in planned["bypass"] and "172.16.0.0/12" in planned["bypass"]
    assert plan(CONFIG)["proxy"] == {"enabled": False}


@pytest.mark.parametrize("change, message", [
    ({"fallback": "open"}, "omr_router_proxy_fallback 'open' is not one of nat, closed"),
    ({"port": 65432}, "omr_router_proxy_port 65432 is already used by omr_router_vps.speedtest_port"),
    ({"port": 8388}, "omr_router_proxy_port 8388 is outside 65000-65535"),
    ({"port": 65500}, "omr_router_proxy_port 65500 is one of OMR's own ports"),
    ({"method": "bf-cfb"}, "omr_router_proxy_method 'bf-cfb' is not a cipher"),
    ({"bypass": ["192.0.2.0/24", "lan"]}, "omr_router_proxy_bypass[1] 'lan' is not an IPv4 network"),
    ({"enabled": "yes"}, "omr_router_proxy_enabled must be true or false"),
])
def test_bad_proxy_settings_are_refused_before_the_host_is_read(change, message):
    with pytest.raises(RouterPlanError) as info:
        check_config(dict(CONFIG, proxy=dict(PROXY, **change)))
    assert message in str(info.value)


VPN = {"enabled": True, "name": "omr", "port": "65301", "device": "omrvpn"}


def test_the_vpn_takes_what_the_proxy_does_not():
    planned = plan(dict(CONFIG, proxy=PROXY, vpn=VPN))["vpn"]
    assert planned["enabled"] and planned["unit"] == "openvpn-client@omr.service" and planned["server"] == "198.51.100.10"
    assert (planned["device"], planned["table"], planned["rule_priority"], planned["carry_tcp"]) == ("omrvpn", 100, 1100, False)
    assert planned["source"] == "192.168.100.0/24" and "198.51.100.10/32" in planned["bypass"]
    # Without the proxy the tunnel carries the LAN's TCP too.
    assert plan(dict(CONFIG, vpn=VPN))["vpn"]["carry_tcp"] is True
    assert plan(CONFIG)["vpn"] == {"enabled": False}


@pytest.mark.parametrize("change, message", [
    ({"port": 65101}, "omr_router_vpn_port 65101 is already used by omr_router_proxy_port"),
    ({"port": 65432}, "omr_router_vpn_port 65432 is already used by omr_router_vps.speedtest_port"),
    ({"port": 65500}, "omr_router_vpn_port 65500 is one of OMR's own ports"),
    ({"device": "omr-vpn"}, "omr_router_vpn_device 'omr-vpn' must be an interface name"),
    ({"name": "a b"}, "omr_router_vpn_name 'a b' must be letters"),
    ({"enabled": "yes"}, "omr_router_vpn_enabled must be true or false"),
])
def test_bad_vpn_settings_are_refused_before_the_host_is_read(change, message):
    with pytest.raises(RouterPlanError) as info:
        check_config(dict(CONFIG, proxy=PROXY, vpn=dict(VPN, **change)))
    assert message in str(info.value)


def test_a_wan_on_the_vpn_table_is_refused():
    wans = [dict(CONFIG["wans"][0], table=100)] + CONFIG["wans"][1:]
    with pytest.raises(RouterPlanError) as info:
        check_config(dict(CONFIG, wans=wans, vpn=VPN))
    assert "omr_router_wans[0] (wan1): table 100 is the VPN's" in str(info.value)
    check_config(dict(CONFIG, wans=wans))
