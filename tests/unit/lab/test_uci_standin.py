# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab/omr/uci, the lab stand-in's uci, against OpenWrt's: the contract replays every command of
uci-behaviour.txt (recorded from the real uci) and compares output and exit codes; the rest pins
what the recording does not show. Each uci test runs twice, as on the stand-in (busybox sh and
busybox awk) and as on Debian (dash and mawk)."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UCI = os.path.join(ROOT, "lab", "omr", "uci")
# The recording of the real uci (tests/unit/fixtures/uci/README.md says where it comes from).
REFERENCE = os.environ.get("OMR_UCI_REFERENCE",
                           os.path.join(ROOT, "tests", "unit", "fixtures", "uci", "uci-behaviour.txt"))
CFG_ID = re.compile(r"cfg[0-9a-f]{6}")

BUSYBOX, DASH, MAWK = shutil.which("busybox"), shutil.which("dash"), shutil.which("mawk")
VARIANTS = [
    pytest.param("busybox", marks=pytest.mark.skipif(not BUSYBOX, reason="busybox is not installed (apt-get install busybox)")),
    pytest.param("dash-mawk", marks=pytest.mark.skipif(not (DASH and MAWK), reason="dash or mawk is not installed")),
]

NETWORK = """config interface 'wan1'
\toption proto 'static'
\toption device 'eth1'
\toption multipath 'master'
"""
FIREWALL = """config zone 'zone_wan'
\toption name 'wan'
\tlist network 'wan1'
"""
FIREWALL_ANONYMOUS = """config zone
\toption name 'wan'
\tlist network 'wan1'
"""


def uci_id(position, type_):
    """libuci's name for an anonymous section: its count in the package and a djb hash of its type."""
    h = 5381
    for c in type_.encode():
        h = (h * 33 + c) & 0xFFFFFFFF
    return "cfg%02x%04x" % (position, (h & 0x7FFFFFFF) % 65536)


@pytest.fixture(scope="session")
def busybox_awk(tmp_path_factory):
    # busybox runs the applet its argv[0] names: an "awk" link makes UCI_AWK one plain path.
    path = tmp_path_factory.mktemp("busybox") / "awk"
    os.symlink(BUSYBOX, str(path))
    return str(path)


class Uci:
    """uci -c CONF -t SAVE under one shell and awk, on a fresh configuration directory."""

    def __init__(self, shell, awk, tmp_path):
        self.shell, self.awk = shell, awk
        self.conf, self.save = tmp_path / "config", tmp_path / "save"
        self.conf.mkdir()

    def seed(self, **packages):
        # Keyword arguments cannot hold "-": shadowsocks_libev is shadowsocks-libev.
        for name, text in packages.items():
            (self.conf / name.replace("_", "-")).write_bytes(text.encode())

    def file(self, name):
        return (self.conf / name).read_bytes().decode()

    def run(self, *args, stdin=None):
        env = dict(os.environ, UCI_AWK=self.awk)
        return subprocess.run(self.shell + [UCI, "-c", str(self.conf), "-t", str(self.save)] + list(args),
                              input=stdin.encode() if stdin is not None else None, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, check=False)

    def __call__(self, *args, stdin=None):
        """stdout of a command that must succeed, quiet on stderr."""
        result = self.run(*args, stdin=stdin)
        assert (result.returncode, result.stderr) == (0, b""), (args, result)
        return result.stdout.decode()

    def fails(self, *args):
        result = self.run(*args)
        return result.returncode, result.stdout.decode() + result.stderr.decode()


@pytest.fixture(params=VARIANTS)
def uci(request, tmp_path):
    if request.param == "busybox":
        return Uci([BUSYBOX, "sh"], request.getfixturevalue("busybox_awk"), tmp_path)
    return Uci([DASH], MAWK, tmp_path)


