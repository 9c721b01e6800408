"""OMR's own VPS installer: the plan, dpkg's ordering, kernels, the Server key and what the installer
leaves (plugins/module_utils/_omr_install.py and its filters).

The fixtures (tests/unit/fixtures/omr_install/README.md) are written from the installer's templates
and the reference notes, not captured from a VPS; only the container pair is this machine's output.
dpkg_compare is checked against this machine's own `dpkg --compare-versions`.
"""
import functools
import os
import random
import shutil
import subprocess

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.filter.omr_admin_key import omr_admin_key
from ansible_collections.omr.deploy.plugins.filter.omr_install_plan import omr_install_plan
from ansible_collections.omr.deploy.plugins.filter.omr_kernel_state import omr_kernel_state
from ansible_collections.omr.deploy.plugins.filter.omr_v0_sysctl_keys import omr_v0_sysctl_keys
from ansible_collections.omr.deploy.plugins.module_utils._omr_install import (
    CHANNELS, FEATURE_DEFAULTS, BEHAVIOUR_DEFAULTS, KERNELS, SECRETS, SWITCHES, OmrInstallError, admin_key,
    check_install, check_kernel, check_secret_value, config_txt_key, dpkg_compare, install_mode, installed_version,
    kernel_state, restart_loop, shorewall_interface, v0_sysctl_keys)

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "fixtures", "omr_install")
SHA = "0F343B0931126A20F133D67C2B018A3B5E2D5C8F9E3F5A3C6E4C1F6A7D8E9F00"
SERVER_KEY = "FD3EE1B035FA4B68DE3C6ECE9DFDF7CF2801BB1DA2530A6B2CE97A803D4EBCCA"
ADMIN_KEY = "176FAA4C9BC18187193F86A804C96623D1EDDCF574E0D3082D26A538004BF866"
DEBIAN = "6.1.0-18-cloud-amd64"
OMR = "6.18.32-20260519.x64v3-omr"
OMR_OLD = "6.18.28-20260428.x64v3-omr"
XANMOD = "6.12.67-x64v3-xanmod1"
XANMOD_OLD = "6.6.36-x64v3-xanmod1"


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def settings(**changes):
    base = {"stack": "omr", "channel": "stable", "version": "0.1052", "kernel": "6.18", "installer_url": None,
            "installer_sha256": SHA, "features": {"UPDATE_OS": False, "FAIL2BAN": "no", "SPEEDTEST": "yes"},
            "secrets": {"OMR_ADMIN_PASS": True, "PSK": False}, "reboot_ok": False, "install_timeout": 3600,
            "key_file": None}
    base.update(changes)
    return base


def refused(**changes):
    with pytest.raises(OmrInstallError) as info:
        check_install(settings(**changes))
    return str(info.value)


# --- the installer's names ------------------------------------------------------------------

def test_the_names_are_the_installers():
    script_vars = set(SWITCHES) | set(SECRETS) | {"KERNEL", "UPSTREAM", "UPSTREAM6"}
    # Read from debian9-x86_64.sh (develop 51ac9a2): every `NAME=${NAME:-...}` but the detected values.
    detected = {"NBCPU", "INTERFACE", "INTERFACE6", "VPS_DOMAIN", "VPS_PUBLIC_IP"}
    assert script_vars == {
        "BPFTUNE", "CHINA", "DSVPN", "DSVPN_PASS", "FAIL2BAN", "FORCE_UPDATE_OS", "GLORYTUN_PASS", "GLORYTUN_TCP",
        "GLORYTUN_UDP", "GRETUNNELS", "IPERF", "KERNEL", "LANROUTES", "LOCALFILES", "MLVPN", "MLVPN_PASS", "MQVPN",
        "MQVPN_KEY", "NOINTERNET", "OBFS", "OMR_ADMIN", "OMR_ADMIN_PASS", "OMR_ADMIN_PASS_ADMIN", "OPENVPN",
        "OPENVPN_BONDING", "PSK", "REINSTALL", "SHADOWSOCKS", "SHADOWSOCKS_GO", "SHADOWSOCKS_PASS", "SOFTETHERVPN",
        "SOFTETHERVPN_PASS_ADMIN", "SOFTETHERVPN_PASS_USER", "SOURCES", "SPEEDTEST", "TLS", "UBOND", "UBOND_PASS",
        "UPDATE", "UPDATE_OS", "UPSK", "UPSTREAM", "UPSTREAM6", "V2RAY", "V2RAY_PLUGIN", "V2RAY_UUID", "WIREGUARD",
        "XRAY", "XRAY_UUID"} - detected
    assert len(FEATURE_DEFAULTS) == 22 and len(BEHAVIOUR_DEFAULTS) == 10 and len(SECRETS) == 14
    assert KERNELS == ("5.4", "6.1", "6.6", "6.10", "6.11", "6.12", "6.18")
    assert CHANNELS == {"stable": "server", "rc": "server-rc", "test": "server-test"}


# --- check_install: the plan ------------------------------------------------------------------

def test_native_returns_only_the_stack_and_ignores_the_rest():
    assert check_install({"stack": "native", "kernel": "nonsense", "installer_sha256": None}) == {"stack": "native"}


