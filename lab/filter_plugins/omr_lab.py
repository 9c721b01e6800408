"""Lab-only filter: turn the topology and link profile into podman networks and containers.

Kept beside the lab playbooks (not in the collection): it knows the lab's addressing plan,
nothing an operator needs.
"""
import hashlib
import ipaddress
import json


def _gateway(subnet):
    # Podman puts the host's bridge on the network's gateway address; keep it out of the way.
    net = ipaddress.ip_network(subnet)
    return str(net.network_address + (net.num_addresses - 3 if net.num_addresses > 8 else net.num_addresses - 2))


def _attach(network, address, ifname):
    if address is None:
        return "%s:interface_name=%s" % (network, ifname)
    return "%s:ip=%s,interface_name=%s" % (network, address, ifname)


def _mac(container, ifname):
    """A fixed, locally administered MAC per container interface: a real box keeps its MAC across a
    reboot, and its neighbours' ARP caches stay right (podman would draw a new one at each restart)."""
    digest = hashlib.sha256(("%s/%s" % (container, ifname)).encode()).hexdigest()
    return "02:" + ":".join(digest[i:i + 2] for i in range(0, 10, 2))


# The router's place in the lab: a Debian router (omr.deploy.router's linux backend), or the OMR
# stand-in (openwrt backend): no systemd, no Python, reached over SSH on the LAN.
ROUTERS = {
    "linux": {"name": "omr-lab-router", "command": "/lib/systemd/systemd"},
    "omr": {"name": "omr-lab-omr", "image": "localhost/omr-lab/omr:12", "command": "/sbin/omr-lab-init"},
}


def omr_lab_plan(topology, wans, links, transit_links, router="linux", ssh_key=None):
    """Return {'networks': [{name, subnet, gateway, ipam}], 'containers': [{name, image, command,
    memory, networks, default_via, volumes}], 'replaced': [container names to remove first]}.

    Transit and hotspot networks get no addresses from podman (ipam none): the router and
    WiFi bridge roles address the transit links, the hotspot's DHCP server the bridge's uplink.
    router: linux or omr. Either router takes the same addresses and MACs (the OMR stand-in takes
    the Debian router's place, as a box swapped on the same cables); ssh_key: the public key file
    the stand-in's root accepts.
    """
    inet, lan = topology["omr_lab_inet"], topology["omr_lab_lan"]
    image = topology["omr_lab_image"]
    networks = [
        {"name": "omr-lab-inet", "subnet": inet["subnet"], "gateway": inet["gateway"]},
        {"name": "omr-lab-lan", "subnet": lan["subnet"], "gateway": lan["gateway"]},
    ]
    isp_nets = [_attach("omr-lab-inet", inet["isp"], "inet")]
    router_nets = []
    for wan in wans:
        if wan.get("transit"):
            continue  # behind the WiFi bridge, not an ISP line
        link = links[wan["name"]]
        net = "omr-lab-" + wan["name"]
        if str(wan.get("address")).lower() == "dhcp":
            # The ISP addresses its end and hands out the router's (omr_lab_dhcp_links).
            networks.append({"name": net, "ipam": "none"})
            isp_nets.append(_attach(net, None, wan["name"]))
            router_nets.append(_attach(net, None, wan["device"]))
            continue
        networks.append({"name": net, "subnet": link["subnet"], "gateway": _gateway(link["subnet"])})
        isp_nets.append(_attach(net, wan["gateway"], wan["name"]))
        router_nets.append(_attach(net, wan["address"].split("/")[0], wan["device"]))
    router_nets.append(_attach("omr-lab-lan", lan["router"], "lan"))
    for tlink in transit_links:
        net = "omr-lab-transit-" + tlink["name"]
        networks.append({"name": net, "ipam": "none"})
        router_nets.append(_attach(net, None, tlink["device"]))
    hotspot = topology["omr_lab_hotspot"]
    networks.append({"name": "omr-lab-hotspot", "ipam": "none"})
    internet = topology["omr_lab_internet"]
    networks.append({"name": "omr-lab-beyond", "subnet": internet["subnet"], "gateway": internet["gateway"]})
    containers = [
        {"name": "omr-lab-vps", "memory": "1g",
         "networks": [_attach("omr-lab-inet", inet["vps"], "eth0"),
                      _attach("omr-lab-beyond", internet["vps"], "beyond")],
         "default_via": inet["isp"]},
        # A server on the internet that only the VPS routes to: what a LAN client downloads from.
        {"name": "omr-lab-internet", "networks": [_attach("omr-lab-beyond", internet["host"], "eth0")],
         "default_via": internet["vps"]},
        {"name": "omr-lab-isp", "networks": isp_nets},
        dict(ROUTERS[router], memory="1g", networks=router_nets, mac_name=ROUTERS["linux"]["name"]),
        {"name": "omr-lab-client", "networks": [_attach("omr-lab-lan", lan["client"], "eth0")],
         "default_via": lan["router"]},
        # A public hotspot on the "internet", with its own DHCP network behind a captive portal,
        # and the WiFi bridge that uses it as its (wired, in the lab) uplink.
        {"name": "omr-lab-hotspot", "networks": [_attach("omr-lab-inet", hotspot["public"], "inet"),
                                                 _attach("omr-lab-hotspot", None, "hotspot")],
         "default_via": inet["isp"]},
        {"name": "omr-lab-wifi", "networks": [_attach("omr-lab-hotspot", None, "uplink"),
                                              _attach("omr-lab-transit-" + hotspot["transit_link"], None, "transit")]},
    ]
    if router == "omr" and ssh_key:
        containers[3]["volumes"] = ["%s:/root/.ssh/authorized_keys:ro" % ssh_key]
    for c in containers:
        c.setdefault("image", image)
        c.setdefault("command", ROUTERS["linux"]["command"])
        mac_name = c.pop("mac_name", c["name"])
        c["networks"] = ["%s,mac=%s" % (n, _mac(mac_name, n.rsplit("interface_name=", 1)[1])) for n in c["networks"]]
    others = [r["name"] for kind, r in sorted(ROUTERS.items()) if kind != router]
    return {"networks": networks, "containers": containers, "replaced": others}


