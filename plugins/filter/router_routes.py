# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: router_routes
short_description: Networks a router already routes, from C(ip -4 -o route show table all)
version_added: 0.1.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Parses the output of C(ip -4 -o route show table all) into C(reserved) entries for
    P(omr.deploy.transit_allocate#filter), leaving out default routes, the local table and the given devices.
  - M(omr.deploy.router_plan) reserves them this way for the router's transit links.
options:
  _input:
    description: The command's output.
    type: str
    required: true
  exclude_devices:
    description: Devices whose routes are not counted (the transit links themselves).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Networks the router routes, except its transit links
  ansible.builtin.set_fact:
    routed: "{{ ip_route.stdout | omr.deploy.router_routes(['transit']) }}"
"""

RETURN = r"""
_value:
  description: A list of C(name), C(network) dicts.
  type: list
  elements: dict
"""

from ansible_collections.omr.deploy.plugins.module_utils._router import parse_routes


def router_routes(text, exclude_devices=None):
    return parse_routes(text, exclude_devices or ())


class FilterModule(object):
    def filters(self):
        return {"router_routes": router_routes}
