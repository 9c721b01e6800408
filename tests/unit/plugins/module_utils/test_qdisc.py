"""The router's shaping as tc prints it: plugins/module_utils/_qdisc.py (filter omr.deploy.diagnose_shaping).

The qdiscs-*.txt fixtures are what playbooks/files/omr-diagnose.sh `qdiscs` printed of trees built
for real (tests/unit/fixtures/diagnose/capture.py), but qdiscs-sqm-cake.txt, hand-assembled in the
form OMR's SQM leaves (cake and an ingress policer are not in this kernel; README.md there)."""
import os

import pytest

from ansible_collections.omr.deploy.plugins.filter.diagnose_shaping import diagnose_shaping
from ansible_collections.omr.deploy.plugins.module_utils._qdisc import (
    REHEARSAL_DEVICE, QdiscError, _rebuild_options, compare, is_shaping, normalize, parse_classes, parse_dump,
    parse_qdiscs, qdisc_rate, rate_mbit, shaping, tree_commands)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "diagnose")
D0 = [{"name": "wan1", "device": "d0"}]


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("text, mbit", [
    ("20Mbit", 20.0), ("500Kbit", 0.5), ("1Gbit", 1000.0), ("8bit", 0.0), ("2500Kbps", 20.0), ("1Mibit", 1.049),
    ("unlimited", None), ("", None), (None, None)])
def test_rates_as_tc_prints_them(text, mbit):
    assert rate_mbit(text) == mbit


def test_qdisc_lines_of_one_device_and_of_all():
    htb = parse_qdiscs(fixture("qdiscs-htb.txt").split("#omr-diagnose# class")[0])
    assert [(q["kind"], q["handle"], q["parent"]) for q in htb] == [("htb", "1:", "root"), ("tbf", "10:", "1:10"),
                                                                    ("pfifo", "20:", "1:20")]
    # Counters (direct_packets_stat) and the refcount are not options.
    assert htb[0]["options"] == ["r2q", "5", "default", "0x10", "direct_qlen", "1000"]
    every = parse_qdiscs("qdisc noqueue 0: dev lo root refcnt 2 \nqdisc ingress ffff: dev eth0 parent ffff:fff1 ----------------\n"
                         "qdisc fq_codel 0: dev eth1 parent :1 limit 10240p flows 1024\n")
    assert [(q["dev"], q["kind"], q["parent"], q["options"]) for q in every] == [
        ("lo", "noqueue", "root", []), ("eth0", "ingress", "ffff:fff1", []),
        ("eth1", "fq_codel", ":1", ["limit", "10240p", "flows", "1024"])]


def test_classes():
    classes = parse_classes(fixture("qdiscs-htb.txt").split("#omr-diagnose# class")[1].split("#omr-diagnose# filter")[0])
    assert [(c["kind"], c["classid"], c["parent"], c["leaf"]) for c in classes] == [
        ("htb", "1:10", "1:1", "10:"), ("htb", "1:1", "root", None), ("htb", "1:20", "1:1", "20:"), ("tbf", "10:1", "10:", None)]


def test_what_shapes():
    def q(kind, *options):
        return {"kind": kind, "handle": "1:", "parent": "root", "options": list(options)}
    assert [k for k in ("pfifo_fast", "fq_codel", "noqueue", "mq", "fq", "sfq") if is_shaping(q(k))] == []
    assert all(is_shaping(q(k)) for k in ("tbf", "htb", "hfsc", "netem", "cbq", "something_new"))
    assert is_shaping(q("fq", "maxrate", "10Mbit")) and qdisc_rate(q("fq", "maxrate", "10Mbit")) == 10.0
    assert is_shaping(q("cake", "bandwidth", "19Mbit")) and not is_shaping(q("cake", "bandwidth", "unlimited"))
    assert not is_shaping(q("cake", "besteffort"))


def test_options_read_back():
    assert _rebuild_options("tbf", ["rate", "8Mbit", "burst", "32Kb", "lat", "50ms"]) == [
        "rate", "8Mbit", "burst", "32Kb", "latency", "50ms"]
    assert _rebuild_options("cake", ["bandwidth", "unlimited", "besteffort"]) == ["unlimited", "besteffort"]
    assert _rebuild_options("pfifo", ["limit", "50p"]) == ["limit", "50"]
    assert _rebuild_options("pfifo_fast", ["bands", "3", "priomap", "1", "2"]) == []


