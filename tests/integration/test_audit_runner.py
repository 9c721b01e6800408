# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/audit/run.py, the fleet audit, run for real: ansible-inventory on a small inventory, one
pytest process per host on `local` hosts with a checks directory of its own (one passing and one
failing check file), an ssh host at a documentation address that never answers, waivers. Every
scenario runs at once (a module fixture), then the tests read its exit code, JUnit and summary.
The runner's pieces have unit tests in tests/unit/test_audit.py."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "audit", "run.py")
# TEST-NET-1 (RFC 5737): documentation only; its connect times out (or is refused) everywhere.
UNREACHABLE = "192.0.2.200"

PASSING = '''
def test_echo(host):
    assert host.run("echo hi").stdout.strip() == "hi"


def test_templated_variable(host, audit_hostvars):
    """The runner resolves the inventory's templates and leaves secrets out."""
    assert audit_hostvars["omr_vps_state_dir"] == "/srv/omr/state"
    assert "omr_vps_proxy_key" not in audit_hostvars
    assert audit_hostvars["group_names"] == ["audit_ok"]
'''
FAILING = '''
def test_swappiness_drift(host):
    assert host.run("echo 60").stdout.strip() == "10", "vm.swappiness is 60, declared 10"


def test_fine(host):
    assert host.run("true").rc == 0
'''
INVENTORY = '''
all:
  vars:
    state_base: /srv/omr
  children:
    audit_ok:
      hosts:
        good:
          ansible_connection: local
          omr_vps_state_dir: "{{ state_base }}/state"
          omr_vps_proxy_key: "{{ lookup('ansible.builtin.env', 'HOME') }}"
    audit_drift:
      hosts:
        drifted:
          ansible_connection: ansible.builtin.local
    audit_far:
      hosts:
        gone:
          ansible_host: %s
          ansible_user: root
          ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    audit_empty:
      hosts: {}
''' % UNREACHABLE
WAIVED = '''
test_swappiness_drift:
  justification: "The provider's kernel pins vm.swappiness (ticket 42)"
  expires: 2999-12-31
  hosts: [drifted]
'''
EXPIRED = '''
test_swappiness_drift:
  justification: "Accepted until the 2020 migration"
  expires: 2020-01-01
'''
UNJUSTIFIED = '''
test_swappiness_drift:
  expires: 2999-12-31
'''

