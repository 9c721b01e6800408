"""make bench: aggregation efficiency of four TCP variants side by side in one run (kernel
defaults, the roles' tuning, OMR's own TCP settings, BBR with the roles' buffers), against the
links alone and against what the links can carry; per-subflow shares, queueing delay under load,
failover recovery and bytes lost; the LAN client's path through the proxy beside the router's own
(efficiency, shares, the proxy's CPU per 10 Mbit/s on router and VPS, failover); converge vs
idempotent rerun; and the fleet part, over podman's connection and over ssh side by side: first
converge vs idempotent rerun, 5 VPSes vs 1, the audit of 10 hosts vs 1.

Every figure is measured here, on the lab, in this run; targets are reported, not asserted.
Writes bench/results/<timestamp>.json and prints a table.
"""
import argparse
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "lab", "containers.conf"),
           ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
           PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
STREAM_FILE = os.path.join(ROOT, "plugins", "module_utils", "_mptcp_stream.py")


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def sh(argv, check=True, quiet=True):
    res = subprocess.run(argv, cwd=ROOT, env=ENV, check=False, capture_output=quiet, text=True)
    if check and res.returncode != 0:
        sys.stderr.write((res.stdout or "") + (res.stderr or ""))
        raise SystemExit("failed: %s" % " ".join(argv))
    return res


def lab_inventory(profile):
    """The lab's inventory with `profile` as group_vars/all.yml, as make demo and Molecule use it."""
    directory = os.path.join(ROOT, ".cache", "lab-inventory", profile)
    sh([os.path.join(ROOT, "lab", "inventory.sh"), profile, directory])
    return directory


def playbook(profile, path, *extra, inventory="lab/inventory.yml", limit=None):
    if profile:
        inventory = lab_inventory(profile)
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, path]
    for item in extra:
        argv += ["-e", item]
    if limit:
        argv += ["--limit", limit]
    started = time.monotonic()
    cpu = _children_cpu()
    res = sh(argv)
    LAST_RUN.update(cpu_s=round(_children_cpu() - cpu, 1), **recap(res.stdout or ""))
    return time.monotonic() - started


