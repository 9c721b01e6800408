#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vpn_pki_info
short_description: Whether the VPN's PKI on an OMR VPS is complete, and the client's credentials
version_added: 0.1.0
author:
  - omr.deploy maintainers (!UNKNOWN)
description:
  - Reads the PKI that C(omr.deploy.vps) makes for its OpenVPN server in one pass and says whether
    anything is left to make. It changes nothing.
  - Complete means C(ca.key), C(ca.crt), C(server.key), C(server.crt), C(client.key), C(client.crt) and
    C(tls-crypt.key) are all there; the keys are secp384r1 EC keys readable by their owner only; C(ca.crt) is a
    CA certificate for O(ca_name), signed by C(ca.key); C(server.crt) and C(client.crt) are for O(server_name) and
    O(client_name), for server and client authentication, signed by that CA, each matching its key; and no
    certificate has less than O(renew_before_days) left.
  - The role runs its community.crypto tasks only when the PKI is not complete, so that an idempotent converge
    does not re-read and re-check every file five times.
  - The result holds the client's key and the tls-crypt key. Run the task with C(no_log).
extends_documentation_fragment:
  - omr.deploy.attributes
  - omr.deploy.attributes.INFO_MODULE
attributes:
  platform:
    platforms: posix
options:
  path:
    description: The PKI's directory.
    type: path
    required: true
  ca_name:
    description: The CA certificate's common name.
    type: str
    required: true
  server_name:
    description: The server certificate's common name.
    type: str
    required: true
  client_name:
    description: The client certificate's common name (all routers share it).
    type: str
    required: true
  renew_before_days:
    description:
      - A certificate with fewer days left than this (or expired) is reported in RV(renew), and the PKI as not
        complete.
    type: int
    default: 30
requirements:
  - python3-cryptography on the host (without it the PKI is reported as not complete).
notes:
  - Debian 12's python3-cryptography (38) is enough.
seealso:
  - module: community.crypto.x509_certificate
"""

EXAMPLES = r"""
- name: Read the PKI, and tell whether anything is left to make
  omr.deploy.vpn_pki_info:
    path: /etc/omr-vps/vpn
    ca_name: omr.deploy VPN CA vps1
    server_name: vps1
    client_name: openmptcprouter
  register: pki
  no_log: true

- name: Say what is missing or due
  ansible.builtin.debug:
    msg: "{{ pki.problems }}"
  when: not pki.complete
"""

RETURN = r"""
complete:
  description: Nothing is missing, wrong or due for renewal.
  returned: always
  type: bool
  sample: true
found:
  description: C(ca.key) exists (an earlier run made a PKI here).
  returned: always
  type: bool
  sample: true
problems:
  description: What is missing, wrong or due, in words; empty when RV(complete).
  returned: always
  type: list
  elements: str
  sample: ["missing: client.crt", "server.crt expires on 2027-01-02"]
renew:
  description: The certificates to sign again because they expire within O(renew_before_days).
  returned: always
  type: list
  elements: str
  sample: [server, client]
not_after:
  description: Each readable certificate's expiry, ISO 8601 in UTC.
  returned: always
  type: dict
  sample: {ca: "2056-11-29T12:00:00+00:00", server: "2036-12-04T12:00:00+00:00", client: "2036-12-04T12:00:00+00:00"}
content:
  description: The text of C(ca.crt), C(client.crt), C(client.key) and C(tls-crypt.key), those that exist.
  returned: always
  type: dict
  sample: {ca.crt: "-----BEGIN CERTIFICATE-----...", client.key: "-----BEGIN PRIVATE KEY-----..."}
"""

import datetime
import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omr.deploy.plugins.module_utils._vpn_pki import CLIENT_FILES, FILES, check_pki


def read(directory):
    files, modes = {}, {}
    for name in FILES:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                files[name] = f.read()
                modes[name] = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        except FileNotFoundError:
            files[name] = None
    return files, modes


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            ca_name=dict(type="str", required=True),
            server_name=dict(type="str", required=True),
            client_name=dict(type="str", required=True),
            renew_before_days=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        files, modes = read(p["path"])
    except OSError as exc:
        module.fail_json(msg="cannot read the PKI in %s: %s" % (p["path"], exc))
    names = {"ca": p["ca_name"], "server": p["server_name"], "client": p["client_name"]}
    state = check_pki(files, modes, names, datetime.datetime.now(datetime.timezone.utc), p["renew_before_days"])
    content = {n: files[n].decode("utf-8", "replace") for n in CLIENT_FILES if files[n] is not None}
    module.exit_json(changed=False, complete=not state["problems"], found=files["ca.key"] is not None,
                     problems=state["problems"], renew=state["renew"], not_after=state["not_after"], content=content)


if __name__ == "__main__":
    main()
