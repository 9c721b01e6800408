# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OMR stand-in's shell (lab/omr/): every script passes shellcheck as POSIX sh (busybox ash
runs them), its seeded /etc/config files read as UCI, and the image recipe keeps Python out. The
lab scenario shows them working (molecule/lab/checks/omr.yml)."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _uci as u

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OMR = os.path.join(ROOT, "lab", "omr")
SCRIPTS = ["uci", "reload_config", "init", "udhcpc.script", "mptcp.init", "openmptcprouter-vps.init"]


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed (make setup)")
@pytest.mark.parametrize("name", SCRIPTS)
def test_the_stand_in_scripts_pass_shellcheck_as_posix_sh(name):
    res = subprocess.run(["shellcheck", "-s", "sh", os.path.join(OMR, name)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(OMR, "config"))))
def test_the_seeded_configuration_is_uci_as_omr_first_boot_leaves_it(name):
    with open(os.path.join(OMR, "config", name), encoding="utf-8") as f:
        cfg, skipped = u.parse_export("package %s\n%s" % (name, f.read()))
    assert skipped == [] and cfg[name]


def test_first_boot_has_an_anonymous_wan_zone_and_an_unpaired_vps():
    with open(os.path.join(OMR, "config", "firewall"), encoding="utf-8") as f:
        cfg, _unused = u.parse_export("package firewall\n" + f.read())
    zone = u.find_section(cfg, "firewall", stype="zone", match={"name": "wan"})
    assert zone["anonymous"] and zone["position"] == "@zone[1]"
    with open(os.path.join(OMR, "config", "openmptcprouter"), encoding="utf-8") as f:
        cfg, _unused = u.parse_export("package openmptcprouter\n" + f.read())
    assert "password" not in u.find_section(cfg, "openmptcprouter", name="vps")["options"]


def test_the_image_recipe_has_no_python():
    with open(os.path.join(ROOT, "lab", "images", "packages-omr.txt"), encoding="utf-8") as f:
        packages = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert not [p for p in packages if "python" in p]
    with open(os.path.join(ROOT, "lab", "images", "build.sh"), encoding="utf-8") as f:
        assert "python3 is in the OMR stand-in" in f.read()