# name: (groups, waivers file content or None, extra arguments)
SCENARIOS = {
    "pass": ("audit_ok", None, []),
    "fail": ("audit_drift", None, []),
    "waived": ("audit_drift", WAIVED, []),
    "expired": ("audit_drift", EXPIRED, []),
    "unjustified": ("audit_drift", UNJUSTIFIED, []),
    "unreachable": ("audit_ok,audit_drift,audit_far", None, ["--timeout", "2"]),
    "empty": ("audit_empty", None, []),
    "unknown_waivers": ("audit_ok", None, ["--waivers", "/nonexistent/waivers.yml"]),
    "bad_jobs": ("audit_ok", None, ["--jobs", "0"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("audit")
    checks = base / "checks"
    checks.mkdir()
    (checks / "test_audit_ok.py").write_text(PASSING)
    (checks / "test_audit_drift.py").write_text(FAILING)
    # The unreachable host's group has checks too: that it gets no run is the point.
    (checks / "test_audit_far.py").write_text(PASSING)
    (base / "hosts.yml").write_text(INVENTORY)
    procs = {}
    for name, (groups, waivers, extra) in SCENARIOS.items():
        out = base / name
        cmd = [sys.executable, RUNNER, "-i", str(base / "hosts.yml"), "-g", groups, "--checks", str(checks),
               "-o", str(out)] + extra
        if waivers is not None:
            (base / (name + ".yml")).write_text(waivers)
            cmd += ["--waivers", str(base / (name + ".yml"))]
        procs[name] = (out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        results[name] = {"rc": proc.returncode, "stdout": stdout, "stderr": stderr, "out": out}
    return results


def summary(run):
    with open(os.path.join(str(run["out"]), "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def junit_cases(run, host):
    root = ET.parse(os.path.join(str(run["out"]), host + ".xml")).getroot()
    return dict((case.get("name").split("[")[0], case) for case in root.iter("testcase"))


def test_a_compliant_host_exits_0_with_its_junit_and_summary(runs):
    run = runs["pass"]
    assert run["rc"] == 0, run["stdout"] + run["stderr"]
    data = summary(run)
    assert data["exit_code"] == 0 and data["result"] == "compliant"
    assert data["totals"]["hosts"] == 1 and data["totals"]["compliant"] == 1
    good = data["hosts"]["good"]
    assert good["status"] == "compliant" and sorted(good["passed"]) == ["test_echo", "test_templated_variable"]
    assert good["connection"] == "local" and good["junit"] == "good.xml"
    cases = junit_cases(run, "good")
    assert sorted(cases) == ["test_echo", "test_templated_variable"]
    assert all(len(case) == 0 for case in cases.values())  # no failure, error or skipped element
    assert "good                     compliant" in (run["out"] / "summary.txt").read_text()


def test_a_failing_check_exits_1_and_names_it(runs):
    run = runs["fail"]
    assert run["rc"] == 1, run["stdout"] + run["stderr"]
    host = summary(run)["hosts"]["drifted"]
    assert host["status"] == "non-compliant" and host["passed"] == ["test_fine"]
    assert [f["check"] for f in host["failed"]] == ["test_swappiness_drift"]
    assert "vm.swappiness is 60, declared 10" in host["failed"][0]["message"]
    assert junit_cases(run, "drifted")["test_swappiness_drift"].find("failure") is not None
    text = (run["out"] / "summary.txt").read_text()
    assert "FAILED  test_swappiness_drift: AssertionError: vm.swappiness is 60, declared 10" in text
    assert "exit 1: non-compliant" in text


def test_the_same_check_waived_with_a_justification_exits_0(runs):
    run = runs["waived"]
    assert run["rc"] == 0, run["stdout"] + run["stderr"]
    data = summary(run)
    host = data["hosts"]["drifted"]
    assert host["status"] == "compliant" and host["failed"] == []
    assert host["waived"] == [{"check": "test_swappiness_drift", "justification": "The provider's kernel pins vm.swappiness (ticket 42)",
                               "expires": "2999-12-31", "outcome": "failed"}]
    assert data["totals"]["checks"]["waived"] == 1
    case = junit_cases(run, "drifted")["test_swappiness_drift"]
    skipped = case.find("skipped")
    assert skipped.get("type") == "pytest.xfail"
    assert skipped.get("message") == "waived: The provider's kernel pins vm.swappiness (ticket 42)"
    props = dict((p.get("name"), p.get("value")) for p in case.iter("property"))
    assert props == {"waiver": "The provider's kernel pins vm.swappiness (ticket 42)", "waiver_expires": "2999-12-31"}
    assert "WAIVED  test_swappiness_drift (failed, until 2999-12-31): The provider's kernel pins" in (run["out"] / "summary.txt").read_text()


def test_an_expired_waiver_does_not_apply_and_is_reported_expired(runs):
    run = runs["expired"]
    assert run["rc"] == 1, run["stdout"] + run["stderr"]
    host = summary(run)["hosts"]["drifted"]
    assert host["status"] == "non-compliant" and host["waived"] == []
    assert host["failed"][0]["check"] == "test_swappiness_drift" and host["failed"][0]["waiver_expired"] == "2020-01-01"
    assert host["expired_waivers"] == [{"check": "test_swappiness_drift", "expires": "2020-01-01",
                                        "justification": "Accepted until the 2020 migration", "outcome": "failed"}]
    case = junit_cases(run, "drifted")["test_swappiness_drift"]
    assert case.find("failure") is not None
    assert dict((p.get("name"), p.get("value")) for p in case.iter("property")) == {
        "waiver_expired": "2020-01-01: Accepted until the 2020 migration"}
    assert "EXPIRED waiver of test_swappiness_drift expired 2020-01-01" in (run["out"] / "summary.txt").read_text()


def test_an_unreachable_host_exits_2_and_is_named_once_without_a_junit(runs):
    run = runs["unreachable"]
    assert run["rc"] == 2, run["stdout"] + run["stderr"]
    data = summary(run)
    assert data["exit_code"] == 2 and data["totals"]["unreachable"] == 1
    # Non-compliance elsewhere does not hide it: 2 takes precedence over 1.
    assert data["totals"]["non_compliant"] == 1 and data["totals"]["compliant"] == 1
    gone = data["hosts"]["gone"]
    assert gone["status"] == "unreachable" and gone["junit"] is None and gone["log"] is None
    assert gone["passed"] == [] and gone["failed"] == [] and gone["reason"].startswith("ssh: ")
    assert gone["target"] == "ssh://root@%s" % UNREACHABLE
    assert not (run["out"] / "gone.xml").exists() and not (run["out"] / "gone.log").exists()
    lines = [line for line in run["stdout"].splitlines() if line.startswith("gone ")]
    # Once as it happened and once in the summary: one line each, no per-check failure.
    assert len(lines) == 2 and all("unreachable" in line for line in lines), run["stdout"]
    assert "test_echo" not in "\n".join(line for line in run["stdout"].splitlines() if "gone" in line)


@pytest.mark.parametrize("name, message", [
    ("unjustified", "waiver test_swappiness_drift has no justification"),
    ("empty", "group audit_empty has no hosts"),
    ("unknown_waivers", "no waivers file /nonexistent/waivers.yml"),
    ("bad_jobs", "--jobs must be at least 1"),
])
def test_usage_errors_exit_4_before_anything_runs(runs, name, message):
    run = runs[name]
    assert run["rc"] == 4, run["stdout"] + run["stderr"]
    assert message in run["stderr"]
    assert not run["out"].exists()


def test_an_unreadable_inventory_exits_4(tmp_path):
    bad = tmp_path / "hosts.yml"
    bad.write_text("all: [this is not an inventory\n")
    res = subprocess.run([sys.executable, RUNNER, "-i", str(bad), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, check=False, timeout=120)
    assert res.returncode == 4 and "ansible-inventory cannot read" in res.stderr, res.stderr
