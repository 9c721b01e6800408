"""Audit fixtures: the same tests check Molecule's containers and real VPSes.

Run against an inventory:  pytest tests/audit --hosts='ansible://omr_vps' --ansible-inventory=inventory/
Expected values are the role defaults overlaid with the host's inventory variables.
"""
import os

import pytest
import testinfra
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PODMAN_CONNECTIONS = ("containers.podman.podman", "podman")


def _role_defaults(role):
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@pytest.fixture(scope="module")
def hostvars(_testinfra_host):
    backend = _testinfra_host.backend
    return backend.get_variables() if backend.NAME == "ansible" else {}


@pytest.fixture(scope="module")
def host(_testinfra_host, hostvars):
    # testinfra's ansible backend has no podman mapping and would run every command as an
    # ad-hoc ansible call; podman exec is the same shell, much faster.
    if hostvars.get("ansible_connection") in PODMAN_CONNECTIONS:
        return testinfra.get_host("podman://" + hostvars.get("ansible_host", hostvars["inventory_hostname"]))
    return _testinfra_host


@pytest.fixture(scope="module")
def vps(hostvars):
    """The omr_vps_* values this host should have."""
    expected = _role_defaults("vps")
    expected.update({k: v for k, v in hostvars.items() if k.startswith("omr_vps_")})
    return expected
