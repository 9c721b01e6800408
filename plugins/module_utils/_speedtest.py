# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: turn mptcp_probe results into the speed-test report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.omr.deploy.plugins.module_utils._host import parse_ping


def report(wans, single, bonded, direction="download", pings=None, capacity=None):
    """wans: planned WANs (name, multipath, address); single: one probe result per WAN, same
    order; bonded: the MPTCP probe result. Shares come from the bonded run's subflows.

    pings: ping's output per WAN (same order), for each link's idle round trip to the VPS.
    capacity: {wan name: {download: Mbit/s, upload: Mbit/s}}, what each link is sold or shaped
    at. The bonded rate is set against it too (`efficiency_capacity`): the links-alone sum hides
    a link that a loss-based congestion control cannot fill on its own.
    """
    # bytes_sent counts retransmissions too; bytes_acked is what the other side got.
    key = "bytes_received" if direction == "download" else "bytes_acked"
    subflows = bonded.get("subflow_details") or []
    total = sum(int(sf.get(key) or 0) for sf in subflows)
    pings = list(pings or [None] * len(wans))
    capacity = capacity or {}
    links = []
    for wan, res, ping in zip(wans, single, pings):
        carried = sum(int(sf.get(key) or 0) for sf in subflows if sf.get("local_address") == wan["address"])
        entry = capacity.get(wan["name"]) or {}
        # The lab's link profiles say down_mbit/up_mbit.
        cap = entry.get(direction, entry.get("down_mbit" if direction == "download" else "up_mbit"))
        links.append({
            "name": wan["name"], "multipath": wan["multipath"], "address": wan["address"],
            "single_mbps": float(res.get("throughput_mbps") or 0.0),
            "rtt_ms": parse_ping(ping)["rtt_ms"] if ping else None,
            "capacity_mbps": float(cap) if cap is not None else None,
            "bytes": carried, "share": (carried / total) if total else 0.0,
        })
    sum_single = sum(link["single_mbps"] for link in links)
    aggregate = float(bonded.get("throughput_mbps") or 0.0)
    caps = [link["capacity_mbps"] for link in links]
    sum_capacity = sum(caps) if caps and None not in caps else None
    result = {
        "direction": direction, "links": links, "sum_single_mbps": sum_single,
        "aggregate_mbps": aggregate, "mptcp": bool(bonded.get("mptcp")),
        "subflows": int(bonded.get("subflows") or 0),
        "efficiency": (aggregate / sum_single) if sum_single else 0.0,
        "sum_capacity_mbps": sum_capacity,
        "efficiency_capacity": (aggregate / sum_capacity) if sum_capacity else None,
    }
    heads = ("link", "mode", "address", "rtt ms", "alone Mbit/s", "bytes bonded", "share")
    lines = ["%-8s %-7s %-15s %7s %13s %14s %7s" % heads]
    for link in links:
        rtt = "%7.1f" % link["rtt_ms"] if link["rtt_ms"] is not None else "%7s" % "-"
        lines.append("%-8s %-7s %-15s %s %13.1f %14d %6.1f%%" % (
            link["name"], link["multipath"], link["address"], rtt, link["single_mbps"], link["bytes"], link["share"] * 100))
    lines.append("sum of the links alone %.1f Mbit/s, bonded %.1f Mbit/s (MPTCP %s, %d subflows), efficiency %.3f" % (
        sum_single, aggregate, "yes" if result["mptcp"] else "NO", result["subflows"], result["efficiency"]))
    if sum_capacity:
        lines.append("against what the links can carry (%.1f Mbit/s): %.3f" % (sum_capacity, result["efficiency_capacity"]))
    result["table"] = lines
    return result
