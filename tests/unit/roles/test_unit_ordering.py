# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd units the roles install must not order themselves in a cycle.

systemd breaks an ordering cycle at boot by dropping one of the jobs, a different one on different
boots, so a cycle shows in the lab only now and then (omr-router-dhcp@ once ordered itself before
network-online.target, which the router's boot unit comes after). Inside a container the log line
about it goes nowhere. Here each role's unit templates are rendered with the role's defaults and
vars, and the After=/Before= graph, with the ordering systemd's own network targets carry, is
searched for a cycle.
"""

from __future__ import absolute_import, division, print_function

import glob
import os
import re

import jinja2
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# From systemd's own units (systemd 252/257): network-online.target is After=network.target, which
# is After=network-pre.target; multi-user.target is After=basic.target.
SYSTEMD_EDGES = [
    ('network-pre.target', 'network.target'),
    ('network.target', 'network-online.target'),
    ('basic.target', 'multi-user.target'),
]

# Variants of the inputs that change which ordering lines a template renders.
VARIANTS = {
    'router': [{}],
    'vps': [{}],
    'wifi_bridge': [
        {'omr_wifi_bridge_uplink_type': 'wifi', 'omr_wifi_bridge_uplink_address': 'dhcp'},
        {'omr_wifi_bridge_uplink_type': 'ethernet', 'omr_wifi_bridge_uplink_address': '10.0.0.2/24',
         'omr_wifi_bridge_uplink_gateway': '10.0.0.1'},
    ],
}


def role_context(role, overrides):
    context = {'ansible_managed': 'managed by omr.deploy'}
    for name in ('defaults', 'vars'):
        path = os.path.join(ROOT, 'roles', role, name, 'main.yml')
        if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
                context.update(yaml.safe_load(f) or {})
    context.update(overrides)
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    # Internal vars refer to each other; a few passes settle the plain ones. Those that need
    # Ansible's filters stay unrendered: no unit's ordering depends on them.
    for dummy in range(3):
        for key, value in list(context.items()):
            if isinstance(value, str) and '{{' in value:
                try:
                    context[key] = env.from_string(value).render(context)
                except (jinja2.TemplateError, TypeError):
                    # A call of a collection filter (omr.deploy.x(...)) is an undefined here.
                    pass
    return context


def render_units(role, overrides):
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)
    context = role_context(role, overrides)
    units = {}
    for path in sorted(glob.glob(os.path.join(ROOT, 'roles', role, 'templates', '*.j2'))):
        name = os.path.basename(path)[:-3]
        if not re.search(r'\.(service|timer|target|path|socket)$', name):
            continue
        with open(path, encoding='utf-8') as f:
            units[name] = env.from_string(f.read()).render(context)
    return units


def ordering_edges(units):
    """(first, then) pairs from each unit's After= and Before= lines."""
    edges = list(SYSTEMD_EDGES)
    for name, text in units.items():
        for key, value in re.findall(r'^(After|Before)=(.*)$', text, flags=re.M):
            for other in value.split():
                # An instance (foo@wan2.service) is ordered like its template (foo@.service).
                other = re.sub(r'@[^.]+\.', '@.', other)
                edges.append((other, name) if key == 'After' else (name, other))
    return edges


def find_cycle(edges):
    graph = {}
    for first, then in edges:
        graph.setdefault(first, set()).add(then)
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


@pytest.mark.parametrize('role,overrides', [(r, v) for r, vs in sorted(VARIANTS.items()) for v in vs])
def test_role_units_have_no_ordering_cycle(role, overrides):
    units = render_units(role, overrides)
    assert units, role
    assert find_cycle(ordering_edges(units)) is None


def test_roles_cover_every_unit_template():
    roles = {os.path.basename(os.path.dirname(os.path.dirname(p)))
             for p in glob.glob(os.path.join(ROOT, 'roles', '*', 'templates', '*.service.j2'))}
    assert roles <= set(VARIANTS)


def test_router_units_are_ordered_net_then_dhcp():
    edges = ordering_edges(render_units('router', {}))
    assert ('network-online.target', 'omr-router-net.service') in edges
    assert ('omr-router-net.service', 'omr-router-dhcp@.service') in edges


def test_the_old_dhcp_unit_cycle_is_found():
    units = render_units('router', {})
    units['omr-router-dhcp@.service'] += '\n[Unit]\nBefore=network-online.target\n'
    cycle = find_cycle(ordering_edges(units))
    assert cycle is not None
    assert {'omr-router-dhcp@.service', 'network-online.target', 'omr-router-net.service'} <= set(cycle)