def test_a_valid_plan():
    plan = check_install(settings())
    assert plan == {
        "stack": "omr",
        "url": "https://www.openmptcprouter.com/server/debian-x86_64.sh",
        "sha256": SHA.lower(),
        "channel": "stable",
        "version": "0.1052",
        "kernel": "6.18",
        "env": {"FAIL2BAN": "no", "KERNEL": "6.18", "SPEEDTEST": "yes", "UPDATE_OS": "no"},
        "secret_names": ["OMR_ADMIN_PASS"],
        "omr_admin": True,
        "reboot_ok": False,
        "timeout": 3600,
        "key_file": None,
    }
    assert list(plan["env"]) == sorted(plan["env"])


@pytest.mark.parametrize("channel, path", [("stable", "server"), ("rc", "server-rc"), ("test", "server-test")])
def test_the_channel_picks_the_url(channel, path):
    assert check_install(settings(channel=channel))["url"] == "https://www.openmptcprouter.com/%s/debian-x86_64.sh" % path


def test_an_installer_url_replaces_the_channels():
    plan = check_install(settings(installer_url="http://mirror.lab/omr/debian-x86_64.sh"))
    assert plan["url"] == "http://mirror.lab/omr/debian-x86_64.sh"


@pytest.mark.parametrize("value", [SHA, "sha256:" + SHA, "SHA256:" + SHA.lower(), "  %s\n" % SHA])
def test_the_checksum_may_be_prefixed_and_upper_case(value):
    assert check_install(settings(installer_sha256=value))["sha256"] == SHA.lower()


def test_switch_values_render_yes_or_no_and_omr_admin_follows_its_switch():
    plan = check_install(settings(features={"OBFS": True, "XRAY": "False", "TLS": "YES", "OMR_ADMIN": "no", "CHINA": "true"}))
    assert plan["env"] == {"CHINA": "yes", "KERNEL": "6.18", "OBFS": "yes", "OMR_ADMIN": "no", "TLS": "yes", "XRAY": "no"}
    assert plan["omr_admin"] is False


def test_no_features_or_secrets_leave_only_kernel():
    plan = check_install(settings(features=None, secrets={}, kernel=None))
    assert plan["env"] == {"KERNEL": "6.18"} and plan["secret_names"] == []


@pytest.mark.parametrize("changes, var, fragment", [
    ({"stack": "docker"}, "omr_vps_stack", "must be native or omr, got 'docker'"),
    ({"stack": None}, "omr_vps_stack", "must be native or omr, got None"),
    ({"channel": "beta"}, "omr_vps_omr_channel", "must be one of rc, stable, test, got 'beta'"),
    ({"channel": None}, "omr_vps_omr_channel", "must be one of rc, stable, test"),
    ({"channel": ["stable"]}, "omr_vps_omr_channel", "must be one of rc, stable, test, got ['stable']"),
    ({"version": 1052}, "omr_vps_omr_version", "must be a quoted string such as '0.1052', got 1052"),
    ({"version": ""}, "omr_vps_omr_version", "is required: the omr-server version"),
    ({"version": None}, "omr_vps_omr_version", "is required"),
    ({"version": "v0.1052"}, "omr_vps_omr_version", "is not an OMR version"),
    ({"version": 0.105}, "omr_vps_omr_version", "is the number 0.105: YAML drops trailing zeros"),
    ({"kernel": "5.15"}, "omr_vps_omr_kernel", "'5.15' is not a kernel OMR's installer offers (5.4, 6.1, 6.6, 6.10, 6.11, 6.12, 6.18)"),
    ({"kernel": "6.2"}, "omr_vps_omr_kernel", "is not a kernel OMR's installer offers"),
    ({"kernel": 6}, "omr_vps_omr_kernel", "is not a kernel OMR's installer offers"),
    ({"kernel": 6.2}, "omr_vps_omr_kernel", "is not a kernel OMR's installer offers"),
    ({"kernel": True}, "omr_vps_omr_kernel", "must be one of 5.4, 6.1, 6.6, 6.10, 6.11, 6.12, 6.18"),
    ({"kernel": 6.1}, "omr_vps_omr_kernel", "is the number 6.1, which is what YAML makes of 6.1 and 6.10 alike: quote it ('6.1' or '6.10')"),
    ({"installer_url": "ftp://mirror.lab/debian-x86_64.sh"}, "omr_vps_omr_installer_url", "must be an http(s) URL"),
    ({"installer_url": "file:///root/debian-x86_64.sh"}, "omr_vps_omr_installer_url", "must be an http(s) URL"),
    ({"installer_url": "https://"}, "omr_vps_omr_installer_url", "must be an http(s) URL"),
    ({"installer_url": "debian-x86_64.sh"}, "omr_vps_omr_installer_url", "must be an http(s) URL"),
    ({"installer_sha256": "abc"}, "omr_vps_omr_installer_sha256", "must be 64 hexadecimal digits"),
    ({"installer_sha256": SHA[:-1]}, "omr_vps_omr_installer_sha256", "got 63 characters"),
    ({"installer_sha256": SHA[:-1] + "g"}, "omr_vps_omr_installer_sha256", "must be 64 hexadecimal digits"),
    ({"installer_sha256": "md5:" + SHA}, "omr_vps_omr_installer_sha256", "must be 64 hexadecimal digits"),
    ({"features": ["OBFS"]}, "omr_vps_omr_features", "must be a dict of the installer's switches, got list"),
    ({"features": {"SHADOWSOCKS_RUST": "yes"}}, "omr_vps_omr_features",
     "has 'SHADOWSOCKS_RUST', a switch the installer does not read; it reads: BPFTUNE, CHINA,"),
    ({"features": {"KERNEL": "6.12"}}, "omr_vps_omr_features", "sets KERNEL; the kernel is chosen by omr_vps_omr_kernel"),
    ({"features": {"UPSTREAM6": "yes"}}, "omr_vps_omr_features", "sets UPSTREAM6; the kernel is chosen by omr_vps_omr_kernel"),
    ({"features": {"PSK": True}}, "omr_vps_omr_features", "names the secret PSK; declare it in omr_vps_omr_secrets"),
    ({"features": {"OBFS": "maybe"}}, "omr_vps_omr_features.OBFS", "must be yes, no, true or false, got 'maybe'"),
    ({"features": {"OBFS": 1}}, "omr_vps_omr_features.OBFS", "must be yes, no, true or false, got 1"),
    ({"features": {"OBFS": None}}, "omr_vps_omr_features.OBFS", "must be yes, no, true or false, got None"),
    ({"secrets": {"ROOT_PASS": True}}, "omr_vps_omr_secrets",
     "has 'ROOT_PASS', a secret the installer does not read; it reads: DSVPN_PASS, GLORYTUN_PASS,"),
    ({"secrets": {"OBFS": True}}, "omr_vps_omr_secrets", "names the switch OBFS; declare it in omr_vps_omr_features"),
    ({"secrets": {"OMR_ADMIN_PASS": None}}, "omr_vps_omr_secrets.OMR_ADMIN_PASS", "must be true or false"),
    ({"secrets": "OMR_ADMIN_PASS"}, "omr_vps_omr_secrets", "must be a dict {NAME: true|false}, got str"),
    ({"reboot_ok": "yes"}, "omr_vps_reboot_ok", "must be a boolean (true or false, unquoted), got 'yes'"),
    ({"reboot_ok": "false"}, "omr_vps_reboot_ok", "must be a boolean (true or false, unquoted), got 'false'"),
    ({"reboot_ok": 1}, "omr_vps_reboot_ok", "must be a boolean"),
    ({"reboot_ok": None}, "omr_vps_reboot_ok", "must be a boolean"),
    ({"install_timeout": 0}, "omr_vps_omr_install_timeout", "must be a positive number of seconds, got 0"),
    ({"install_timeout": -60}, "omr_vps_omr_install_timeout", "must be a positive number of seconds, got -60"),
    ({"install_timeout": "soon"}, "omr_vps_omr_install_timeout", "must be a positive number of seconds"),
    ({"install_timeout": True}, "omr_vps_omr_install_timeout", "must be a positive number of seconds"),
    ({"install_timeout": 1.5}, "omr_vps_omr_install_timeout", "must be a positive number of seconds"),
    ({"install_timeout": None}, "omr_vps_omr_install_timeout", "must be a positive number of seconds"),
    ({"key_file": "   "}, "omr_vps_omr_key_file", "must be a path"),
])
def test_every_refusal_names_the_variable(changes, var, fragment):
    message = refused(**changes)
    assert message.startswith(var + " ") or message.startswith(var + "."), message
    assert fragment in message, message


