# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: this is not a public API; names may change in any
# release. Used by omr.deploy.sysctl_dropin.
#
# Pure helpers only (standard library, no Ansible imports, no file access):
# sysctl key -> /proc/sys path, value normalisation, and rendering/parsing of a
# sysctl.d drop-in. Key and file syntax follow sysctl.d(5) as systemd-sysctl
# reads it (procps sysctl(8) -p agrees for what the module writes).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

PROC_SYS = '/proc/sys'

# Characters that cannot be part of a key the module manages: whitespace and '=' would
# break the `key = value` line, glob characters are sysctl.d patterns, not one key.
_BAD_KEY_RE = re.compile(r'[\s=*?\[\]\\\x00]')


def normalize_key(key):
    """Return KEY stripped, or raise ValueError when it cannot name one sysctl.

    Accepts the dotted form (``net.ipv4.ip_forward``) and the slash form
    (``net/ipv4/ip_forward``), like sysctl(8) and systemd-sysctl.
    """
    if not isinstance(key, str):
        raise ValueError('sysctl key %r must be a string' % (key,))
    stripped = key.strip()
    if not stripped:
        raise ValueError('empty sysctl key')
    if stripped[0] in '-;#':
        raise ValueError('sysctl key %r must not start with %r' % (key, stripped[0]))
    if _BAD_KEY_RE.search(stripped):
        raise ValueError('sysctl key %r contains whitespace, "=", a glob character or a backslash' % key)
    key_to_relpath(stripped)
    return stripped


def key_to_relpath(key):
    """Path of KEY relative to /proc/sys.

    When the first separator is a dot, dots and slashes swap, so that an interface name
    with a dot is written with a slash (``net.ipv4.conf.eth0/100.rp_filter`` is
    ``net/ipv4/conf/eth0.100/rp_filter``); when it is a slash, the key already is a path.
    This is what sysctl(8) and systemd-sysctl do.
    """
    match = re.search(r'[./]', key)
    if match is None or match.group(0) == '/':
        rel = key
    else:
        rel = key.translate({ord('.'): '/', ord('/'): '.'})
    parts = rel.split('/')
    if any(part in ('', '.', '..') for part in parts):
        raise ValueError('sysctl key %r does not name a file under %s (empty, "." or ".." component)'
                         % (key, PROC_SYS))
    return '/'.join(parts)


def key_to_path(key, root=PROC_SYS):
    """Absolute path of KEY under ROOT (default /proc/sys)."""
    return root.rstrip('/') + '/' + key_to_relpath(normalize_key(key))


def fold(text):
    """Whitespace folded to single spaces and trimmed, as the value `sysctl -n` prints compares."""
    return ' '.join(text.split())


def normalize_value(value, key=None):
    """Value as it goes into the drop-in and into /proc/sys: a whitespace-folded string.

    Integers become their decimal string, booleans 1 and 0. Anything else than a string,
    an integer or a boolean raises ValueError.
    """
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    if isinstance(value, str):
        return fold(value)
    where = ' for %s' % key if key else ''
    raise ValueError('sysctl value%s must be a string or an integer, got %s %r'
                     % (where, type(value).__name__, value))


def prepare(sysctls):
    """Validate and normalise the requested sysctls.

    Returns a list of (key, relpath, value) sorted by key. Raises ValueError for a bad key
    or value, or for two keys that name the same file.
    """
    seen = {}
    result = []
    errors = []
    for raw_key, raw_value in (sysctls or {}).items():
        try:
            key = normalize_key(raw_key)
            rel = key_to_relpath(key)
            value = normalize_value(raw_value, key)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if rel in seen:
            errors.append('sysctl keys %r and %r name the same file %s/%s' % (seen[rel], raw_key, PROC_SYS, rel))
            continue
        seen[rel] = raw_key
        result.append((key, rel, value))
    if errors:
        raise ValueError('; '.join(errors))
    return sorted(result)


def render_header(header):
    """Comment lines for HEADER: each line gets '# ' unless it already is a comment."""
    if header is None:
        return []
    lines = []
    for line in header.splitlines() or ['']:
        line = line.rstrip()
        if line.startswith('#') or line.startswith(';'):
            lines.append(line)
        elif line:
            lines.append('# ' + line)
        else:
            lines.append('#')
    return lines


def render_dropin(values, header=None):
    """The drop-in text: the header comment, then one ``key = value`` line per key, sorted."""
    lines = render_header(header)
    for key in sorted(values):
        lines.append(('%s = %s' % (key, values[key])).rstrip())
    return ''.join(line + '\n' for line in lines)


def parse_dropin(text):
    """Assignments of a sysctl.d file, key -> folded value, in file order; later ones win.

    Blank lines and lines starting with '#' or ';' are ignored, a leading '-' on the key
    (ignore failures) is dropped, and lines without '=' are ignored, like systemd-sysctl.
    """
    result = {}
    for raw in (text or '').splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip()
        if key.startswith('-'):
            key = key[1:].strip()
        if not key:
            continue
        result.pop(key, None)
        result[key] = fold(value)
    return result
