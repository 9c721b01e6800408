"""Lab-only filter: turn the topology and link profile into podman networks and containers.

Kept beside the lab playbooks (not in the collection): it knows the lab's addressing plan,
nothing an operator needs.
"""
import hashlib
import ipaddress


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


def omr_lab_plan(topology, wans, links, transit_links):
    """Return {'networks': [{name, subnet, gateway, ipam}], 'containers': [{name, image, memory, networks, default_via}]}.

    Transit and hotspot networks get no addresses from podman (ipam none): the router and
    WiFi bridge roles address the transit links, the hotspot's DHCP server the bridge's uplink.
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
    containers = [
        {"name": "omr-lab-vps", "memory": "1g", "networks": [_attach("omr-lab-inet", inet["vps"], "eth0")],
         "default_via": inet["isp"]},
        {"name": "omr-lab-isp", "networks": isp_nets},
        {"name": "omr-lab-router", "memory": "1g", "networks": router_nets},
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
    for c in containers:
        c["image"] = image
        c["networks"] = ["%s,mac=%s" % (n, _mac(c["name"], n.rsplit("interface_name=", 1)[1])) for n in c["networks"]]
    return {"networks": networks, "containers": containers}


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


def omr_lab_isp_config(wans, links):
    """lab/files/omr-lab-isp.py's configuration: one line per WAN the ISP serves (not those
    behind the WiFi bridge), with the ISP's own address on the DHCP ones."""
    dhcp = dict((d["name"], d["isp"]) for d in omr_lab_dhcp_links(wans, links))
    out = []
    for wan in wans:
        if wan.get("transit"):
            continue
        link = links[wan["name"]]
        out.append({"name": wan["name"], "subnet": link["subnet"], "down_mbit": link["down_mbit"],
                    "up_mbit": link["up_mbit"], "loss_pct": link.get("loss_pct", 0), "delay_ms": link.get("delay_ms", 0),
                    "jitter_ms": link.get("jitter_ms", 0), "isp_address": dhcp.get(wan["name"])})
    return {"links": out}


class FilterModule(object):
    def filters(self):
        return {"omr_lab_plan": omr_lab_plan, "omr_lab_dhcp_links": omr_lab_dhcp_links,
                "omr_lab_isp_config": omr_lab_isp_config}