@pytest.mark.parametrize("value", [None, ""])
def test_no_checksum_no_run(value):
    message = refused(installer_sha256=value, channel="rc")
    assert message.startswith("omr_vps_omr_installer_sha256 is required: no unverified script ever runs")
    assert "https://www.openmptcprouter.com/server-rc/debian-x86_64.sh" in message and "`sha256sum`" in message


def test_the_timeout_may_be_a_templated_string():
    assert check_install(settings(install_timeout="1800"))["timeout"] == 1800


def test_a_secret_value_in_place_of_its_flag_is_refused_without_being_shown():
    value = "Lab-Secret-Value-0123"
    message = refused(secrets={"OMR_ADMIN_PASS": value})
    assert message.startswith("omr_vps_omr_secrets.OMR_ADMIN_PASS must be true or false")
    assert value not in message and "Lab-Secret" not in message


def test_every_secret_name_is_accepted_and_only_the_set_ones_are_listed():
    plan = check_install(settings(secrets=dict((name, name.endswith("PASS")) for name in SECRETS)))
    assert plan["secret_names"] == sorted(n for n in SECRETS if n.endswith("PASS"))
    assert not set(plan["env"]) & set(SECRETS)


# --- the float-kernel trap ----------------------------------------------------------------------

@pytest.mark.parametrize("text, kernel", [
    ("6.18", "6.18"), ("6.12", "6.12"), ("6.11", "6.11"), ("6.6", "6.6"), ("5.4", "5.4"),
    ("'6.10'", "6.10"), ("'6.1'", "6.1"), ('"6.18"', "6.18"),
])
def test_yaml_kernels_that_are_unambiguous_are_accepted(text, kernel):
    loaded = yaml.safe_load("kernel: %s" % text)["kernel"]
    assert check_install(settings(kernel=loaded))["kernel"] == kernel
    assert check_install(settings(kernel=loaded))["env"]["KERNEL"] == kernel


@pytest.mark.parametrize("text", ["6.1", "6.10", "6.100"])
def test_yaml_makes_6_10_the_number_6_1_so_it_must_be_quoted(text):
    loaded = yaml.safe_load("kernel: %s" % text)["kernel"]
    assert loaded == 6.1
    message = refused(kernel=loaded)
    assert message == ("omr_vps_omr_kernel is the number 6.1, which is what YAML makes of 6.1 and 6.10 alike: "
                       "quote it ('6.1' or '6.10')")


