"""The alert rules shipped with the collection (prometheus/omr-deploy.rules.yml): `promtool check rules`
and `promtool test rules prometheus/tests/*.yml` (promtool is in Debian's prometheus package, which
`make setup` installs; CI fails without it, elsewhere these skip), and, without promtool, that every
alert is complete, tested both ways, and reads metrics something in the collection writes."""
import ast
import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.omr.deploy.plugins.module_utils import _monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "prometheus", "omr-deploy.rules.yml")
TESTS = sorted(glob.glob(os.path.join(ROOT, "prometheus", "tests", "*.yml")))
BRIDGE_MONITOR = os.path.join(ROOT, "roles", "wifi_bridge", "files", "omr-wifi-monitor.py")
ALERTS = [rule for group in yaml.safe_load(open(RULES, encoding="utf-8"))["groups"] for rule in group["rules"]]


def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is missing: CI must run these (Debian's prometheus package, in the Makefile's APT_PACKAGES)")
        pytest.skip("promtool is not installed (Debian's prometheus package; `make setup` installs it)")
    return path


def test_promtool_checks_the_rules():
    res = subprocess.run([promtool(), "check", "rules", RULES], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: %d rules found" % len(ALERTS) in res.stdout


def test_promtool_runs_the_rules_unit_tests():
    assert TESTS
    res = subprocess.run([promtool(), "test", "rules"] + TESTS, capture_output=True, text=True, check=False,
                         cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(TESTS), res.stdout


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r.get("alert", "?"))
def test_every_alert_has_a_duration_a_severity_a_summary_and_a_description(rule):
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert set(rule["annotations"]) == {"summary", "description"}
    assert re.match(r"^\d+[smh]$", rule["for"])


def cases():
    """{alert: [how many alerts each case expects]} over every promtool test file."""
    out = {}
    for path in TESTS:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        assert doc["rule_files"] == ["../omr-deploy.rules.yml"], path
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                out.setdefault(case["alertname"], []).append(len(case.get("exp_alerts") or []))
    return out


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r.get("alert", "?"))
def test_every_alert_is_tested_firing_and_quiet(rule):
    counts = cases().get(rule["alert"], [])
    assert any(n > 0 for n in counts), "no case where %s fires" % rule["alert"]
    assert any(n == 0 for n in counts), "no case where %s stays quiet" % rule["alert"]


def written_metrics():
    """The omr_* metric names the roles' textfiles (rendered from full facts) and the WiFi bridge's monitor write."""
    mptcp = {"flavour": "v1", "enabled": True, "limits": {"subflows": 8, "add_addr_accepted": 8},
             "endpoints": [{"id": 1, "address": "192.0.2.1", "dev": "eth0", "flags": ["signal"]}]}
    plan = {"wans": [{"name": "wan1", "device": "eth1", "multipath": "on", "addressing": "static", "endpoint": {"id": 1}}],
            "endpoints": [{"id": 1}], "limits": {"subflows": 8, "add_addr_accepted": 8}}
    text = (_monitoring.vps_metrics({"installed_mb": 1024, "effective_mb": 979}, mptcp, 10, ["exim4.service"])
            + _monitoring.router_metrics(plan, mptcp) + _monitoring.converge_metrics(0, "vps"))
    names = set(re.findall(r"^# TYPE (omr_\w+) ", text, re.M))
    with open(BRIDGE_MONITOR, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["METRICS"]:
            names.update(elt.elts[0].value for elt in node.value.elts)
    return names


def test_the_rules_read_only_metrics_the_collection_writes():
    written = written_metrics()
    assert {"omr_vps_memory_plan_bytes", "omr_router_wan_endpoint", "omr_deploy_last_converge_timestamp_seconds",
            "omr_wifi_bridge_link_up"} <= written
    used = set()
    for rule in ALERTS:
        used.update(re.findall(r"\b(omr_[a-z_]+)\b", rule["expr"]))
    assert used and used <= written, used - written
    # node_exporter's: the MPTcpExt fields the netstat regexp keeps, vmstat's defaults, meminfo, netclass.
    fields = re.compile(_monitoring.NETSTAT_FIELDS)
    for rule in ALERTS:
        for field in re.findall(r"\bnode_netstat_(\w+)", rule["expr"]):
            assert fields.match(field), field