def omr_lab_dhcp_links(wans, links):
    """The ISP's side of WANs with `address: dhcp`: [{name, isp (CIDR), first, last, netmask}].
    The ISP takes the subnet's last usable address (the gateway its DHCP server announces)
    and leases from the .100-.199 offsets, or link `dhcp_first`/`dhcp_last`."""
    out = []
    for wan in wans:
        if str(wan.get("address")).lower() != "dhcp":
            continue
        link = links[wan["name"]]
        net = ipaddress.ip_network(link["subnet"])
        isp = link.get("isp") or str(net.network_address + net.num_addresses - 2)
        out.append({"name": wan["name"], "isp": "%s/%d" % (isp, net.prefixlen),
                    "first": link.get("dhcp_first") or str(net.network_address + 100),
                    "last": link.get("dhcp_last") or str(net.network_address + 199),
                    "netmask": str(net.netmask)})
    return out


def omr_lab_isp_config(wans, links, internet=None):
    """lab/files/omr-lab-isp.py's configuration: one line per WAN the ISP serves (not those
    behind the WiFi bridge), with the ISP's own address on the DHCP ones, and the route to the
    internet host's network through the VPS."""
    dhcp = dict((d["name"], d["isp"]) for d in omr_lab_dhcp_links(wans, links))
    out = []
    for wan in wans:
        if wan.get("transit"):
            continue
        link = links[wan["name"]]
        out.append({"name": wan["name"], "subnet": link["subnet"], "down_mbit": link["down_mbit"],
                    "up_mbit": link["up_mbit"], "loss_pct": link.get("loss_pct", 0), "delay_ms": link.get("delay_ms", 0),
                    "jitter_ms": link.get("jitter_ms", 0), "isp_address": dhcp.get(wan["name"])})
    routes = [{"network": internet["subnet"], "via": internet["via"]}] if internet else []
    return {"links": out, "routes": routes}