def test_check_kernel_defaults_like_the_installer():
    assert check_kernel(None) == check_kernel("") == "6.18"
    assert check_kernel(" 6.12 ") == "6.12"


# --- secret values (for a no_log task or a module) -------------------------------------------

@pytest.mark.parametrize("value", ["with:colon", "amp&ersand", "back\\slash", 'quo"te', "two words", "line\nbreak"])
def test_a_secret_the_installers_sed_breaks_on_is_refused_unseen(value):
    with pytest.raises(OmrInstallError) as info:
        check_secret_value("OMR_ADMIN_PASS", value)
    assert str(info.value).startswith("omr_vps_omr_secrets.OMR_ADMIN_PASS contains")
    assert value not in str(info.value)


@pytest.mark.parametrize("value", [SERVER_KEY, "Lx0VSCDkXPo+WRMmT1s+c+VTUK0PDBGLtxrqD9CKr2M=", "ad699542-da41-50e3-83f8-5a8914f24444"])
def test_secrets_as_the_installer_makes_them_pass(value):
    check_secret_value("PSK", value)


@pytest.mark.parametrize("value", ["", None, 12])
def test_an_empty_or_non_string_secret_is_refused(value):
    with pytest.raises(OmrInstallError, match=r"^omr_vps_omr_secrets.UPSK must be a non-empty string$"):
        check_secret_value("UPSK", value)


# --- dpkg_compare against the real dpkg -----------------------------------------------------

DPKG = shutil.which("dpkg")
PAIRS = [
    ("1.0", "1.0"), ("1.0", "1.0-0"), ("1.0-0", "1.0"), ("1.0", "1.1"), ("1.10", "1.9"), ("1.01", "1.1"),
    ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"), ("1.0~~", "1.0~"), ("1.0~", "1.0"), ("1.0~rc1-1", "1.0-1"),
    ("1.0a", "1.0"), ("1.0a", "1.0+"), ("1.0+", "1.0."), ("1.0.a-1", "1.0-a-1"), ("", "0"), ("", "~"), ("", ""), ("1.0a", "1.0A"), ("1.0Z", "1.0a"),
    ("1:1.0", "2.0"), ("0:1.0", "1.0"), ("2:0.1", "1:9.9"), ("10:1", "9:1"), ("1.0-1", "1.0-2"), ("1.0-10", "1.0-9"),
    ("1.0-1a", "1.0-1"), ("1.0-1~bpo1", "1.0-1"), ("1.0-1+deb12u1", "1.0-1"), ("1.0-1+b1", "1.0-1+deb12u1"),
    ("2.36-9+deb12u14", "2.36-9+deb12u9"), ("1.0-a-b", "1.0-a"), ("1.0-a-b", "1.0-b"), ("1.2.3", "1.2.3.0"),
    ("0", "00"), ("1a", "1aa"), ("1~", "1~a"), ("a1", "1"), ("1:2:3", "1:2"), ("1.0+dfsg-1", "1.0-1"),
    ("6.1.76-1", "6.1.69-1"), ("6.1.76-1", "6.1.76-1~bpo11+1"), ("6.6.13-1~bpo12+1", "6.1.76-1"),
    ("6.18.32-20260519.x64v3-omr", "6.18.28-20260428.x64v3-omr"), ("6.18.32-20260519.x64v3-omr", "6.1.76-1"),
    ("6.12.67-x64v3-xanmod1-0~20260123.ga077982", "6.6.36-x64v3-xanmod1-0~20240628.g36640c1"),
    ("6.12.67-x64v3-xanmod1-0~20260123.ga077982", "6.12.67-x64v3-xanmod1-0"),
    ("6.12.48-1", "6.12.67-x64v3-xanmod1-0~20260123.ga077982"), ("1.22", "6.1.76-1"), ("5.4.207", "5.4.207-mptcp"),
    ("0.1052", "0.1058-rolling-test"), ("0.1058-rolling-test", "0.1058"), ("0.1058~rc1", "0.1058"),
    ("3.3.5-3", "3.3.5-10"), ("0.17+20260518b", "0.17+20260518"), ("3.0.0+20211028.git.ddafba3", "3.0.0"),
    ("1.14.0", "1.14"), ("26.2.4", "5.32.0"), ("4.43.0", "4.43.0-1"),
]
# Versions dpkg refuses (it exits 2): the same ones raise ValueError. An empty one is "no version".
BAD = ["1:", ":1", "x:1", "1.0:x", "1-", "1:-1", "1 2", "1-2:3"]


def _dpkg_batch(pairs):
    # '|' separates the pair: an empty version must survive `read`.
    script = ("while IFS='|' read -r a b; do "
              'dpkg --compare-versions "$a" lt "$b" 2>/dev/null; r=$?; '
              'if [ $r = 0 ]; then echo -1; elif [ $r = 2 ]; then echo err; '
              'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done')
    res = subprocess.run(["sh", "-c", script], input="".join("%s|%s\n" % p for p in pairs),
                         capture_output=True, text=True, check=True)
    return dict(zip(pairs, res.stdout.split()))


@functools.lru_cache(maxsize=None)
def dpkg_says():
    return _dpkg_batch(PAIRS + [(b, a) for a, b in PAIRS])


needs_dpkg = pytest.mark.skipif(DPKG is None, reason="dpkg is not installed here")


