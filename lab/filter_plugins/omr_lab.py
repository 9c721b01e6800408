"""Lab-only filter: turn the topology and link profile into podman networks and containers.

Kept beside the lab playbooks (not in the collection): it knows the lab's addressing plan,
nothing an operator needs.
"""
import ipaddress


def _gateway(subnet):
    # Podman puts the host's bridge on the network's gateway address; keep it out of the way.
    net = ipaddress.ip_network(subnet)
    return str(net.network_address + (net.num_addresses - 3 if net.num_addresses > 8 else net.num_addresses - 2))


def _attach(network, address, ifname):
    return "%s:ip=%s,interface_name=%s" % (network, address, ifname)


def omr_lab_plan(topology, wans, links, transit, transit_links):
    """Return {'networks': [{name, subnet, gateway}], 'containers': [{name, image, memory, networks, default_via}]}."""
    inet, lan = topology["omr_lab_inet"], topology["omr_lab_lan"]
    image = topology["omr_lab_image"]
    networks = [
        {"name": "omr-lab-inet", "subnet": inet["subnet"], "gateway": inet["gateway"]},
        {"name": "omr-lab-lan", "subnet": lan["subnet"], "gateway": lan["gateway"]},
    ]
    isp_nets = [_attach("omr-lab-inet", inet["isp"], "inet")]
    router_nets = []
    for wan in wans:
        link = links[wan["name"]]
        net = "omr-lab-" + wan["name"]
        networks.append({"name": net, "subnet": link["subnet"], "gateway": _gateway(link["subnet"])})
        isp_nets.append(_attach(net, wan["gateway"], wan["name"]))
        router_nets.append(_attach(net, wan["address"].split("/")[0], wan["device"]))
    router_nets.append(_attach("omr-lab-lan", lan["router"], "lan"))
    for tlink in transit_links:
        alloc = transit[tlink["name"]]
        net = "omr-lab-transit-" + tlink["name"]
        networks.append({"name": net, "subnet": alloc["subnet"], "gateway": _gateway(alloc["subnet"])})
        router_nets.append(_attach(net, alloc["router_address"], tlink["device"]))
    containers = [
        {"name": "omr-lab-vps", "memory": "1g", "networks": [_attach("omr-lab-inet", inet["vps"], "eth0")],
         "default_via": inet["isp"]},
        {"name": "omr-lab-isp", "networks": isp_nets},
        {"name": "omr-lab-router", "memory": "1g", "networks": router_nets},
        {"name": "omr-lab-client", "networks": [_attach("omr-lab-lan", lan["client"], "eth0")],
         "default_via": lan["router"]},
    ]
    for c in containers:
        c["image"] = image
    return {"networks": networks, "containers": containers}


def omr_lab_reserved(topology, links):
    """What the router role reserves from its inventory alone: LAN, VPS and the WAN networks."""
    reserved = [{"name": "LAN", "network": topology["omr_lab_lan"]["subnet"]},
                {"name": "VPS", "network": topology["omr_lab_inet"]["vps"] + "/32"}]
    reserved += [{"name": "WAN " + name, "network": link["subnet"]} for name, link in sorted(links.items())]
    return reserved


class FilterModule(object):
    def filters(self):
        return {"omr_lab_plan": omr_lab_plan, "omr_lab_reserved": omr_lab_reserved}
