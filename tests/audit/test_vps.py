"""Audit of an OMR VPS configured by omr.deploy.vps, from raw host state (no omr.deploy module)."""
import re

import pytest

from ansible_collections.omr.deploy.plugins.module_utils._omr_install import (
    kernel_state, restart_loop, shorewall_interface)


def sysctl_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def read_sysctl(host, key):
    return " ".join(host.file(sysctl_path(key)).content_string.split())


def parse_dropin(text):
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = " ".join(value.split())
    return values


def endpoints(host):
    out = host.check_output("ip mptcp endpoint show")
    eps = []
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        ep = {"address": words[0], "flags": set(words) & {"signal", "subflow", "backup", "fullmesh"}}
        if "dev" in words:
            ep["dev"] = words[words.index("dev") + 1]
        eps.append(ep)
    return eps


def test_kernel_runs_mptcp_v1(host):
    assert host.file("/proc/sys/net/mptcp/enabled").exists, "no upstream MPTCP (v1) in this kernel"
    assert not host.file("/proc/sys/net/mptcp/mptcp_enabled").exists, "out-of-tree MPTCP v0 kernel"
    assert read_sysctl(host, "net.mptcp.enabled") == "1"


def test_swappiness(host, vps):
    if not vps["omr_vps_swappiness_enabled"]:
        pytest.skip("omr_vps_swappiness_enabled is false")
    assert int(read_sysctl(host, "vm.swappiness")) == int(vps["omr_vps_swappiness"])
    dropin = host.file("/etc/sysctl.d/60-omr-deploy-memory.conf")
    assert dropin.exists
    assert parse_dropin(dropin.content_string)["vm.swappiness"] == str(vps["omr_vps_swappiness"])


def test_network_dropin_is_live(host, vps):
    """Every key in the drop-in holds its value now: also after a reboot (systemd-sysctl)."""
    if not vps["omr_vps_sysctl_enabled"]:
        pytest.skip("omr_vps_sysctl_enabled is false")
    dropin = host.file(vps["omr_vps_sysctl_file"])
    assert dropin.exists, vps["omr_vps_sysctl_file"] + " is missing"
    values = parse_dropin(dropin.content_string)
    assert "net.mptcp.enabled" in values
    assert "net.ipv4.tcp_wmem" in values
    for key, value in values.items():
        assert read_sysctl(host, key) == value, key


def test_no_mptcp_v0_keys_anywhere(host):
    """OMR's installer writes net.mptcp.mptcp_* keys that v1 kernels lack and hides the errors."""
    ours = host.run("grep -l 'net.mptcp.mptcp_' /etc/sysctl.d/*omr-deploy* 2>/dev/null")
    assert ours.stdout.strip() == ""


ORDERS = {"auto": ("bbr", "cubic", "reno"), "loss": ("cubic", "reno")}


def test_congestion_control_is_the_declared_one(host, vps):
    """omr_vps_congestion_control: auto is bbr, else cubic, else reno; loss is cubic, else reno."""
    choice = vps["omr_vps_congestion_control"]
    if "net.ipv4.tcp_congestion_control" in vps["omr_vps_sysctl_overrides"] or choice == "kernel":
        pytest.skip("overridden or left to the kernel")
    # A container's network namespace may only pick from the allowed list.
    in_container = host.run("systemd-detect-virt --container --quiet").rc == 0
    offered = read_sysctl(host, "net.ipv4.tcp_%s_congestion_control" % ("allowed" if in_container else "available")).split()
    want = [cc for cc in ORDERS.get(choice, (choice,)) if cc in offered][0]
    assert read_sysctl(host, "net.ipv4.tcp_congestion_control") == want


def test_tcp_mem_fits_in_memory(host):
    """tcp_mem's high mark must stay well below RAM (OMR's static values exceed a 1 GB VPS)."""
    if not host.file("/proc/sys/net/ipv4/tcp_mem").exists:
        pytest.skip("tcp_mem is global and not visible in this network namespace")
    high_pages = int(read_sysctl(host, "net.ipv4.tcp_mem").split()[2])
    page = int(host.check_output("getconf PAGESIZE"))
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", host.file("/proc/meminfo").content_string).group(1))
    assert high_pages * page < total_kb * 1024 * 0.75