def test_the_kernels_default_is_no_shaping():
    out = shaping(fixture("qdiscs-default.txt"), D0)
    assert out["tc"] is True and out["shaped"] is False and out["targets"] == [] and out["blocked"] == []
    assert out["links"][0]["upload"]["kinds"] == ["noqueue"]
    assert (out["rehearse"], out["remove"], out["restore"]) == (":", ":", ":")


def test_no_tc_on_the_router():
    out = shaping("#omr-diagnose# notc\n", D0)
    assert out["tc"] is False and out["shaped"] is False
    assert out["links"] == [{"name": "wan1", "device": "d0", "upload": None, "download": None, "policer": None}]


def test_an_htb_tree_is_rebuilt_parents_first():
    out = shaping(fixture("qdiscs-htb.txt"), D0)
    tree = out["links"][0]["upload"]
    assert out["shaped"] and tree["shaper"] == "htb" and tree["removable"] and tree["rate_mbit"] == 30.0
    assert tree["remove"] == [["tc", "qdisc", "del", "dev", "d0", "root"]]
    assert [" ".join(c) for c in tree["restore"]] == [
        "tc qdisc add dev d0 root handle 1: htb r2q 5 default 0x10 direct_qlen 1000",
        # tc's default bursts are left to tc: what it prints of them does not read back to itself.
        "tc class add dev d0 parent 1: classid 1:1 htb rate 30Mbit ceil 30Mbit",
        "tc class add dev d0 parent 1:1 classid 1:10 htb prio 1 rate 20Mbit ceil 30Mbit",
        "tc class add dev d0 parent 1:1 classid 1:20 htb prio 2 rate 10Mbit ceil 30Mbit",
        "tc qdisc add dev d0 parent 1:10 handle 10: tbf rate 20Mbit burst 16Kb latency 40ms",
        "tc qdisc add dev d0 parent 1:20 handle 20: pfifo limit 50",
    ]
    assert out["directions"] == ["upload"] and out["devices"] == ["d0"]
    # The rehearsal builds the same on the scratch device, never on the WAN.
    assert "dev %s root handle 1: htb" % REHEARSAL_DEVICE in out["rehearse"] and "dev d0 " not in out["rehearse"]
    assert out["restore"].startswith("{ tc qdisc del dev d0 root 2>/dev/null; tc qdisc add dev d0 root handle 1: htb")


def test_an_htb_class_keeps_a_burst_of_its_own():
    commands = tree_commands("d0", parse_qdiscs("qdisc htb 1: root refcnt 2 r2q 10 default 0x10 direct_qlen 1000\n"),
                             parse_classes("class htb 1:1 root rate 30Mbit ceil 30Mbit burst 15Kb cburst 1599b\n"))
    assert commands[1] == ["tc", "class", "add", "dev", "d0", "parent", "1:", "classid", "1:1", "htb", "rate", "30Mbit",
                           "ceil", "30Mbit", "burst", "15Kb"]


def test_filters_keep_a_tree_in_place():
    out = shaping(fixture("qdiscs-htb-filter.txt"), D0)
    assert out["shaped"] and out["targets"] == []
    assert "tc cannot print a filter back" in out["blocked"][0]["reason"]
    assert out["remove"] == ":" and out["restore"] == ":"


def test_ingress_through_an_ifb_shapes_downloads():
    out = shaping(fixture("qdiscs-ifb.txt"), D0)
    link = out["links"][0]
    assert (link["upload"]["shaper"], link["upload"]["rate_mbit"], link["upload"]["direction"]) == ("tbf", 8.0, "upload")
    assert (link["download"]["device"], link["download"]["via"], link["download"]["rate_mbit"]) == ("ifb4d0", "d0", 6.0)
    assert [t["device"] for t in out["targets"]] == ["d0", "ifb4d0"] and out["directions"] == ["download", "upload"]
    assert out["remove"] == "tc qdisc del dev d0 root; tc qdisc del dev ifb4d0 root"
    # The ingress hook and its filter stay: only the roots are removed and compared.
    assert link["upload"]["before"] == ["class tbf 1:1 parent 1:", "qdisc tbf 1: root rate 8Mbit burst 32Kb lat 50ms"]


