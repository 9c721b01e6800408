"""playbooks/files/omr-diagnose.sh, what playbooks/diagnose.yml runs with raw on the router and the VPS,
under busybox sh (an OMR router's) and dash (Debian's), on this machine's own /proc and /sys; its
output through the parsers of plugins/module_utils/_diagnose.py and _qdisc.py."""
import os
import pty
import shutil
import subprocess
import time

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _diagnose as D
from ansible_collections.omr.deploy.plugins.module_utils._qdisc import parse_dump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "playbooks", "files", "omr-diagnose.sh"), encoding="utf-8") as f:
    SCRIPT = f.read()
SHELLS = [s for s in (["busybox", "sh"], ["dash"]) if shutil.which(s[0])]


def run(shell, *args, **kwargs):
    # As Ansible's raw sends it: sh -c "$script" omr-diagnose ARGS, then ` && sleep 0`.
    return subprocess.run(shell + ["-c", SCRIPT, "omr-diagnose"] + list(args), capture_output=True, text=True,
                          timeout=30, check=False, **kwargs)


@pytest.fixture(params=SHELLS, ids=lambda s: s[0])
def shell(request):
    return request.param


def test_snapshot(shell):
    res = run(shell, "snapshot")
    assert res.returncode == 0, res.stderr
    snap = D.parse_snapshot(res.stdout)
    assert snap["present"] and snap["uptime"] > 0 and "cpu" in snap["cpu"] and snap["clk_tck"] > 0
    assert "MemTotal" in snap["meminfo"] and "pswpout" in snap["vmstat"] and "lo" in snap["net"]
    assert os.getpid() in snap["pids"] or len(snap["pids"]) > 1


def test_sample_in_the_background_then_collect(shell):
    res = run(shell, "sample", "0.2", "50", "lo", "nosuchdev")
    assert res.returncode == 0, res.stderr
    out, pid = res.stdout.split()
    assert out.startswith("/tmp/omr-diagnose.") and os.path.exists(out)
    time.sleep(0.7)
    res = run(shell, "collect", out, pid)
    assert res.returncode == 0, res.stderr
    samples = D.parse_samples(res.stdout)
    assert len(samples) >= 2 and samples[0]["dev"]["nosuchdev"] is None and samples[0]["dev"]["lo"][0] >= 0
    # It took a last sample when asked, and ended by itself.
    assert res.stdout.splitlines()[-2] == "end" and not os.path.exists(out + ".stop")
    assert samples[1]["t"] > samples[0]["t"] and "cpu" in samples[0]["cpu"]
    # Stopped, its file gone, and it does not come back.
    time.sleep(0.5)
    assert not os.path.exists(out)
    state = open("/proc/%s/stat" % pid).read().split(")")[-1].split()[0] if os.path.exists("/proc/%s" % pid) else "gone"
    assert state in ("gone", "Z")


def test_the_sampler_outlives_the_hang_up_of_its_session(shell):
    # Ansible's ssh runs raw with -tt: the pty's hang-up when the command ends must not stop the sampler.
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.execvp(shell[0], shell + ["-c", SCRIPT, "omr-diagnose", "sample", "0.2", "50", "lo"])
    output = b""
    while True:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        output += data
    os.waitpid(pid, 0)
    os.close(fd)
    out, sampler = output.decode().split()
    time.sleep(0.6)
    state = open("/proc/%s/stat" % sampler).read().split(")")[-1].split()[0] if os.path.exists("/proc/%s" % sampler) else "gone"
    res = run(shell, "collect", out, sampler)
    assert state not in ("gone", "Z"), "the sampler died with its session"
    assert len(D.parse_samples(res.stdout)) >= 3


def test_sample_every_device_and_stop_by_itself(shell):
    res = run(shell, "sample", "0.1", "2", "all")
    out, pid = res.stdout.split()
    time.sleep(1.0)
    with open(out, encoding="utf-8") as f:
        text = "#omr-diagnose# samples\n" + f.read()
    os.unlink(out)
    assert text.rstrip().endswith("end")
    samples = D.parse_samples(text)
    assert len(samples) == 2 and "lo" in samples[0]["dev"]


def test_collect_touches_only_a_samplers_file(shell, tmp_path):
    victim = tmp_path / "keep"
    victim.write_text("x")
    res = run(shell, "collect", str(victim), "1")
    assert res.returncode == 2 and "not a sampler's file" in res.stderr and victim.exists()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare: hides tc")
def test_qdiscs_without_tc(shell):
    # tc hidden under a tmpfs over /usr/sbin in a private mount namespace (the script looks there too).
    hide = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none /usr/sbin && exec "$@"', "sh"]
    res = subprocess.run(hide + shell + ["-c", SCRIPT, "omr-diagnose", "qdiscs", "lo"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.stdout.strip() == "#omr-diagnose# notc", res.stderr
    assert parse_dump(res.stdout)["tc"] is False


@pytest.mark.skipif(shutil.which("tc") is None, reason="no tc (iproute2)")
def test_qdiscs_of_loopback(shell):
    res = run(shell, "qdiscs", "lo")
    dump = parse_dump(res.stdout)
    assert dump["tc"] and "qdisc noqueue" in dump["devices"]["lo"]["qdisc"]


def test_the_watchdog_runs_its_restore_unless_disarmed(shell, tmp_path):
    fired, kept = tmp_path / "fired", tmp_path / "kept"
    res = run(shell, "watchdog", "1", "echo restored > %s" % fired)
    armed = run(shell, "watchdog", "1", "echo restored > %s" % kept).stdout.strip()
    assert res.returncode == 0 and res.stdout.strip().isdigit()
    assert run(shell, "disarm", armed).returncode == 0
    time.sleep(1.8)
    assert fired.read_text() == "restored\n" and not kept.exists()
    # disarm stops only a watchdog of this script.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        run(shell, "disarm", str(sleeper.pid))
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_usage(shell):
    res = run(shell, "nonsense")
    assert res.returncode == 2 and "usage: omr-diagnose" in res.stderr
