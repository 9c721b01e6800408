"""The diagnosis report: plugins/module_utils/_diagnose.py (filters omr.deploy.diagnose_report and
omr.deploy.diagnose_html), on what playbooks/diagnose.yml read for real (tests/unit/fixtures/diagnose/,
README.md there) and on small inputs for the parsers and the verdicts' thresholds. The page itself
is opened in a real browser by tests/unit/test_diagnose_report.py."""
import copy
import html.parser
import json
import os

import pytest

from ansible_collections.omr.deploy.plugins.filter.diagnose_html import diagnose_html
from ansible_collections.omr.deploy.plugins.filter.diagnose_report import diagnose_report
from ansible_collections.omr.deploy.plugins.module_utils import _diagnose as D

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "diagnose")


def raw(name):
    with open(os.path.join(FIXTURES, name + ".raw.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def shaped():
    return D.report(raw("linux-shaped"))


@pytest.fixture(scope="module")
def curl():
    return D.report(raw("curl"))


def texts(report):
    return [v["text"] for v in report["verdicts"]]


# ---------------------------------------------------------------- parsers

STAT_BEFORE = ["cpu  100 0 100 700 100 0 0 0 0 0", "cpu0 50 0 50 350 50 0 0 0 0 0", "cpu1 50 0 50 350 50 0 0 0 0 0"]
STAT_AFTER = ["cpu  280 0 200 800 110 0 10 0 0 0", "cpu0 230 0 100 350 60 0 10 0 0 0", "cpu1 50 0 100 450 50 0 0 0 0 0"]


def test_cpu_busy_all_and_each():
    usage = D.cpu_usage(D.parse_cpu_lines(STAT_BEFORE), D.parse_cpu_lines(STAT_AFTER))
    # 400 ticks: 290 busy, 100 idle, 10 iowait.
    assert usage == {"busy_pct": 72.5, "iowait_pct": 2.5, "steal_pct": 0.0, "cpus": 2,
                     "per_cpu": {"cpu0": 96.0, "cpu1": 33.3}, "busiest": "cpu0", "busiest_pct": 96.0}
    assert D.cpu_usage({}, D.parse_cpu_lines(STAT_AFTER)) is None
    assert D.cpu_usage(D.parse_cpu_lines(STAT_BEFORE), D.parse_cpu_lines(STAT_BEFORE)) is None


def test_proc_files():
    assert D.parse_keyvalue(["MemTotal:        1003108 kB", "SwapFree:              0 kB", "junk"]) == {
        "MemTotal": 1003108, "SwapFree": 0}
    assert D.parse_keyvalue(["pswpin 3", "pswpout 12", "oom_kill 1"]) == {"pswpin": 3, "pswpout": 12, "oom_kill": 1}
    net = D.parse_net_dev(["Inter-|   Receive                                                |  Transmit",
                           " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop",
                           "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0"])
    assert net == {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}}
    netstat = D.parse_netstat(["TcpExt: A B", "TcpExt: 1 2", "MPTcpExt: MPCapableFallbackACK MPJoinSynRx",
                               "MPTcpExt: 4 5"])
    assert netstat == {"TcpExt": {"A": 1, "B": 2}, "MPTcpExt": {"MPCapableFallbackACK": 4, "MPJoinSynRx": 5}}


def test_process_names_with_spaces_and_parentheses():
    line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 1 0 500 1000 256 0"
    assert D.parse_pid_stats([line, "garbage"]) == {4242: {"comm": "my (odd) name", "ticks": 100, "rss_pages": 256}}
    ps = D.parse_ps("    PID USER       RSS %CPU COMMAND\n      1 root     12000  0.1 systemd\n    77 nobody    4096 12.5 ss-server\n")
    assert ps == [{"pid": 1, "user": "root", "rss_kb": 12000, "pcpu": 0.1, "comm": "systemd"},
                  {"pid": 77, "user": "nobody", "rss_kb": 4096, "pcpu": 12.5, "comm": "ss-server"}]


def sampler(*rows):
    """rows: (t, {dev: (rx, tx)}) -> what omr-diagnose.sh's sampler prints."""
    out = ["#omr-diagnose# samples"]
    for t, devs in rows:
        out += ["t %s" % t, "cpu  0 0 0 0 0 0 0 0 0 0"] + ["d %s %s %s" % (d, rx, tx) for d, (rx, tx) in devs.items()]
    return "\n".join(out + ["#omr-diagnose# end"]) + "\n"


def test_timeline_is_cut_to_the_transfer_and_survives_a_32bit_wrap():
    wrap = (1 << 32) - 1000
    text = sampler((10.0, {"eth1": (wrap, 0), "eth2": (0, 0)}), (10.5, {"eth1": (wrap, 0), "eth2": (0, 0)}),
                   (11.0, {"eth1": (wrap + 500, 0), "eth2": (1000, 0)}), (11.5, {"eth1": (2000, 0), "eth2": (3000, 0)}),
                   (12.0, {"eth1": (2000, 0), "eth2": (3000, 0)}), (12.5, {"eth1": (2000, 0), "eth2": (3000, 0)}))
    wans = [{"name": "wan1", "device": "eth1"}, {"name": "wan2", "device": "eth2"}]
    line = D.timeline(D.parse_samples(text), wans, "download", 0.5)
    assert line["t"] == [0.0, 0.5, 1.0] and line["counter"] == "rx_bytes"
    assert [s["bytes"] for s in line["series"]] == [[0, 500, 3000], [0, 1000, 3000]]
    # A device without counters ("-") is skipped, not taken for zero.
    gone = D.parse_samples(sampler((1.0, {"eth1": ("-", "-")})))
    assert gone[0]["dev"] == {"eth1": None}


def test_the_snapshot_sections():
    text = "#omr-diagnose# uptime\n123.45 99.00\n#omr-diagnose# stat\n%s\n#omr-diagnose# vmstat\npswpout 7\n" \
           "#omr-diagnose# clk_tck\n250\n#omr-diagnose# pids\n#omr-diagnose# end\n" % "\n".join(STAT_BEFORE)
    snap = D.parse_snapshot(text)
    assert snap["present"] and snap["uptime"] == 123.45 and snap["clk_tck"] == 250 and snap["vmstat"] == {"pswpout": 7}
    assert sorted(snap["cpu"]) == ["cpu", "cpu0", "cpu1"]
    assert D.parse_snapshot("")["present"] is False


# ---------------------------------------------------------------- collect() on real runs

def test_each_link_alone_is_its_probe(shaped):
    source = raw("linux-shaped")
    for i, link in enumerate(shaped["links"]):
        for direction, results in (("download", source["single"]["download"]), ("upload", source["single"]["upload"])):
            assert link["alone"][direction] == round(results[i]["throughput_mbps"], 2)
        assert link["capacity"] == {"download": 20.0, "upload": 20.0}       # omr_speedtest_capacity
        assert link["rtt_ms"] is not None and link["loss_pct"] == 0.0
    assert shaped["directions"] == ["download", "upload"] and shaped["client"] == "python"


def test_subflows_and_interfaces_in_the_bonded_transfer(shaped):
    source = raw("linux-shaped")
    details = source["bonded"]["download"]["subflow_details"]
    for link in shaped["links"]:
        mine = [sf["bytes_received"] for sf in details if sf["local_address"] == link["address"]]
        assert link["subflows"] == len(mine) == 1 and link["subflow_bytes"] == sum(mine)
    assert shaped["bonded"]["subflow_bytes"] == sum(sf["bytes_received"] for sf in details)
    assert abs(sum(link["subflow_share"] for link in shaped["links"]) - 1) < 1e-3
    assert abs(sum(link["interface_share"] for link in shaped["links"]) - 1) < 1e-3
    bonded = shaped["bonded"]["download"]
    assert bonded["mptcp"] is True and bonded["subflows"] == 2
    assert bonded["efficiency"] == round(bonded["mbps"] / bonded["sum_alone_mbps"], 3)
    # Interface counters carry at least the payload the subflows counted.
    for link in shaped["links"]:
        assert link["interface_bytes"] >= link["subflow_bytes"]


def test_the_timeline(shaped):
    line = shaped["timeline"]
    assert line["t"][0] == 0.0 and line["t"] == sorted(line["t"]) and len(line["t"]) >= 4
    assert [s["name"] for s in line["series"]] == ["wan1", "wan2"]
    for series in line["series"]:
        assert len(series["bytes"]) == len(line["t"]) and series["bytes"] == sorted(series["bytes"])
        assert series["bytes"][0] == 0
    assert [s["bytes"][-1] for s in line["series"]] == [link["interface_bytes"] for link in shaped["links"]]


def test_the_vps_and_mptcp(shaped):
    stats = shaped["vps_stats"]
    assert shaped["vps"] == "omr-dg-vps" and stats["reached"]
    assert 0 < stats["cpu"]["busy_pct"] <= 100 and stats["cpu_source"] == "samples"
    assert stats["swap"] == {"pages_in": 0, "pages_out": 0} and stats["oom_kills"] == 0
    assert stats["memory"]["total_mb"] > 0 and stats["memory"]["installed_mb"] >= stats["memory"]["total_mb"]
    assert len(stats["top_rss"]) == D.TOP_PROCESSES and stats["top_rss"][0]["rss_mb"] >= stats["top_rss"][-1]["rss_mb"]
    assert all(p["cpu_pct"] > 0 for p in stats["top_cpu"])
    # The VPS sent the download out of v1 and v2, the ISP's lines.
    sent = dict((n["device"], n["tx_bytes"]) for n in stats["net"])
    assert sent["v1"] > 1e6 and sent["v2"] > 1e6
    assert shaped["mptcp"]["router"]["flavour"] == "v1" and shaped["mptcp"]["router"]["endpoints"] == ["100.64.2.2 dev r2 subflow"]
    assert shaped["mptcp"]["vps"]["enabled"] is True
    assert stats["mptcp_counters"].get("MPJoinSynRx") == 1 and shaped["mptcp"]["router_counters"].get("MPJoinSynTx") == 1


def test_the_shaping_removed_and_put_back(shaped):
    shaping = shaped["shaping"]
    assert shaping["removed"] and shaping["restored"] and shaping["problems"] == []
    assert [(t["link"], t["device"], t["direction"], t["shaper"], t["rate_mbit"]) for t in shaping["trees"]] == [
        ("wan2", "r2", "upload", "tbf", 8.0), ("wan2", "ifb4r2", "download", "tbf", 6.0)]
    assert shaped["unshaped"]["download"]["mbps"] > 1.5 * shaped["bonded"]["download"]["mbps"]


def test_the_shaping_is_worked_out_again_from_what_tc_printed(shaped):
    source = raw("linux-shaped")
    assert "#omr-diagnose# dev ifb4r2 for r2" in source["qdiscs"]
    del source["shaping"]
    assert D.report(source)["shaping"] == shaped["shaping"]


def test_the_verdicts_of_a_shaped_router(shaped):
    said = texts(shaped)
    wan2 = shaped["links"][1]
    assert "wan2 is the bottleneck: %.1f of 20 Mbit/s expected (download, alone)" % wan2["alone"]["download"] in said
    assert "wan2 is the bottleneck: %.1f of 20 Mbit/s expected (upload, alone)" % wan2["alone"]["upload"] in said
    assert not [t for t in said if t.startswith("wan1 is the bottleneck")]
    assert "the router shapes wan2 with tbf at 6 Mbit/s (downloads); without it bonded %.1f vs %.1f Mbit/s with it" % (
        shaped["unshaped"]["download"]["mbps"], shaped["bonded"]["download"]["mbps"]) in said
    assert "the shaping was put back as it was (tc shows the same qdiscs and classes)" in said
    levels = [v["level"] for v in shaped["verdicts"]]
    assert levels == sorted(levels, key=["problem", "warning", "ok", "info"].index)


def test_a_router_with_curl_and_no_shaping(curl):
    assert curl["client"] == "curl" and curl["directions"] == ["download"]
    assert all(link["subflows"] is None and link["subflow_bytes"] is None for link in curl["links"])
    assert all(link["alone"]["upload"] is None for link in curl["links"])
    assert curl["bonded"]["upload"] is None and curl["bonded"]["interface_bytes"] > 0
    assert "downloads only: the probe ran with curl (omr_diagnose_client)" in curl["notes"][0]
    said = texts(curl)
    assert "no shaping qdisc on the router (only the kernel's default)" in said
    assert [t for t in said if t.startswith("bonding works: ")]


# ---------------------------------------------------------------- the verdicts' thresholds

def tweak(report, **changes):
    out = copy.deepcopy(report)
    for path, value in changes.items():
        parts = path.split("__")
        target = out
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(parts[-1]) if isinstance(target, list) else parts[-1]] = value
    return D.verdicts(out)


