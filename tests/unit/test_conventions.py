"""House rules that ansible-lint cannot express (see .ansible-lint and CONTRIBUTING.md)."""
import ast
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")) if os.path.isdir(p))


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def walk_tasks(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key))


@pytest.mark.parametrize("role", ROLES)
def test_role_has_commented_defaults_and_argument_specs(role):
    base = os.path.join(ROOT, "roles", role)
    with open(os.path.join(base, "defaults", "main.yml"), encoding="utf-8") as f:
        text = f.read()
    assert text.count("\n#") >= 3, "defaults/main.yml must explain its variables"
    specs = load(os.path.join(base, "meta", "argument_specs.yml"))["argument_specs"]
    assert "main" in specs


@pytest.mark.parametrize("role", ROLES)
def test_variable_prefixes(role):
    base = os.path.join(ROOT, "roles", role)
    public, internal = "omr_%s_" % role, "__omr_%s_" % role
    defaults = load(os.path.join(base, "defaults", "main.yml")) or {}
    assert all(k.startswith(public) for k in defaults), [k for k in defaults if not k.startswith(public)]
    vars_file = os.path.join(base, "vars", "main.yml")
    if os.path.exists(vars_file):
        internals = load(vars_file) or {}
        assert all(k.startswith(internal) for k in internals), [k for k in internals if not k.startswith(internal)]
    options = load(os.path.join(base, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    assert all(k.startswith(public) for k in options)
    # Every default is documented and validated, and every option has a default or is required.
    assert set(defaults) <= set(options), set(defaults) - set(options)
    for name, spec in options.items():
        assert name in defaults or spec.get("required"), name + " has neither a default nor required: true"
    for path in glob.glob(os.path.join(base, "tasks", "*.yml")):
        for task in walk_tasks(load(path)):
            registered = [task["register"]] if "register" in task else []
            for name in registered:
                assert name.startswith(internal), "%s: %s" % (os.path.basename(path), name)
            # set_fact may also export a documented public fact (omr_<role>_*), e.g. an allocation, or
            # move the connection (ansible_port: OMR's installer moves sshd).
            for name in task.get("ansible.builtin.set_fact", {}) or {}:
                if name not in ("cacheable", "ansible_port"):
                    assert name.startswith((internal, public)), "%s: %s" % (os.path.basename(path), name)


@pytest.mark.parametrize("role", ROLES)
def test_main_imports_one_tagged_file_per_concern(role):
    tasks = load(os.path.join(ROOT, "roles", role, "tasks", "main.yml"))
    for task in tasks:
        assert "ansible.builtin.import_tasks" in task, task.get("name")
        assert task.get("tags"), task.get("name") + " has no tag"


MODULES = sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")))


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_modules_are_documented(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    for name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        assert name in assigned, name
        doc = yaml.safe_load(assigned[name].value)
        assert doc, name + " is empty"


FILTERS = sorted(glob.glob(os.path.join(ROOT, "plugins", "filter", "*.py")))


@pytest.mark.parametrize("path", FILTERS, ids=os.path.basename)
def test_one_filter_per_file_with_its_own_documentation(path):
    # ansible-doc shows a file's DOCUMENTATION for every filter the file holds: one each, or the
    # others show the wrong text.
    name = os.path.basename(path)[:-3]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert yaml.safe_load(assigned["DOCUMENTATION"].value)["name"] == name
    filters = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "filters"]
    returned = [n.value for n in ast.walk(filters[0]) if isinstance(n, ast.Return)][0]
    assert [k.value for k in returned.keys] == [name]
    assert not glob.glob(os.path.join(ROOT, "plugins", "filter", "*.yml")), "sidecar docs shadow the file's"


def _scenario_names(path):
    """In one playbook or task file: the names a task registers or set_facts (host facts that
    outlive the play) and the names plays and tasks declare as vars (both lists of (name, where))."""
    data = load(path) or []
    facts, declared = [], []
    where = os.path.relpath(path, ROOT)
    plays = [item for item in data if isinstance(item, dict) and ("tasks" in item or "hosts" in item)]
    loose = [item for item in data if isinstance(item, dict) and item not in plays]
    tasks = list(walk_tasks(loose))
    for play in plays:
        declared += [(name, where) for name in (play.get("vars") or {})]
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            tasks += list(walk_tasks(play.get(key)))
    for task in tasks:
        declared += [(name, where) for name in (task.get("vars") or {})]
        if task.get("register"):
            facts.append((task["register"], where))
        for module in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(module), dict):
                facts += [(name, where) for name in task[module] if name != "cacheable"]
    return facts, declared


def test_lab_checks_never_shadow_a_var_with_a_host_fact():
    """A registered or set_fact'd name outranks play and task vars for the rest of the scenario:
    a later check's `vars: {__omr_key: ...}` would silently read an earlier check's result (it
    did: lan.yml's registered __omr_key made omr.yml's "key never shown" compare the wrong text)."""
    paths = sorted(glob.glob(os.path.join(ROOT, "molecule", "*", "checks", "*.yml"))
                   + glob.glob(os.path.join(ROOT, "molecule", "*", "*.yml"))
                   + glob.glob(os.path.join(ROOT, "molecule", "shared", "**", "*.yml"), recursive=True)
                   + glob.glob(os.path.join(ROOT, "lab", "tasks", "*.yml")))
    facts, declared = {}, {}
    for path in paths:
        f, d = _scenario_names(path)
        for name, where in f:
            facts.setdefault(name, set()).add(where)
        for name, where in d:
            declared.setdefault(name, set()).add(where)
    clashes = {name: (sorted(facts[name]), sorted(declared[name])) for name in set(facts) & set(declared)}
    assert not clashes, "registered/set_fact in ... and declared as vars in ...: %s" % clashes