def transcript():
    """The recording as steps: ("run", command, output, rc), and ("anonymous",) where the
    recording switches firewall to an anonymous zone without showing how."""
    steps, command = [], None
    with open(REFERENCE, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for line in lines:
        if command is None:
            if line.startswith("$ "):
                command, output = line[2:], []
            elif line.startswith("#"):
                if "--- anonymous sections" in line:
                    steps.append(("anonymous",))
            else:
                assert not line.strip(), "unexpected line in the recording: %r" % line
            continue
        rc = re.match(r"\[rc=(\d+)\](\s+<-.*)?$", line)
        if rc:
            steps.append(("run", command, output, int(rc.group(1))))
            command = None
        else:
            output.append(line)
    assert command is None, "the recording ends inside a command"
    return steps


def recorded_argv(command):
    """The recorded command line as uci arguments and stdin. The lines are for reading, not for a
    shell (`label=it's`), so they are split on blanks; printf's format feeds batch."""
    piped = re.match(r"printf '(.*)' \| uci (.*)$", command)
    if piped:
        assert "\\" not in piped.group(1).replace("\\n", ""), command
        return piped.group(2).split(), piped.group(1).replace("\\n", "\n")
    words = command.split()
    assert words[0] == "uci", command
    return words[1:], None


@pytest.mark.skipif(not os.path.exists(REFERENCE), reason="the recording %s is not here (set OMR_UCI_REFERENCE)" % REFERENCE)
def test_contract_replays_the_recorded_session(uci):
    steps = transcript()
    assert sum(step[0] == "run" for step in steps) >= 25 and ("anonymous",) in steps
    # Where the session starts, as its first outputs show it.
    uci.seed(network=NETWORK, firewall=FIREWALL)
    for step in steps:
        if step[0] == "anonymous":
            uci.seed(firewall=FIREWALL_ANONYMOUS)
            continue
        _step, command, output, rc = step
        args, stdin = recorded_argv(command)
        result = uci.run(*args, stdin=stdin)
        got = result.stdout.decode() + result.stderr.decode()
        # Only one of the two streams carries anything in the recording, so their order is moot.
        assert not (result.stdout and result.stderr), command
        want = "".join(line + "\n" for line in output)
        assert (CFG_ID.sub("cfgXXXXXX", got), result.returncode) == (CFG_ID.sub("cfgXXXXXX", want), rc), command


def test_what_the_recording_notes_after_its_last_command(uci):
    uci.seed(firewall=FIREWALL_ANONYMOUS)
    assert uci("set", "firewall.@zone[1]=zone") == ""
    assert uci("changes") == ""
    assert uci.fails("set", "firewall.@zone[1].name=x") == (1, "uci: Invalid argument\n")
    assert uci("show", "firewall") == "firewall.@zone[0]=zone\nfirewall.@zone[0].name='wan'\nfirewall.@zone[0].network='wan1'\n"


def test_anonymous_ids_are_the_real_ones_and_stay_put(uci):
    # uci names an anonymous section cfg<sections so far, %02x><djb hash of its type, %04x>:
    # the recording's zone is cfg01dc81, and ids do not change between invocations.
    uci.seed(firewall=FIREWALL_ANONYMOUS + "\nconfig rule 'r'\n\toption name 'x'\n")
    assert uci("-X", "show", "firewall.@zone[0]") == uci("-X", "show", "firewall.@zone[0]")
    assert uci("get", "firewall.cfg01dc81.name") == "wan\n"
    assert uci_id(1, "zone") == "cfg01dc81"
    new = uci("add", "firewall", "zone").strip()
    assert new == uci_id(3, "zone")
    assert uci("set", "firewall.%s.name=lan" % new) == ""
    assert uci("get", "firewall.@zone[1].name") == "lan\n" and uci("get", "firewall.@zone[-1].name") == "lan\n"
    assert uci("changes") == "firewall.cfg03dc81='zone'\nfirewall.cfg03dc81.name='lan'\n"
    assert uci("-X", "show", "firewall").splitlines()[3:5] == ["firewall.r=rule", "firewall.r.name='x'"]
    assert uci("show", "firewall").splitlines()[5:] == ["firewall.@zone[1]=zone", "firewall.@zone[1].name='lan'"]


def test_export_and_commit_round_trip(uci):
    # Every way of writing a file uci reads: package line, comments, blank lines, spaces or
    # tabs, CRLF, bare, double-quoted and single-quoted values, an anonymous section.
    uci.seed(network="package network\r\n\r\n# wans\r\nconfig interface 'wan1'\r\n  option proto static\r\n"
                     "\toption label \"it's \\\"x\\\"\"\r\n\tlist dns '1.1.1.1'\r\n\tlist dns 9.9.9.9  # two\r\n"
                     "config globals\n\toption mptcp_subflows '8'\n\toption empty ''\n")
    export = ("package network\n\n"
              "config interface 'wan1'\n\toption proto 'static'\n\toption label 'it'\\''s \"x\"'\n"
              "\tlist dns '1.1.1.1'\n\tlist dns '9.9.9.9'\n\n"
              "config globals\n\toption mptcp_subflows '8'\n\n")
    assert uci("export", "network") == export
    assert uci("export") == export
    # A commit without changes leaves the file alone.
    assert uci("commit", "network") == "" and uci.file("network").startswith("package network\r\n")
    assert uci("set", "network.@globals[0].mptcp_add_addr_accepted=8") == ""
    assert uci("commit", "network") == ""
    committed = export.replace("package network\n", "").replace("'8'\n\n", "'8'\n\toption mptcp_add_addr_accepted '8'\n\n")
    assert uci.file("network") == committed
    assert uci("changes") == "" and uci("export", "network") == "package network\n" + committed
    assert (uci.save / "network").read_text() == ""
    # The anonymous section keeps its id: second section, type globals.
    assert uci("-X", "show", "network.@globals[0]").startswith("network.%s=globals\n" % uci_id(2, "globals"))


def test_batch_add_then_the_last_section(uci):
    uci.seed(firewall=FIREWALL)
    out = uci("batch", stdin=("add firewall zone\nset firewall.@zone[-1].name=lan\n"
                              "add_list firewall.@zone[-1].network=lan\nadd_list firewall.@zone[-1].network=guest\n"
                              "get firewall.@zone[-1].network\n"))
    new, members = out.splitlines()
    assert CFG_ID.fullmatch(new) and members == "lan guest"
    assert uci("changes", "firewall") == ("firewall.{0}='zone'\nfirewall.{0}.name='lan'\nfirewall.{0}.network+='lan'\n"
                                          "firewall.{0}.network+='guest'\n").format(new)
    assert uci("show", "firewall.@zone[1]") == ("firewall.{0}=zone\nfirewall.{0}.name='lan'\n"
                                                "firewall.{0}.network='lan' 'guest'\n").format(new)
    uci("commit")
    assert uci.file("firewall").endswith("\nconfig zone\n\toption name 'lan'\n\tlist network 'lan'\n\tlist network 'guest'\n\n")


VALUES = ["it's", 'a "b"', "$HOME", "C:\\temp\\new \\\\ end\\", "with  spaces", "x=y;z # not a comment", "h\u00e9llo \u20ac",
          "tab\there", "two\nlines", ""]


def sh_quote(value):
    return "'" + value.replace("'", "'\\''") + "'"


def test_values_survive_batch_show_get_and_commit(uci):
    uci.seed(network=NETWORK)
    values = [v for v in VALUES if v]
    batch = "".join("set network.wan1.v%d=%s\n" % (i, sh_quote(v)) for i, v in enumerate(values))
    # Double quotes and backslashes as a shell would read them, too.
    batch += 'set network.wan1.dq="a \\"b\\" \\\\ \\$HOME it\'s"\nset network.wan1.bare=it\\\'s\\ bare\n'
    assert uci("batch", stdin=batch) == ""
    expected = values + ['a "b" \\ $HOME it\'s', "it's bare"]
    names = ["v%d" % i for i in range(len(values))] + ["dq", "bare"]

    def check():
        for name, value in zip(names, expected):
            assert uci("get", "network.wan1." + name) == value + "\n"
            assert uci("show", "network.wan1." + name) == "network.wan1.%s=%s\n" % (name, sh_quote(value))

    check()
    changes = uci("changes")
    assert "network.wan1.v0='it'\\''s'\n" in changes and "network.wan1.v8='two\nlines'\n" in changes
    uci("commit")
    assert "\toption v0 'it'\\''s'\n" in uci.file("network")
    check()
    # The same values as plain arguments, without batch.
    for i, value in enumerate(values):
        assert uci("set", "network.wan1.w%d=%s" % (i, value)) == ""
        assert uci("get", "network.wan1.w%d" % i) == value + "\n"
    assert uci("set", "network.wan1.w0=") == "" and uci.fails("get", "network.wan1.w0")[0] == 1


def test_list_members_with_blanks_are_quoted_by_get(uci):
    uci.seed(network=NETWORK)
    for member in ("a b", "c", "it's"):
        uci("add_list", "network.wan1.l=" + member)
    assert uci("get", "network.wan1.l") == "'a b' c it's\n"
    assert uci("show", "network.wan1.l") == "network.wan1.l='a b' 'c' 'it'\\''s'\n"
    assert uci("-d", ",", "get", "network.wan1.l") == "'a b',c,it's\n"


def test_delete_an_option_and_a_section(uci):
    uci.seed(network=NETWORK + "\nconfig interface 'wan2'\n\toption proto 'dhcp'\n")
    assert uci("delete", "network.wan1.device") == ""
    assert uci("delete", "network.wan2") == ""
    assert uci("changes") == "-network.wan1.device\n-network.wan2\n"
    assert uci("show", "network") == "network.wan1=interface\nnetwork.wan1.proto='static'\nnetwork.wan1.multipath='master'\n"
    assert uci.fails("get", "network.wan2") == (1, "uci: Entry not found\n")
    assert uci.fails("delete", "network.wan2") == (1, "uci: Entry not found\n")
    assert uci.fails("delete", "network.wan1.device") == (1, "uci: Entry not found\n")
    # An empty value deletes too, and setting a missing option to nothing is no change.
    assert uci("set", "network.wan1.multipath=") == "" and uci("set", "network.wan1.nothing=") == ""
    assert uci("changes", "network").splitlines()[-1] == "-network.wan1.multipath"
    uci("commit", "network")
    assert uci.file("network") == "\nconfig interface 'wan1'\n\toption proto 'static'\n\n"


def test_changes_keep_their_order_within_a_package_and_list_packages_by_name(uci):
    uci.seed(network=NETWORK, firewall=FIREWALL, shadowsocks_libev="config server 'sss0'\n")
    uci("set", "network.wan1.proto=dhcp")
    uci("add_list", "firewall.zone_wan.network=wan2")
    uci("set", "shadowsocks-libev.sss0.server_port=65101")
    uci("del_list", "firewall.zone_wan.network=wan1")
    uci("set", "network.wan1.metric=10")
    assert uci("changes") == ("firewall.zone_wan.network+='wan2'\nfirewall.zone_wan.network-='wan1'\n"
                              "network.wan1.proto='dhcp'\nnetwork.wan1.metric='10'\n"
                              "shadowsocks-libev.sss0.server_port='65101'\n")
    assert uci("changes", "network") == "network.wan1.proto='dhcp'\nnetwork.wan1.metric='10'\n"
    assert uci("commit", "firewall") == "" and uci("changes").startswith("network.")
    assert uci("get", "firewall.zone_wan.network") == "wan2\n"


def test_revert_a_package_a_section_or_an_option(uci):
    uci.seed(network=NETWORK, firewall=FIREWALL)
    uci("batch", stdin="set network.wan1.proto=dhcp\nset network.wan1.metric=10\nset network.wan2=interface\n"
                       "set firewall.zone_wan.input=REJECT\n")
    assert uci("revert", "network.wan1.metric") == ""
    assert uci("changes", "network") == "network.wan1.proto='dhcp'\nnetwork.wan2='interface'\n"
    assert uci("revert", "network.wan2") == "" and uci("changes", "network") == "network.wan1.proto='dhcp'\n"
    assert uci("revert", "network") == "" and uci("changes") == "firewall.zone_wan.input='REJECT'\n"
    assert uci("get", "network.wan1.proto") == "static\n"
    assert uci.fails("revert", "nosuch") == (1, "uci: Entry not found\n")


@pytest.mark.parametrize("args", [
    ["set", "network.wan-2=interface"],
    ["set", "network.wan-2.proto=dhcp"],
    ["set", "network.wan1.pro-to=dhcp"],
    ["set", "network.wan1.proto.x=dhcp"],
    ["set", "network.wan1=inter-face"],
    ["set", "net work.wan1.proto=dhcp"],
    ["set", "network..proto=dhcp"],
    ["set", "network.wan1.proto=a\x01b"],
    ["get", "network.@interface[x]"],
    ["add_list", "network.wan1.d ns=1.1.1.1"],
    ["rename", "network.wan1=wan-1"],
], ids=" ".join)
def test_invalid_names_are_rejected(uci, args):
    uci.seed(network=NETWORK)
    assert uci.fails(*args) == (1, "uci: Invalid argument\n")
    assert uci("changes") == "" and uci("-q", "get", "network.wan1.proto") == "static\n"


def test_show_without_arguments_shows_every_package_by_name(uci):
    uci.seed(network=NETWORK, firewall=FIREWALL, dhcp="", shadowsocks_libev="config server 'sss0'\n")
    (uci.conf / "notes.txt").write_text("not a package")
    (uci.conf / "subdir").mkdir()
    uci("set", "dhcp.lan=dhcp")
    assert uci("show") == ("dhcp.lan=dhcp\n" + uci("show", "firewall") + uci("show", "network")
                           + "shadowsocks-libev.sss0=server\n")
    assert uci("export").count("package ") == 4


def test_lists_and_options_turn_into_each_other(uci):
    uci.seed(network=NETWORK, firewall=FIREWALL)
    # add_list on a plain option: a list of the old value and the new one.
    assert uci("add_list", "network.wan1.device=eth2") == ""
    assert uci("get", "network.wan1.device") == "eth1 eth2\n"
    assert uci("show", "network.wan1.device") == "network.wan1.device='eth1' 'eth2'\n"
    # set on a list: a plain option again, in the same place.
    assert uci("set", "firewall.zone_wan.network=wan3") == ""
    assert uci("show", "firewall.zone_wan") == "firewall.zone_wan=zone\nfirewall.zone_wan.name='wan'\nfirewall.zone_wan.network='wan3'\n"
    # del_list removes every match; on a plain option it changes and records nothing.
    uci("add_list", "network.wan1.device=eth1")
    assert uci("del_list", "network.wan1.device=eth1") == "" and uci("get", "network.wan1.device") == "eth2\n"
    assert uci("del_list", "firewall.zone_wan.network=wan3") == ""
    assert uci("changes") == ("firewall.zone_wan.network='wan3'\nnetwork.wan1.device+='eth2'\n"
                              "network.wan1.device+='eth1'\nnetwork.wan1.device-='eth1'\n")
    uci("commit")
    assert "\tlist device 'eth2'\n" in uci.file("network") and "\toption network 'wan3'\n" in uci.file("firewall")


def test_batch_reports_failures_and_exits_zero(uci):
    uci.seed(network=NETWORK)
    batch = ("get\nbogus network\nset network.wan1.a=1 extra words\nget network.nosuch\n"
             "set network.wan1.b=2 ; set network.wan1.c=3\n  # indented comment\nbatch\n"
             "EXIT\nset network.wan1.d=4\n")
    result = uci.run("batch", stdin=batch)
    assert result.returncode == 0 and result.stdout == b""
    assert result.stderr.decode() == "Unknown command\nUnknown command\nToo many arguments\nuci: Entry not found\nUnknown command\n"
    # ";" ends a command (the rest of the line is dropped); nothing runs after exit.
    assert uci("changes") == "network.wan1.b='2'\n"
    quiet = uci.run("-q", "batch", stdin="bogus\nget network.nosuch\n")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")


def test_missing_packages_and_usage(uci):
    uci.seed(network=NETWORK)
    for args in (["show", "nosuch"], ["get", "nosuch.a.b"], ["set", "nosuch.a=b"], ["export", "nosuch"]):
        assert uci.fails(*args) == (1, "uci: Entry not found\n"), args
    # uci add returns libuci's error code, not 1: 3 is "not found".
    assert uci.fails("add", "nosuch", "zone") == (3, "uci: Entry not found\n")
    rc, out = uci.fails("bogus")
    assert rc == 255 and out.startswith("Usage: uci")
    assert uci.fails("get")[0] == 255
    assert uci.run().returncode == 0


def test_rename_and_reorder(uci):
    uci.seed(network=NETWORK + "\nconfig interface 'wan2'\n\toption proto 'dhcp'\n")
    assert uci("rename", "network.wan1.device=ifname") == "" and uci("rename", "network.wan2=wan3") == ""
    assert uci("reorder", "network.wan3=0") == ""
    assert uci("show", "network") == ("network.wan3=interface\nnetwork.wan3.proto='dhcp'\nnetwork.wan1=interface\n"
                                      "network.wan1.proto='static'\nnetwork.wan1.ifname='eth1'\nnetwork.wan1.multipath='master'\n")
    assert uci("changes") == "network.wan1.device='ifname'\nnetwork.wan2='wan3'\nnetwork.wan3='0'\n"


def test_the_script_is_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (make setup)")
    result = subprocess.run(["shellcheck", "-s", "sh", UCI], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert result.returncode == 0, result.stdout.decode()
