# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: proxy_config
short_description: Check shadowsocks-libev proxy settings, or build ss-server's or ss-redir's JSON
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - With O(kind=check), validates the proxy's port (OMR's 65000-65535, clear of the other ports given), cipher
    (an AEAD cipher of shadowsocks-libev) and key (base64 of exactly the cipher's key length), and returns
    them without the key. Errors name the variable (O(prefix) plus C(_port), C(_method), C(_key)) and never
    show the key.
  - With O(kind=server) or O(kind=redir), also returns the JSON the Debian units
    C(shadowsocks-libev-server@NAME) and C(shadowsocks-libev-redir@NAME) read, with MPTCP on (C(mptcp) true)
    as OMR sets it. Only render that into a C(no_log) task, it holds the key.
options:
  _input:
    description: "The settings, C({port, method, key, mode, local_port})."
    type: dict
    required: true
  kind:
    description: What to return.
    type: str
    choices: [check, server, redir]
    default: check
  prefix:
    description: The variables' common prefix, for messages, e.g. C(omr_vps_proxy).
    type: str
    required: true
  taken:
    description: "Other ports of the collection's, C({variable: port}), the proxy port must differ from."
    type: dict
    default: {}
  reserved:
    description: OMR's own ports, numbers or C([low, high]) ranges; the proxy port must not be one of them, except O(own_port).
    type: list
    elements: raw
    default: []
  own_port:
    description: The OMR port this proxy is meant to use (65101).
    type: int
  require_key:
    description: Fail when the key is empty (the router needs the VPS's key; the VPS can make one).
    type: bool
    default: false
  server:
    description: The VPS address, for O(kind=redir).
    type: str
"""

EXAMPLES = r"""
- name: Check the proxy settings before any change
  ansible.builtin.set_fact:
    checked: >-
      {{ {'port': omr_vps_proxy_port, 'method': omr_vps_proxy_method, 'key': omr_vps_proxy_key}
         | omr.deploy.proxy_config(prefix='omr_vps_proxy', taken={'omr_vps_speedtest_port': 65432}) }}

- name: Write ss-server's configuration
  ansible.builtin.copy:
    dest: /etc/shadowsocks-libev/omr.json
    content: "{{ settings | omr.deploy.proxy_config(kind='server', prefix='omr_vps_proxy') | to_nice_json }}"
    mode: "0600"
  no_log: true
"""

RETURN = r"""
_value:
  description:
    - For C(check), C({port, method, key_bytes, key_given, mode?, local_port?}).
    - For C(server) and C(redir), the JSON object for ss-server or ss-redir (with the key).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._proxy import (
    ProxyError, check_proxy, redir_config, server_config)


def proxy_config(settings, prefix, kind="check", taken=None, reserved=None, own_port=None, require_key=False, server=None):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("proxy_config: the settings must be a dict, got %s" % type(settings).__name__)
    try:
        checked = check_proxy(settings, prefix, require_key=require_key or kind != "check", taken=taken,
                              reserved=reserved, own_port=own_port)
    except ProxyError as exc:
        raise AnsibleFilterError(str(exc))
    if kind == "check":
        return checked
    key = str(settings["key"]).strip()
    if kind == "server":
        return server_config(checked["port"], checked["method"], key, checked.get("mode", "tcp_and_udp"))
    if kind == "redir":
        if not server:
            raise AnsibleFilterError("proxy_config: kind=redir needs the VPS address (server)")
        return redir_config(server, checked["port"], checked["method"], key, checked.get("local_port", 1100))
    raise AnsibleFilterError("proxy_config: kind must be check, server or redir, got %r" % (kind,))


class FilterModule(object):
    def filters(self):
        return {"proxy_config": proxy_config}
