"""The speed-test report: plugins/module_utils/_speedtest.py (filter omr.deploy.speedtest_report), and
the curl client of omr.deploy.mptcp_probe (the command it runs and its parser)."""
import ast
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.omr.deploy.plugins.action.mptcp_probe import ARGUMENT_SPEC, check_curl_args
from ansible_collections.omr.deploy.plugins.module_utils._speedtest import (
    SpeedtestError, curl_script, parse_curl_probe, report)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
WANS = [{"name": "wan1", "multipath": "master", "address": "100.64.1.2"},
        {"name": "wan3", "multipath": "on", "address": "100.64.3.2"}]
SINGLE = [{"throughput_mbps": 38.0}, {"throughput_mbps": 3.2}]
BONDED = {"mptcp": True, "subflows": 2, "throughput_mbps": 40.0, "subflow_details": [
    {"local_address": "100.64.1.2", "bytes_received": 36000000, "bytes_acked": 10},
    {"local_address": "100.64.3.2", "bytes_received": 4000000, "bytes_acked": 10}]}


def ping(name):
    with open(os.path.join(ROOT, "tests", "unit", "fixtures", "wifi", name), encoding="utf-8") as f:
        return f.read()


def test_shares_and_both_efficiencies():
    out = report(WANS, SINGLE, BONDED, pings=[ping("ping_iputils.txt"), ping("ping_iputils_all_lost.txt")],
                 capacity={"wan1": {"down_mbit": 40, "up_mbit": 10}, "wan3": {"download": 10, "upload": 2}})
    assert [round(link["share"], 2) for link in out["links"]] == [0.9, 0.1]
    assert [link["rtt_ms"] for link in out["links"]] == [0.049, None]
    assert round(out["efficiency"], 3) == round(40.0 / 41.2, 3)
    # Against what the links can carry, a lossy link that its congestion control cannot fill shows.
    assert out["sum_capacity_mbps"] == 50.0 and out["efficiency_capacity"] == 0.8
    assert out["table"][-1] == "against what the links can carry (50.0 Mbit/s): 0.800"
    assert "    0.0" in out["table"][1] and out["table"][2].split()[3] == "-"


def test_without_capacity_or_pings():
    out = report(WANS, SINGLE, BONDED, direction="upload")
    assert out["efficiency_capacity"] is None and out["links"][0]["rtt_ms"] is None
    assert out["links"][0]["share"] == 0.5                  # bytes_acked on upload
    assert not out["table"][-1].startswith("against")


# ---------------------------------------------------------------- the curl client's parser
# Captured by tests/unit/fixtures/speedtest/capture.py: the real command run by busybox sh against
# the real server over two shaped veth WANs (README.md there). The server's log line for each run
# is the reference for bytes, MPTCP and subflows.

CAPTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "speedtest")


def capture(name):
    with open(os.path.join(CAPTURES, "captures.json"), encoding="utf-8") as f:
        meta = json.load(f)["captures"][name]
    with open(os.path.join(CAPTURES, name + ".txt"), encoding="utf-8") as f:
        return f.read(), meta


def server_logged(meta):
    return dict(re.findall(r"(\w+)=(\S+)", meta["server_log"][0]))


def parse(name, text=None):
    out, meta = capture(name)
    args = meta["args"]
    return parse_curl_probe(out if text is None else text, args["protocol"], args.get("interfaces")), out, meta


