"""Fleet audit: the checks of tests/audit against every host of some inventory groups.

  .venv/bin/python tests/audit/run.py -i inventory/ [-g omr_vps,omr_router] [-j 4] [-o .cache/audit]
                                      [-t 10] [--waivers waivers.yml]
  make audit INVENTORY=inventory/ GROUP=omr_vps,omr_router JOBS=4 OUT=.cache/audit TIMEOUT=10 WAIVERS=...

Lists the groups' hosts with `ansible-inventory --list` (templated variables resolved by
tests/audit/hostvars.yml, which connects to nothing), picks each host's checks by its groups
(omr_vps: test_vps.py, omr_router: test_router.py; generally test_<group>.py or, for omr_<x>,
test_<x>.py in --checks), probes each host once as the checks will reach it (podman/docker exec,
ssh with ConnectTimeout and BatchMode, local always), and runs one pytest process per reachable
host, --jobs at a time, each writing OUT/<host>.xml (JUnit) and OUT/<host>.log. An unreachable host
is reported once, as unreachable, and gets no pytest run. OUT/summary.json and OUT/summary.txt
sum it up.

Exit codes, the first that applies:
  4  usage error: bad arguments, an inventory ansible-inventory cannot read, a group without
     hosts, no checks for any host, a missing or invalid waivers file (nothing was run);
  2  a host was unreachable (also when others were non-compliant);
  1  a host was non-compliant: a check failed that no waiver covers (or its pytest run broke);
  0  every host compliant; a waived failure counts as compliant.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from audit_plugin import WaiverError, load_waivers  # noqa: E402  pylint: disable=wrong-import-position

EXIT_COMPLIANT, EXIT_NON_COMPLIANT, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2, 4
HOSTVARS_PLAYBOOK = os.path.join(HERE, "hostvars.yml")
# ansible_connection -> how the checks reach the host (testinfra's backend).
CONNECTIONS = {
    "ssh": "ssh", "smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh",
    "ansible.builtin.ssh": "ssh", "ansible.legacy.ssh": "ssh", "ansible.builtin.paramiko_ssh": "ssh",
    "local": "local", "ansible.builtin.local": "local", "ansible.legacy.local": "local",
    "podman": "podman", "containers.podman.podman": "podman",
    "docker": "docker", "community.docker.docker": "docker",
}
CONNECTION_VARS = (
    "ansible_connection", "ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port",
    "ansible_user", "ansible_ssh_user", "ansible_ssh_private_key_file", "ansible_private_key_file",
    "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_become", "ansible_become_user",
)
ROLE_PREFIXES = ("omr_vps_", "omr_router_", "omr_wifi_bridge_")
# Secrets (and key material) never reach the checks: left out by name, nested ones too.
SECRET_RE = re.compile(r"(^|_)(key|password|passwd|passphrase|psk|token|secret|tls_crypt|cert|ca)$")
# ssh's own multiplexing options are the runner's (one master per host, closed after its run).
SSH_OWN_OPTIONS = ("controlmaster", "controlpath", "controlpersist", "batchmode", "connecttimeout")
SSH_FLAG_OPTIONS = {"-C": "Compression yes", "-q": "LogLevel QUIET", "-4": "AddressFamily inet",
                    "-6": "AddressFamily inet6", "-A": "ForwardAgent yes", "-a": "ForwardAgent no",
                    "-X": None, "-x": None, "-T": None, "-t": None, "-n": None, "-N": None, "-v": None}
SSH_VALUE_OPTIONS = {"-J": "ProxyJump", "-i": "IdentityFile", "-p": "Port", "-l": "User", "-F": "Include"}


class UsageError(Exception):
    """Something the caller must fix before any host is audited (exit 4)."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


# ---- inventory --------------------------------------------------------------------------------