@needs_dpkg
@pytest.mark.parametrize("a, b", PAIRS)
def test_dpkg_compare_agrees_with_dpkg(a, b):
    for pair in ((a, b), (b, a)):
        assert str(dpkg_compare(*pair)) == dpkg_says()[pair]


@needs_dpkg
@pytest.mark.parametrize("bad", BAD)
def test_versions_dpkg_refuses_raise(bad):
    res = subprocess.run([DPKG, "--compare-versions", bad, "lt", "1"], capture_output=True, text=True, check=False)
    assert res.returncode == 2
    with pytest.raises(ValueError):
        dpkg_compare(bad, "1")


@needs_dpkg
def test_dpkg_compare_agrees_with_dpkg_on_random_versions():
    rng = random.Random(4291)
    alphabet = "0123456789.~+-:abzAZ"

    def version():
        text = rng.choice("0123456789") + "".join(rng.choice(alphabet) for i in range(rng.randint(0, 9)))
        return (str(rng.randint(0, 3)) + ":" + text) if rng.random() < 0.2 else text
    pairs = [(version(), version()) for i in range(400)]
    expected = _dpkg_batch(pairs)
    wrong = []
    for pair in pairs:
        try:
            mine = str(dpkg_compare(*pair))
        except ValueError:
            mine = "err"
        if mine != expected[pair]:
            wrong.append((pair, mine, expected[pair]))
    assert wrong == []


@pytest.mark.parametrize("a, b, result", [
    ("1.0~rc1", "1.0", -1), ("1.0a", "1.0+", -1), ("1:0.1", "9.9", 1), ("1.0", "1.0-0", 0), ("1.10", "1.9", 1),
])
def test_dpkg_compare_without_dpkg(a, b, result):
    assert dpkg_compare(a, b) == result


# --- kernel_state ----------------------------------------------------------------------------

def releases(state):
    return [image["release"] for image in state["installed"]]


def test_a_fresh_debian_12_cloud_vps():
    state = kernel_state(DEBIAN + "\n", read("debian12-cloud.dpkg-query.txt"))
    assert state["installed"] == [{"package": "linux-image-" + DEBIAN, "version": "6.1.76-1", "release": DEBIAN}]
    assert state["newest"] == DEBIAN and state["running"] == DEBIAN
    assert (state["reboot_needed"], state["running_installed"], state["container"]) == (False, True, False)
    assert state["family_ok"] is None and state["unfinished"] == []
    assert state["message"] == "running 6.1.0-18-cloud-amd64, the newest installed kernel"


def test_a_fresh_debian_12_vps_is_not_the_omr_kernel_asked_for():
    state = kernel_state(DEBIAN, read("debian12-cloud.dpkg-query.txt"), family="6.18")
    assert state["reboot_needed"] is False and state["family_ok"] is False
    assert state["message"] == ("running 6.1.0-18-cloud-amd64, the newest installed kernel, but omr_vps_omr_kernel "
                                "asks for 6.18: the installer did not install a 6.18 kernel (see its output)")


def test_omr_6_18_installed_but_6_1_still_running_is_the_4291_trap():
    state = kernel_state(DEBIAN, read("omr-6.18.dpkg-query.txt"), family="6.18")
    assert releases(state) == [OMR, DEBIAN]
    assert state["installed"][0] == {"package": "linux-image-" + OMR, "version": OMR, "release": OMR}
    assert state["newest"] == OMR and state["reboot_needed"] is True and state["family_ok"] is False
    assert state["running_installed"] is True
    assert state["message"] == ("installed 6.18.32-20260519.x64v3-omr but still running 6.1.0-18-cloud-amd64: reboot "
                                "(omr_vps_reboot_ok) or the OMR kernel is not the default in GRUB (openmptcprouter#4291)")


def test_after_the_reboot_the_omr_kernel_runs():
    state = kernel_state(OMR, read("omr-6.18.dpkg-query.txt"), family="6.18")
    assert (state["reboot_needed"], state["family_ok"], state["running_installed"]) == (False, True, True)
    assert state["message"] == "running 6.18.32-20260519.x64v3-omr, the newest installed kernel of the 6.18 series"


def test_xanmod_6_12_beside_an_older_xanmod():
    dpkg = read("xanmod-6.12.dpkg-query.txt")
    state = kernel_state(XANMOD, dpkg, family="6.12")
    assert releases(state) == [XANMOD, XANMOD_OLD, DEBIAN]
    assert state["installed"][0]["version"] == "6.12.67-x64v3-xanmod1-0~20260123.ga077982"
    assert (state["newest"], state["reboot_needed"], state["family_ok"]) == (XANMOD, False, True)
    older = kernel_state(XANMOD_OLD, dpkg, family="6.12")
    assert older["reboot_needed"] is True and older["family_ok"] is False
    assert older["message"].startswith("installed 6.12.67-x64v3-xanmod1 but still running 6.6.36-x64v3-xanmod1: reboot")


def test_with_a_family_the_newest_of_that_series_counts():
    # KERNEL=6.6 asked for and running: the newer xanmod 6.12 beside it is not what OMR pinned in GRUB.
    state = kernel_state(XANMOD_OLD, read("xanmod-6.12.dpkg-query.txt"), family="6.6")
    assert state["newest"] == XANMOD_OLD and state["reboot_needed"] is False and state["family_ok"] is True
    # Without a family the newest overall counts.
    assert kernel_state(XANMOD_OLD, read("xanmod-6.12.dpkg-query.txt"))["newest"] == XANMOD


