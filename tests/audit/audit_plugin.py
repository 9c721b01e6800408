"""pytest plugin of the fleet audit (tests/audit/run.py loads it with `-p audit_plugin`).

- `--audit-hostvars FILE`: the host's variables as the runner resolved them from the inventory
  (JSON: inventory_hostname, group_names, the connection variables and the roles' omr_* variables,
  secrets left out). conftest.py's `hostvars` fixture reads them; other check directories can use
  the `audit_hostvars` fixture.
- `--audit-waivers FILE`: waivers as dev-sec's `waivers.yaml`, keyed by check id (the test
  function's name):

      test_swappiness:
        justification: "the provider's kernel pins it"   # required
        expires: 2027-06-30                              # optional; the waiver applies until that day
        hosts: [vps1, omr_vps_cheap]                     # optional; host or group names, default all
        run: false                                       # optional; false: skipped, not run

  A waived check still runs (unless `run: false`): a failure is reported as xfail with the
  message "waived: <justification>" (JUnit: <skipped type="pytest.xfail">), a pass as a pass;
  either way the JUnit test case carries the property `waiver`. An expired waiver does not
  apply: the check counts as it comes out, with the property `waiver_expired`.
"""

import datetime
import json
import re

import pytest
import yaml

WAIVER_KEYS = ("justification", "expires", "expiration_date", "hosts", "run")
_CHECK_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WaiverError(ValueError):
    """A waivers file that cannot be used as it is (exit 4 in the runner)."""


def _date(value, where):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.datetime.strptime(str(value).strip(), "%Y-%m-%d").date()
    except ValueError:
        raise WaiverError("%s: %r is not a date (YYYY-MM-DD)" % (where, value)) from None