def test_mptcp_limits(host, vps):
    if not vps["omr_vps_mptcp_enabled"]:
        pytest.skip("omr_vps_mptcp_enabled is false")
    words = host.check_output("ip mptcp limits show").split()
    limits = dict(zip(words[::2], (int(w) for w in words[1::2])))
    assert limits["subflows"] == int(vps["omr_vps_mptcp_limits"]["subflows"])
    assert limits["add_addr_accepted"] == int(vps["omr_vps_mptcp_limits"]["add_addr_accepted"])


def test_signal_endpoints(host, vps):
    if not vps["omr_vps_mptcp_enabled"]:
        pytest.skip("omr_vps_mptcp_enabled is false")
    eps = endpoints(host)
    signal = [ep for ep in eps if "signal" in ep["flags"]]
    assert signal, "no signal endpoint: the VPS announces no address to the router"
    addresses = host.check_output("ip -o addr show")
    for ep in signal:
        assert " %s/" % ep["address"] in addresses, "endpoint %s is not an address of this host" % ep["address"]
    if vps["omr_vps_mptcp_endpoints"]:
        declared = {ep["address"] for ep in vps["omr_vps_mptcp_endpoints"]}
    else:
        # The default is the address of the default IPv4 route, as OMR's omr-service does.
        route = host.check_output("ip -4 route show default").split()
        dev = route[route.index("dev") + 1]
        declared = {re.search(r"inet ([\d.]+)/", host.check_output("ip -4 -o addr show dev %s" % dev)).group(1)}
    assert declared <= {ep["address"] for ep in signal}


def test_endpoints_come_back_after_reboot(host, vps):
    if not vps["omr_vps_mptcp_enabled"]:
        pytest.skip("omr_vps_mptcp_enabled is false")
    unit = host.service("omr-mptcp-endpoints")
    assert unit.is_enabled
    assert host.file("/usr/local/sbin/omr-mptcp-restore").mode == 0o755


def test_unneeded_services_are_masked(host, vps):
    if not vps["omr_vps_services_enabled"]:
        pytest.skip("omr_vps_services_enabled is false")
    names = vps["omr_vps_disabled_services"] + vps["omr_vps_disabled_services_extra"]
    checked = 0
    for name in names:
        for unit in (name + ".service", name + ".socket"):
            state = host.run("systemctl show -p LoadState,ActiveState --value %s" % unit).stdout.split()
            if not state or state[0] == "not-found":
                continue
            checked += 1
            assert state[0] == "masked", "%s is %s, not masked" % (unit, state[0])
            assert state[1] != "active", "%s is still running" % unit
    # Nothing to check is fine on a clean image; the Molecule scenario installs two services.
    print("checked %d installed units" % checked)


def test_ssh_untouched(host):
    for unit in ("ssh.service", "sshd.service"):
        state = host.run("systemctl show -p LoadState --value %s" % unit).stdout.strip()
        assert state != "masked", unit + " must never be masked"


def test_firewall_is_loaded_and_comes_back_after_reboot(host, vps):
    """omr_vps_firewall_enabled: its own table, loaded by an enabled unit (so after a reboot too),
    dropping by default on the input hook only, with SSH open."""
    if not vps["omr_vps_firewall_enabled"] or vps.get("omr_vps_stack", "native") != "native":
        pytest.skip("omr_vps_firewall_enabled is false, or OMR\'s own stack replaces it")
    if host.file("/etc/shorewall").is_directory:
        pytest.skip("left to OMR's shorewall")
    assert host.service("omr-vps-firewall").is_enabled
    table = host.run("nft list table inet omr_vps_firewall")
    assert table.rc == 0, "table inet omr_vps_firewall is not loaded: " + table.stderr
    assert "hook input priority filter; policy drop;" in table.stdout
    assert "hook forward" not in table.stdout and "hook output" not in table.stdout
    ssh = vps["omr_vps_firewall_ssh_ports"]
    for port in ssh if isinstance(ssh, list) else []:
        assert re.search(r"^\s*tcp dport %d accept" % int(port), table.stdout, re.M), "SSH port %s is not open" % port
    assert 'comment "ssh' in table.stdout, "no SSH port is open"
    if vps.get("omr_vps_proxy_enabled"):
        for proto in ("tcp", "udp"):
            assert re.search(r"^\s*%s dport %d accept" % (proto, int(vps["omr_vps_proxy_port"])), table.stdout, re.M)
    assert "flush ruleset" not in host.file("/etc/omr-vps/firewall.nft").content_string