def test_two_omr_builds_the_newest_wins():
    dpkg = read("omr-6.18-two-builds.dpkg-query.txt")
    state = kernel_state(OMR_OLD, dpkg, family="6.18")
    assert releases(state) == [OMR, OMR_OLD, DEBIAN]
    # Still a 6.18 kernel, so only reboot_needed tells the older build runs.
    assert (state["newest"], state["reboot_needed"], state["family_ok"]) == (OMR, True, True)
    assert kernel_state(OMR, dpkg, family="6.18")["reboot_needed"] is False


def test_a_container_has_no_linux_image():
    running = read("container.uname-r.txt")
    state = kernel_state(running, read("container.dpkg-query.txt"), family="6.18")
    assert state["running"] == "6.18.44-fc-v1252"
    assert (state["container"], state["installed"], state["newest"], state["reboot_needed"]) == (True, [], None, False)
    assert state["running_installed"] is False and state["family_ok"] is True
    assert state["message"] == ("no linux-image package is installed: 6.18.44-fc-v1252 is the host's kernel "
                                "(a container); neither OMR's installer nor a reboot can change it")
    other = kernel_state(running, "", family="6.12")
    assert other["message"].endswith("and it is not the 6.12 series omr_vps_omr_kernel asks for")


def test_packages_left_as_config_files_are_ignored():
    state = kernel_state(DEBIAN, read("config-files.dpkg-query.txt"), family="6.1")
    assert releases(state) == [DEBIAN]
    assert (state["newest"], state["reboot_needed"], state["family_ok"], state["unfinished"]) == (DEBIAN, False, True, [])


def test_the_running_kernels_package_may_be_gone():
    state = kernel_state("6.1.0-17-cloud-amd64", read("config-files.dpkg-query.txt"))
    assert state["running_installed"] is False and state["reboot_needed"] is True
    assert "still running 6.1.0-17-cloud-amd64: its package is no longer installed; reboot" in state["message"]


def test_half_configured_held_unsigned_and_debug_packages():
    dpkg = "\n".join([
        "linux-image-6.1.0-18-cloud-amd64\t6.1.76-1\thold ok installed",
        "linux-image-6.1.0-18-cloud-amd64-unsigned\t6.1.76-1\tinstall ok installed",
        "linux-image-6.1.0-18-cloud-amd64-dbg\t6.1.76-1\tinstall ok installed",
        "linux-image-%s\t%s\tinstall ok half-configured" % (OMR, OMR),
        "linux-image-amd64\t\tunknown ok not-installed",
        "garbage line",
        "",
    ])
    state = kernel_state(DEBIAN, dpkg, family="6.18")
    assert state["installed"] == [{"package": "linux-image-" + DEBIAN, "version": "6.1.76-1", "release": DEBIAN}]
    assert state["unfinished"] == ["linux-image-%s (half-configured)" % OMR]
    assert state["message"].endswith("; dpkg left linux-image-%s (half-configured) unfinished: `dpkg --configure -a`" % OMR)


def test_triggers_pending_counts_as_installed_and_unknown_states_are_ignored():
    dpkg = ["linux-image-%s\t%s\tinstall ok triggers-pending" % (OMR, OMR),
            "linux-image-6.18.28-20260428.x64v3-omr\t6.18.28\tinstall ok installed\\nlinux-image-x"]
    state = kernel_state(OMR, dpkg)
    assert releases(state) == [OMR] and state["unfinished"] == [] and state["reboot_needed"] is False


def test_the_dpkg_query_output_may_be_its_lines():
    lines = read("omr-6.18.dpkg-query.txt").splitlines()
    assert kernel_state(DEBIAN, lines, "6.18") == kernel_state(DEBIAN, "\n".join(lines), "6.18")
    assert kernel_state(DEBIAN, [], "6.18")["container"] is True


def test_ubuntus_unsigned_image_boots_its_release():
    state = kernel_state("6.1.0-1036-oem", "linux-image-unsigned-6.1.0-1036-oem\t6.1.0-1036.36\tinstall ok installed\n")
    assert releases(state) == ["6.1.0-1036-oem"] and state["reboot_needed"] is False


def test_omrs_5_4_kernel_is_versioned_1_22_and_ordered_by_release():
    dpkg = ("linux-image-4.19.0-26-cloud-amd64\t4.19.304-1\tinstall ok installed\n"
            "linux-image-5.4.207-mptcp\t1.22\tinstall ok installed\n")
    state = kernel_state("5.4.207-mptcp", dpkg, family="5.4")
    assert releases(state) == ["5.4.207-mptcp", "4.19.0-26-cloud-amd64"]
    assert state["reboot_needed"] is False and state["family_ok"] is True


def test_the_family_is_a_whole_series_not_a_prefix():
    state = kernel_state(XANMOD, read("xanmod-6.12.dpkg-query.txt"), family="6.1")
    assert state["family_ok"] is False   # 6.12.67 does not start the 6.1 series


@pytest.mark.parametrize("uname, family, message", [
    ("", None, "uname -r printed nothing"),
    (DEBIAN, 6.1, "omr_vps_omr_kernel is the number 6.1"),
    (DEBIAN, "5.15", "omr_vps_omr_kernel '5.15' is not a kernel"),
])
def test_kernel_state_refuses(uname, family, message):
    with pytest.raises(OmrInstallError, match="^" + message.replace(".", r"\.")):
        kernel_state(uname, "", family)