def test_bonded_mptcp_capture():
    res, out, meta = parse("mptcp-bonded")
    logged = server_logged(meta)
    assert res["mptcp"] is True and logged["mptcp"] == "yes"
    assert res["subflows"] == int(logged["subflows"]) == 2
    assert res["bytes"] == int(logged["bytes"])
    # Receiver-counted: from curl's first byte to its last.
    fields = dict(re.findall(r"^(time_\w+)=([0-9.]+)$", out, re.M))
    seconds = float(fields["time_total"]) - float(fields["time_starttransfer"])
    assert res["seconds"] == round(seconds, 3)
    assert res["throughput_mbps"] == round(res["bytes"] * 8 / res["seconds"] / 1e6, 3)
    assert 30 < res["throughput_mbps"] < 41            # two 20 Mbit/s links
    assert (res["client"], res["protocol"], res["direction"], res["integrity_ok"]) == ("curl", "mptcp", "download", None)
    assert res["warnings"] == []
    # One entry per interface: its counter's growth, the stream and headers included.
    assert [(d["device"], d["local_address"]) for d in res["subflow_details"]] == [
        ("r1", "100.64.1.2"), ("r2", "100.64.2.2")]
    carried = [d["bytes_received"] for d in res["subflow_details"]]
    assert all(c > res["bytes"] * 0.3 for c in carried)
    assert res["bytes"] < sum(carried) < res["bytes"] * 1.1


def test_single_wan_capture_counts_on_its_own_device():
    res, _out, meta = parse("tcp-wan2")
    assert res["mptcp"] is False and res["subflows"] == 1 and res["warnings"] == []
    assert res["bytes"] == int(server_logged(meta)["bytes"])
    by_dev = {d["device"]: d["bytes_received"] for d in res["subflow_details"]}
    assert by_dev["r1"] < 1000 and by_dev["r2"] > res["bytes"]


def test_fallback_to_tcp_is_reported():
    res, _out, meta = parse("mptcp-fallback")
    assert server_logged(meta)["mptcp"] == "no"
    assert res["mptcp"] is False and res["subflows"] == 1
    assert "fell back to plain TCP (server header X-Omr-Mptcp: no)" in res["warnings"][0]


def test_without_ss_subflows_are_unknown():
    res, _out, meta = parse("mptcp-no-ss")
    assert res["mptcp"] is True and res["subflows"] is None
    assert "no `ss`" in res["warnings"][0]
    assert res["bytes"] == int(server_logged(meta)["bytes"])


@pytest.mark.parametrize("name, words", [
    ("no-mptcpize", ["curl failed (rc 127) (no curl or mptcpize on the target?)", "mptcpize: not found"]),
    ("port-closed", ["curl failed (rc 7)", "Failed to connect to 192.0.2.1 port 65439"]),
    ("not-allowed", ["curl failed (rc 56)", "--allow list", "Connection reset by peer"]),
    ("http-400", ["the server answered HTTP/1.0 400 Bad Request: seconds must be above 0 and at most 20"]),
])
def test_failures_say_what_curl_or_the_server_said(name, words):
    with pytest.raises(SpeedtestError) as exc:
        parse(name)
    for word in words:
        assert word in str(exc.value)


def test_cut_short_empty_and_wrapped_output():
    out, _meta = capture("mptcp-bonded")
    with pytest.raises(SpeedtestError, match="cut short"):
        parse("mptcp-bonded", out.split("#omr-probe# rc")[0])
    with pytest.raises(SpeedtestError, match="received nothing"):
        parse("mptcp-bonded", re.sub(r"size_download=\d+", "size_download=0", out))
    # What curl 7.88 says to a JSON-only server (the error line is no HTTP response).
    old = re.sub(r"#omr-probe# rc 0\n#omr-probe# stderr\n", "#omr-probe# rc 1\n#omr-probe# stderr\n"
                 "curl: (1) Received HTTP/0.9 when not allowed\n", out)
    with pytest.raises(SpeedtestError, match="without HTTP mode, update the VPS"):
        parse("mptcp-bonded", old)
    with pytest.raises(SpeedtestError, match="temporary directory"):
        parse_curl_probe("#omr-probe# error cannot make a temporary directory in /tmp\n")
    # A 32-bit counter that wrapped during the test; a device without counters.
    text = out.replace("\nr1 90\n", "\nr1 4294967000\n").replace("\nr2 9995744\n", "\nr2 -\n")
    res = parse("mptcp-bonded", text)[0]
    assert res["subflow_details"][0]["bytes_received"] == 10375166 + 2 ** 32 - 4294967000
    assert res["subflow_details"][1]["bytes_received"] is None
    assert res["warnings"] == ["no counters for interface r2 (/sys/class/net/r2)"]
    # Through a pty (ssh -tt) every line ends in \r\n.
    assert parse("mptcp-bonded", out.replace("\n", "\r\n"))[0] == parse("mptcp-bonded")[0]


