"""How the roles wire the monitoring concern: the converge record is written by a handler that every
change reaches (so a run that changes nothing writes nothing), node_exporter is configured before the
package starts it, and the concern is off by default and last."""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = ("vps", "router")


def load(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return yaml.safe_load(f)


def walk(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk(task.get(key))


def topics(value):
    return [value] if isinstance(value, str) else list(value or [])


@pytest.mark.parametrize("role", ROLES)
def test_every_import_notifies_the_roles_change_topic(role):
    for task in load("roles", role, "tasks", "main.yml"):
        assert topics(task.get("notify")) == ["omr_%s changed" % role], task["name"]


@pytest.mark.parametrize("role", ROLES)
def test_the_converge_record_listens_to_every_topic_the_role_notifies(role):
    # A task's own notify replaces the one its import gives (Ansible does not merge them): the record
    # must listen to those topics too, or a change that restarts something would go unrecorded.
    notified = {"omr_%s changed" % role}
    for name in os.listdir(os.path.join(ROOT, "roles", role, "tasks")):
        for task in walk(load("roles", role, "tasks", name)):
            notified.update(topics(task.get("notify")))
    handlers = load("roles", role, "handlers", "main.yml")
    record = [h for h in handlers if h["name"] == "Record the converge for node_exporter"]
    directory = [h for h in handlers if h["name"] == "Create the textfile directory for the converge record"]
    assert len(record) == len(directory) == 1
    assert set(topics(record[0]["listen"])) == notified
    assert set(topics(directory[0]["listen"])) == notified
    # Last, after every restart, and only where the concern runs.
    assert handlers[-2:] == directory + record
    assert "monitoring_enabled" in record[0]["when"]
    assert "omr.deploy.converge_metrics(role='%s')" % role in record[0]["ansible.builtin.copy"]["content"]


def concern(role):
    tasks = list(walk(load("roles", role, "tasks", "monitoring.yml")))
    return dict((t["name"], i) for i, t in enumerate(tasks)), tasks


@pytest.mark.parametrize("role", ROLES)
def test_node_exporter_is_configured_before_its_package_starts_it(role):
    # Debian's package starts the exporter as it installs it; with its own empty ARGS it would listen
    # on every address, the public one included.
    index, tasks = concern(role)
    configure = [i for name, i in index.items() if name.startswith("Configure node_exporter")][0]
    task = tasks[configure]
    # One copy, or the vps role's omr.deploy.files with the drop-in beside it.
    written = task["omr.deploy.files"]["files"] if "omr.deploy.files" in task else [
        dict(task["ansible.builtin.copy"], path=task["ansible.builtin.copy"]["dest"])]
    config = [f for f in written if f["path"] == "/etc/default/prometheus-node-exporter"][0]
    assert "__omr_%s_monitoring_plan.environment" % role in config["content"]
    assert configure < index["Install node_exporter"]
    assert configure <= index.get("Keep node_exporter retrying until its address exists", configure)
    # The textfile has no timestamp; the first converge record is written only where there is none.
    first = tasks[index["Record a first converge"]]["ansible.builtin.copy"]
    assert first["force"] is False


@pytest.mark.parametrize("role", ROLES)
def test_the_concern_is_off_by_default_last_and_tagged(role):
    defaults = load("roles", role, "defaults", "main.yml")
    assert defaults["omr_%s_monitoring_enabled" % role] is False
    assert defaults["omr_%s_monitoring_listen" % role] == "127.0.0.1:9100"
    last = load("roles", role, "tasks", "main.yml")[-1]
    assert last["ansible.builtin.import_tasks"] == "monitoring.yml"
    assert last["tags"] == ["omr_%s_monitoring" % role]
    assert last["when"] == "omr_%s_monitoring_enabled | bool" % role


def test_an_omr_router_is_left_to_omr():
    index, tasks = concern("router")
    said = tasks[index["Say an OMR router is left to OMR"]]
    assert said["when"] == "omr_router_backend == 'openwrt'"
    block = tasks[index["Run node_exporter on the Debian router"]]
    assert block["when"] == "omr_router_backend == 'linux'"
    assert len(block["block"]) == len(tasks) - 2