# --- the Server key --------------------------------------------------------------------------

def test_admin_key_from_a_finished_install():
    assert admin_key(read("omr-admin-config.json")) == {"username": "openmptcprouter", "key": SERVER_KEY}


def test_admin_key_refuses_the_template_placeholder():
    with pytest.raises(OmrInstallError) as info:
        admin_key(read("omr-admin-config.placeholder.json"))
    assert str(info.value) == ("/etc/openmptcprouter-vps-admin/omr-admin-config.json still holds the template's "
                               "placeholder instead of a Server key: the install did not finish; rerun it")


@pytest.mark.parametrize("text, fragment", [
    ("", "is not JSON"),
    ('{"users": [{"openmptcprouter": {"user_password": "%s"' % SERVER_KEY, "is not JSON"),
    ("[1, 2]", "is not a JSON object"),
    ('{"port": 65500}', "has no users list: the install did not finish"),
    ('{"users": []}', "has no users list"),
    ('{"users": [{"admin": {"user_password": "%s"}}]}' % ADMIN_KEY, "has no openmptcprouter user in users[0] (users: admin)"),
    ('{"users": [{"openmptcprouter": {"username": "openmptcprouter"}}]}', "has no Server key: OMR_ADMIN=no, or the install"),
    ('{"users": [{"openmptcprouter": {"user_password": ""}}]}', "has no Server key"),
    ('{"users": [{"openmptcprouter": {"user_password": "AdminMySecretKey"}}]}', "placeholder"),
])
def test_admin_key_refusals_never_show_a_key(text, fragment):
    with pytest.raises(OmrInstallError) as info:
        admin_key(text)
    message = str(info.value)
    assert message.startswith("/etc/openmptcprouter-vps-admin/omr-admin-config.json ") and fragment in message
    assert SERVER_KEY not in message and ADMIN_KEY not in message and "MySecretKey" not in message


def test_admin_key_reads_the_old_top_level_pass():
    assert admin_key('{"port": 65500, "pass": "%s"}' % SERVER_KEY) == {"username": "openmptcprouter", "key": SERVER_KEY}


def test_config_txt_key_is_the_server_key_not_the_admin_api_key():
    assert config_txt_key(read("openmptcprouter_config.txt")) == {"username": "openmptcprouter", "key": SERVER_KEY}


def test_config_txt_key_after_an_update_appended_it():
    text = "SSH port: 65222 (instead of port 22)\nYour glorytun key: ABC\n" \
           "Your OpenMPTCProuter Server key: %s\nYour OpenMPTCProuter Server username: openmptcprouter\n" % SERVER_KEY
    assert config_txt_key(text)["key"] == SERVER_KEY


@pytest.mark.parametrize("text, fragment", [
    ("", "has no Server key"),
    (None, "has no Server key"),
    ("Your OpenMPTCProuter ADMIN API Server key (only for configuration via API access, you don't need it): %s\n" % ADMIN_KEY,
     "has no Server key"),
    ("Your OpenMPTCProuter Server key: \n", "has no Server key"),
    ("Your OpenMPTCProuter Server key: MySecretKey\n", "placeholder"),
])
def test_config_txt_key_refusals_never_show_a_key(text, fragment):
    with pytest.raises(OmrInstallError) as info:
        config_txt_key(text)
    assert str(info.value).startswith("/root/openmptcprouter_config.txt ") and fragment in str(info.value)
    assert ADMIN_KEY not in str(info.value) and "MySecretKey" not in str(info.value)


def test_the_admin_key_filter_prefers_omr_admin_and_falls_back_to_config_txt():
    txt = read("openmptcprouter_config.txt")
    found = omr_admin_key(read("omr-admin-config.json"), config_txt="")
    assert found == {"username": "openmptcprouter", "key": SERVER_KEY,
                     "source": "/etc/openmptcprouter-vps-admin/omr-admin-config.json"}
    for json_text in ("", None, read("omr-admin-config.placeholder.json")):
        assert omr_admin_key(json_text, config_txt=txt) == {"username": "openmptcprouter", "key": SERVER_KEY,
                                                            "source": "/root/openmptcprouter_config.txt"}


def test_the_admin_key_filter_fails_with_both_reasons():
    with pytest.raises(AnsibleFilterError) as info:
        omr_admin_key(read("omr-admin-config.placeholder.json"), config_txt="SSH port: 65222\n")
    message = str(info.value)
    assert "omr-admin-config.json still holds the template's placeholder" in message
    assert "/root/openmptcprouter_config.txt has no Server key" in message
    with pytest.raises(AnsibleFilterError, match="is not JSON"):
        omr_admin_key("")


# --- what the installer decides and leaves ---------------------------------------------------

DEBIAN_MOTD = read("motd").split("< OpenMPTCProuter")[0]


@pytest.mark.parametrize("motd, config_txt, update, mode", [
    (read("motd"), False, True, "update"),
    (DEBIAN_MOTD, False, True, "fresh"),
    (None, False, True, "fresh"),
    (DEBIAN_MOTD, True, True, "update"),
    ("< OpenMPCTProuter VPS 0.1030 >\n", False, True, "update"),   # the old spelling, which it corrects first
    (read("motd"), True, "no", "fresh"),                            # UPDATE=no: a fresh install, new keys
    (read("motd"), True, False, "fresh"),
])
def test_install_mode(motd, config_txt, update, mode):
    assert install_mode(motd, config_txt, update) == mode