def said(report, **changes):
    return [v["text"] for v in tweak(report, **changes)]


def test_a_link_alone_below_six_tenths_of_its_capacity(curl):
    assert not [t for t in said(curl, links__0__alone__download=12.0) if "bottleneck" in t]
    assert "wan1 is the bottleneck: 11.9 of 20 Mbit/s expected (download, alone)" in said(
        curl, links__0__alone__download=11.9)
    assert "wan1 is the bottleneck: 6.1 of 20 Mbit/s shaped (download, alone)" in said(
        curl, links__0__alone__download=6.1, links__0__capacity_source__download="shaped")


def test_a_link_far_below_its_share_alone(curl):
    # Alone the links are even; bonded wan2 carried 24 %, under half of its 50 %.
    assert "wan2 is the bottleneck of the bonded transfer: it carried 24.0 % of the bytes against 50.0 % of what " \
           "the links carry alone" in said(curl, links__0__interface_share=0.76, links__1__interface_share=0.24)
    assert not [t for t in said(curl, links__0__interface_share=0.74, links__1__interface_share=0.26) if "bottleneck" in t]


def test_fallbacks(curl, shaped):
    assert said(curl, bonded__download__mptcp=False, bonded__download__warnings=["X-Omr-Mptcp: no"])[0] == \
        "MPTCP fell back to plain TCP on the bonded transfer: X-Omr-Mptcp: no"
    assert "MPTCP fell back on wan2: it carried 1.0 % of the bonded bytes" in said(
        curl, links__0__interface_share=0.99, links__1__interface_share=0.01)
    assert "MPTCP fell back on wan2: no subflow left from 100.64.2.2" in said(shaped, links__1__subflows=0,
                                                                              links__1__subflow_share=0.0)
    # A backup WAN is not expected to carry anything.
    assert not [t for t in said(shaped, links__1__subflows=0, links__1__multipath="backup") if "fell back" in t]
    assert "MPTCP is not on on the VPS (flavour v1, enabled False)" in said(shaped, mptcp__vps__enabled=False)
    assert "the router allows 0 extra subflow(s) for its 1 extra WAN(s)" in said(shaped, mptcp__router__subflows_limit=0)


