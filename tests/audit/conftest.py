"""Audit fixtures: the same tests check Molecule's containers and real VPSes and routers.

Run against an inventory:  .venv/bin/python tests/audit/run.py -i inventory/   (docs/fleet.md)
or by hand:                pytest tests/audit/test_vps.py --hosts='ansible://omr_vps' --ansible-inventory=inventory/
Expected values are the role defaults overlaid with the host's inventory variables: from the
runner (--audit-hostvars, templates resolved) or from testinfra's ansible backend.
"""
import os
import sys

import pytest
import testinfra
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PODMAN_CONNECTIONS = ("containers.podman.podman", "podman")
# test_router.py parses on the controller with the collection's own parsers.
COLLECTIONS = os.path.join(ROOT, ".collections")
if os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "omr", "deploy")) and COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from audit_plugin import given_hostvars  # noqa: E402  pylint: disable=wrong-import-position


def _role_defaults(role):
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@pytest.fixture(scope="module")
def hostvars(request, _testinfra_host):
    given = given_hostvars(request.config)
    if given is not None:
        return given
    backend = _testinfra_host.backend
    return backend.get_variables() if backend.NAME == "ansible" else {}


@pytest.fixture(scope="module")
def host(_testinfra_host, hostvars):
    # testinfra's ansible backend has no podman mapping and would run every command as an
    # ad-hoc ansible call; podman exec is the same shell, much faster. (The runner passes
    # podman:// itself.)
    if _testinfra_host.backend.NAME == "ansible" and hostvars.get("ansible_connection") in PODMAN_CONNECTIONS:
        return testinfra.get_host("podman://" + hostvars.get("ansible_host", hostvars["inventory_hostname"]))
    return _testinfra_host


@pytest.fixture(scope="module")
def vps(hostvars):
    """The omr_vps_* values this host should have."""
    expected = _role_defaults("vps")
    expected.update({k: v for k, v in hostvars.items() if k.startswith("omr_vps_")})
    return expected


@pytest.fixture(scope="module")
def routers_only(hostvars):
    """test_router.py's checks are for omr_router hosts (pytest tests/audit on VPSes skips them)."""
    groups = hostvars.get("group_names")
    if groups is not None and "omr_router" not in groups:
        pytest.skip("not in omr_router")


@pytest.fixture(scope="module")
def router(hostvars):
    """The omr_router_* values this host should have."""
    expected = _role_defaults("router")
    expected.update({k: v for k, v in hostvars.items() if k.startswith("omr_router_")})
    return expected