def test_installed_version():
    assert installed_version(read("motd")) == "0.1052"
    assert installed_version("< OpenMPTCProuter VPS 0.1058-rolling-test >\n") == "0.1058-rolling-test"
    assert installed_version(DEBIAN_MOTD) is None and installed_version(None) is None


def test_v0_sysctl_keys_of_omrs_6_18_file():
    assert v0_sysctl_keys(read("90-shadowsocks.conf")) == [
        "net.mptcp.mptcp_checksum", "net.mptcp.mptcp_path_manager", "net.mptcp.mptcp_scheduler",
        "net.mptcp.mptcp_syn_retries", "net.mptcp.mptcp_version"]
    assert omr_v0_sysctl_keys(read("90-shadowsocks.conf")) == v0_sysctl_keys(read("90-shadowsocks.conf"))


def test_v0_sysctl_keys_spellings():
    text = "\n".join([
        "# net.mptcp.mptcp_enabled = 1", "; net.mptcp.mptcp_debug = 0", "net.mptcp.mptcp_enabled = 1",
        "-net.mptcp.mptcp_scheduler = blest", "net/mptcp/mptcp_syn_retries = 4", "net.mptcp.enabled = 1",
        "net.mptcp.mptcp_checksum", "net.ipv4.tcp_ecn = 1"])
    assert v0_sysctl_keys(text) == ["net.mptcp.mptcp_enabled", "net.mptcp.mptcp_scheduler", "net/mptcp/mptcp_syn_retries"]
    assert v0_sysctl_keys("") == [] and v0_sysctl_keys(None) == []
    with pytest.raises(AnsibleFilterError):
        omr_v0_sysctl_keys(42)


@pytest.mark.parametrize("params, default, result", [
    (read("params.net"), "ens3", {"interface": "ens3", "ok": True,
                                  "message": "shorewall filters ens3, the default route's interface"}),
    (read("params.net"), "eth0", {"interface": "ens3", "ok": False,
                                  "message": "params.net names ens3 but the default route leaves by eth0: shorewall "
                                             "filters the wrong interface (#4137, #4194)"}),
    ('# set by hand\nNET_IFACE="enp1s0"\n', "enp1s0", {"interface": "enp1s0", "ok": True,
                                                       "message": "shorewall filters enp1s0, the default route's interface"}),
    ("NET_IFACE=eth0 # the template\nNET_IFACE='ens18'\n", "ens18", {"interface": "ens18", "ok": True,
                                                                     "message": "shorewall filters ens18, the default route's interface"}),
    ("", "eth0", {"interface": None, "ok": False,
                  "message": "/etc/shorewall/params.net sets no NET_IFACE: shorewall has no net interface to filter"}),
    (read("params.net"), "", {"interface": "ens3", "ok": False,
                              "message": "no IPv4 default route: cannot tell whether shorewall's ens3 is the right interface"}),
])
def test_shorewall_interface(params, default, result):
    assert shorewall_interface(params, default) == result


@pytest.mark.parametrize("nrestarts, state, ok, fragment", [
    (0, "active", True, "omr-admin is active (0 restarts)"),
    ("2", "active", True, "omr-admin is active (2 restarts)"),
    ("NRestarts=5", "ActiveState=active", False, "omr-admin has been restarted 5 times by systemd and is active: a restart loop"),
    (7, "activating", False, "restarted 7 times by systemd and is activating: a restart loop; `journalctl -u omr-admin`"),
    (0, "failed", False, "omr-admin is failed, not active; `journalctl -u omr-admin` says why"),
    (0, "inactive", False, "omr-admin is inactive, not active"),
    (0, "", False, "omr-admin is in no state, not active"),
])
def test_restart_loop(nrestarts, state, ok, fragment):
    result = restart_loop(nrestarts, state)
    assert result["ok"] is ok and fragment in result["message"]


def test_restart_loop_threshold_and_refusals():
    assert restart_loop(5, "active", threshold=10)["ok"] is True
    assert restart_loop(1, "active", threshold=1)["ok"] is False
    for bad in (0, -1, True, "3"):
        with pytest.raises(OmrInstallError, match="threshold must be a positive integer"):
            restart_loop(0, "active", threshold=bad)
    for bad in ("many", None, True, -1):
        with pytest.raises(OmrInstallError, match="NRestarts must be a number"):
            restart_loop(bad, "active")


# --- the filters -----------------------------------------------------------------------------

def test_the_plan_filter_raises_ansibles_error():
    assert omr_install_plan(settings())["kernel"] == "6.18"
    with pytest.raises(AnsibleFilterError, match="^omr_vps_omr_installer_sha256 is required"):
        omr_install_plan(settings(installer_sha256=""))
    with pytest.raises(AnsibleFilterError, match="^the installer settings must be a dict, got list"):
        omr_install_plan([])


def test_the_kernel_filter():
    assert omr_kernel_state(DEBIAN, read("omr-6.18.dpkg-query.txt"), family="6.18")["reboot_needed"] is True
    with pytest.raises(AnsibleFilterError, match="^omr_kernel_state: omr_vps_omr_kernel is the number 6.1"):
        omr_kernel_state(DEBIAN, "", family=6.1)