def omr_lab_lan_report(wans, before, after, fetch, expected_sha256, speedtest=None, capacity=None):
    """The LAN client's download (lab/tasks/lan_download.yml): omr-lab-fetch's JSON, the WANs'
    rx_bytes before and after, the file's sha256, and the speed test's links alone.

    Each WAN's share is of the bytes all WANs received; `fair` is its share of the links'
    rates alone, so `share / fair` says how much of its part a WAN carried. Without a speed
    test (an OMR router has no Python for it), `capacity` ({wan: {down_mbit}}, the lab's
    shaping) stands for the links alone."""
    result = json.loads(fetch) if isinstance(fetch, str) and fetch.strip() else {"error": "no output", "bytes": 0, "mbps": 0.0}
    deltas = [int(a) - int(b) for a, b in zip(after, before)]
    total = sum(deltas) or 1
    single = {}
    for link in (speedtest or {}).get("links", []):
        single[link["name"]] = link.get("single_mbps") or 0.0
    basis = "alone"
    if not single and capacity:
        basis = "shaped"
        for wan in wans:
            down = (capacity.get(wan["name"]) or {}).get("down_mbit")
            if down is not None:
                single[wan["name"]] = float(down)
    sum_single = sum(single.get(w["name"], 0.0) for w in wans)
    out_wans = []
    for wan, delta in zip(wans, deltas):
        fair = single.get(wan["name"], 0.0) / sum_single if sum_single else None
        out_wans.append({"name": wan["name"], "device": wan["device"], "multipath": wan["multipath"], "bytes": delta,
                         "share": round(delta / total, 3), "fair": round(fair, 3) if fair is not None else None,
                         "single_mbps": single.get(wan["name"])})
    mbps = float(result.get("mbps") or 0.0)
    report = {"bytes": int(result.get("bytes") or 0), "mbps": mbps, "seconds": result.get("seconds"),
              "error": result.get("error"), "sha256": result.get("sha256"),
              "intact": result.get("sha256") == expected_sha256 and not result.get("error"),
              "wans": out_wans, "sum_single_mbps": round(sum_single, 2),
              "efficiency": round(mbps / sum_single, 3) if sum_single else None}
    lines = ["LAN client download from the internet host (receiver-counted, %s)"
             % ("intact" if report["intact"] else "NOT intact: %s" % (report["error"] or "sha256 differs"))]
    for w in out_wans:
        alone = " (%s %.1f Mbit/s)" % (basis, w["single_mbps"]) if w["single_mbps"] is not None else ""
        lines.append("  %-6s %-6s %10d bytes  %5.1f %%%s" % (w["name"], w["multipath"], w["bytes"], 100 * w["share"], alone))
    eff = " = %.3f of the links %s (%.1f Mbit/s)" % (report["efficiency"], basis, sum_single) if sum_single else ""
    lines.append("  %d bytes at %.1f Mbit/s%s" % (report["bytes"], mbps, eff))
    # A WAN carried its part when it got at least half of its share of the links' rates.
    report["below_half"] = [w["name"] for w in out_wans if w["fair"] is None or w["share"] < 0.5 * w["fair"]]
    report["max_share"] = max([w["share"] for w in out_wans] or [0.0])
    report["bonded"] = len(out_wans) >= 2 and not report["below_half"]
    lines.append("  %s" % ("bonded: every WAN carried at least half its part" if report["bonded"]
                           else "not bonded: %s below half their part" % ", ".join(report["below_half"])))
    report["table"] = lines
    return report


def omr_lab_udp_report(wans, before, after, burst):
    """The LAN client's UDP burst (lab/tasks/lan_udp.yml): omr-lab-udp-burst's JSON, and each
    WAN's received and sent bytes before and after (two lines per WAN). A WAN is used when it
    carried at least 10 % of the bytes all WANs carried."""
    result = json.loads(burst) if isinstance(burst, str) and burst.strip() else {}
    deltas = []
    for i in range(len(wans)):
        deltas.append(sum(int(after[2 * i + k]) - int(before[2 * i + k]) for k in (0, 1)))
    total = sum(deltas) or 1
    out_wans = [{"name": w["name"], "device": w["device"], "multipath": w["multipath"], "bytes": d,
                 "share": round(d / total, 3)} for w, d in zip(wans, deltas)]
    report = {"sent": int(result.get("sent") or 0), "received": int(result.get("received") or 0),
              "sent_bytes": int(result.get("sent_bytes") or 0), "mbps": float(result.get("mbps") or 0.0),
              "lost_pct": float(result.get("lost_pct", 100.0)), "wans": out_wans,
              "wans_used": [w["name"] for w in out_wans if w["share"] >= 0.1],
              "max_share": max([w["share"] for w in out_wans] or [0.0])}
    lines = ["LAN client UDP burst to the internet host's echo: %d datagrams sent at %.1f Mbit/s, %d echoed (%.1f %% lost)"
             % (report["sent"], report["mbps"], report["received"], report["lost_pct"])]
    for w in out_wans:
        lines.append("  %-6s %-6s %10d bytes  %5.1f %%" % (w["name"], w["multipath"], w["bytes"], 100 * w["share"]))
    lines.append("  %d WAN(s) carried at least 10 %%: %s" % (len(report["wans_used"]), ", ".join(report["wans_used"]) or "none"))
    report["table"] = lines
    return report


class FilterModule(object):
    def filters(self):
        return {"omr_lab_plan": omr_lab_plan, "omr_lab_dhcp_links": omr_lab_dhcp_links,
                "omr_lab_isp_config": omr_lab_isp_config, "omr_lab_lan_report": omr_lab_lan_report,
                "omr_lab_udp_report": omr_lab_udp_report}
