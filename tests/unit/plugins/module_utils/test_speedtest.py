"""The speed-test report: plugins/module_utils/_speedtest.py (filter omr.deploy.speedtest_report)."""
import os

from ansible_collections.omr.deploy.plugins.module_utils._speedtest import report

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
