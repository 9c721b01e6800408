"""The shadowsocks-libev proxy's checks and configurations (plugins/module_utils/_proxy.py)."""
import base64

import pytest

from ansible_collections.omr.deploy.plugins.module_utils._proxy import (
    DEFAULT_BYPASS, ProxyError, bypass_networks, check_key, check_port, check_proxy, redir_config, server_config)

KEY32 = base64.b64encode(bytes(range(32))).decode()
KEY16 = base64.b64encode(bytes(range(16))).decode()
OMR = [443, 65001, 65101, 65500, [65201, 65208]]


def test_omr_defaults_pass_and_the_result_has_no_key():
    checked = check_proxy({"port": "65101", "method": "chacha20-ietf-poly1305", "key": KEY32, "mode": "tcp_and_udp"},
                          "omr_vps_proxy", reserved=OMR, own_port=65101)
    assert checked == {"port": 65101, "method": "chacha20-ietf-poly1305", "key_bytes": 32, "key_given": True,
                       "mode": "tcp_and_udp"}
    assert KEY32 not in repr(checked)


@pytest.mark.parametrize("port, message", [
    (64999, "omr_vps_proxy_port 64999 is outside 65000-65535"),
    (70000, "omr_vps_proxy_port 70000 is outside 65000-65535"),
    ("abc", "omr_vps_proxy_port must be a port number, got 'abc'"),
    (65432, "omr_vps_proxy_port 65432 is already used by omr_vps_speedtest_port"),
    (65500, "omr_vps_proxy_port 65500 is one of OMR's own ports"),
    (65203, "omr_vps_proxy_port 65203 is one of OMR's own ports (443, 65001, 65101, 65500, 65201-65208)"),
])
def test_bad_ports_name_the_variable(port, message):
    with pytest.raises(ProxyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_port(port, "omr_vps_proxy_port", {"omr_vps_speedtest_port": 65432}, OMR, 65101)


def test_its_own_omr_port_is_allowed():
    assert check_port(65101, "omr_vps_proxy_port", {}, OMR, 65101) == 65101


@pytest.mark.parametrize("key, method, message", [
    (KEY16, "chacha20-ietf-poly1305", "decodes to 16 bytes; chacha20-ietf-poly1305 needs a key of 32 bytes (shorter"),
    (KEY32, "aes-128-gcm", "decodes to 32 bytes; aes-128-gcm needs a key of 16 bytes (longer"),
    ("secret password!", "aes-256-gcm", "is not base64 (16 characters)"),
])
def test_a_key_that_does_not_fit_the_cipher_is_refused_without_showing_it(key, method, message):
    with pytest.raises(ProxyError) as info:
        check_key(key, method, "omr_vps_proxy_key")
    assert message in str(info.value) and str(info.value).startswith("omr_vps_proxy_key ")
    assert key not in str(info.value)


def test_aes_128_takes_a_16_byte_key():
    check_key(KEY16, "aes-128-gcm", "k")


def test_an_unknown_cipher_is_refused():
    with pytest.raises(ProxyError, match="omr_router_proxy_method 'rc4-md5' is not a cipher"):
        check_proxy({"port": 65101, "method": "rc4-md5"}, "omr_router_proxy")


def test_the_router_needs_a_key():
    with pytest.raises(ProxyError, match="omr_router_proxy_key is empty"):
        check_proxy({"port": 65101, "method": "aes-256-gcm", "key": ""}, "omr_router_proxy", require_key=True)


def test_configurations_speak_mptcp_as_omr_sets_them():
    server = server_config(65101, "chacha20-ietf-poly1305", KEY32)
    assert (server["server_port"], server["mptcp"], server["mode"], server["key"]) == (65101, True, "tcp_and_udp", KEY32)
    redir = redir_config("198.51.100.10", 65101, "chacha20-ietf-poly1305", KEY32)
    assert (redir["server"], redir["local_port"], redir["mptcp"], redir["mode"]) == ("198.51.100.10", 1100, True, "tcp_only")


def test_bypass_holds_omr_defaults_the_vps_and_the_wans_collapsed():
    nets = bypass_networks(["198.51.100.10"], ["100.64.1.0/24", None, "203.0.113.0/25"], ["203.0.113.128/25"])
    assert "198.51.100.10/32" in nets and "203.0.113.0/24" in nets
    assert "172.16.0.0/12" in nets and "100.64.0.0/10" in nets and "100.64.1.0/24" not in nets
    assert set(DEFAULT_BYPASS) - {"224.0.0.0/4", "240.0.0.0/4"} <= set(nets) and "224.0.0.0/3" in nets


@pytest.mark.parametrize("extra, message", [
    (["10.0.0.0/33"], r"omr_router_proxy_bypass\[0\] '10.0.0.0/33' is not an IPv4 network"),
    (["example.com"], r"omr_router_proxy_bypass\[0\] 'example.com'"),
    (["2001:db8::/32"], r"omr_router_proxy_bypass\[0\] '2001:db8::/32' is not an IPv4 network"),
    ("10.0.0.0/8", "omr_router_proxy_bypass must be a list"),
])
def test_a_bypass_entry_that_is_not_a_network_is_refused(extra, message):
    with pytest.raises(ProxyError, match=message):
        bypass_networks([], [], extra)


def test_standard_and_url_safe_base64_are_both_accepted_and_written_url_safe():
    key = base64.b64encode(bytes([251, 255] * 16)).decode()
    assert "+" in key or "/" in key
    check_key(key, "aes-256-gcm", "k")
    check_key(base64.urlsafe_b64encode(bytes([251, 255] * 16)).decode(), "aes-256-gcm", "k")
    written = server_config(65101, "aes-256-gcm", key)["key"]
    assert "+" not in written and "/" not in written and written == key.replace("+", "-").replace("/", "_")
