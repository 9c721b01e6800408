#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mptcp_probe
short_description: Measure Multipath TCP (MPTCP) throughput and subflows against the OMR speed-test server
version_added: 0.1.0
description:
  - Opens one Multipath TCP connection (C(IPPROTO_MPTCP)) from the target to C(omr-mptcp-speedtest),
    a small speed-test server meant to run as a service on the VPS (it ships in the C(omr.deploy.vps) role
    as C(files/omr-mptcp-speedtest.py); run it with C(--help) for its options), moves test data in one
    direction, and reports whether the connection really used MPTCP, which subflows carried the data and
    the goodput.
  - Goodput is counted at the receiver, never from what the sender handed to its socket (large send buffers
    would overstate it). For a download the module counts what it received, from sending the request to the
    last byte. For an upload the server counts what it received, from the request to the last byte, and
    returns that count.
  - The data is a deterministic pseudo-random stream (SHA-256 in counter mode, seeded per run), so the
    receiver checks every byte. RV(integrity_ok) reports the result.
  - While the data moves, the module samples the subflows (C(MPTCP_SUBFLOW_ADDRS) and C(MPTCP_TCPINFO))
    every quarter of a second, so a subflow that closes during the test is still listed with what it had
    carried.
  - RV(mptcp) is true only when the connection is MPTCP from end to end. A connection that fell back to
    plain TCP (server or middlebox without MPTCP) is detected from C(MPTCP_INFO), which then fails with
    C(EOPNOTSUPP) or C(ENOPROTOOPT), or has its fallback flag set.
  - With O(protocol=tcp) the module opens a plain TCP connection instead. Together with O(bind_address)
    this measures one WAN alone, the baseline an MPTCP aggregate is compared with.
  - With O(client=curl), for a router without Python such as OpenMPTCProuter's, the probe runs as an action
    plugin instead. One POSIX shell command over the connection runs C(curl) against the server's HTTP mode
    (C(GET /download?seconds=N)), prefixed with C(mptcpize run) for O(protocol=mptcp), as OMR's own speed test
    does, and the controller parses its output. Downloads only; the data is not checked. The server's
    C(X-Omr-Mptcp) header says whether the connection was MPTCP end to end, and C(ss) counts the established
    TCP connections to the server's port half-way through the test, which for an MPTCP connection are its
    subflows.
  - The probe changes nothing on the target, so the task never reports a change.
author:
  - omr.deploy maintainers (!UNKNOWN)
options:
  host:
    description:
      - Name or address of the server running C(omr-mptcp-speedtest), normally the VPS's public address.
      - The server only answers clients inside its C(--allow) networks; the address the probe leaves from
        must be one of them.
    type: str
    required: true
  port:
    description: TCP port of the speed-test server.
    type: int
    default: 65432
  direction:
    description:
      - V(download) measures server to target (the server sends), V(upload) target to server.
      - V(upload) needs O(client=python).
    type: str
    choices: [download, upload]
    default: download
  seconds:
    description:
      - How long the sender sends, in seconds. Ignored when O(bytes) is set.
      - The server refuses a test longer than its C(--max-seconds) (30 by default).
    type: int
    default: 5
  bytes:
    description:
      - Move exactly this many bytes instead of sending for O(seconds).
      - The receiver checks every byte and the total, so RV(integrity_ok) is only true when exactly this
        many bytes arrived intact.
      - The server refuses more than its C(--max-bytes) (1 GiB by default), and stops a transfer that runs
        past its C(--max-seconds).
      - Needs O(client=python).
    type: int
  bind_address:
    description:
      - Local address to leave from, for example one WAN's address, to test that WAN.
      - With O(protocol=mptcp) it only picks the first subflow's address; the kernel path manager still adds
        subflows from its C(subflow) endpoints. Use O(protocol=tcp) to test a single WAN alone.
      - With O(client=curl) it is curl's C(--interface), which also takes an interface name.
    type: str
  protocol:
    description:
      - V(mptcp) opens an MPTCP socket. If the target's kernel cannot open one, the probe warns and uses
        plain TCP, and RV(mptcp) is false.
      - V(tcp) opens a plain TCP socket, for single-link baselines.
    type: str
    choices: [mptcp, tcp]
    default: mptcp
  timeout:
    description:
      - Seconds to wait for the connection, and for the transfer when it stalls (no data received during a
        download, no progress during an upload).
      - With O(client=curl), curl's C(--connect-timeout), and the whole transfer may take O(seconds) plus this
        (C(--max-time)).
    type: int
    default: 10
  client:
    description:
      - V(python) runs this module on the target (it needs Python there).
      - V(curl) runs C(curl) on the target with one shell command (C(mptcpize run curl) for O(protocol=mptcp)),
        for a router without Python. It needs C(curl), C(mktemp), C(wc), C(mptcpize) for O(protocol=mptcp)
        and, to count subflows, iproute2's C(ss), all of which OpenMPTCProuter has. It only downloads
        (O(direction=download), for O(seconds); O(bytes) is refused) and does not check the data, so
        RV(integrity_ok) is null.
    type: str
    choices: [python, curl]
    default: python
  interfaces:
    description:
      - With O(client=curl), the WANs to count, a dict of each WAN's device name to its address. Their receive counters
        (C(/sys/class/net/DEVICE/statistics/rx_bytes)) are read before and after the test, and RV(subflow_details)
        has one entry per device with the address given here and what the device received.
      - These are interface counters during the test, headers and any other traffic on the device included,
        not one connection's payload.
      - Only used by O(client=curl); the Python client reads each subflow itself and refuses this option.
    type: dict