# What the last playbook() did: task results and changes summed over hosts (PLAY RECAP), and
# the CPU the controller and its podman calls used (not the containers'), to tell work from per-task overhead.
LAST_RUN = {}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def recap(text):
    totals = {"tasks": 0, "changed": 0}
    for m in re.finditer(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=\d+\s+skipped=(\d+)", text, re.M):
        totals["tasks"] += int(m.group(1)) + int(m.group(3))
        totals["changed"] += int(m.group(2))
    return totals


def speedtest(profile, seconds):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        playbook(profile, "playbooks/speedtest.yml", "omr_speedtest_output=%s" % out,
                 "omr_speedtest_seconds=%d" % seconds)
        with open(out, encoding="utf-8") as f:
            return json.load(f)
    finally:
        os.unlink(out)


def speedtests(profile, seconds, samples):
    """`samples` speed tests in a row: BBR-like run-to-run noise (0.79-0.88 on `mixed`) makes a
    single sample useless for comparing variants. Efficiency as mean, min and max."""
    runs = [speedtest(profile, seconds) for index in range(samples)]
    eff = [r["efficiency"] for r in runs]
    return {"runs": runs, "efficiency": round(sum(eff) / len(eff), 3), "efficiency_min": round(min(eff), 3),
            "efficiency_max": round(max(eff), 3),
            "sum_single_mbps": round(sum(r["sum_single_mbps"] for r in runs) / len(runs), 1),
            "aggregate_mbps": round(sum(r["aggregate_mbps"] for r in runs) / len(runs), 1)}


def cut(link, state):
    cmds = {
        "down": "nft add table inet omr_lab_cut_{0} && nft add chain inet omr_lab_cut_{0} forward "
                "'{{ type filter hook forward priority -10; policy accept; }}' && "
                "nft add rule inet omr_lab_cut_{0} forward iifname {0} drop && "
                "nft add rule inet omr_lab_cut_{0} forward oifname {0} drop".format(link),
        "up": "nft delete table inet omr_lab_cut_%s" % link,
    }
    sh(["podman", "exec", "omr-lab-isp", "sh", "-c", cmds[state]])


def window_rate(samples, t_end, width=0.5):
    """Mbit/s received in (t_end - width, t_end]."""
    before = [b for t, b in samples if t <= t_end - width]
    upto = [b for t, b in samples if t <= t_end]
    if not before or not upto:
        return 0.0
    return (upto[-1] - before[-1]) * 8 / width / 1e6


def cut_victim(links):
    """The last non-master WAN, and what the others carry alone."""
    victim = [link for link in links if link["multipath"] != "master"][-1]
    return victim, sum(link["single_mbps"] for link in links if link is not victim)


def cut_during(victim, transfer, cut_after=3.0, down_for=4.0):
    """Run `transfer()` while `victim` is cut at the ISP from cut_after s for down_for s.
    Returns its result and the wall clock of the cut."""
    marks = {}

    def driver():
        time.sleep(cut_after)
        marks["down"] = time.time()
        cut(victim["name"], "down")
        time.sleep(down_for)
        cut(victim["name"], "up")

    thread = threading.Thread(target=driver)
    thread.start()
    try:
        result = transfer()
    finally:
        thread.join()
    return result, marks["down"]


def recovery_after(samples, t_down, surviving):
    """Seconds from the cut until the receiver's rate is back to 80 % of the surviving links."""
    for t, _received in samples:
        if t > t_down + 0.5 and window_rate(samples, t) >= 0.8 * surviving:
            return round(t - t_down, 2)
    return None


def failover(speed, nbytes):
    """Cut the last non-master WAN mid-transfer: bytes lost, and how long until the receiver's
    rate is back to 80 % of what the surviving links carry alone."""
    victim, surviving = cut_victim(speed["links"])
    sh(["podman", "cp", STREAM_FILE, "omr-lab-router:/tmp/omr_mptcp_stream.py"])
    sh(["podman", "cp", os.path.join(ROOT, "bench", "failover_client.py"), "omr-lab-router:/tmp/failover_client.py"])
    proc = subprocess.Popen(["podman", "exec", "omr-lab-router", "python3", "/tmp/failover_client.py",
                             "/tmp/omr_mptcp_stream.py", "198.51.100.10", "65432", str(nbytes)],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (out, err), down = cut_during(victim, lambda: proc.communicate(timeout=180))
    if proc.returncode != 0:
        raise SystemExit("failover client failed: %s" % err)
    res = json.loads(out)
    t_down = down - res["start_wall"]
    return {
        "cut": victim["name"], "bytes": nbytes, "received": res["received"], "intact": res["intact"],
        "bytes_lost": nbytes - res["received"], "seconds": round(res["seconds"], 2),
        "surviving_mbps": round(surviving, 1), "recovery_s": recovery_after(res["samples"], t_down, surviving),
        "cut_at_s": round(t_down, 2),
    }


# The 6.x keys of OMR's /etc/sysctl.d/90-shadowsocks.conf that exist on an upstream kernel (its
# v0 net.mptcp.mptcp_* keys do not): OMR's own TCP settings, BBR and 16 MB buffers.
OMR_TCP = {
    "net.core.rmem_max": 7500000, "net.core.wmem_max": 7500000, "net.core.netdev_max_backlog": 10000,
    "net.core.somaxconn": 16384, "net.ipv4.tcp_fastopen": 3, "net.ipv4.tcp_rmem": "4096 87380 16777216",
    "net.ipv4.tcp_wmem": "4096 87380 16777216", "net.ipv4.tcp_mtu_probing": 0, "net.ipv4.tcp_notsent_lowat": 131072,
    "net.ipv4.tcp_ecn": 2, "net.ipv4.tcp_congestion_control": "bbr", "net.ipv4.tcp_slow_start_after_idle": 0,
    "net.mptcp.checksum_enabled": 0, "net.mptcp.add_addr_timeout": 120, "net.mptcp.allow_join_initial_addr_port": 1,
    "net.mptcp.stale_loss_cnt": 4, "net.mptcp.blackhole_timeout": 0, "net.mptcp.close_timeout": 60,
    "net.mptcp.syn_retrans_before_tcp_fallback": 2,
}
# (name, what it is, extra vars for site.yml). Run in this order on one lab: each tuned variant sets
# every key it cares about, so only the kernel defaults need a lab of their own.
VARIANTS = [
    ("defaults", "kernel defaults (the roles' sysctls off)",
     ["omr_vps_sysctl_enabled=false", "omr_router_sysctl_enabled=false"]),
    ("roles", "the roles' tuning, as shipped (its buffers, bbr where offered)", []),
    ("loss", "the roles' buffers, a loss-based control (cubic, else reno; the tuning before 0.2)",
     ["omr_vps_congestion_control=loss", "omr_router_congestion_control=loss"]),
    ("omr", "OMR's TCP settings (bbr, its 16 MB buffers and keys)",
     ['{"omr_vps_sysctl_overrides": %s, "omr_router_sysctl_overrides": %s}' % (json.dumps(OMR_TCP), json.dumps(OMR_TCP))]),
    ("bbr", "the roles' buffers with BBR (the same as roles wherever BBR is offered)",
     ["omr_vps_congestion_control=bbr", "omr_router_congestion_control=bbr"]),
]
DEFAULT_VARIANTS = "defaults,roles,loss,omr"


def loaded_rtt(speed, seconds=8):
    """Round trip per WAN while a bonded download runs (ping from the WAN's address), against
    idle: the queueing delay the variant builds."""
    nbytes = int(max(speed["aggregate_mbps"], 5) * 1e6 / 8 * (seconds + 2))
    sh(["podman", "cp", STREAM_FILE, "omr-lab-router:/tmp/omr_mptcp_stream.py"])
    sh(["podman", "cp", os.path.join(ROOT, "bench", "failover_client.py"), "omr-lab-router:/tmp/failover_client.py"])
    proc = subprocess.Popen(["podman", "exec", "omr-lab-router", "python3", "/tmp/failover_client.py",
                             "/tmp/omr_mptcp_stream.py", "198.51.100.10", "65432", str(nbytes)],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    out = {}
    pings = [(link, subprocess.Popen(["podman", "exec", "omr-lab-router", "ping", "-n", "-q", "-c", "20", "-i", "0.2",
                                      "-I", link["address"], "198.51.100.10"], env=ENV, stdout=subprocess.PIPE, text=True))
             for link in speed["links"]]
    for link, ping in pings:
        text = ping.communicate(timeout=60)[0]
        m = re.search(r"= [0-9.]+/([0-9.]+)/", text)
        loaded = float(m.group(1)) if m else None
        idle = link.get("rtt_ms")
        out[link["name"]] = {"idle_ms": idle, "loaded_ms": loaded,
                             "queue_ms": round(loaded - idle, 1) if loaded is not None and idle is not None else None}
    proc.communicate(timeout=180)
    return out


LAN_FILE = "lan-48m.bin"
LAN_URL = "http://198.18.0.10:80/" + LAN_FILE
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(container, program):
    """utime + stime of every `program` process in `container`, in clock ticks."""
    res = sh(["podman", "exec", container, "sh", "-c",
              "for p in $(pidof %s); do cat /proc/$p/stat; done" % program], check=False)
    total = 0
    for line in (res.stdout or "").splitlines():
        fields = line.rsplit(")", 1)[-1].split()
        if len(fields) > 12:
            total += int(fields[11]) + int(fields[12])
    return total


def router_wans():
    """[(name, device)] of the router's WANs that carry traffic, from its plan."""
    shown = json.loads(sh(["podman", "exec", "omr-lab-router", "/usr/local/sbin/omr-router-net", "show"]).stdout)
    return [(w["name"], w["device"]) for w in shown["wans"] if w["multipath"] != "off" and not w["pending"]]


def rx_bytes(wans):
    paths = ["/sys/class/net/%s/statistics/rx_bytes" % dev for _name, dev in wans]
    return [int(x) for x in sh(["podman", "exec", "omr-lab-router", "cat"] + paths).stdout.split()]


def lan_fetch(sampled=False):
    argv = ["podman", "exec", "omr-lab-client", "python3", "/usr/local/lib/omr-lab-fetch.py", LAN_URL, "--timeout", "30"]
    res = sh(argv + (["--samples"] if sampled else []), check=False)
    return json.loads(res.stdout) if res.stdout.strip() else {"error": res.stderr, "bytes": 0, "mbps": 0.0}


def lan_path(speed, expected_sha256):
    """The LAN client's download through the proxy: its rate against the links alone (the same
    variant's speed tests), each WAN's share (router rx counters), and the CPU ss-redir and
    ss-server used, per 10 Mbit/s of the download."""
    wans = router_wans()
    before, redir, server = rx_bytes(wans), cpu_ticks("omr-lab-router", "ss-redir"), cpu_ticks("omr-lab-vps", "ss-server")
    res = lan_fetch()
    after, redir2, server2 = rx_bytes(wans), cpu_ticks("omr-lab-router", "ss-redir"), cpu_ticks("omr-lab-vps", "ss-server")
    deltas = [a - b for a, b in zip(after, before)]
    total = sum(deltas) or 1
    mbps, secs = float(res.get("mbps") or 0.0), float(res.get("seconds") or 0.0)

    def per10(ticks):
        core = ticks / CLK_TCK / secs if secs else None
        return round(100 * core / (mbps / 10), 2) if core is not None and mbps else None

    return {"mbps": mbps, "bytes": res.get("bytes"), "intact": res.get("sha256") == expected_sha256 and not res.get("error"),
            "efficiency": round(mbps / speed["sum_single_mbps"], 3) if speed["sum_single_mbps"] else None,
            "shares": {name: round(d / total, 3) for (name, _dev), d in zip(wans, deltas)},
            "cpu_pct_per_10mbit": {"router_ss_redir": per10(redir2 - redir), "vps_ss_server": per10(server2 - server)}}


def lan_failover(speed, expected_sha256):
    """The LAN client's download with the last non-master WAN cut in the middle: bytes lost,
    integrity, and the time until its rate is back to 80 % of the surviving links alone."""
    victim, surviving = cut_victim(speed["runs"][0]["links"])
    res, down = cut_during(victim, lambda: lan_fetch(sampled=True))
    samples = [tuple(x) for x in res.get("samples", [])]
    recovery = recovery_after(samples, down - res["start_wall"], surviving) if samples and "start_wall" in res else None
    size = 48 * 1024 * 1024
    return {"cut": victim["name"], "bytes_lost": size - int(res.get("bytes") or 0),
            "intact": res.get("sha256") == expected_sha256 and not res.get("error"),
            "surviving_mbps": round(surviving, 1), "recovery_s": recovery, "error": res.get("error")}


def measure(profile, seconds, samples):
    result = speedtests(profile, seconds, samples)
    result["loaded_rtt"] = loaded_rtt(result["runs"][0])
    rate = result["aggregate_mbps"]
    result["failover"] = failover(result["runs"][0], nbytes=int(rate * 1e6 / 8 * 12))
    expected = sh(["podman", "exec", "omr-lab-internet", "sha256sum", "/srv/omr-lab/" + LAN_FILE]).stdout.split()[0]
    result["lan"] = lan_path(result, expected)
    result["lan_failover"] = lan_failover(result, expected)
    return result


def profile_run(profile, seconds, samples, variants):
    result = {"profile": profile, "variants": {}}
    for name, what, extra in VARIANTS:
        if name not in variants:
            continue
        if name == "defaults":
            log("%s: lab up, converge with kernel defaults" % profile)
            playbook(profile, "lab/up.yml")
            playbook(profile, "site.yml", *extra)
        elif "first_converge_s" not in result:
            # A fresh lab, so the first converge is a real first one.
            log("%s: fresh lab up, first converge (%s)" % (profile, what))
            playbook(profile, "lab/up.yml")
            result["first_converge_s"] = round(playbook(profile, "site.yml", *extra), 1)
            result["first_converge"] = dict(LAST_RUN)
            result["rerun_converge_s"] = round(playbook(profile, "site.yml", *extra), 1)
            result["rerun_converge"] = dict(LAST_RUN)
        else:
            log("%s: converge with %s" % (profile, what))
            playbook(profile, "site.yml", *extra)
        log("%s: measure %s" % (profile, name))
        result["variants"][name] = dict(measure(profile, seconds, samples), what=what)
    # What each link carries alone at best, under any variant of this run: the bonded rate set
    # against it shows a variant that leaves a link underused even when its own sum looks fine.
    best = {}
    for v in result["variants"].values():
        for run in v["runs"]:
            for link in run["links"]:
                best[link["name"]] = max(best.get(link["name"], 0.0), link["single_mbps"])
    result["best_alone_mbps"] = {k: round(x, 1) for k, x in best.items()}
    for v in result["variants"].values():
        v["efficiency_best"] = round(v["aggregate_mbps"] / sum(best.values()), 3) if best else None
        caps = [r["efficiency_capacity"] for r in v["runs"] if r.get("efficiency_capacity") is not None]
        v["efficiency_capacity"] = round(sum(caps) / len(caps), 3) if caps else None
    return result


FLEET_IMAGE = "localhost/omr-lab/debian-ssh:12"
FLEET_KEY = os.path.join(ROOT, ".cache", "bench", "id_ed25519")
FLEET_SIZE = 10


def fleet_inventory(path, names, connection):
    """omr_vps of `names`, reached through podman's connection or over ssh (key, no host key
    checks: fresh containers), with ansible.cfg's pipelining and ssh's ControlPersist."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("omr_vps:\n  hosts:\n")
        for name in names:
            f.write("    %s:\n" % name)
            if connection == "podman":
                f.write("      ansible_connection: containers.podman.podman\n")
                continue
            address = sh(["podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                          name]).stdout.strip()
            f.write("      ansible_connection: ansible.builtin.ssh\n      ansible_host: %s\n      ansible_user: root\n"
                    "      ansible_ssh_private_key_file: %s\n      ansible_ssh_common_args: -o StrictHostKeyChecking=no"
                    " -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\n" % (address, FLEET_KEY))


def audit(inventory, out):
    """tests/audit/run.py on every host of `inventory`, all at once: seconds and exit code."""
    started = time.monotonic()
    res = sh([os.path.join(BIN, "python"), "tests/audit/run.py", "-i", inventory, "-g", "omr_vps", "-j", str(FLEET_SIZE),
              "-o", out], check=False)
    return round(time.monotonic() - started, 1), res.returncode


def fleet(connection, workdir):
    """On FLEET_SIZE fresh VPS containers (the sshd image for both connections, so that only the
    connection differs): playbooks/vps.yml's first converge on one and its idempotent rerun, then
    on five fresh ones at once; the rest converged too, then the audit of one host and of all."""
    names = ["omr-bench-vps-%d" % i for i in range(1, FLEET_SIZE + 1)]
    log("fleet over %s: %d fresh VPS containers" % (connection, FLEET_SIZE))
    playbook(None, "bench/vps_hosts.yml", "omr_bench_state=absent")
    playbook(None, "bench/vps_hosts.yml", "omr_bench_count=%d" % FLEET_SIZE, "omr_bench_image=%s" % FLEET_IMAGE,
             "omr_bench_key=%s.pub" % FLEET_KEY)
    every = os.path.join(workdir, "%s-all.yml" % connection)
    one = os.path.join(workdir, "%s-one.yml" % connection)
    fleet_inventory(every, names, connection)
    fleet_inventory(one, names[:1], connection)
    result = {}
    for key, limit in (("first", names[0]), ("rerun", names[0]), ("five", ",".join(names[1:6]))):
        log("fleet over %s: vps.yml, %s" % (connection, key))
        result[key + "_s"] = round(playbook(None, "playbooks/vps.yml", inventory=every, limit=limit), 1)
        result[key] = dict(LAST_RUN)
    log("fleet over %s: vps.yml on the other %d" % (connection, FLEET_SIZE - 6))
    playbook(None, "playbooks/vps.yml", inventory=every, limit=",".join(names[6:]))
    for key, inventory in (("audit_1", one), ("audit_%d" % FLEET_SIZE, every)):
        log("fleet over %s: %s" % (connection, key))
        result[key + "_s"], result[key + "_rc"] = audit(inventory, os.path.join(workdir, "%s-%s" % (connection, key)))
    playbook(None, "bench/vps_hosts.yml", "omr_bench_state=absent")
    return result


def fleet_runs():
    """The fleet part over podman's connection and over ssh, side by side in one run."""
    if not os.path.exists(FLEET_KEY):
        os.makedirs(os.path.dirname(FLEET_KEY), exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omr-bench", "-f", FLEET_KEY])
    sh([os.path.join(ROOT, "lab", "images", "build-ssh.sh"), "localhost/omr-lab/debian:12", FLEET_IMAGE], quiet=False)
    workdir = tempfile.mkdtemp(prefix="omr-bench-fleet.")
    return {"size": FLEET_SIZE, "image": FLEET_IMAGE,
            "connections": {connection: fleet(connection, workdir) for connection in ("podman", "ssh")}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", default="even,mixed,cellular")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="of %s" % ", ".join(v[0] for v in VARIANTS))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=3, help="speed tests per variant")
    parser.add_argument("--no-scaling", action="store_true",
                        help="leave out the fleet part (converge and audit times over podman and over ssh)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {"date": started.isoformat(timespec="seconds"), "kernel": os.uname().release,
               "seconds_per_test": args.seconds, "samples": args.samples, "profiles": []}
    shaping = sh(["podman", "run", "--rm", "--privileged", "localhost/omr-lab/debian:12", "sh", "-c",
                  "tc qdisc add dev lo root netem delay 0ms 2>/dev/null && echo netem || echo tbf+nftables"],
                 check=False)
    results["shaping"] = (shaping.stdout or "").strip() or "unknown"
    # --profiles "" leaves the lab's profiles out (the fleet part alone).
    for profile in [p for p in args.profiles.split(",") if p]:
        results["profiles"].append(profile_run(profile, args.seconds, args.samples, args.variants.split(",")))
    if not args.no_scaling:
        results["fleet"] = fleet_runs()
    playbook(None, "lab/down.yml")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print_table(results)
    print("results: %s" % os.path.relpath(path, ROOT))


def print_table(r):
    print()
    print("omr.deploy bench, %s, kernel %s, shaping %s, %d s per speed test, %d per variant" % (
        r["date"], r["kernel"], r["shaping"], r["seconds_per_test"], r.get("samples", 1)))
    print("%-9s %-9s %8s %8s %-21s %9s %9s %-20s %s" % (
        "profile", "variant", "alone", "bonded", "eff. same [min-max]", "eff. best", "eff. cap", "shares",
        "queue ms under load"))
    for p in r["profiles"]:
        for name, v in p["variants"].items():
            shares = "/".join("%.0f" % (link["share"] * 100) for link in v["runs"][0]["links"])
            queue = ", ".join("%s %s" % (k, q["queue_ms"]) for k, q in v["loaded_rtt"].items())
            print("%-9s %-9s %8.1f %8.1f %-21s %9s %9s %-20s %s" % (
                p["profile"], name, v["sum_single_mbps"], v["aggregate_mbps"],
                "%.3f [%.3f-%.3f]" % (v["efficiency"], v["efficiency_min"], v["efficiency_max"]),
                v["efficiency_best"], v["efficiency_capacity"], shares, queue))
        print("%-9s best alone: %s" % (p["profile"], ", ".join("%s %.1f" % kv for kv in p["best_alone_mbps"].items())))
        for name, v in p["variants"].items():
            f = v["failover"]
            print("%-9s %-9s failover: cut %s, %d bytes lost, intact %s, back to 80 %% of %.1f Mbit/s after %s s" % (
                p["profile"], name, f["cut"], f["bytes_lost"], f["intact"], f["surviving_mbps"], f["recovery_s"]))
        for name, v in p["variants"].items():
            if "lan" not in v:
                continue
            lan, f, cpu = v["lan"], v["lan_failover"], v["lan"]["cpu_pct_per_10mbit"]
            print("%-9s %-9s LAN path: %.1f Mbit/s = %s of the links alone (router's own path %.3f), shares %s, intact %s; "
                  "proxy CPU %% of a core per 10 Mbit/s: router %s, VPS %s; failover: cut %s, %d bytes lost, intact %s, "
                  "back to 80 %% after %s s" % (
                      p["profile"], name, lan["mbps"], lan["efficiency"], v["efficiency"],
                      "/".join("%.0f" % (x * 100) for x in lan["shares"].values()), lan["intact"],
                      cpu["router_ss_redir"], cpu["vps_ss_server"], f["cut"], f["bytes_lost"], f["intact"], f["recovery_s"]))
        if "first_converge_s" in p:
            a, b = p["first_converge"], p["rerun_converge"]
            print("%-9s converge: first %.1f s (%d task results, %d changed), rerun %.1f s (%d, %d changed), ratio %.2f" % (
                p["profile"], p["first_converge_s"], a["tasks"], a["changed"], p["rerun_converge_s"], b["tasks"],
                b["changed"], p["rerun_converge_s"] / p["first_converge_s"]))
    if "fleet" in r:
        print_fleet(r["fleet"])


def print_fleet(fleet_result):
    n = fleet_result["size"]
    print("fleet (playbooks/vps.yml on fresh VPS containers, %s; targets reported, not asserted):" % fleet_result["image"])
    print("%-8s %22s %22s %8s %14s %8s %12s %12s %8s" % (
        "via", "first converge", "idempotent rerun", "ratio", "5 VPSes", "5 / 1", "audit 1", "audit %d" % n,
        "%d / 1" % n))
    for connection, f in fleet_result["connections"].items():
        print("%-8s %22s %22s %8.2f %14s %8.2f %12s %12s %8.2f" % (
            connection, "%.1f s (%d tasks)" % (f["first_s"], f["first"]["tasks"]),
            "%.1f s (%d, %d changed)" % (f["rerun_s"], f["rerun"]["tasks"], f["rerun"]["changed"]),
            f["rerun_s"] / f["first_s"], "%.1f s" % f["five_s"], f["five_s"] / f["first_s"],
            "%.1f s (rc %d)" % (f["audit_1_s"], f["audit_1_rc"]),
            "%.1f s (rc %d)" % (f["audit_%d_s" % n], f["audit_%d_rc" % n]), f["audit_%d_s" % n] / f["audit_1_s"]))
    print("targets: rerun / first <= 0.40, 5 / 1 <= 1.5, audit %d / 1 <= 2.0" % n)


if __name__ == "__main__":
    main()