def test_the_vps_verdicts(shaped):
    assert "the VPS swapped: 1234 pages out during the test" in said(shaped, vps_stats__swap={"pages_in": 3, "pages_out": 1234})
    assert "the VPS read 3 pages back from swap during the test" in said(shaped, vps_stats__swap={"pages_in": 3, "pages_out": 0})
    assert "2 OOM kills since boot on the VPS" in said(shaped, vps_stats__oom_kills=2)
    assert "the VPS's CPU was the limit: 97 % busy" in said(shaped, vps_stats__cpu__busy_pct=97.0)
    assert not [t for t in said(shaped, vps_stats__cpu__busy_pct=89.9) if "limit" in t]
    assert "one of the VPS's CPUs was the limit: cpu1 95 % busy" in said(
        shaped, vps_stats__cpu__busiest="cpu1", vps_stats__cpu__busiest_pct=95.0)
    assert "the VPS has 512 MB of memory, below the 1 GB OMR needs" in said(shaped, vps_stats__memory__installed_mb=512)
    assert "the VPS had only 40 of 960 MB available" in said(
        shaped, vps_stats__memory__available_mb=40, vps_stats__memory__total_mb=960)
    assert "the router's CPU was the limit: 99 % busy" in said(shaped, router_cpu__busy_pct=99.0)
    lost = said(shaped, vps=None, vps_stats=None)
    assert "the VPS at 192.0.2.1 is not in the inventory: its CPU, memory and MPTCP were not read" in lost