extends_documentation_fragment:
  - omr.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The probe runs in check mode too, because it changes no state on the target; it only sends test traffic.
  diff_mode:
    support: N/A
    details:
      - The probe changes no state.
  platform:
    support: full
    platforms: [linux, openwrt]
    details:
      - Needs Python on the target with O(client=python). With O(client=curl) it runs on an OpenWrt router
        without Python (OpenMPTCProuter), or any Linux with a POSIX C(sh) and C(curl).
      - Per-subflow details need the Python C(ctypes) module and kernel 5.16 or later
        (C(MPTCP_TCPINFO) and C(MPTCP_SUBFLOW_ADDRS)); without them RV(subflow_details) is empty for an MPTCP
        connection and RV(subflows) comes from C(MPTCP_INFO).
requirements:
  - A kernel with upstream MPTCP (C(CONFIG_MPTCP), C(net.mptcp.enabled=1)) on the target for O(protocol=mptcp).
  - C(omr-mptcp-speedtest) listening on the server, with the target's address in its C(--allow) list.
notes:
  - More than one subflow needs the path manager set up on the target (one C(subflow) endpoint per extra WAN,
    see M(omr.deploy.mptcp_endpoint)) or addresses announced by the server, and C(subflows) limits above 0 on
    both sides.
  - RV(subflow_details) counters come from each subflow's C(struct tcp_info). They count TCP payload, so
    data the MPTCP layer sent again on another subflow counts twice, and their sum can be slightly above
    RV(bytes).
  - Throughput is in megabits per second (10^6 bit/s) of payload.
  - O(client=curl) runs as an action plugin; the module file itself only runs the Python client and fails
    when it is asked for curl.
  - With O(client=curl) a fallback to plain TCP is seen by the server, which says so in its C(X-Omr-Mptcp)
    header; an older C(omr-mptcp-speedtest) without the HTTP mode makes curl fail.
seealso:
  - module: omr.deploy.mptcp_info
  - module: omr.deploy.mptcp_endpoint
  - name: MPTCP_INFO and friends
    description: How to read MPTCP connection and subflow information from a socket.
    link: https://www.mptcp.dev/mptcp-info.html
"""

EXAMPLES = r"""
- name: Download test from the VPS over all WANs
  omr.deploy.mptcp_probe:
    host: 192.0.2.1
    seconds: 10
  register: aggregate

- name: The same over the first WAN alone, with plain TCP
  omr.deploy.mptcp_probe:
    host: 192.0.2.1
    protocol: tcp
    bind_address: 100.64.1.2
    seconds: 10
  register: wan1

