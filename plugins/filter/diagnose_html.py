# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: diagnose_html
short_description: The diagnosis report as one self-contained HTML page
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Renders a report of P(omr.deploy.diagnose_report#filter) as one HTML page with inline CSS and inline
    SVG charts and no script or external resource (its Content-Security-Policy allows none). One
    bar chart has each link's rate alone (download and upload) beside the bonded rate. One line chart
    has each WAN's bytes over the bonded transfer. The page also has the verdicts and tables of the
    links, the VPS's resources, MPTCP on both ends and the router's shaping.
  - Every figure carries C(data-path) (where it is in the report), C(data-value) (its value as JSON) and
    C(data-format), so a test can compare the page with the JSON.
options:
  _input:
    description: The report.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the page
  ansible.builtin.copy:
    dest: /tmp/diagnose.html
    content: "{{ report | omr.deploy.diagnose_html }}"
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The HTML page.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._diagnose import render_html


def diagnose_html(report):
    if not isinstance(report, dict) or 'links' not in report:
        raise AnsibleFilterError('diagnose_html: expects a report of omr.deploy.diagnose_report')
    return render_html(report)


class FilterModule(object):
    def filters(self):
        return {'diagnose_html': diagnose_html}