def plain(value):
    """ansible-inventory's JSON with ansible-core 2.19's {"__ansible_unsafe": ...} unwrapped."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return plain(value["__ansible_unsafe"])
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def needs_template(value):
    """Whether Ansible would template the value: a plain (not unsafe) string with Jinja, or a
    vaulted value."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return False
        if "__ansible_vault" in value:
            return True
        return any(needs_template(v) for v in value.values())
    if isinstance(value, list):
        return any(needs_template(v) for v in value)
    return False


def without_secrets(value):
    if isinstance(value, dict):
        return dict((k, without_secrets(v)) for k, v in value.items() if not (isinstance(k, str) and SECRET_RE.search(k)))
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def wanted(name):
    return name in CONNECTION_VARS or (name.startswith(ROLE_PREFIXES) and not SECRET_RE.search(name))


def group_members(listing, group, seen=None):
    """The hosts of a group and of its children, in inventory order."""
    seen = set() if seen is None else seen
    if group in seen:
        return []
    seen.add(group)
    entry = listing.get(group) or {}
    hosts = list(entry.get("hosts") or [])
    for child in entry.get("children") or []:
        hosts += group_members(listing, child, seen)
    out = []
    for host in hosts:
        if host not in out:
            out.append(host)
    return out


def tool_env():
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_CONFIG", os.path.join(ROOT, "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".collections"))
    # A source that fails to parse is an error, not an empty inventory that "passes" (docs/fleet.md).
    env.setdefault("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
    env.setdefault("ANSIBLE_LOCALHOST_WARNING", "false")
    env.setdefault("ANSIBLE_NOCOLOR", "true")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _tail(text, lines=3):
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(kept[-lines:])


def list_inventory(sources, env):
    cmd = ["ansible-inventory", "--list"]
    for source in sources:
        cmd += ["-i", source]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError("ansible-inventory failed: %s" % exc) from None
    if res.returncode != 0:
        raise UsageError("ansible-inventory cannot read %s: %s" % (", ".join(sources), _tail(res.stderr or res.stdout)))
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise UsageError("ansible-inventory printed no JSON for %s" % ", ".join(sources)) from None


def resolve_templates(sources, requests, env, tmpdir):
    """The templated variables `requests` ({host: [names]}) as Ansible resolves them
    (tests/audit/hostvars.yml: a play on localhost that connects to nothing) ->
    ({host: {name: value}}, {host: {name: error}})."""
    request_file = os.path.join(tmpdir, "hostvars-request.json")
    out_file = os.path.join(tmpdir, "hostvars-resolved.json")
    pairs = [[host, name] for host, names in sorted(requests.items()) for name in names]
    with open(os.open(request_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        json.dump({"omr_audit_pairs": pairs, "omr_audit_out": out_file}, f)
    cmd = ["ansible-playbook", HOSTVARS_PLAYBOOK, "-e", "@" + request_file]
    for source in sources:
        cmd += ["-i", source]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError("cannot resolve the hosts' variables: %s" % exc) from None
    if res.returncode != 0 or not os.path.exists(out_file):
        raise UsageError("ansible-playbook %s failed: %s" % (os.path.relpath(HOSTVARS_PLAYBOOK, ROOT), _tail(res.stderr or res.stdout)))
    with open(out_file, encoding="utf-8") as f:
        entries = plain(json.load(f))
    resolved, errors = {}, {}
    for entry in entries:
        if "error" in entry:
            error = " ".join(str(entry["error"]).split())
            error = error.split("Error while resolving value for 'omr_audit_value': ", 1)[-1]
            errors.setdefault(entry["host"], {})[entry["name"]] = error
        else:
            resolved.setdefault(entry["host"], {})[entry["name"]] = entry.get("value")
    return resolved, errors


def check_files(checks_dir, groups):
    files = []
    for group in groups:
        names = ["test_%s.py" % group]
        if group.startswith("omr_"):
            names.append("test_%s.py" % group[len("omr_"):])
        for name in names:
            path = os.path.join(checks_dir, name)
            if os.path.isfile(path) and path not in files:
                files.append(path)
    return files


def checks_by_group(checks_dir):
    return sorted(re.sub(r"^test_(.*)\.py$", r"\1", name) for name in os.listdir(checks_dir)
                  if re.match(r"^test_.*\.py$", name))


def _first(values, *names):
    for name in names:
        if values.get(name) not in (None, ""):
            return values[name]
    return None


def target_of(name, hostvars):
    """How the checks reach the host: {kind, address, user, port, key, ssh_args, sudo, sudo_user}."""
    connection = str(hostvars.get("ansible_connection") or "ssh")
    kind = CONNECTIONS.get(connection)
    if kind is None:
        raise UsageError("%s: ansible_connection %s is not one the audit can use (%s)"
                         % (name, connection, ", ".join(sorted(set(CONNECTIONS)))))
    target = {"kind": kind, "connection": connection,
              "address": str(_first(hostvars, "ansible_host", "ansible_ssh_host") or name),
              "user": _first(hostvars, "ansible_user", "ansible_ssh_user"),
              "port": _first(hostvars, "ansible_port", "ansible_ssh_port"),
              "key": _first(hostvars, "ansible_ssh_private_key_file", "ansible_private_key_file"),
              "ssh_args": " ".join(str(hostvars.get(k) or "") for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args")).strip(),
              "sudo": str(hostvars.get("ansible_become", False)).lower() in ("true", "yes", "1"),
              "sudo_user": hostvars.get("ansible_become_user")}
    if target["key"]:
        target["key"] = os.path.expanduser(str(target["key"]))
    if target["port"] is not None:
        try:
            target["port"] = int(target["port"])
        except (TypeError, ValueError):
            raise UsageError("%s: ansible_port %r is not a port number" % (name, target["port"])) from None
    return target


# ---- reaching a host --------------------------------------------------------------------------

def ssh_options(text):
    """ansible_ssh_common_args/extra_args -> ssh_config lines (testinfra's ssh backend takes an
    ssh config file, not extra arguments), and the words it could not translate."""
    try:
        words = shlex.split(text or "")
    except ValueError as exc:
        raise UsageError("ansible_ssh_common_args %r: %s" % (text, exc)) from None
    lines, unknown, i = [], [], 0
    while i < len(words):
        word = words[i]
        if word == "-o" or (word.startswith("-o") and len(word) > 2):
            value = word[2:] if len(word) > 2 else (words[i + 1] if i + 1 < len(words) else "")
            i += 1 if len(word) > 2 else 2
            key, _sep, rest = value.partition("=") if "=" in value.split(" ", 1)[0] else value.partition(" ")
            if key.strip().lower() not in SSH_OWN_OPTIONS:
                lines.append("%s %s" % (key.strip(), rest.strip()))
        elif word in SSH_VALUE_OPTIONS and i + 1 < len(words):
            lines.append("%s %s" % (SSH_VALUE_OPTIONS[word], words[i + 1]))
            i += 2
        elif word in SSH_FLAG_OPTIONS:
            if SSH_FLAG_OPTIONS[word]:
                lines.append(SSH_FLAG_OPTIONS[word])
            i += 1
        else:
            unknown.append(word)
            i += 1
    return lines, unknown


def write_ssh_config(path, name, target, control_dir):
    lines, unknown = ssh_options(target["ssh_args"])
    text = ["# tests/audit/run.py: how the audit reaches %s (from its inventory variables)" % name]
    text += lines
    text += ["BatchMode yes", "ControlPath %s/%%C" % control_dir,
             # -F skips the user's and the system's configuration: read them after ours.
             "Include ~/.ssh/config", "Include /etc/ssh/ssh_config"]
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    return unknown


def ssh_destination(target):
    return ("%s@" % target["user"] if target["user"] else "") + target["address"]


def probe_command(target, timeout):
    if target["kind"] in ("podman", "docker"):
        return [target["kind"], "exec"] + (["-u", str(target["user"])] if target["user"] else []) + [target["address"], "true"]
    cmd = ["ssh", "-F", target["ssh_config"], "-o", "ConnectTimeout=%d" % max(1, int(timeout)), "-o", "BatchMode=yes"]
    if target["port"]:
        cmd += ["-p", str(target["port"])]
    if target["key"]:
        cmd += ["-i", target["key"]]
    return cmd + [ssh_destination(target), "true"]


def probe(target, timeout, env):
    """None when the host answers as the checks will reach it, else why not."""
    if target["kind"] == "local":
        return None
    cmd = probe_command(target, timeout)
    try:
        # ConnectTimeout covers the TCP connect and the banner; a host that hangs later is cut here.
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2 * timeout + 5,
                             stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return "%s: no answer within %d s" % (target["kind"], 2 * timeout + 5)
    except OSError as exc:
        return "%s: %s" % (target["kind"], exc)
    if target["kind"] == "ssh" and res.returncode != 255:
        return None  # the remote shell ran
    if res.returncode == 0:
        return None
    why = _tail(res.stderr, 2) or "exit code %d" % res.returncode
    return why if why.startswith(target["kind"] + ":") else "%s: %s" % (target["kind"], why)


def hostspec(target, timeout):
    kind = target["kind"]
    if kind == "local":
        return "local://"
    user = "%s@" % target["user"] if target["user"] else ""
    if kind in ("podman", "docker"):
        return "%s://%s%s" % (kind, user, target["address"])
    address = "[%s]" % target["address"] if ":" in target["address"] else target["address"]
    port = ":%d" % target["port"] if target["port"] else ""
    return "ssh://%s%s%s?timeout=%d&controlpersist=60" % (user, address, port, max(1, int(timeout)))


# ---- one host -------------------------------------------------------------------------------

class Runner(object):
    def __init__(self, args, env, tmpdir):
        self.args = args
        self.env = env
        self.tmpdir = tmpdir
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = False

    def say(self, text):
        with self.lock:
            print(text, flush=True)

    def pytest_command(self, host, target, files, varsfile, junit):
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "audit_plugin", "-q", "--tb=short",
               "-rfEsx", "--color=no", "--junitxml=" + junit, "-o", "junit_suite_name=" + host,
               "--hosts=" + hostspec(target, self.args.timeout),
               "--audit-hostvars=" + varsfile, "--audit-host=" + host, "--audit-date=" + self.args.today]
        if target["kind"] == "ssh":
            cmd.append("--ssh-config=" + target["ssh_config"])
            if target["key"]:
                cmd.append("--ssh-identity-file=" + target["key"])
        if target["sudo"]:
            cmd.append("--sudo")
            if target["sudo_user"]:
                cmd.append("--sudo-user=" + str(target["sudo_user"]))
        if self.args.waivers:
            cmd.append("--audit-waivers=" + self.args.waivers)
        return cmd + files

    def run_pytest(self, cmd, log):
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join([HERE, os.path.join(ROOT, ".collections")]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PY_COLORS"] = "0"
        with open(log, "w", encoding="utf-8") as out:
            out.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
            out.flush()
            # A session of its own: a run cut by --host-timeout goes with its ssh master.
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=ROOT, start_new_session=True)
            with self.lock:
                self.procs.add(proc)
            try:
                return proc.wait(timeout=self.args.host_timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                return None
            finally:
                with self.lock:
                    self.procs.discard(proc)

    def close_ssh(self, target):
        """Ends the host's ssh master (testinfra's ControlPersist), so that nothing outlives the
        run and a probe afterwards connects anew."""
        if target["kind"] != "ssh":
            return
        cmd = ["ssh", "-F", target["ssh_config"], "-O", "exit"] + (["-p", str(target["port"])] if target["port"] else [])
        try:
            subprocess.run(cmd + [ssh_destination(target)], capture_output=True, env=self.env, timeout=10,
                           stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def audit(self, item):
        host, target = item["name"], item["target"]
        started = time.time()
        result = {"status": None, "groups": item["groups"], "connection": target["connection"],
                  "target": hostspec(target, self.args.timeout).split("?", 1)[0],
                  "checks": [os.path.relpath(f, self.args.checks) for f in item["files"]],
                  "passed": [], "failed": [], "waived": [], "expired_waivers": [], "skipped": [],
                  "junit": None, "log": None, "reason": None}
        if item.get("notes"):
            result["notes"] = list(item["notes"])
        junit = os.path.join(self.args.out, safe_name(host) + ".xml")
        log = os.path.join(self.args.out, safe_name(host) + ".log")
        for stale in (junit, log):
            if os.path.exists(stale):
                os.remove(stale)
        reason = probe(target, self.args.timeout, self.env)
        if reason is not None:
            result["status"], result["reason"] = "unreachable", reason
        elif self.stopping:
            result["status"], result["reason"] = "error", "interrupted"
        else:
            try:
                rc = self.run_pytest(self.pytest_command(host, target, item["files"], item["varsfile"], junit), log)
            finally:
                self.close_ssh(target)
            result["log"] = os.path.relpath(log, self.args.out)
            if os.path.exists(junit):
                result["junit"] = os.path.relpath(junit, self.args.out)
                result.update(read_junit(junit))
            if rc is None:
                result["status"], result["reason"] = "error", "pytest did not finish within %d s" % self.args.host_timeout
            elif rc in (0, 1) and result["junit"]:
                result["status"] = "compliant" if rc == 0 and not result["failed"] else "non-compliant"
            else:
                result["status"], result["reason"] = "error", "pytest exited %d: %s" % (rc, log_tail(log))
            if result["status"] != "compliant":
                # Checks that failed because the host went away are one unreachable host, not N failures.
                again = probe(target, self.args.timeout, self.env)
                if again is not None:
                    result["status"], result["reason"] = "unreachable", "became unreachable during the audit: " + again
        result["duration_s"] = round(time.time() - started, 1)
        self.say(host_line(host, result))
        return result

    def stop(self):
        self.stopping = True
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            kill_group(proc)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def safe_name(host):
    return re.sub(r"[^A-Za-z0-9._-]", "_", host)


def log_tail(path, lines=3):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return _tail(f.read(), lines)
    except OSError:
        return ""


def _message(element):
    text = (element.get("message") or element.text or "").strip()
    first = text.splitlines()[0] if text else ""
    return first[:300]


def read_junit(path):
    """A host's JUnit file -> passed, failed [{check, test, message}], waived, expired_waivers, skipped."""
    cases = {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"failed": [{"check": "junit", "test": os.path.basename(path), "message": "unreadable JUnit: %s" % exc}]}
    for case in root.iter("testcase"):
        name = case.get("name") or ""
        key = (case.get("classname") or "", name)
        entry = cases.setdefault(key, {"check": name.split("[", 1)[0], "test": "%s::%s" % key, "outcome": "passed",
                                       "message": "", "props": {}, "type": None})
        entry["props"].update((p.get("name"), p.get("value")) for p in case.iter("property"))
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            entry["outcome"], entry["message"] = "failed", _message(bad)
        elif skipped is not None and entry["outcome"] != "failed":
            waived = skipped.get("type") == "pytest.xfail" or (skipped.get("message") or "").startswith("waived: ")
            entry["outcome"] = "waived" if waived else "skipped"
            entry["message"], entry["type"] = _message(skipped), skipped.get("type")
    out = {"passed": [], "failed": [], "waived": [], "expired_waivers": [], "skipped": []}
    for entry in cases.values():
        props = entry["props"]
        if "waiver_expired" in props:
            expires, _sep, justification = props["waiver_expired"].partition(": ")
            out["expired_waivers"].append({"check": entry["check"], "expires": expires, "justification": justification,
                                           "outcome": entry["outcome"]})
        if entry["outcome"] == "passed":
            out["passed"].append(entry["check"])
            if "waiver" in props:
                out["waived"].append({"check": entry["check"], "justification": props["waiver"],
                                      "expires": props.get("waiver_expires"), "outcome": "passed"})
        elif entry["outcome"] == "failed":
            failed = {"check": entry["check"], "test": entry["test"], "message": entry["message"]}
            if "waiver_expired" in props:
                failed["waiver_expired"] = props["waiver_expired"].partition(": ")[0]
            out["failed"].append(failed)
        elif entry["outcome"] == "waived":
            # xfail: it ran and failed, under its waiver; a skip: the waiver says run: false.
            out["waived"].append({"check": entry["check"],
                                  "justification": props.get("waiver") or entry["message"][len("waived: "):],
                                  "expires": props.get("waiver_expires"),
                                  "outcome": "failed" if entry["type"] == "pytest.xfail" else "not run"})
        else:
            out["skipped"].append({"check": entry["check"], "reason": entry["message"]})
    return out


# ---- reporting --------------------------------------------------------------------------------

def host_line(host, result):
    status = result["status"]
    if status == "unreachable":
        detail = result["reason"]
    elif status in ("compliant", "non-compliant"):
        parts = ["%d passed" % len(result["passed"])]
        if result["failed"]:
            parts.append("%d failed: %s" % (len(result["failed"]), ", ".join(sorted(set(f["check"] for f in result["failed"])))))
        if result["waived"]:
            parts.append("%d waived" % len(result["waived"]))
        if result["skipped"]:
            parts.append("%d skipped" % len(result["skipped"]))
        detail = ", ".join(parts)
    else:
        detail = result.get("reason") or ""
    return "%-24s %-14s %s" % (host, status, detail)


def exit_code(results):
    statuses = [r["status"] for r in results.values()]
    if "unreachable" in statuses:
        return EXIT_UNREACHABLE
    if "non-compliant" in statuses or "error" in statuses:
        return EXIT_NON_COMPLIANT
    return EXIT_COMPLIANT


RESULT_WORDS = {EXIT_COMPLIANT: "compliant", EXIT_NON_COMPLIANT: "non-compliant", EXIT_UNREACHABLE: "unreachable host(s)"}


def summary_text(summary):
    totals = summary["totals"]
    lines = ["omr.deploy audit of %s, groups %s, %s: %d host(s): %d compliant, %d non-compliant, %d unreachable, %d error(s)%s"
             % (", ".join(summary["inventory"]), ",".join(summary["groups"]), summary["date"], totals["hosts"],
                totals["compliant"], totals["non_compliant"], totals["unreachable"], totals["error"],
                ", %d without checks" % totals["no_checks"] if totals["no_checks"] else ""),
             "checks: %(passed)d passed, %(failed)d failed, %(waived)d waived, %(skipped)d skipped" % totals["checks"], ""]
    for host, result in summary["hosts"].items():
        lines.append(host_line(host, result))
        for note in result.get("notes") or []:
            lines.append("    NOTE    %s" % note)
        for failed in result["failed"]:
            expired = " (its waiver expired %s)" % failed["waiver_expired"] if failed.get("waiver_expired") else ""
            lines.append("    FAILED  %s%s: %s" % (failed["check"], expired, failed["message"]))
        for waived in result["waived"]:
            until = ", until %s" % waived["expires"] if waived.get("expires") else ""
            lines.append("    WAIVED  %s (%s%s): %s" % (waived["check"], waived["outcome"], until, waived["justification"]))
        for expired in result["expired_waivers"]:
            lines.append("    EXPIRED waiver of %s expired %s, not applied (%s): %s"
                         % (expired["check"], expired["expires"], expired["outcome"], expired["justification"]))
    lines += ["", "exit %d: %s (exit codes: 0 compliant, 1 non-compliant, 2 a host unreachable, even with others non-compliant)"
              % (summary["exit_code"], summary["result"])]
    if summary["out"]:
        lines.append("JUnit per host, logs and summary.json in %s" % summary["out"])
    return "\n".join(lines) + "\n"


def summarize(args, groups, results, started):
    totals = {"hosts": len(results), "compliant": 0, "non_compliant": 0, "unreachable": 0, "error": 0, "no_checks": 0,
              "checks": {"passed": 0, "failed": 0, "waived": 0, "skipped": 0}}
    for result in results.values():
        totals[result["status"].replace("-", "_")] += 1
        for key in totals["checks"]:
            totals["checks"][key] += len(result.get(key) or [])
    code = exit_code(results)
    return {"inventory": args.inventory, "groups": groups, "checks": os.path.relpath(args.checks, ROOT)
            if args.checks.startswith(ROOT + os.sep) else args.checks,
            "waivers": args.waivers, "date": args.today, "jobs": args.jobs, "timeout_s": args.timeout,
            "started": started, "duration_s": None, "exit_code": code, "result": RESULT_WORDS[code],
            "totals": totals, "hosts": results, "out": args.out}


# ---- main -------------------------------------------------------------------------------------

def parse_args(argv):
    parser = ArgumentParser(prog="tests/audit/run.py", description=__doc__.split("\n\n", 1)[0],
                            epilog="Exit codes: 0 compliant, 1 non-compliant, 2 a host unreachable (before 1), "
                                   "4 usage error.")
    parser.add_argument("-i", "--inventory", action="append", required=True,
                        help="inventory source (file, directory, or plugin file); repeatable")
    parser.add_argument("-g", "--group", default="omr_vps,omr_router",
                        help="groups to audit, comma-separated (default: omr_vps,omr_router)")
    parser.add_argument("-j", "--jobs", default="4", help="hosts audited at a time (default: 4)")
    parser.add_argument("-o", "--out", default=os.path.join(ROOT, ".cache", "audit"),
                        help="directory for <host>.xml, <host>.log and summary.json/.txt (default: .cache/audit)")
    parser.add_argument("-t", "--timeout", default="10", help="connect timeout in seconds (default: 10)")
    parser.add_argument("--host-timeout", default="900", help="seconds one host's checks may take (default: 900)")
    parser.add_argument("--waivers", help="waivers file (YAML, docs/fleet.md)")
    parser.add_argument("--checks", default=HERE, help="directory of the test_<group>.py check files (default: tests/audit)")
    args = parser.parse_args(argv)
    for name, low in (("jobs", 1), ("timeout", 1), ("host_timeout", 1)):
        try:
            value = int(getattr(args, name))
        except ValueError:
            raise UsageError("--%s %r is not a whole number" % (name.replace("_", "-"), getattr(args, name))) from None
        if value < low:
            raise UsageError("--%s must be at least %d" % (name.replace("_", "-"), low))
        setattr(args, name, value)
    args.groups = [g.strip() for g in args.group.split(",") if g.strip()]
    if not args.groups:
        raise UsageError("--group names no group")
    for source in args.inventory:
        if "," not in source and not os.path.exists(source):
            raise UsageError("no inventory at %s (copy inventory.example/ to inventory/, or pass -i / INVENTORY=)" % source)
    args.checks = os.path.abspath(args.checks)
    if not os.path.isdir(args.checks):
        raise UsageError("no checks directory %s" % args.checks)
    if args.waivers:
        if not os.path.isfile(args.waivers):
            raise UsageError("no waivers file %s" % args.waivers)
        try:
            load_waivers(args.waivers)
        except WaiverError as exc:
            raise UsageError(str(exc)) from None
        args.waivers = os.path.abspath(args.waivers)
    args.out = os.path.abspath(args.out)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError("--out %s is not a directory" % args.out)
    args.today = datetime.date.today().isoformat()
    return args


def plan_hosts(args, env, tmpdir):
    """[{name, groups, files, target, varsfile}] for every host of the groups, templates resolved."""
    listing = list_inventory(args.inventory, env)
    hostvars_all = (listing.get("_meta") or {}).get("hostvars") or {}
    names = []
    for group in args.groups:
        members = group_members(listing, group)
        if not members:
            raise UsageError("group %s has no hosts in %s" % (group, ", ".join(args.inventory)))
        names += [m for m in members if m not in names]
    groups_of = dict((name, []) for name in names)
    for group in listing:
        if group in ("_meta", "all", "ungrouped"):
            continue
        for member in group_members(listing, group):
            if member in groups_of:
                groups_of[member].append(group)
    raw = dict((name, dict((k, v) for k, v in (hostvars_all.get(name) or {}).items() if wanted(k))) for name in names)
    requests = dict((name, sorted(k for k, v in values.items() if needs_template(v))) for name, values in raw.items())
    requests = dict((name, keys) for name, keys in requests.items() if keys)
    resolved, errors = resolve_templates(args.inventory, requests, env, tmpdir) if requests else ({}, {})
    items = []
    for index, name in enumerate(names):
        values = plain(raw[name])
        for key in requests.get(name, []):
            values.pop(key, None)
        values.update(resolved.get(name) or {})
        values = without_secrets(values)
        broken = dict((k, v) for k, v in (errors.get(name) or {}).items() if k in CONNECTION_VARS)
        if broken:
            raise UsageError("%s: %s" % (name, "; ".join("%s does not resolve: %s" % kv for kv in sorted(broken.items()))))
        values.update(inventory_hostname=name, group_names=sorted(groups_of[name]))
        files = check_files(args.checks, groups_of[name])
        item = {"name": name, "groups": sorted(groups_of[name]), "files": files,
                "notes": ["%s does not resolve, the role's default is expected: %s" % kv
                          for kv in sorted((errors.get(name) or {}).items())]}
        if files:
            item["target"] = target_of(name, values)
            item["varsfile"] = os.path.join(tmpdir, "hostvars-%d.json" % index)
            with open(os.open(item["varsfile"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
                json.dump(values, f)
            if item["target"]["kind"] == "ssh":
                item["target"]["ssh_config"] = os.path.join(tmpdir, "ssh-%d.config" % index)
                unknown = write_ssh_config(item["target"]["ssh_config"], name, item["target"], os.path.join(tmpdir, "cp"))
                if unknown:
                    item["notes"].append("ssh arguments not passed on: %s" % " ".join(unknown))
        items.append(item)
    if not any(item["files"] for item in items):
        raise UsageError("no checks in %s for the hosts of %s (checks exist for: %s)"
                         % (args.checks, ",".join(args.groups), ", ".join(checks_by_group(args.checks)) or "nothing"))
    return items


def main(argv=None):
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.time()
    env = tool_env()
    # Short: ssh's ControlPath sockets live here (a unix socket path has ~100 characters).
    tmpdir = tempfile.mkdtemp(prefix="omr-audit-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.mkdir(os.path.join(tmpdir, "cp"), 0o700)
    try:
        try:
            args = parse_args(sys.argv[1:] if argv is None else argv)
            items = plan_hosts(args, env, tmpdir)
            os.makedirs(args.out, exist_ok=True)
        except UsageError as exc:
            print("audit: usage error: %s" % exc, file=sys.stderr)
            return EXIT_USAGE
        runner = Runner(args, env, tmpdir)
        print("auditing %d host(s) of %s, %d at a time (connect timeout %d s)"
              % (len([i for i in items if i["files"]]), ",".join(args.groups), args.jobs, args.timeout), flush=True)
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = dict((pool.submit(runner.audit, item), item["name"]) for item in items if item["files"])
            try:
                for future in concurrent.futures.as_completed(futures):
                    results[futures[future]] = future.result()
            except KeyboardInterrupt:
                runner.stop()
                for future in futures:
                    future.cancel()
                print("audit: interrupted", file=sys.stderr)
                return 130
        ordered = {}
        for item in items:
            if item["files"]:
                ordered[item["name"]] = results[item["name"]]
            else:
                ordered[item["name"]] = {"status": "no-checks", "groups": item["groups"], "checks": [], "passed": [],
                                         "failed": [], "waived": [], "expired_waivers": [], "skipped": [],
                                         "reason": "no check file for its groups"}
        summary = summarize(args, args.groups, ordered, started)
        summary["duration_s"] = round(time.time() - t0, 1)
        with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, sort_keys=False)
            f.write("\n")
        text = summary_text(summary)
        with open(os.path.join(args.out, "summary.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print("\n" + text, end="")
        return summary["exit_code"]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