def parse_waivers(data, source="the waivers file"):
    """The waivers file's content -> {check id: {justification, expires, hosts, run}}."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WaiverError("%s must map check ids (test function names) to waivers, got %s"
                          % (source, type(data).__name__))
    waivers = {}
    for check, spec in data.items():
        where = "%s: waiver %s" % (source, check)
        if not isinstance(check, str) or not _CHECK_ID_RE.match(check):
            raise WaiverError("%s: %r is not a check id (a test function's name, e.g. test_swappiness)" % (source, check))
        if not isinstance(spec, dict):
            raise WaiverError("%s must be a mapping with a justification" % where)
        unknown = sorted(set(spec) - set(WAIVER_KEYS))
        if unknown:
            raise WaiverError("%s has unknown keys %s (allowed: %s)" % (where, ", ".join(map(str, unknown)), ", ".join(WAIVER_KEYS)))
        justification = spec.get("justification")
        if not isinstance(justification, str) or not justification.strip():
            raise WaiverError("%s has no justification: every waiver says why the check does not apply" % where)
        if "expires" in spec and "expiration_date" in spec:
            raise WaiverError("%s: give expires or expiration_date (InSpec's name), not both" % where)
        expires = spec.get("expires", spec.get("expiration_date"))
        hosts = spec.get("hosts")
        if isinstance(hosts, str):
            hosts = [hosts]
        if hosts is not None and (not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts)):
            raise WaiverError("%s: hosts must be a list of host or group names" % where)
        run = spec.get("run", True)
        if not isinstance(run, bool):
            raise WaiverError("%s: run must be true or false" % where)
        waivers[check] = {"justification": " ".join(justification.split()),
                          "expires": _date(expires, where + " expires") if expires is not None else None,
                          "hosts": hosts, "run": run}
    return waivers


def load_waivers(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise WaiverError("cannot read the waivers file %s: %s" % (path, exc.strerror or exc)) from None
    except yaml.YAMLError as exc:
        raise WaiverError("the waivers file %s is not YAML: %s" % (path, exc)) from None
    return parse_waivers(data, path)


def waiver_state(waiver, host, groups, today):
    """None when the waiver is not for this host; else 'active' or 'expired'."""
    if waiver["hosts"] is not None and not set(waiver["hosts"]) & ({host} | set(groups or ())):
        return None
    if waiver["expires"] is not None and today > waiver["expires"]:
        return "expired"
    return "active"


def check_id(item):
    """A test's check id: its function's name, without the parameters testinfra adds."""
    return getattr(item, "originalname", None) or item.name.split("[", 1)[0]


def pytest_addoption(parser):
    group = parser.getgroup("omr-audit", "omr.deploy fleet audit (tests/audit/run.py)")
    group.addoption("--audit-hostvars", dest="audit_hostvars", metavar="FILE",
                    help="the host's variables (JSON), as tests/audit/run.py resolved them")
    group.addoption("--audit-waivers", dest="audit_waivers", metavar="FILE",
                    help="waivers (YAML): {check id: {justification, expires, hosts, run}}")
    group.addoption("--audit-host", dest="audit_host", metavar="NAME",
                    help="the host's inventory name, for the waivers' hosts (default: from --audit-hostvars)")
    group.addoption("--audit-date", dest="audit_date", metavar="YYYY-MM-DD",
                    help="the day waivers expire against (default: today)")


_HOSTVARS = pytest.StashKey()
_WAIVERS = pytest.StashKey()
_APPLIED = pytest.StashKey()


def given_hostvars(config):
    """The variables --audit-hostvars gave, or None (e.g. pytest run by hand with ansible://)."""
    if _HOSTVARS in config.stash:
        return config.stash[_HOSTVARS]
    path = config.getoption("audit_hostvars", default=None)
    value = None
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
        except (OSError, ValueError) as exc:
            raise pytest.UsageError("--audit-hostvars %s: %s" % (path, exc)) from None
    config.stash[_HOSTVARS] = value
    return value


def pytest_configure(config):
    hostvars = given_hostvars(config) or {}
    path = config.getoption("audit_waivers", default=None)
    waivers = {}
    if path:
        try:
            waivers = load_waivers(path)
        except WaiverError as exc:
            raise pytest.UsageError(str(exc)) from None
    date = config.getoption("audit_date", default=None)
    try:
        today = _date(date, "--audit-date") if date else datetime.date.today()
    except WaiverError as exc:
        raise pytest.UsageError(str(exc)) from None
    host = config.getoption("audit_host", default=None) or hostvars.get("inventory_hostname") or ""
    config.stash[_WAIVERS] = (waivers, host, hostvars.get("group_names") or [], today)
    config.stash[_APPLIED] = []


@pytest.fixture(scope="session")
def audit_hostvars(pytestconfig):
    """The host's variables from tests/audit/run.py (None without --audit-hostvars)."""
    return given_hostvars(pytestconfig)


def pytest_collection_modifyitems(config, items):
    waivers, host, groups, today = config.stash[_WAIVERS]
    if not waivers:
        return
    for item in items:
        cid = check_id(item)
        waiver = waivers.get(cid)
        if waiver is None:
            continue
        state = waiver_state(waiver, host, groups, today)
        if state is None:
            continue
        expires = waiver["expires"].isoformat() if waiver["expires"] else ""
        config.stash[_APPLIED].append((state, cid, waiver["justification"], expires))
        if state == "expired":
            item.user_properties.append(("waiver_expired", "%s: %s" % (expires, waiver["justification"])))
            continue
        item.user_properties.append(("waiver", waiver["justification"]))
        if expires:
            item.user_properties.append(("waiver_expires", expires))
        reason = "waived: " + waiver["justification"]
        if waiver["run"]:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter, config):
    applied = config.stash.get(_APPLIED, [])
    if not applied:
        return
    terminalreporter.section("waivers")
    for state, cid, justification, expires in sorted(set(applied)):
        until = " (until %s)" % expires if expires else ""
        if state == "expired":
            terminalreporter.write_line("EXPIRED %s: waiver expired %s, not applied: %s" % (cid, expires, justification))
        else:
            terminalreporter.write_line("WAIVED  %s%s: %s" % (cid, until, justification))
