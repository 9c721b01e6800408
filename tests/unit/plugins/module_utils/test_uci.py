# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_uci: the parser on OMR configurations (the fixtures derived from users' dumps, and every dump
of the team's reference when it is beside the checkout), and the batch planner: minimal batches,
the traps the real uci sets (list membership, anonymous zones, quoting), secrets. The planner's
batches are also run through the lab's uci (lab/omr/uci, contract-tested against the real one):
they must record exactly the predicted deltas, and a second plan after the commit is empty."""

import glob
import os
import shutil
import subprocess

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _uci as u

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "uci")
# The team's reference sits beside the checkout (../shared); a clone elsewhere (CI's) finds it at
# its usual place, or where OMR_REFERENCE_DUMPS says.
DUMPS = next((d for d in (os.environ.get("OMR_REFERENCE_DUMPS"),
                          os.path.join(os.path.dirname(ROOT), "shared", "reference", "openwrt", "dumps"),
                          "/work/shared/reference/openwrt/dumps") if d and os.path.isdir(d)),
             os.path.join(os.path.dirname(ROOT), "shared", "reference", "openwrt", "dumps"))
UCI = os.path.join(ROOT, "lab", "omr", "uci")
BUSYBOX, DASH = shutil.which("busybox"), shutil.which("dash")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


# --- quoting --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["plain", "it's", "a 'b' c", "", "$HOME", "back\\slash", 'dq "x"', "ünï"])
def test_quote_unquote_and_the_batch_tokeniser_round_trip(value):
    assert u.unquote(u.quote(value)) == [value]
    assert u.batch_tokens("set a.b.c=" + u.quote(value)) == ["set", "a.b.c=" + value]


def test_quote_escapes_as_uci_show_prints():
    assert u.quote("it's") == "'it'\\''s'"
    assert u.unquote("'a' 'b c'") == ["a", "b c"]
    with pytest.raises(u.UciError):
        u.unquote("'unterminated")
    assert u.unquote("'cut short", strict=False) == ["cut short"]


# --- parsing --------------------------------------------------------------------------------

def test_show_of_an_omr_055_router():
    cfg, skipped = u.parse_show(fixture("omr-055-show.txt"))
    assert skipped == []
    wan2 = u.find_section(cfg, "network", name="wan2")
    assert wan2["type"] == "interface" and wan2["options"]["proto"] == "dhcp"
    assert wan2["options"]["label"] == "Box d'en bas"
    vps = u.find_section(cfg, "openmptcprouter", name="vps")
    assert vps["options"]["available_vpn"] == ["glorytun_tcp", "glorytun_udp", "openvpn"]
    assert [s["name"] for s in cfg["network"]] == ["loopback", "globals", "lan", "wan1", "wan1_dev", "wan2"]


def test_export_of_an_omr_060_router():
    cfg, skipped = u.parse_export(fixture("omr-060-export.txt"))
    assert skipped == []
    assert u.find_section(cfg, "network", name="wan2")["options"]["multipath"] == "backup"
    assert u.find_section(cfg, "network", name="globals")["options"]["mptcp_add_addr_accepted"] == "1"


def test_anonymous_sections_by_id_and_by_position():
    cfg, _unused = u.parse_show(fixture("omr-064-show.txt"))
    wan_zone = u.find_section(cfg, "firewall", stype="zone", match={"name": "wan"})
    # The WAN zone is the second zone: OMR's scripts call it @zone[1]; -X show gives its id.
    assert wan_zone["name"] == "cfg03dc81" and wan_zone["position"] == "@zone[1]" and wan_zone["anonymous"]
    assert u.find_section(cfg, "firewall", name="@zone[1]") is wan_zone
    assert wan_zone["options"]["network"] == ["wan1", "wan2", "wan2"]
    shown, _unused = u.parse_show("firewall.@zone[0]=zone\nfirewall.@zone[0].name='wan'\n")
    assert shown["firewall"][0]["ref"] == "@zone[0]"


def test_strict_parsing_refuses_what_uci_does_not_print():
    with pytest.raises(u.UciError):
        u.parse_show("root@OpenMPTCProuter:~# uci show network\nnetwork.lan=interface\n")
    with pytest.raises(u.UciError):
        u.parse_show("network.lan.proto='static'\n")   # an option before its section


@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "omr-*.txt"))))
def test_read_dump_reads_the_derived_fixtures_whole(name):
    cfg, skipped = u.read_dump(fixture(name))
    assert skipped == []
    assert "network" in cfg and u.find_section(cfg, "network", name="wan1")["options"]["multipath"] == "master"


@pytest.mark.skipif(not os.path.isdir(DUMPS), reason="the team's reference dumps are not beside this checkout (%s)" % DUMPS)
def test_read_dump_reads_every_dump_users_posted():
    # Excerpts with banners, prompts, markdown quotes, redactions and a cut-off last line.
    paths = sorted(glob.glob(os.path.join(DUMPS, "*")))
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as f:
            cfg, skipped = u.read_dump(f.read())
        sections = sum(len(v) for v in cfg.values())
        assert sections >= 2, path
        # Nothing a uci show line looks like is left unread, but the line an excerpt cut off.
        unread = [line for line in skipped if u._SHOW_RE.match(line.lstrip("> ").strip())]
        assert len(unread) <= 1, (path, unread)


def test_read_dump_of_a_quoted_cut_off_excerpt():
    text = ("# a note\n`root@OpenMPTCProuter:~# uci show network\n`\n> network.lan=interface\n"
            "> network.lan.ipaddr='192.168.100.1'\n> network.globals=globals\n> network.globals.mptcp_path_manager='full")
    cfg, skipped = u.read_dump(text)
    assert u.find_section(cfg, "network", name="globals")["options"]["mptcp_path_manager"] == "full"
    assert len(skipped) == 1


# --- planning ---------------------------------------------------------------------------------

def current():
    cfg, _unused = u.parse_show(fixture("omr-064-show.txt"))
    return cfg


def wan_zone(members):
    return {"package": "firewall", "type": "zone", "match": {"name": "wan"}, "lists": {"network": members}}


def test_nothing_to_do_plans_an_empty_batch():
    plan = u.plan_batch(current(), [
        {"package": "network", "type": "interface", "name": "wan1",
         "options": {"device": "eth1", "multipath": "master", "ipaddr": "100.64.21.2"}, "defaults": {"ip4table": "wan"}},
        wan_zone(["wan1", "wan2"]),
        {"package": "network", "type": "globals", "name": "globals", "options": {"mptcp_subflows": "8"}},
    ])
    assert plan["batch"] == [] and not plan["changed"] and plan["packages"] == []


def test_only_changed_options_are_set():
    plan = u.plan_batch(current(), [{"package": "network", "type": "interface", "name": "wan2",
                                     "options": {"device": "eth2", "proto": "dhcp", "multipath": "backup"}}])
    assert plan["batch"] == ["set network.wan2.multipath='backup'"]
    assert plan["changes"] == {"network": ["network.wan2.multipath='backup'"]}


def test_defaults_are_set_only_when_absent_as_omr_rewrites_them():
    # OMR's init turned ip4table 'wan' into the metric: writing 'wan' again would fight it.
    plan = u.plan_batch(current(), [{"package": "network", "type": "interface", "name": "wan1",
                                     "defaults": {"ip4table": "wan", "peerdns": "0"}},
                                    {"package": "network", "type": "interface", "name": "wan3",
                                     "options": {"device": "eth3"}, "defaults": {"ip4table": "wan"}}])
    assert plan["batch"] == ["set network.wan3='interface'", "set network.wan3.device='eth3'",
                             "set network.wan3.ip4table='wan'"]


def test_list_membership_adds_only_absent_members_to_the_anonymous_wan_zone():
    plan = u.plan_batch(current(), [wan_zone(["wan1", "wan2", "wifi"])])
    # By id, not by position: the batch and `uci changes` name the zone the same way.
    assert plan["batch"] == ["add_list firewall.cfg03dc81.network='wifi'"]
    assert plan["changes"] == {"firewall": ["firewall.cfg03dc81.network+='wifi'"]}


def test_an_exact_list_with_a_duplicate_is_rebuilt():
    # add_list does not de-duplicate: the fixture's zone lists wan2 twice.
    plan = u.plan_batch(current(), [{"package": "firewall", "type": "zone", "match": {"name": "wan"},
                                     "exact_lists": {"network": ["wan1", "wan2"]}}])
    assert plan["batch"] == ["delete firewall.cfg03dc81.network", "add_list firewall.cfg03dc81.network='wan1'",
                             "add_list firewall.cfg03dc81.network='wan2'"]


def test_an_exact_list_removes_the_members_it_does_not_hold():
    cfg, _unused = u.parse_show("openmptcprouter.vps=server\nopenmptcprouter.vps.ip='192.0.2.1' '198.51.100.10'\n")
    plan = u.plan_batch(cfg, [{"package": "openmptcprouter", "type": "server", "name": "vps",
                               "exact_lists": {"ip": ["198.51.100.10"]}}])
    assert plan["batch"] == ["del_list openmptcprouter.vps.ip='192.0.2.1'"]
    assert plan["changes"]["openmptcprouter"] == ["openmptcprouter.vps.ip-='192.0.2.1'"]


def test_a_space_separated_option_becomes_a_list_before_a_member_is_added():
    cfg, _unused = u.parse_show("firewall.cfg01dc81=zone\nfirewall.cfg01dc81.name='wan'\nfirewall.cfg01dc81.network='wan wan6'\n")
    plan = u.plan_batch(cfg, [wan_zone(["wan", "wan2"])])
    assert plan["batch"] == ["delete firewall.cfg01dc81.network", "add_list firewall.cfg01dc81.network='wan'",
                             "add_list firewall.cfg01dc81.network='wan6'", "add_list firewall.cfg01dc81.network='wan2'"]


def test_a_missing_zone_is_added_and_addressed_as_the_last_of_its_type():
    cfg, _unused = u.parse_show("firewall.cfg01dc81=zone\nfirewall.cfg01dc81.name='lan'\n")
    plan = u.plan_batch(cfg, [wan_zone(["wan1"])])
    assert plan["batch"] == ["add firewall zone", "set firewall.@zone[-1].name='wan'",
                             "add_list firewall.@zone[-1].network='wan1'"]
    assert plan["changes"]["firewall"] == ["firewall.*='zone'", "firewall.*.name='wan'", "firewall.*.network+='wan1'"]
    assert u.changes_match(plan["changes"]["firewall"], ["firewall.cfg02dc81='zone'", "firewall.cfg02dc81.name='wan'",
                                                         "firewall.cfg02dc81.network+='wan1'"])
    assert not u.changes_match(plan["changes"]["firewall"], ["firewall.cfg02dc81='zone'"])


def test_quotes_in_values_survive_the_batch():
    plan = u.plan_batch(current(), [{"package": "network", "type": "interface", "name": "wan2",
                                     "options": {"label": "Box d'en bas"}}])
    assert plan["batch"] == ["set network.wan2.label='Box d'\\''en bas'"]
    assert u.batch_tokens(plan["batch"][0])[1] == "network.wan2.label=Box d'en bas"


def test_none_deletes_an_option_and_absent_a_section():
    plan = u.plan_batch(current(), [
        {"package": "network", "type": "interface", "name": "wan1", "options": {"gateway": None, "nosuch": None}},
        {"package": "network", "type": "device", "name": "wan2_dev", "state": "absent"},
        {"package": "network", "type": "device", "name": "wan9_dev", "state": "absent"},
    ])
    assert plan["batch"] == ["delete network.wan1.gateway", "delete network.wan2_dev"]
    assert plan["changes"]["network"] == ["-network.wan1.gateway", "-network.wan2_dev"]


def test_on_change_is_set_only_when_the_section_changes():
    pairing = {"package": "openmptcprouter", "type": "server", "name": "vps",
               "options": {"username": "openmptcprouter", "port": "65500"}, "on_change": {"get_config": "1"}}
    assert u.plan_batch(current(), [pairing])["batch"] == []
    plan = u.plan_batch(current(), [dict(pairing, options={"port": "65501"})])
    assert plan["batch"] == ["set openmptcprouter.vps.port='65501'", "set openmptcprouter.vps.get_config='1'"]


def test_secrets_compare_as_digests_and_never_show():
    salt = "abc123"
    cfg, _unused = u.parse_show("shadowsocks-libev.sss0=server\nshadowsocks-libev.sss0.key='%s'\n" % u.digest(salt, "'old-key'"))
    same = u.plan_batch(cfg, [{"package": "shadowsocks-libev", "type": "server", "name": "sss0",
                               "options": {"key": "old-key"}}], salt=salt)
    assert same["batch"] == []
    plan = u.plan_batch(cfg, [{"package": "shadowsocks-libev", "type": "server", "name": "sss0",
                               "options": {"key": "new-key", "pin": "1234"}, "secrets": ["pin"]}], salt=salt)
    assert plan["batch"] == ["set shadowsocks-libev.sss0.key='new-key'", "set shadowsocks-libev.sss0.pin='1234'"]
    shown = "\n".join(plan["shown"]) + str(plan["changes"]) + str(u.diff(plan)) + str(plan["before"]) + str(plan["after"])
    assert "new-key" not in shown and "1234" not in shown and "old-key" not in shown
    assert plan["shown"] == ["set shadowsocks-libev.sss0.key='********'", "set shadowsocks-libev.sss0.pin='********'"]
    assert plan["changes"]["shadowsocks-libev"][0] == "shadowsocks-libev.sss0.key='%s'" % u.digest(salt, "'new-key'")
    # The diff says that a key changed, never what it is; that there was none is no secret.
    d = u.diff(plan)
    assert "shadowsocks-libev.sss0.key='********'\n" in d["before"]
    assert "shadowsocks-libev.sss0.key='******** (changed)'\n" in d["after"]
    fresh, _unused = u.parse_show("shadowsocks-libev.sss0=server\nshadowsocks-libev.sss0.key='%s'\n" % u.digest(salt, "''"))
    first = u.diff(u.plan_batch(fresh, [{"package": "shadowsocks-libev", "type": "server", "name": "sss0",
                                         "options": {"key": "k"}}], salt=salt))
    assert "sss0.key=''\n" in first["before"] and "sss0.key='******** (changed)'\n" in first["after"]


def test_diff_shows_the_touched_packages_before_and_after():
    plan = u.plan_batch(current(), [wan_zone(["wan1", "wan2", "wifi"])])
    d = u.diff(plan)
    assert "firewall.@zone[1].network='wan1' 'wan2' 'wan2'\n" in d["before"]
    assert "firewall.@zone[1].network='wan1' 'wan2' 'wan2' 'wifi'\n" in d["after"]
    assert "network." not in d["after"]


@pytest.mark.parametrize("bad, message", [
    ({"package": "net work", "type": "interface", "name": "x"}, "package"),
    ({"package": "network", "type": "interface"}, "either name or match"),
    ({"package": "network", "type": "interface", "name": "wan-1"}, "not a uci section name"),
    ({"package": "network", "type": "interface", "name": "x", "options": {"a b": "1"}}, "not a uci option name"),
    ({"package": "network", "type": "interface", "name": "x", "lists": {"network": "wan1"}}, "must be a list"),
    ({"package": "network", "type": "interface", "name": "x", "colour": "red"}, "unknown keys colour"),
])
def test_bad_specs_are_refused(bad, message):
    with pytest.raises(u.UciError) as err:
        u.plan_batch({}, [bad])
    assert message in str(err.value)


# --- on the router's shell ------------------------------------------------------------------------

SHELLS = [pytest.param(BUSYBOX and [BUSYBOX, "sh"], id="busybox-ash",
                       marks=pytest.mark.skipif(not BUSYBOX, reason="busybox is not installed")),
          pytest.param(DASH and [DASH], id="dash", marks=pytest.mark.skipif(not DASH, reason="dash is not installed"))]


@pytest.mark.parametrize("shell", SHELLS)
def test_mask_script_hashes_on_the_router_what_the_controller_hashes(shell):
    salt = "0123abcd"
    text = ("openmptcprouter.vps=server\nopenmptcprouter.vps.password='s3cr'\\''et'\n"
            "shadowsocks-libev.sss0.key+='k'\nnetwork.wan1.keyword='visible'\n-openmptcprouter.vps.token\n")
    out = subprocess.run(shell + ["-c", u.mask_script(salt) + "\nomr_uci_mask"], input=text, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["openmptcprouter.vps=server",
                   "openmptcprouter.vps.password='%s'" % u.digest(salt, "'s3cr'\\''et'"),
                   "shadowsocks-libev.sss0.key+='%s'" % u.digest(salt, "'k'"),
                   "network.wan1.keyword='visible'", "-openmptcprouter.vps.token"]


class StandIn(object):
    """The lab's uci on a temporary config directory, under busybox ash."""

    def __init__(self, tmp_path, files):
        self.conf, self.save = tmp_path / "config", tmp_path / "save"
        self.conf.mkdir()
        self.save.mkdir()
        for name, text in files.items():
            (self.conf / name).write_text(text)

    def __call__(self, *args, stdin=None):
        res = subprocess.run([BUSYBOX, "sh", UCI, "-c", str(self.conf), "-t", str(self.save)] + list(args),
                             input=stdin, capture_output=True, text=True, check=False)
        return res.returncode, res.stdout, res.stderr


