#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mptcp_endpoint
short_description: Manage upstream MPTCP path-manager endpoints and limits with C(ip mptcp)
version_added: 0.1.0
description:
  - Adds, changes and deletes the in-kernel MPTCP path manager endpoints (C(ip mptcp endpoint))
    and sets its limits (C(ip mptcp limits set)), idempotently.
  - Endpoints are matched by O(endpoints[].address) plus O(endpoints[].port).
    A listed endpoint whose flags, port, id or device differ is fixed;
    C(signal), C(subflow), port, id or device changes need a delete and an add,
    C(backup)/C(fullmesh)-only changes use C(ip mptcp endpoint change) when it works, else delete and add.
  - Needs upstream MPTCP (MPTCPv1, kernel 5.6 and later) and an iproute2 C(ip) with C(mptcp) support.
    Fails when C(/proc/sys/net/mptcp/enabled) is missing (no MPTCP, or an out-of-tree v0 kernel).
  - Endpoints and limits are per network namespace and are not persistent;
    they are lost on reboot unless something (for example this module run at boot) restores them.
author:
  - omr.deploy maintainers (!UNKNOWN)
options:
  endpoints:
    description:
      - Endpoints to make present (O(state=present)) or absent (O(state=absent)).
    type: list
    elements: dict
    suboptions:
      address:
        description: IPv4 or IPv6 address of the endpoint.
        type: str
        required: true
      dev:
        description:
          - Interface to bind the endpoint to.
          - When omitted, the device of an existing endpoint is not compared.
        type: str
      id:
        description:
          - Endpoint id, 1 to 255.
          - When omitted, the kernel picks one and the id of an existing endpoint is not compared.
        type: int
      port:
        description:
          - Port announced together with the address. Needs the V(signal) flag.
          - Part of the endpoint's identity, with O(endpoints[].address). So a new port means a new endpoint,
            and the old one stays unless O(purge=true) or O(state=absent) removes it.
        type: int
      flags:
        description:
          - Endpoint flags. They are compared exactly, so V([]) means no flags.
          - V(signal) announces the address to the peer (the VPS side of OpenMPTCProuter),
            V(subflow) opens subflows from it (the router's WANs), V(backup) marks it as backup,
            V(fullmesh) opens a subflow to every peer address. V(signal) and V(fullmesh) cannot be combined.
        type: list
        elements: str
        choices: [signal, subflow, backup, fullmesh]
        default: []
      keep_backup:
        description:
          - Leave the V(backup) flag of an existing endpoint as it is, whatever O(endpoints[].flags) says.
            For endpoints whose backup flag something else switches at run time, such as the router role's
            quality check; a new endpoint still gets O(endpoints[].flags).
        type: bool
        default: false
  state:
    description:
      - V(present) makes the listed endpoints exist exactly as described.
      - V(absent) deletes the listed endpoints; only O(endpoints[].address) and O(endpoints[].port) are used to find them.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), also delete every endpoint that is not listed in O(endpoints).
      - Endpoints the kernel created itself (flag C(implicit)) are kept, because the kernel recreates them on demand.
      - Ignored with O(state=absent).
    type: bool
    default: false
  limits:
    description:
      - Path manager limits to set, with C(ip mptcp limits set). A limit left out is not changed.
      - Applied whatever O(state) is.
    type: dict
    suboptions:
      subflows:
        description: Maximum number of additional subflows per connection, 0 to 8.
        type: int
      add_addr_accepted:
        description: Maximum number of ADD_ADDR announcements accepted per connection, 0 to 8.
        type: int
extends_documentation_fragment:
  - omr.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the endpoint list and the limits before and after, one endpoint per line.
  platform:
    support: full
    platforms: [linux]
    details:
      - Needs Python on the target, so on an OpenWrt router only where Python is installed.
requirements:
  - iproute2 C(ip) with C(mptcp) support (iproute2 5.7 or later; C(ip-full) on OpenWrt, not busybox C(ip)).
  - Kernel with upstream MPTCP (C(CONFIG_MPTCP)).
notes:
  - Runs C(ip) with C(LANG=C) and C(LC_ALL=C).
  - Endpoint ids are kept only when O(endpoints[].id) is set; endpoints that must be recreated otherwise get a new id.
  - In check mode, endpoints that would be added without an explicit id are returned with a null id.
