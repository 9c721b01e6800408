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
    type: int
  bind_address:
    description:
      - Local address to leave from, for example one WAN's address, to test that WAN.
      - With O(protocol=mptcp) it only picks the first subflow's address; the kernel path manager still adds
        subflows from its C(subflow) endpoints. Use O(protocol=tcp) to test a single WAN alone.
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
    type: int
    default: 10
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
    platforms: [linux]
    details:
      - Needs Python on the target (on an OpenWrt router, only where Python is installed).
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
  returned: success
  type: int
  sample: 2
subflow_details:
  description:
    - One entry per subflow seen, in the order they were first seen, with the byte counters of its last sample.
    - For a plain TCP (or fallen-back) connection, the one TCP connection.
    - Empty for an MPTCP connection when per-subflow data is unavailable (no C(ctypes), kernel before 5.16).
  returned: success
  type: list
  elements: dict
  sample:
    - {local_address: 100.64.1.2, local_port: 40112, remote_address: 192.0.2.1, remote_port: 65432,
       bytes_sent: 89, bytes_received: 10231808, bytes_acked: 90, bytes_retrans: 0}
    - {local_address: 100.64.2.2, local_port: 38467, remote_address: 192.0.2.1, remote_port: 65432,
       bytes_sent: 0, bytes_received: 9822152, bytes_acked: 1, bytes_retrans: 0}
  contains:
    local_address:
      description: Local address of the subflow.
      type: str
      returned: always
      sample: 100.64.1.2
    local_port:
      description: Local port of the subflow.
      type: int
      returned: always
      sample: 40112
    remote_address:
      description: Remote address of the subflow.
      type: str
      returned: always
      sample: 192.0.2.1
    remote_port:
      description: Remote port of the subflow.
      type: int
      returned: always
      sample: 65432
    bytes_sent:
      description:
        - TCP payload bytes the subflow sent, retransmissions included (C(tcpi_bytes_sent)).
        - Null on kernels before 4.19.
      type: int
      returned: always
      sample: 89
    bytes_received:
      description: TCP payload bytes the subflow received (C(tcpi_bytes_received)).
      type: int
      returned: always
      sample: 10231808
    bytes_acked:
      description: Bytes the peer acknowledged on this subflow (C(tcpi_bytes_acked), which counts the SYN as 1).
      type: int
      returned: always
      sample: 90
    bytes_retrans:
      description: Bytes retransmitted on this subflow (C(tcpi_bytes_retrans)). Null on kernels before 4.19.
      type: int
      returned: always
      sample: 0
bytes:
  description:
    - Payload bytes counted by the receiver (this module for a download, the server for an upload).
  returned: success
  type: int
  sample: 20054016
bytes_sent:
  description: Payload bytes this module sent.
  returned: success and O(direction=upload)
  type: int
  sample: 20054016
seconds:
  description: Duration of the transfer at the receiver, from the request to the last byte received.
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
    - Null when nothing could be checked.
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
        ),
        # The probe only moves test traffic: it runs in check mode too.
        supports_check_mode=True,
    )
    p = module.params
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
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