- name: MPTCP must really be used, over more than one subflow, and beat one WAN
  ansible.builtin.assert:
    that:
      - aggregate.mptcp
      - aggregate.subflows > 1
      - aggregate.throughput_mbps > 1.3 * wan1.throughput_mbps
    fail_msg: >-
      MPTCP {{ aggregate.mptcp }}, {{ aggregate.subflows }} subflow(s),
      {{ aggregate.throughput_mbps }} Mbit/s against {{ wan1.throughput_mbps }} Mbit/s on one WAN

- name: Upload 50 MB and check that it arrived intact
  omr.deploy.mptcp_probe:
    host: vps.example.org
    direction: upload
    bytes: 50000000
  register: upload
  failed_when: not upload.integrity_ok

- name: On an OMR router without Python, all WANs bonded with mptcpize and curl
  omr.deploy.mptcp_probe:
    host: 192.0.2.1
    client: curl
    seconds: 10
    interfaces:
      eth1: 100.64.1.2
      eth2: 100.64.2.2
  register: aggregate_curl

- name: Show what each subflow carried
  ansible.builtin.debug:
    msg: "{{ item.local_address }} -> {{ item.remote_address }}: {{ item.bytes_received }} bytes received"
  loop: "{{ aggregate.subflow_details }}"
"""

RETURN = r"""
mptcp:
  description:
    - True when the connection was MPTCP from start to end. False for O(protocol=tcp), when the target cannot
      open MPTCP sockets, and when the connection fell back to plain TCP.
  returned: success
  type: bool
  sample: true
subflows:
  description:
    - Number of subflows seen during the transfer, including the initial one. Always 1 without MPTCP.
    - With O(client=curl), the established TCP connections to the server's port that C(ss) counted half-way
      through the test; null when they could not be counted (no C(ss), or a test that ended early).
  returned: success
  type: int
  sample: 2
subflow_details:
  description:
    - One entry per subflow seen, in the order they were first seen, with the byte counters of its last sample.
    - For a plain TCP (or fallen-back) connection, the one TCP connection.
    - Empty for an MPTCP connection when per-subflow data is unavailable (no C(ctypes), kernel before 5.16).
    - With O(client=curl), one entry per device of O(interfaces) (empty without it), with only C(device),
      C(local_address) (the address given for it) and C(bytes_received), what the device received during the
      test, headers and other traffic included.
  returned: success
  type: list
  elements: dict
  sample:
    - {local_address: 100.64.1.2, local_port: 40112, remote_address: 192.0.2.1, remote_port: 65432,
       bytes_sent: 89, bytes_received: 10231808, bytes_acked: 90, bytes_retrans: 0}
    - {local_address: 100.64.2.2, local_port: 38467, remote_address: 192.0.2.1, remote_port: 65432,
       bytes_sent: 0, bytes_received: 9822152, bytes_acked: 1, bytes_retrans: 0}
  contains:
    device:
      description: The network device (O(client=curl)).
      type: str
      returned: with O(client=curl)
      sample: eth1
    local_address:
      description: Local address of the subflow; with O(client=curl), the address given in O(interfaces).
      type: str
      returned: always
      sample: 100.64.1.2
    local_port:
      description: Local port of the subflow.
      type: int
      returned: with O(client=python)
      sample: 40112
    remote_address:
      description: Remote address of the subflow.
      type: str
      returned: with O(client=python)
      sample: 192.0.2.1
    remote_port:
      description: Remote port of the subflow.
      type: int
      returned: with O(client=python)
      sample: 65432
    bytes_sent:
      description:
        - TCP payload bytes the subflow sent, retransmissions included (C(tcpi_bytes_sent)).
        - Null on kernels before 4.19.
      type: int
      returned: with O(client=python)
      sample: 89
    bytes_received:
      description:
        - TCP payload bytes the subflow received (C(tcpi_bytes_received)).
        - With O(client=curl), what the device received during the test (its C(rx_bytes) counter), null when
          the device has no counters.
      type: int
      returned: always
      sample: 10231808
    bytes_acked:
      description: Bytes the peer acknowledged on this subflow (C(tcpi_bytes_acked), which counts the SYN as 1).
      type: int
      returned: with O(client=python)
      sample: 90
    bytes_retrans:
      description: Bytes retransmitted on this subflow (C(tcpi_bytes_retrans)). Null on kernels before 4.19.
      type: int
      returned: with O(client=python)
      sample: 0