def test_omrs_sqm_with_cake_and_a_policer():
    wans = [{"name": "wan1", "device": "eth1"}, {"name": "wan2", "device": "eth2"}, {"name": "wan3", "device": "eth3"}]
    out = shaping(fixture("qdiscs-sqm-cake.txt"), wans)
    wan1, wan2, wan3 = out["links"]
    assert (wan1["upload"]["shaper"], wan1["upload"]["rate_mbit"]) == ("cake", 19.0)
    assert wan1["download"]["rate_mbit"] == 48.0 and wan1["download"]["via"] == "eth1"
    assert [" ".join(c) for t in out["targets"] for c in t["restore"]] == [
        "tc qdisc add dev eth1 root handle 8005: cake bandwidth 19Mbit diffserv3 triple-isolate nonat nowash "
        "no-ack-filter split-gso rtt 100ms noatm overhead 44 mpu 84",
        "tc qdisc add dev ifb4eth1 root handle 8006: cake bandwidth 48Mbit besteffort triple-isolate nonat wash "
        "no-ack-filter split-gso rtt 100ms noatm overhead 44 mpu 84"]
    assert not wan2["upload"]["shaping"] and wan2["download"] is None      # fq_codel: the default
    assert wan3["policer"]["rate_mbit"] == 10.0
    assert [b["shaper"] for b in out["blocked"]] == ["police"] and "ingress policer on eth3" in out["blocked"][0]["reason"]


def test_kinds_that_are_not_rebuilt():
    qdiscs = parse_qdiscs("qdisc hfsc 1: root refcnt 2 default 1\n")
    with pytest.raises(QdiscError, match="hfsc qdisc is not rebuilt"):
        tree_commands("d0", qdiscs, [])
    with pytest.raises(QdiscError, match="drr class is not rebuilt"):
        tree_commands("d0", parse_qdiscs("qdisc htb 1: root refcnt 2 r2q 10\n"),
                      parse_classes("class drr 1:2 parent 1: quantum 1514b\n"))
    with pytest.raises(QdiscError, match="has no parent"):
        tree_commands("d0", parse_qdiscs("qdisc tbf 10: parent 1:10 rate 1Mbit burst 2Kb lat 5ms\n"), [])


def test_compare_says_how_a_tree_differs():
    before = shaping(fixture("qdiscs-ifb.txt"), D0)
    assert compare(before["targets"], fixture("qdiscs-ifb.txt")) == []
    changed = fixture("qdiscs-ifb.txt").replace("rate 6Mbit", "rate 7Mbit").replace("refcnt 3", "refcnt 9")
    problems = compare(before["targets"], changed)
    assert problems == ["ifb4d0: was [class tbf 1:1 parent 1:; qdisc tbf 1: root rate 6Mbit burst 32Kb lat 50ms], "
                        "is [class tbf 1:1 parent 1:; qdisc tbf 1: root rate 7Mbit burst 32Kb lat 50ms]"]
    assert compare(before["targets"], "") == ["d0: tc showed nothing for it", "ifb4d0: tc showed nothing for it"]
    # The filter's way: before= adds the problems.
    assert diagnose_shaping(fixture("qdiscs-ifb.txt"), D0, before=before)["problems"] == []


def test_normalize_drops_counters_and_the_ingress_hook():
    assert normalize("qdisc htb 1: root refcnt 3 r2q 5 direct_packets_stat 7 direct_qlen 1000\n"
                     "qdisc ingress ffff: parent ffff:fff1 ----------------\n") == ["qdisc htb 1: root r2q 5 direct_qlen 1000"]


def test_a_device_read_twice_is_kept_once():
    text = fixture("qdiscs-ifb.txt") + fixture("qdiscs-ifb.txt").replace("#omr-diagnose# dev d0\n", "")
    assert parse_dump(text)["devices"]["ifb4d0"]["qdisc"].count("qdisc tbf") == 1


def test_the_filter_refuses_wans_without_devices():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="name and device"):
        diagnose_shaping("", [{"name": "wan1"}])
