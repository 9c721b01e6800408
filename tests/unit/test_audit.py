# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit's pieces (tests/audit/run.py and its pytest plugin) without running a host:
what the inventory's values become, how the checks reach a host, the waivers file, the JUnit a
host's run wrote. The runner itself, end to end, is tests/integration/test_audit_runner.py."""

import datetime
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUDIT = os.path.join(ROOT, "tests", "audit")
RUNNER = os.path.join(AUDIT, "run.py")


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("omr_audit_run", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plugin(runner):
    return sys.modules["audit_plugin"]


def test_ssh_arguments_become_an_ssh_config(runner):
    lines, unknown = runner.ssh_options(
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -oLogLevel=ERROR -J admin@jump "
        "-o 'ProxyCommand=ssh -W %h:%p bastion' -o ControlMaster=auto -o ControlPersist=60s -C -R 8080:x:80")
    assert lines == ["StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "LogLevel ERROR", "ProxyJump admin@jump",
                     "ProxyCommand ssh -W %h:%p bastion", "Compression yes"]
    assert unknown == ["-R", "8080:x:80"]


def test_inventory_values_are_unwrapped_and_secrets_left_out(runner):
    listed = {"ansible_host": {"__ansible_unsafe": "198.51.100.7"}, "omr_router_wans": [{"name": {"__ansible_unsafe": "wan1"}}]}
    assert runner.plain(listed) == {"ansible_host": "198.51.100.7", "omr_router_wans": [{"name": "wan1"}]}
    assert runner.needs_template("{{ x }}") and runner.needs_template({"a": ["{% if x %}"]})
    assert not runner.needs_template({"__ansible_unsafe": "{{ not a template }}"}) and not runner.needs_template(8)
    assert [n for n in ("omr_router_proxy_key", "omr_router_pairing_server_key", "omr_vps_proxy_key_file", "omr_router_vpn_tls_crypt",
                        "omr_wifi_bridge_psk", "omr_router_wans", "ansible_host", "omr_lab_links") if runner.wanted(n)] == [
        "omr_vps_proxy_key_file", "omr_router_wans", "ansible_host"]
    assert runner.without_secrets({"portal": {"username": "guest", "password": "x"}}) == {"portal": {"username": "guest"}}


def test_targets_follow_the_connection(runner):
    ssh = runner.target_of("omr1", {"ansible_connection": "ansible.builtin.ssh", "ansible_host": "192.168.101.1",
                                    "ansible_user": "root", "ansible_port": "2222", "ansible_ssh_private_key_file": "~/k"})
    assert runner.hostspec(ssh, 5) == "ssh://root@192.168.101.1:2222?timeout=5&controlpersist=60"
    assert ssh["key"] == os.path.expanduser("~/k")
    podman = runner.target_of("omr-lab-vps", {"ansible_connection": "containers.podman.podman"})
    assert runner.hostspec(podman, 10) == "podman://omr-lab-vps"
    assert runner.probe_command(podman, 10) == ["podman", "exec", "omr-lab-vps", "true"]
    assert runner.hostspec(runner.target_of("h", {"ansible_connection": "local"}), 10) == "local://"
    with pytest.raises(runner.UsageError, match="winrm"):
        runner.target_of("w", {"ansible_connection": "winrm"})


def test_the_checks_follow_the_groups(runner):
    audit = os.path.join(ROOT, "tests", "audit")
    assert [os.path.basename(f) for f in runner.check_files(audit, ["omr_router", "omr_vps", "omr_lab_isp"])] == [
        "test_router.py", "test_vps.py"]
    assert runner.check_files(audit, ["omr_wifi_bridge"]) == []


def test_waivers_need_a_justification_and_say_when_they_expire(plugin):
    waivers = plugin.parse_waivers({
        "test_swappiness": {"justification": "  the provider\n pins it ", "expires": datetime.date(2027, 6, 30), "hosts": "vps1"},
        "test_ssh_untouched": {"justification": "InSpec's name", "expiration_date": "2020-01-01", "run": False}})
    assert waivers["test_swappiness"] == {"justification": "the provider pins it", "expires": datetime.date(2027, 6, 30),
                                          "hosts": ["vps1"], "run": True}
    assert waivers["test_ssh_untouched"]["expires"] == datetime.date(2020, 1, 1) and not waivers["test_ssh_untouched"]["run"]
    today = datetime.date(2027, 6, 30)
    assert plugin.waiver_state(waivers["test_swappiness"], "vps1", [], today) == "active"
    assert plugin.waiver_state(waivers["test_swappiness"], "vps1", [], today + datetime.timedelta(days=1)) == "expired"
    assert plugin.waiver_state(waivers["test_swappiness"], "vps2", ["omr_vps"], today) is None
    assert plugin.waiver_state(dict(waivers["test_swappiness"], hosts=["omr_vps"]), "vps2", ["omr_vps"], today) == "active"
    assert plugin.parse_waivers(None) == {}


@pytest.mark.parametrize("data, message", [
    ({"test_x": {"expires": "2027-01-01"}}, "waiver test_x has no justification"),
    ({"test_x": {"justification": " "}}, "waiver test_x has no justification"),
    ({"test_x": "because"}, "must be a mapping with a justification"),
    ({"test_x": {"justification": "j", "expires": "next week"}}, "is not a date"),
    ({"test_x": {"justification": "j", "justifcation": "typo"}}, "unknown keys justifcation"),
    ({"test_x": {"justification": "j", "hosts": [1]}}, "hosts must be a list"),
    ({"test x": {"justification": "j"}}, "is not a check id"),
    (["test_x"], "must map check ids"),
])
def test_a_waivers_file_that_cannot_be_used_is_refused(plugin, data, message):
    with pytest.raises(plugin.WaiverError, match=message):
        plugin.parse_waivers(data)


def test_junit_outcomes_become_the_summary(runner, tmp_path):
    junit = tmp_path / "h.xml"
    junit.write_text(
        '<testsuites><testsuite name="h">'
        '<testcase classname="test_vps" name="test_a[local]" />'
        '<testcase classname="test_vps" name="test_b[local]"><failure message="AssertionError: drift&#10;more">x</failure></testcase>'
        '<testcase classname="test_vps" name="test_c[local]"><properties><property name="waiver" value="why" />'
        '<property name="waiver_expires" value="2999-01-01" /></properties>'
        '<skipped type="pytest.xfail" message="waived: why" /></testcase>'
        '<testcase classname="test_vps" name="test_d[local]"><skipped type="pytest.skip" message="n/a" /></testcase>'
        '<testcase classname="test_vps" name="test_e[local]"><properties><property name="waiver_expired" value="2020-01-01: old" />'
        '</properties><failure message="AssertionError: e" /></testcase>'
        '<testcase classname="test_vps" name="test_f[local]" /><testcase classname="test_vps" name="test_f[local]">'
        '<error message="failed on teardown" /></testcase>'
        '</testsuite></testsuites>')
    out = runner.read_junit(str(junit))
    assert out["passed"] == ["test_a"]
    assert [(f["check"], f["message"]) for f in out["failed"]] == [
        ("test_b", "AssertionError: drift"), ("test_e", "AssertionError: e"), ("test_f", "failed on teardown")]
    assert out["failed"][1]["waiver_expired"] == "2020-01-01"
    assert out["waived"] == [{"check": "test_c", "justification": "why", "expires": "2999-01-01", "outcome": "failed"}]
    assert out["skipped"] == [{"check": "test_d", "reason": "n/a"}]
    assert out["expired_waivers"] == [{"check": "test_e", "expires": "2020-01-01", "justification": "old", "outcome": "failed"}]


def test_exit_codes_unreachable_before_non_compliant(runner):
    def results(*statuses):
        return dict(("h%d" % i, {"status": s}) for i, s in enumerate(statuses))
    assert runner.exit_code(results("compliant", "compliant")) == 0
    assert runner.exit_code(results("compliant", "non-compliant")) == 1
    assert runner.exit_code(results("error")) == 1
    assert runner.exit_code(results("non-compliant", "unreachable", "compliant")) == 2


def test_bad_arguments_are_usage_errors(runner):
    for argv, message in ((["-i", ROOT, "-j", "x"], "--jobs 'x' is not a whole number"),
                          (["-i", ROOT, "-t", "0"], "--timeout must be at least 1"),
                          (["-i", "/nonexistent/inventory"], "no inventory at /nonexistent/inventory"),
                          (["-i", ROOT, "--checks", "/nonexistent"], "no checks directory"),
                          (["--frobnicate"], "arguments are required")):
        with pytest.raises(runner.UsageError, match=message):
            runner.parse_args(argv)