seealso:
  - module: omr.deploy.mptcp_info
  - name: ip-mptcp(8)
    description: The iproute2 manual page for C(ip mptcp).
    link: https://man7.org/linux/man-pages/man8/ip-mptcp.8.html
"""

EXAMPLES = r"""
- name: VPS - announce the public address and raise the limits (what OpenMPTCProuter does)
  omr.deploy.mptcp_endpoint:
    endpoints:
      - address: "{{ ansible_facts.default_ipv4.address }}"
        dev: "{{ ansible_facts.default_ipv4.interface }}"
        flags: [signal]
    limits:
      subflows: 8
      add_addr_accepted: 8

- name: Router - one subflow fullmesh endpoint per WAN, a backup WAN, and nothing else
  omr.deploy.mptcp_endpoint:
    endpoints:
      - {address: 192.0.2.10, dev: wan1, flags: [subflow, fullmesh]}
      - {address: 198.51.100.10, dev: wan2, flags: [subflow, fullmesh]}
      - {address: 100.64.0.10, dev: wan3, flags: [subflow, backup, fullmesh]}
    purge: true
    limits:
      subflows: 8
      add_addr_accepted: 1

- name: Announce a second port on the same address
  omr.deploy.mptcp_endpoint:
    endpoints:
      - {address: 192.0.2.1, port: 65101, flags: [signal], id: 20}

- name: Remove an endpoint (matched by address and port)
  omr.deploy.mptcp_endpoint:
    endpoints:
      - address: 198.51.100.10
    state: absent

- name: Only set the limits
  omr.deploy.mptcp_endpoint:
    limits:
      subflows: 4
"""

RETURN = r"""
endpoints:
  description:
    - Endpoints after the run (in check mode, as they would be), in kernel order.
    - Same structure as C(omr_mptcp.endpoints) from M(omr.deploy.mptcp_info).
  returned: always
  type: list
  elements: dict
  sample:
    - {id: 1, address: 192.0.2.1, dev: eth0, port: null, flags: [signal]}
  contains:
    id:
      description: Endpoint id. Null in check mode for an endpoint that would be added without an explicit id.
      type: int
      returned: always
      sample: 1
    address:
      description: IPv4 or IPv6 address.
      type: str
      returned: always
      sample: 192.0.2.1
    dev:
      description: Interface the endpoint is bound to, or null.
      type: str
      returned: always
      sample: eth0
    port:
      description: Announced port, or null.
      type: int
      returned: always
      sample: null
    flags:
      description: Endpoint flags, in kernel order (may include C(implicit) or C(laminar) for endpoints not managed here).
      type: list
      elements: str
      returned: always
      sample: [signal]
limits:
  description: Path manager limits after the run (in check mode, as they would be).
  returned: always
  type: dict
  sample: {subflows: 8, add_addr_accepted: 8}
  contains:
    subflows:
      description: Maximum number of additional subflows per connection.
      type: int
      returned: always
      sample: 8
    add_addr_accepted:
      description: Maximum number of ADD_ADDR announcements accepted per connection.
      type: int
      returned: always
      sample: 8
commands:
  description:
    - The C(ip) command lines that were run, in order; in check mode, those that would run.
    - Empty when nothing had to change.
  returned: always
  type: list
  elements: str
  sample:
    - ip mptcp endpoint delete id 3
    - ip mptcp endpoint add 192.0.2.1 dev eth0 signal
    - ip mptcp limits set subflows 8 add_addr_accepted 8
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import (
    LIMIT_KEYS,
    SETTABLE_FLAGS,
    apply_plan,
    endpoint_args,
    format_command,
    format_state,
    limits_args,
    parse_endpoints,
    parse_limits,
    plan_endpoints,
    plan_limits,
    validate_endpoints,
    validate_limits,
)

MPTCP_V1 = '/proc/sys/net/mptcp/enabled'
MPTCP_V0 = '/proc/sys/net/mptcp/mptcp_enabled'
C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C'}