def test_proxy_listens_with_mptcp(host, vps):
    """omr_vps_proxy_enabled: ss-server runs from an enabled unit, with an MPTCP listener, and its
    key and configuration are readable by nobody else."""
    if not vps["omr_vps_proxy_enabled"] or vps.get("omr_vps_stack", "native") != "native":
        pytest.skip("omr_vps_proxy_enabled is false, or OMR's own stack runs the proxy")
    unit = "shadowsocks-libev-server@%s" % vps["omr_vps_proxy_name"]
    assert host.service(unit).is_enabled and host.service(unit).is_running
    assert "LISTEN" in host.run("ss -Mltn 'sport = :%d'" % int(vps["omr_vps_proxy_port"])).stdout
    assert host.file("/etc/omr-vps/proxy.key").mode == 0o600
    assert host.file("/etc/shadowsocks-libev/%s.json" % vps["omr_vps_proxy_name"]).mode == 0o600


def test_vpn_listens_with_mptcp_and_keeps_its_keys_to_root(host, vps):
    """omr_vps_vpn_enabled: OpenVPN under mptcpize from an enabled unit, an MPTCP listener on its
    port, the tunnel's masquerade, forwarding on, and the PKI's keys 0600 in a 0700 directory."""
    if not vps["omr_vps_vpn_enabled"] or vps.get("omr_vps_stack", "native") != "native":
        pytest.skip("omr_vps_vpn_enabled is false, or OMR's own stack runs the VPN")
    unit = "openvpn-server@%s" % vps["omr_vps_vpn_name"]
    assert host.service(unit).is_enabled and host.service(unit).is_running
    assert "LISTEN" in host.run("ss -Mltn 'sport = :%d'" % int(vps["omr_vps_vpn_port"])).stdout
    nat = host.run("nft list table ip omr_vps_vpn")
    assert nat.rc == 0 and "ip saddr %s" % vps["omr_vps_vpn_subnet"] in nat.stdout and "masquerade" in nat.stdout
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    assert host.file("/etc/omr-vps/vpn").mode == 0o700
    for name in ("ca.key", "server.key", "client.key", "tls-crypt.key"):
        assert host.file("/etc/omr-vps/vpn/" + name).mode == 0o600, name


def test_the_newest_installed_kernel_runs(host):
    """A kernel installed while the old one still boots is OMR users' most common VPS trap
    (openmptcprouter#4291, #4088); both stacks. A container runs its host's kernel."""
    images = host.run("dpkg-query -W -f='${Package}\\t${Version}\\t${Status}\\n' 'linux-image-*'").stdout
    state = kernel_state(host.check_output("uname -r"), images)
    if state["container"]:
        pytest.skip("no kernel package: a container, running its host's kernel " + state["running"])
    assert not state["reboot_needed"], state["message"]


def omr_stack(vps):
    if vps.get("omr_vps_stack", "native") != "omr":
        pytest.skip("omr_vps_stack is native (OMR's own services are not installed)")


def test_omr_admin_runs_without_a_restart_loop(host, vps):
    """The routers' wizard pulls every key from omr-admin (openmptcprouter#3676, #3733: restart loops)."""
    omr_stack(vps)
    shown = host.run("systemctl show -p ActiveState -p NRestarts omr-admin.service").stdout
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    verdict = restart_loop(values.get("NRestarts", "0"), values.get("ActiveState", ""))
    assert verdict["ok"], verdict["message"]


def test_omr_admin_listens_on_65500(host, vps):
    omr_stack(vps)
    assert host.run("ss -Htln 'sport = :65500'").stdout.strip(), "nothing listens on 65500 (omr-admin)"


def test_shorewall_filters_the_default_route_interface(host, vps):
    """OMR writes the default route's interface into shorewall's params.net (#4137, #4194)."""
    omr_stack(vps)
    params = host.file("/etc/shorewall/params.net")
    if not params.exists:
        pytest.skip("no /etc/shorewall/params.net (shorewall not installed)")
    route = host.check_output("ip -4 route show default")
    default = route.split(" dev ", 1)[1].split()[0] if " dev " in route else ""
    verdict = shorewall_interface(params.content_string, default)
    assert verdict["ok"], verdict["message"]
