# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: turn mptcp_probe results into the speed-test report, and the
probe's curl client for routers without Python (the shell command it runs and its parser)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

from ansible_collections.omr.deploy.plugins.module_utils._host import parse_ping

try:
    from typing import Any, Dict, List, Optional
except ImportError:  # pragma: no cover
    Any = Dict = List = Optional = None


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


# ---------------------------------------------------------------------------
# The curl client (omr.deploy.mptcp_probe with client=curl)
# ---------------------------------------------------------------------------

CURL_MARK = "#omr-probe#"
# What curl prints with -w, one key=value a line (\n is curl's escape, inside single quotes).
CURL_FIELDS = ("http_code", "size_download", "time_starttransfer", "time_total")
# Linux interface names: at most 15 characters, no slash or space.
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
# A name or an address, nothing that would change the URL.
_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
# 32-bit routers keep 32-bit interface counters.
_COUNTER_WRAP = 1 << 32


class SpeedtestError(ValueError):
    """Bad probe input, or curl output that says the test failed."""


def _counters_script(devices, kind):
    # type: (List[str], str) -> str
    if not devices:
        return ":"
    return ('for i in %s; do printf "%%s %%s\\n" "$i" "$(cat "/sys/class/net/$i/statistics/%s" 2>/dev/null || echo -)"; done'
            % (" ".join(shlex.quote(d) for d in devices), kind))


def curl_script(host, port, seconds, seed, protocol="mptcp", bind_address=None, interfaces=None, timeout=10):
    # type: (str, int, int, int, str, Optional[str], Optional[Dict[str, str]], int) -> str
    """One POSIX sh command (busybox ash too): the devices' rx counters, a sampler that counts the
    established TCP connections to the server's port half-way (an MPTCP connection's subflows),
    curl's download, the counters again, each printed under a CURL_MARK line. No `exit` and no
    trailing newline: Ansible appends ` && sleep 0`."""
    if not _HOST_RE.match(host or ""):
        raise SpeedtestError("host: %r is not a host name or an address" % (host,))
    devices = list(interfaces or {})
    for dev in devices:
        if not _DEVICE_RE.match(dev):
            raise SpeedtestError("interfaces: %r is not a network interface name" % (dev,))
    if protocol not in ("mptcp", "tcp"):
        raise SpeedtestError("protocol must be mptcp or tcp, got %r" % (protocol,))
    url = "http://%s:%d/download?seconds=%d&seed=%d" % ("[%s]" % host if ":" in host else host, port, seconds, seed)
    write_out = "\\n".join("%s=%%{%s}" % (f, f) for f in CURL_FIELDS) + "\\n"
    curl = ["curl", "-q", "-sS", "-o", "/dev/null", "-D", '"$d/headers"', "--connect-timeout", str(timeout),
            "--max-time", str(seconds + timeout), "-w", shlex.quote(write_out)]
    if bind_address:
        curl += ["--interface", shlex.quote(bind_address)]
    curl.append(shlex.quote(url))
    if protocol == "mptcp":
        curl = ["mptcpize", "run"] + curl
    half = seconds / 2.0
    sleep = "sleep %d" % half if half == int(half) else "{ sleep %g || sleep %d; } 2>/dev/null" % (half, int(half) or 1)
    ss = "ss -Htn state established %s" % shlex.quote("( dport = :%d )" % port)
    return "\n".join([
        'm=%s; LC_ALL=C; PATH="$PATH:/usr/sbin:/sbin"; export LC_ALL PATH' % shlex.quote(CURL_MARK),
        'd=$(mktemp -d /tmp/omr-mptcp-probe.XXXXXX 2>/dev/null)',
        'if [ -z "$d" ]; then echo "$m error cannot make a temporary directory in /tmp"; else',
        'echo "$m before"',
        _counters_script(devices, "rx_bytes"),
        # Detached from the connection's output, so a leftover sleep cannot hold it open.
        '( %s; command -v ss >/dev/null && %s | wc -l > "$d/subflows" ) </dev/null >/dev/null 2>&1 &' % (sleep, ss),
        's=$!',
        'echo "$m curl"',
        '%s 2>"$d/stderr" </dev/null' % " ".join(curl),
        'rc=$?',
        'echo "$m after"',
        _counters_script(devices, "rx_bytes"),
        'kill "$s" 2>/dev/null; wait "$s" 2>/dev/null',
        'echo "$m rc $rc"',
        'echo "$m stderr"; cat "$d/stderr" 2>/dev/null',
        'echo "$m headers"; cat "$d/headers" 2>/dev/null',
        'echo "$m subflows"; cat "$d/subflows" 2>/dev/null',
        'rm -rf "$d"',
        'echo "$m end"',
        'fi',
    ])


