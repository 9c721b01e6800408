# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: random_key
short_description: A new random key, base64 of N bytes from the controller's os.urandom
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Returns URL-safe base64 (C(-) and C(_), as shadowsocks-libev reads its C(key)) of O(_terms[0]) random
    bytes, as OMR's installer makes its shadowsocks keys (C(head -c 32 /dev/urandom | base64)).
  - "Every call returns a new key: write it with C(force=false) so that it is made once, and use it only in
    C(no_log) tasks."
options:
  _terms:
    description: The number of random bytes (16-64).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Make the proxy key once
  ansible.builtin.copy:
    dest: /etc/omr-vps/proxy.key
    content: "{{ lookup('omr.deploy.random_key', 32) }}"
    force: false
    mode: "0600"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One base64 string.
  type: list
  elements: str
"""

import base64
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        out = []
        for term in terms:
            try:
                size = int(term)
            except (TypeError, ValueError):
                size = 0
            if not 16 <= size <= 64:
                raise AnsibleLookupError("random_key: the number of bytes must be 16-64, got %r" % (term,))
            out.append(base64.urlsafe_b64encode(os.urandom(size)).decode("ascii"))
        return out