def export_of(show_text):
    cfg, _unused = u.parse_show(show_text)
    out = {}
    for pkg, sections in cfg.items():
        lines = []
        for sec in sections:
            lines.append("config %s%s" % (sec["type"], "" if sec["anonymous"] else " " + u.quote(sec["name"])))
            for opt, value in sec["options"].items():
                for v in (value if isinstance(value, list) else [value]):
                    lines.append("\t%s %s %s" % ("list" if isinstance(value, list) else "option", opt, u.quote(v)))
            lines.append("")
        out[pkg] = "\n".join(lines) + "\n"
    return out


@pytest.mark.skipif(not BUSYBOX, reason="busybox is not installed")
def test_planned_batches_record_exactly_the_predicted_changes_then_nothing(tmp_path):
    uci = StandIn(tmp_path, export_of(fixture("omr-064-show.txt")))
    desired = [
        {"package": "network", "type": "interface", "name": "wifi",
         "options": {"device": "transit", "proto": "static", "ipaddr": "172.16.9.1", "multipath": "on",
                     "label": "it's the bridge"}, "defaults": {"ip4table": "wan"}},
        {"package": "network", "type": "interface", "name": "wan2", "options": {"multipath": "backup"}},
        wan_zone(["wan1", "wan2", "wifi"]),
        {"package": "firewall", "type": "zone", "match": {"name": "guest"}, "lists": {"network": ["guest"]}},
        {"package": "network", "type": "device", "name": "wan2_dev", "state": "absent"},
        {"package": "openmptcprouter", "type": "server", "name": "vps", "options": {"username": "openmptcprouter"},
         "exact_lists": {"ip": ["198.51.100.10"]}, "on_change": {"get_config": "1"}},
    ]
    salt = "feed1234"

    def plan():
        rc, show, _err = uci("-X", "show")
        assert rc == 0
        cfg, _unused = u.parse_show(show)
        return u.plan_batch(cfg, desired, salt=salt)

    first = plan()
    assert first["changed"]
    rc, out, err = uci("batch", stdin="\n".join(first["batch"]) + "\n")
    assert (rc, err) == (0, "")
    for pkg in first["packages"]:
        assert u.changes_match(first["changes"][pkg], uci("changes", pkg)[1].splitlines()), pkg
    for pkg in first["packages"]:
        assert uci("commit", pkg)[0] == 0
    again = plan()
    assert again["batch"] == [] and not again["changed"]
    assert uci("get", "network.wifi.label")[1] == "it's the bridge\n"
    assert uci("get", "firewall.@zone[2].name")[1] == "guest\n"