def test_report_from_curl_results():
    single = [parse("tcp-wan2")[0], parse("tcp-wan2")[0]]
    bonded = parse("mptcp-bonded")[0]
    wans = [{"name": "wan1", "multipath": "master", "address": "100.64.1.2"},
            {"name": "wan2", "multipath": "on", "address": "100.64.2.2"}]
    # busybox ping over a pty, as the raw task returns it.
    out = report(wans, single, bonded, pings=[ping("ping_busybox.txt").replace("\n", "\r\n"), ""])
    assert out["mptcp"] and out["subflows"] == 2
    assert [link["rtt_ms"] for link in out["links"]] == [0.082, None]
    assert [link["bytes"] for link in out["links"]] == [d["bytes_received"] for d in bonded["subflow_details"]]
    assert round(sum(link["share"] for link in out["links"]), 6) == 1
    assert out["aggregate_mbps"] == bonded["throughput_mbps"]


# ---------------------------------------------------------------- the command it runs

def test_curl_script_quotes_and_checks_its_input():
    script = curl_script("192.0.2.1", 65432, 8, 99, protocol="mptcp", bind_address="100.64.1.2",
                         interfaces={"eth1": "100.64.1.2", "wwan0": "10.0.0.5"}, timeout=5)
    assert not script.endswith("\n") and "exit" not in script.split()
    assert "mptcpize run curl -q " in script and "--max-time 13" in script and "--connect-timeout 5" in script
    assert "'http://192.0.2.1:65432/download?seconds=8&seed=99'" in script
    assert "--interface 100.64.1.2" in script and "for i in eth1 wwan0;" in script
    assert "sleep 4;" in script and "'( dport = :65432 )'" in script
    odd = curl_script("2001:db8::1", 65432, 5, 1, protocol="tcp")
    assert "mptcpize" not in odd and "http://[2001:db8::1]:65432/" in odd
    assert "{ sleep 2.5 || sleep 2; }" in odd
    for bad in (dict(host="vps/x"), dict(host="a b"), dict(interfaces={"eth1; reboot": "1.2.3.4"}),
                dict(protocol="udp")):
        kwargs = dict(host="192.0.2.1", port=65432, seconds=5, seed=1)
        kwargs.update(bad)
        with pytest.raises(SpeedtestError):
            curl_script(**kwargs)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck")
@pytest.mark.parametrize("interfaces", [None, {"eth1": "100.64.1.2", "eth2": "100.64.2.2"}])
def test_curl_script_passes_shellcheck(interfaces):
    script = curl_script("192.0.2.1", 65432, 7, 99, bind_address="100.64.1.2", interfaces=interfaces)
    res = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


# ---------------------------------------------------------------- the action plugin's options

def test_action_options_match_the_module_documentation():
    with open(os.path.join(ROOT, "plugins", "modules", "mptcp_probe.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    doc = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "DOCUMENTATION"][0]
    options = yaml.safe_load(doc)["options"]
    assert set(options) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        documented = options[name]
        assert spec["type"] == documented["type"], name
        assert spec.get("default") == documented.get("default"), name
        assert spec.get("choices") == documented.get("choices"), name
        assert bool(spec.get("required")) == bool(documented.get("required")), name


def test_action_refuses_what_curl_cannot_do():
    args = dict(host="192.0.2.1", port=65432, direction="download", seconds=5, bytes=None, bind_address=None,
                protocol="mptcp", timeout=10, client="curl", interfaces={"eth1": "100.64.1.2"})
    assert check_curl_args(args) is None
    for change, words in ((dict(direction="upload"), "downloads only"), (dict(bytes=1000), "bytes needs"),
                          (dict(port=0), "port"), (dict(seconds=0), "seconds"), (dict(timeout=0), "timeout"),
                          (dict(interfaces={"eth1": None}), "interfaces: eth1")):
        bad = dict(args, **change)
        assert words in check_curl_args(bad), change
