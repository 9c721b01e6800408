# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: turn mptcp_probe results into the speed-test report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def report(wans, single, bonded, direction="download"):
    """wans: planned WANs (name, multipath, address); single: one probe result per WAN, same
    order; bonded: the MPTCP probe result. Shares come from the bonded run's subflows."""
    # bytes_sent counts retransmissions too; bytes_acked is what the other side got.
    key = "bytes_received" if direction == "download" else "bytes_acked"
    subflows = bonded.get("subflow_details") or []
    total = sum(int(sf.get(key) or 0) for sf in subflows)
    links = []
    for wan, res in zip(wans, single):
        carried = sum(int(sf.get(key) or 0) for sf in subflows if sf.get("local_address") == wan["address"])
        links.append({
            "name": wan["name"], "multipath": wan["multipath"], "address": wan["address"],
            "single_mbps": float(res.get("throughput_mbps") or 0.0),
            "bytes": carried, "share": (carried / total) if total else 0.0,
        })
    sum_single = sum(link["single_mbps"] for link in links)
    aggregate = float(bonded.get("throughput_mbps") or 0.0)
    result = {
        "direction": direction, "links": links, "sum_single_mbps": sum_single,
        "aggregate_mbps": aggregate, "mptcp": bool(bonded.get("mptcp")),
        "subflows": int(bonded.get("subflows") or 0),
        "efficiency": (aggregate / sum_single) if sum_single else 0.0,
    }
    lines = ["%-8s %-7s %-15s %13s %14s %7s" % ("link", "mode", "address", "alone Mbit/s", "bytes bonded", "share")]
    for link in links:
        lines.append("%-8s %-7s %-15s %13.1f %14d %6.1f%%" % (
            link["name"], link["multipath"], link["address"], link["single_mbps"], link["bytes"], link["share"] * 100))
    lines.append("sum of the links alone %.1f Mbit/s, bonded %.1f Mbit/s (MPTCP %s, %d subflows), efficiency %.3f" % (
        sum_single, aggregate, "yes" if result["mptcp"] else "NO", result["subflows"], result["efficiency"]))
    result["table"] = lines
    return result