bytes:
  description:
    - Payload bytes counted by the receiver (this module for a download, the server for an upload).
    - With O(client=curl), the body bytes curl received (C(size_download)).
  returned: success
  type: int
  sample: 20054016
bytes_sent:
  description: Payload bytes this module sent.
  returned: success and O(direction=upload)
  type: int
  sample: 20054016
seconds:
  description:
    - Duration of the transfer at the receiver, from the request to the last byte received.
    - With O(client=curl), from the first byte to the last (curl's C(time_total) less C(time_starttransfer)).
  returned: success
  type: float
  sample: 4.12
throughput_mbps:
  description: Goodput, RV(bytes) times 8 divided by RV(seconds), in megabits (10^6 bit) per second.
  returned: success
  type: float
  sample: 38.94
integrity_ok:
  description:
    - True when every byte received matched the expected stream (for an upload, when the server's SHA-256
      and count match what was sent), and, with O(bytes), exactly that many bytes arrived.
    - Null when nothing could be checked, and always with O(client=curl), which does not check the data.
  returned: success
  type: bool
  sample: true
direction:
  description: The direction that was tested.
  returned: always
  type: str
  sample: download
protocol:
  description: The protocol that was asked for (O(protocol)).
  returned: always
  type: str
  sample: mptcp
client:
  description: The client that ran (O(client)).
  returned: success
  type: str
  sample: curl
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.omr.deploy.plugins.module_utils._mptcp_sock import DEFAULT_PORT, ProbeError, run_probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type='str', required=True),
            port=dict(type='int', default=DEFAULT_PORT),
            direction=dict(type='str', choices=['download', 'upload'], default='download'),
            seconds=dict(type='int', default=5),
            bytes=dict(type='int'),
            bind_address=dict(type='str'),
            protocol=dict(type='str', choices=['mptcp', 'tcp'], default='mptcp'),
            timeout=dict(type='int', default=10),
            client=dict(type='str', choices=['python', 'curl'], default='python'),
            interfaces=dict(type='dict'),
        ),
        # The probe only moves test traffic: it runs in check mode too.
        supports_check_mode=True,
    )
    p = module.params
    if p['client'] == 'curl':
        module.fail_json(msg='client=curl runs in the action plugin omr.deploy.mptcp_probe, on the controller; this '
                             'module file only has the Python client (was it run without its action plugin?)')
    if p['interfaces']:
        module.fail_json(msg='interfaces is only used with client=curl; the Python client reads each subflow itself')
    if not 1 <= p['port'] <= 65535:
        module.fail_json(msg='port must be between 1 and 65535, got %d' % p['port'])
    if p['bytes'] is None and p['seconds'] <= 0:
        module.fail_json(msg='seconds must be above 0, got %d' % p['seconds'])
    if p['bytes'] is not None and p['bytes'] <= 0:
        module.fail_json(msg='bytes must be above 0, got %d' % p['bytes'])
    if p['timeout'] <= 0:
        module.fail_json(msg='timeout must be above 0, got %d' % p['timeout'])

    try:
        result = run_probe(p['host'], port=p['port'], direction=p['direction'], seconds=p['seconds'],
                           nbytes=p['bytes'], bind_address=p['bind_address'], protocol=p['protocol'],
                           timeout=p['timeout'])
    except ProbeError as exc:
        partial = dict(exc.partial)
        for warning in partial.pop('warnings', []):
            module.warn(warning)
        module.fail_json(msg=exc.msg, changed=False, **partial)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(changed=False, client='python', **result)


if __name__ == '__main__':
    main()