def test_the_shaping_verdicts(shaped):
    assert "the router shapes wan2 with tbf at 6 Mbit/s (downloads); check mode: not removed, so not compared" in said(
        shaped, check_mode=True, unshaped={"download": None, "upload": None})
    assert "the router shapes wan2 with tbf at 8 Mbit/s (uploads); not removed: omr_diagnose_remove_shaping is false" in said(
        shaped, shaping__skipped="omr_diagnose_remove_shaping is false", unshaped={"download": None, "upload": None})
    assert "the shaping was NOT put back as it was: r2: was [a], is [b]" in said(
        shaped, shaping__restored=False, shaping__problems=["r2: was [a], is [b]"])
    assert "the router has no tc: its qdiscs were not read" in said(shaped, shaping={"tc": False, "trees": []})
    blocked = dict(shaped["shaping"]["trees"][0], removable=False, reason="filters steer traffic")
    assert "the router shapes wan2 with tbf at 8 Mbit/s (uploads); not removed: filters steer traffic" in said(
        shaped, shaping__trees=[blocked], unshaped={"download": None, "upload": None})


def test_a_probe_that_failed():
    source = raw("curl")
    source["single"]["download"][1] = {"failed": True, "msg": "curl failed (rc 7): Connection refused"}
    source["bonded"]["download"] = {"failed": True, "msg": "the server answered HTTP 400"}
    report = D.report(source)
    assert report["links"][1]["alone"]["download"] is None
    assert "wan2 carried nothing alone (download): curl failed (rc 7): Connection refused" in texts(report)
    assert "the bonded transfer failed: the server answered HTTP 400" in texts(report)
    assert report["bonded"]["download"] == {"error": "the server answered HTTP 400"}
    D.render_html(report)