def _curl_sections(stdout):
    # type: (str) -> Dict[str, List[str]]
    sections = {}  # type: Dict[str, List[str]]
    current = None  # type: Optional[List[str]]
    for raw in (stdout or "").splitlines():
        line = raw.rstrip("\r")
        if line.startswith(CURL_MARK + " "):
            words = line[len(CURL_MARK) + 1:].split(" ", 1)
            current = sections.setdefault(words[0], [])
            if len(words) > 1:
                current.append(words[1])
            continue
        if current is not None:
            current.append(line)
    return sections


def _counters(lines):
    # type: (List[str]) -> Dict[str, Optional[int]]
    out = {}  # type: Dict[str, Optional[int]]
    for line in lines:
        words = line.split()
        if len(words) == 2:
            out[words[0]] = int(words[1]) if words[1].isdigit() else None
    return out


def _number(text, cast):
    # type: (Optional[str], Any) -> Any
    try:
        return cast(text)
    except (TypeError, ValueError):
        return None


def parse_curl_probe(stdout, protocol="mptcp", interfaces=None):
    # type: (str, str, Optional[Dict[str, str]]) -> Dict[str, Any]
    """curl_script's output -> a result shaped like the module's (for report()): throughput
    counted by curl as the receiver, from its first byte to its last, and one subflow_details
    entry per interface with its rx counter's growth. Raises SpeedtestError when the test failed."""
    sections = _curl_sections(stdout)
    if "error" in sections:
        raise SpeedtestError(" ".join(sections["error"]).strip())
    if "end" not in sections or "rc" not in sections:
        raise SpeedtestError("the probe's output is cut short; is /bin/sh a POSIX shell on the target?")
    rc = _number((sections["rc"] or [""])[0], int)
    message = " ".join(line.strip() for line in sections.get("stderr", []) if line.strip())
    if rc != 0:
        hint = ""
        if rc == 127:
            hint = " (no curl or mptcpize on the target?)"
        elif rc == 52 or (rc == 56 and "reset" in message.lower()):
            # The server closes a client outside its --allow list at once, without an answer.
            hint = " (the server closed the connection at once: is the source address in its --allow list?)"
        elif "HTTP/0.9" in message:
            # A JSON error line: the server predates the HTTP mode.
            hint = " (the server answered a JSON line: an omr-mptcp-speedtest without HTTP mode, update the VPS)"
        raise SpeedtestError("curl failed (rc %s)%s: %s" % (rc, hint, message or "no message"))
    fields = {}  # type: Dict[str, str]
    for line in sections.get("curl", []):
        key, sep, value = line.partition("=")
        if sep and key in CURL_FIELDS:
            fields[key] = value.strip()
    status_line = ""
    headers = {}  # type: Dict[str, str]
    for line in sections.get("headers", []):
        if line.startswith("HTTP/"):
            status_line, headers = line.strip(), {}    # the last response counts
        elif ":" in line:
            name, _sep, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    code = _number(fields.get("http_code"), int)
    if code != 200:
        reason = headers.get("x-omr-error") or message
        answered = status_line or "HTTP %s" % code
        raise SpeedtestError("the server answered %s%s" % (answered, ": %s" % reason if reason else ""))
    size = _number(fields.get("size_download"), int) or 0
    if size <= 0:
        raise SpeedtestError("curl received nothing from the server%s" % (": %s" % message if message else ""))
    total = _number(fields.get("time_total"), float)
    first = _number(fields.get("time_starttransfer"), float)
    seconds = round(total - first, 3) if total is not None and first is not None else None
    warnings = []  # type: List[str]
    mptcp = protocol == "mptcp" and headers.get("x-omr-mptcp") == "yes"
    if protocol == "mptcp" and not mptcp:
        warnings.append("the connection fell back to plain TCP (server header X-Omr-Mptcp: %s): the target, "
                        "the server or a middlebox does not speak MPTCP" % headers.get("x-omr-mptcp", "missing"))
    subflows = 1  # type: Optional[int]
    if mptcp:
        counted = "".join(sections.get("subflows", [])).strip()
        subflows = int(counted) if counted.isdigit() else None
        if subflows is None:
            warnings.append("subflows not counted: no `ss` (iproute2) on the target, or the test ended before "
                            "half its time")
    before, after = _counters(sections.get("before", [])), _counters(sections.get("after", []))
    details = []  # type: List[Dict[str, Any]]
    for dev, address in (interfaces or {}).items():
        start, end = before.get(dev), after.get(dev)
        delta = None  # type: Optional[int]
        if start is None or end is None:
            warnings.append("no counters for interface %s (/sys/class/net/%s)" % (dev, dev))
        else:
            delta = end - start if end >= start else end + _COUNTER_WRAP - start
        details.append({"device": dev, "local_address": address, "bytes_received": delta})
    return {
        "direction": "download", "protocol": protocol, "client": "curl", "mptcp": mptcp,
        "subflows": subflows, "subflow_details": details, "bytes": size, "seconds": seconds,
        "throughput_mbps": round(size * 8.0 / seconds / 1e6, 3) if seconds and seconds > 0 else None,
        "integrity_ok": None, "warnings": warnings,
    }
