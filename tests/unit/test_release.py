"""Release hygiene: the built collection leaves the lab, the bench, the scenarios and any venv out,
and galaxy.yml holds no placeholder and no dependency the roles do not use."""
import os
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_built_collection_holds_only_the_collection(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), ROOT], check=True,
                   capture_output=True, cwd=ROOT)
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        version = yaml.safe_load(f)["version"]
    with tarfile.open(str(tmp_path / ("omr-deploy-%s.tar.gz" % version))) as tar:
        names = tar.getnames()
    for left_out in ("lab/", "bench/", "molecule/", ".venv", ".collections", ".build/", ".cache/", ".config/"):
        assert not [n for n in names if n.startswith(left_out)], left_out
    assert not [n for n in names if "/.venv" in n or n.endswith(".tar.gz")]
    for kept in ("plugins/action/router_plan.py", "roles/router/files/omr-router-net.py", "roles/router/README.md",
                 "plugins/module_utils/_host.py", "README.md", "CHANGELOG.md", "changelogs/changelog.yaml",
                 "prometheus/omr-deploy.rules.yml", "prometheus/tests/links.yml"):
        assert kept in names, kept


def test_galaxy_metadata_has_no_placeholders():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    assert "example" not in str(meta.get("repository", ""))
    # Only what the `ansible` package carries: the VPS's VPN PKI is made with community.crypto.
    assert meta["dependencies"] == {"community.crypto": ">=2.0.0"}


def test_pre_commit_runs_the_four_linters_locally():
    with open(os.path.join(ROOT, ".pre-commit-config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    assert [r["repo"] for r in config["repos"]] == ["local"]
    assert [h["id"] for h in config["repos"][0]["hooks"]] == ["yamllint", "ansible-lint", "ruff", "shellcheck"]