class EndpointManager(object):

    def __init__(self, module):
        self.module = module
        self.ip = module.get_bin_path('ip', required=True)
        self.commands = []

    def run(self, args, check_rc=True):
        rc, out, err = self.module.run_command([self.ip] + list(args), environ_update=C_LOCALE)
        if rc != 0 and check_rc:
            self.module.fail_json(msg='%s failed (rc=%d): %s' % (format_command(args), rc, err.strip() or out.strip()),
                                  rc=rc, stdout=out, stderr=err, commands=self.commands)
        return rc, out, err

    def read(self):
        _rc, out, _err = self.run(['mptcp', 'endpoint', 'show'])
        endpoints = parse_endpoints(out)
        _rc, out, _err = self.run(['mptcp', 'limits', 'show'])
        limits = parse_limits(out)
        if limits is None:
            self.module.fail_json(msg='Could not parse `ip mptcp limits show` output: %r' % out)
        return endpoints, limits

    def execute(self, ops):
        """Run planned operations; `change` falls back to delete + add when ip or the kernel refuses it."""
        for op in ops:
            args = endpoint_args(op)
            if op['action'] != 'change':
                self.commands.append(format_command(args))
                self.run(args)
                continue
            self.commands.append(format_command(args))
            rc, _out, _err = self.run(args, check_rc=False)
            if rc != 0:
                wanted = dict(op['endpoint'], flags=[f for f in op['endpoint']['flags']
                                                     if f not in ('backup', 'fullmesh')] + op['flags'])
                for fallback in ({'action': 'delete', 'endpoint': op['endpoint']},
                                 {'action': 'add', 'endpoint': wanted}):
                    fargs = endpoint_args(fallback)
                    self.commands.append(format_command(fargs))
                    self.run(fargs)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(
                type='list',
                elements='dict',
                options=dict(
                    address=dict(type='str', required=True),
                    dev=dict(type='str'),
                    id=dict(type='int'),
                    port=dict(type='int'),
                    flags=dict(type='list', elements='str', choices=list(SETTABLE_FLAGS), default=[]),
                    keep_backup=dict(type='bool', default=False),
                ),
            ),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            purge=dict(type='bool', default=False),
            limits=dict(
                type='dict',
                options=dict(
                    subflows=dict(type='int'),
                    add_addr_accepted=dict(type='int'),
                ),
            ),
        ),
        required_one_of=[('endpoints', 'limits')],
        supports_check_mode=True,
    )
    state = module.params['state']
    purge = module.params['purge']

    try:
        desired = validate_endpoints(module.params['endpoints'])
        desired_limits = validate_limits(module.params['limits'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    if not os.path.exists(MPTCP_V1):
        if os.path.exists(MPTCP_V0):
            module.fail_json(msg='This kernel runs out-of-tree MPTCP v0 (%s exists); ip mptcp endpoints need '
                                 'upstream MPTCP (MPTCPv1, kernel 5.6 or later)' % MPTCP_V0)
        module.fail_json(msg='This kernel has no upstream MPTCP (MPTCPv1): %s is missing' % MPTCP_V1)
    if purge and state == 'absent':
        module.warn('purge is ignored with state=absent')

    manager = EndpointManager(module)
    before, before_limits = manager.read()

    try:
        ops = plan_endpoints(before, desired, state=state, purge=purge)
    except ValueError as exc:
        module.fail_json(msg=str(exc), endpoints=before, limits=before_limits)
    limit_changes = plan_limits(before_limits, desired_limits)

    if module.check_mode:
        manager.commands = [format_command(endpoint_args(op)) for op in ops]
        if limit_changes:
            manager.commands.append(format_command(limits_args(limit_changes)))
        after = apply_plan(before, ops)
        after_limits = dict(before_limits, **limit_changes)
    else:
        manager.execute(ops)
        if limit_changes:
            args = limits_args(limit_changes)
            manager.commands.append(format_command(args))
            manager.run(args)
        after, after_limits = manager.read() if manager.commands else (before, before_limits)
        if ops:
            # Kernels differ in what `endpoint change` does; recreate whatever still differs.
            leftover = plan_endpoints(after, desired, state=state, purge=purge, can_change=False)
            if leftover:
                manager.execute(leftover)
                after, after_limits = manager.read()
                if plan_endpoints(after, desired, state=state, purge=purge, can_change=False):
                    module.fail_json(msg='MPTCP endpoints did not reach the requested state',
                                     endpoints=after, limits=after_limits, commands=manager.commands)

    result = dict(
        changed=bool(manager.commands),
        endpoints=after,
        limits=dict((key, after_limits.get(key)) for key in LIMIT_KEYS),
        commands=manager.commands,
    )
    if module._diff:
        result['diff'] = dict(
            before=format_state(before, before_limits),
            after=format_state(after, after_limits),
            before_header='ip mptcp endpoint show; ip mptcp limits show',
            after_header='ip mptcp endpoint show; ip mptcp limits show',
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
