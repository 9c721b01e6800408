"""What an execution environment built with omr.deploy gets from it: `ansible-builder introspect`,
the step `ansible-builder build` runs, on the built and installed collection. Guards against the
development tool chain (requirements.txt: molecule, testinfra, pinned paramiko and jinja2, ...)
going into every EE, and against meta/ee-*.txt not reaching the tarball. Offline: --no-deps."""
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
META = ("meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt")
# Named here, not left to ansible-builder's own exclusion list: that list drops molecule and pytest
# but not molecule-plugins, pytest-testinfra, paramiko, jinja2 or ruff.
DEV_TOOLS = {"molecule", "molecule-plugins", "pytest", "pytest-testinfra", "testinfra", "paramiko", "jinja2",
             "ansible-lint", "yamllint", "ruff", "antsibull-changelog", "ansible-builder"}


def entries(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


def introspect(collections):
    """The Python and system requirements introspect lists, and the collections they came from."""
    res = subprocess.run([os.path.join(BIN, "ansible-builder"), "introspect", "--sanitize", str(collections)],
                         check=True, capture_output=True, text=True)
    data = yaml.safe_load(res.stdout)
    # Each line is "<requirement>  # from collection <name>".
    lines = {kind: [line.split("  # from collection ") for line in data[kind]] for kind in ("python", "system")}
    reqs = {kind: [pair[0] for pair in pairs] for kind, pairs in lines.items()}
    return reqs, {pair[1] for pairs in lines.values() for pair in pairs}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ee")
    galaxy = os.path.join(BIN, "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp), ROOT], check=True,
                   capture_output=True, cwd=ROOT)
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        tarball = tmp / ("omr-deploy-%s.tar.gz" % yaml.safe_load(f)["version"])
    # --force: `make collection` links this checkout as the same omr.deploy on the configured
    # paths, and galaxy would skip the install as done.
    subprocess.run([galaxy, "collection", "install", "--offline", "--no-deps", "--force", "-p",
                    str(tmp / "collections"), str(tarball)], check=True, capture_output=True, cwd=ROOT)
    return tarball, tmp / "collections"


def test_the_tarball_carries_the_ee_metadata_and_not_the_tool_chain(built):
    with tarfile.open(str(built[0])) as tar:
        names = tar.getnames()
    for kept in META:
        assert kept in names, kept
    # Without meta/execution-environment.yml, ansible-builder reads these two from the root.
    assert "requirements.txt" not in names and "bindep.txt" not in names


def test_introspect_lists_only_what_meta_declares(built):
    reqs, sources = introspect(built[1])
    assert sources <= {"omr.deploy"}
    assert not {Requirement(req).name.lower() for req in reqs["python"]} & DEV_TOOLS, reqs["python"]
    assert reqs["python"] == entries("meta/ee-requirements.txt")
    assert reqs["system"] == entries("meta/ee-bindep.txt")
    assert reqs["system"], "nothing to reach the hosts with"


def test_without_the_metadata_introspect_takes_the_tool_chain(built, tmp_path):
    # The negative control: the same collection with a root requirements.txt and no
    # meta/execution-environment.yml, as in a checkout, hands the tool chain to every EE.
    collection = tmp_path / "ansible_collections" / "omr" / "deploy"
    os.makedirs(str(collection))
    shutil.copy(str(built[1] / "ansible_collections" / "omr" / "deploy" / "MANIFEST.json"), str(collection))
    shutil.copy(os.path.join(ROOT, "requirements.txt"), str(collection))
    names = {Requirement(req).name.lower() for req in introspect(tmp_path)[0]["python"]}
    assert {"paramiko", "jinja2", "pytest-testinfra", "ruff"} <= names, names
