"""The OpenVPN-over-MPTCP settings and directives (plugins/module_utils/_vpn.py, filter vpn_config)."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.filter.vpn_config import vpn_config
from ansible_collections.omr.deploy.plugins.module_utils._vpn import (
    MARK, RULE_PRIORITY, TABLE, VpnError, check_vpn, client_lines, server_lines, vpn_plan)

OMR = [443, 65001, 65101, 65301, 65500, [65351, 65358]]


def test_omr_defaults_give_the_tunnel_network_and_the_vps_address():
    checked = check_vpn({"name": "omr", "port": "65301", "subnet": "10.255.252.0/24"}, "omr_vps_vpn",
                        reserved=OMR, own_port=65301)
    assert checked == {"name": "omr", "port": 65301, "device": "omrvpn", "subnet": "10.255.252.0/24",
                       "network": "10.255.252.0", "netmask": "255.255.255.0", "server_address": "10.255.252.1"}


@pytest.mark.parametrize("change, message", [
    ({"port": 65101}, "omr_vps_vpn_port 65101 is already used by omr_vps_proxy_port"),
    ({"port": 65352}, "omr_vps_vpn_port 65352 is one of OMR's own ports"),
    ({"port": 1194}, "omr_vps_vpn_port 1194 is outside 65000-65535"),
    ({"subnet": "10.255.252.1/24"}, "omr_vps_vpn_subnet '10.255.252.1/24' is not an IPv4 network with its host bits clear"),
    ({"subnet": "198.51.100.0/24"}, "omr_vps_vpn_subnet 198.51.100.0/24 must be a private IPv4 network"),
    ({"subnet": "fd00::/64"}, "must be a private IPv4 network"),
    ({"subnet": "10.0.0.0/8"}, "omr_vps_vpn_subnet 10.0.0.0/8 must be between a /16 and a /29"),
    ({"subnet": "10.255.252.0/30"}, "must be between a /16 and a /29"),
    ({"device": "tun.0"}, "omr_vps_vpn_device 'tun.0' must be an interface name"),
    ({"device": "a-very-long-device-name"}, "must be an interface name"),
    ({"name": "my vpn"}, "omr_vps_vpn_name 'my vpn' must be letters, digits, - and _"),
])
def test_bad_settings_name_the_variable(change, message):
    settings = dict({"name": "omr", "port": 65301, "subnet": "10.255.252.0/24"}, **change)
    with pytest.raises(VpnError) as info:
        check_vpn(settings, "omr_vps_vpn", taken={"omr_vps_proxy_port": 65101}, reserved=OMR, own_port=65301)
    assert message in str(info.value)


def test_the_server_listens_in_tcp_without_dco_and_pushes_no_routes():
    lines = server_lines(check_vpn({"port": 65301, "subnet": "10.255.252.0/24"}, "omr_vps_vpn"))
    assert lines[:6] == ["port 65301", "proto tcp-server", "dev omrvpn", "dev-type tun", "topology subnet",
                         "server 10.255.252.0 255.255.255.0"]
    assert "disable-dco" in lines and "duplicate-cn" in lines
    assert not [line for line in lines if line.startswith("push")]


def test_the_client_connects_in_tcp_and_routes_through_its_up_command():
    lines = client_lines("198.51.100.10", check_vpn({"port": 65301}, "omr_router_vpn"), up="/usr/local/sbin/omr-router-net vpn up")
    assert "remote 198.51.100.10 65301 tcp-client" in lines and "route-nopull" in lines and "disable-dco" in lines
    assert lines[-3:] == ["script-security 2", 'up "/usr/local/sbin/omr-router-net vpn up"', "up-restart"]
    # It keeps root: a reconnection may configure another address on the device.
    assert not [line for line in lines if line.startswith("user ")]
    assert "script-security 2" not in client_lines("198.51.100.10", check_vpn({}, "omr_router_vpn"))


def test_the_router_plan_marks_what_the_proxy_does_not_carry():
    checked = check_vpn({"name": "omr", "port": 65301}, "omr_router_vpn")
    planned = vpn_plan(checked, "198.51.100.10", "lan", "192.168.100.0/24", ["10.0.0.0/8"], carry_tcp=False)
    assert planned == {"enabled": True, "unit": "openvpn-client@omr.service", "server": "198.51.100.10", "port": 65301,
                       "device": "omrvpn", "table": TABLE, "rule_priority": RULE_PRIORITY, "mark": MARK,
                       "lan_device": "lan", "source": "192.168.100.0/24", "carry_tcp": False, "bypass": ["10.0.0.0/8"]}


def test_the_filter_checks_and_gives_directives():
    assert vpn_config({"port": 65301, "subnet": "10.255.252.0/24"}, "omr_vps_vpn")["server_address"] == "10.255.252.1"
    # The server's default network is OMR's.
    assert "server 10.255.252.0 255.255.255.0" in vpn_config({"port": 65301}, "omr_vps_vpn", kind="server")
    assert vpn_config({"port": 65301}, "omr_router_vpn", kind="client", server="192.0.2.1")[1] == "remote 192.0.2.1 65301 tcp-client"
    for bad, message in [(({"port": 65301}, "omr_router_vpn"), "kind=client needs the VPS address"),
                         (({"port": 99}, "omr_vps_vpn"), "omr_vps_vpn_port 99 is outside")]:
        with pytest.raises(AnsibleFilterError) as info:
            vpn_config(*bad, kind="client")
        assert message in str(info.value)
    with pytest.raises(AnsibleFilterError):
        vpn_config("65301", "omr_vps_vpn")