# ---------------------------------------------------------------- the page

class Figures(html.parser.HTMLParser):
    """Every element with data-path, and whether an external resource or a script is asked for."""

    def __init__(self):
        super().__init__()
        self.figures, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "data-path" in attrs:
            self.figures.append(attrs)


def test_the_page_holds_every_figure_it_shows(shaped):
    page = D.render_html(shaped)
    parser = Figures()
    parser.feed(page)
    assert not [t for t, _a in parser.tags if t in ("script", "img", "link", "iframe", "object")]
    assert not [a for _t, a in parser.tags for k, v in a.items() if k in ("src", "href") or "javascript:" in str(v)]
    assert page.count("http://") == page.count('xmlns="http://www.w3.org/2000/svg"') == 2
    for attrs in parser.figures:
        assert json.loads(attrs["data-value"]) == D._lookup(shaped, attrs["data-path"]), attrs["data-path"]
    paths = set(a["data-path"] for a in parser.figures)
    for i, link in enumerate(shaped["links"]):
        assert {"links.%d.alone.download" % i, "links.%d.alone.upload" % i} <= paths
    assert {"bonded.download.mbps", "bonded.upload.mbps", "unshaped.download.mbps", "vps_stats.cpu.busy_pct",
            "vps_stats.swap.pages_out", "vps_stats.oom_kills", "timeline.series.1.bytes"} <= paths
    bars = [a for t, a in parser.tags if t == "rect" and "bar" in a.get("class", "").split()]
    assert len(bars) == 2 * 2 + 2 + 2


def test_everything_is_escaped(curl):
    evil = copy.deepcopy(curl)
    evil["router"] = "<script>alert(1)</script>"
    evil["links"][0]["name"] = 'wan"1<b>'
    evil["verdicts"] = [{"level": "problem", "topic": "links", "text": "a < b & \"c\""}]
    page = diagnose_html(evil)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &lt; b &amp; &quot;c&quot;" in page


def test_the_filters():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="router and wans"):
        diagnose_report({"router": "r"})
    with pytest.raises(AnsibleFilterError, match="unexpected keyword"):
        diagnose_report({"router": "r", "wans": [], "nonsense": 1})
    with pytest.raises(AnsibleFilterError, match="expects a report"):
        diagnose_html({})
    assert diagnose_report(raw("curl"))["verdicts"]
