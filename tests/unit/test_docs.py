"""The generated role references (roles/<role>/README.md, from meta/argument_specs.yml and
meta/exports.yml by docs/role_readme.py) must be current: `make docs` regenerates them."""
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "docs", "role_readme.py")


def check(root):
    return subprocess.run([sys.executable, os.path.join(root, "docs", "role_readme.py"), "--check"],
                          capture_output=True, text=True, check=False)


def test_the_role_readmes_are_current():
    res = check(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_an_edited_argument_spec_makes_its_readme_stale(tmp_path):
    copy = tmp_path / "collection"
    shutil.copytree(os.path.join(ROOT, "roles"), copy / "roles")
    shutil.copytree(os.path.join(ROOT, "docs"), copy / "docs")
    assert check(str(copy)).returncode == 0
    spec_path = copy / "roles" / "router" / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["argument_specs"]["main"]["options"]["omr_router_lan_nat"]["description"] = "Something else."
    spec_path.write_text(yaml.safe_dump(spec))
    res = check(str(copy))
    assert res.returncode == 1 and "stale role README.md (run `make docs`): router" in res.stdout
    subprocess.run([sys.executable, str(copy / "docs" / "role_readme.py")], check=True, capture_output=True)
    assert "| `omr_router_lan_nat` | bool | `true` | Something else. |" in (copy / "roles" / "router" / "README.md").read_text()
    assert check(str(copy)).returncode == 0


def test_every_option_is_in_its_readme():
    for role in ("router", "vps", "wifi_bridge"):
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as f:
            options = yaml.safe_load(f)["argument_specs"]["main"]["options"]
        with open(os.path.join(ROOT, "roles", role, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        assert [name for name in options if "| `%s` |" % name not in readme] == []


def test_the_changelog_fragments_are_valid_and_changelog_md_is_current(tmp_path):
    tool = os.path.join(os.path.dirname(sys.executable), "antsibull-changelog")
    res = subprocess.run([tool, "lint"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr
    out = tmp_path / "CHANGELOG.md"
    subprocess.run([tool, "generate", "--output", str(out), "--output-format", "md"], cwd=ROOT, check=True,
                   capture_output=True)
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        assert f.read() == out.read_text(), "CHANGELOG.md is stale: run make docs"
