# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: what the module `files` must do to a set of files and directories.

A role's concern writes a handful of small files (a program, its unit, a drop-in, its data). As
separate copy and template tasks each costs one or two module runs on the host even when
nothing changes (a stat, then the file module for the attributes); over SSH that is 0.2-0.4 s a
file. `plan` compares what is there with what is wanted, all in one run: content first, then
mode and owner, so that only what differs is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from typing import Dict, List, Optional
except ImportError:  # pragma: no cover
    Dict = List = Optional = None

MODE_RE = re.compile(r"^0?[0-7]{3}$")


class FilesError(ValueError):
    pass


def parse_mode(mode, path):
    # type: (object, str) -> int
    """An octal mode given as a string ("0644", "644"); ints are refused, as 0644 in YAML is 420."""
    if not isinstance(mode, str) or not MODE_RE.match(mode):
        raise FilesError("%s: mode %r must be an octal string such as '0644'" % (path, mode))
    return int(mode, 8)


def plan(want, have):
    # type: (Dict[str, object], Optional[Dict[str, object]]) -> List[str]
    """What to change so that the path `have` describes (None when absent; else its kind,
    content for a file, mode, uid, gid) becomes `want` (kind, content or None for a
    directory, mode, uid, gid): a list of "create", "content", "mode", "owner" (empty: nothing)."""
    if have is None:
        return ["create"]
    if have["kind"] != want["kind"]:
        raise FilesError("%s is a %s, not a %s" % (want["path"], have["kind"], want["kind"]))
    todo = []
    if want["kind"] == "file" and have["content"] != want["content"]:
        todo.append("content")
    if have["mode"] != want["mode"]:
        todo.append("mode")
    if (have["uid"], have["gid"]) != (want["uid"], want["gid"]):
        todo.append("owner")
    return todo


def diff(want, have):
    # type: (Dict[str, object], Optional[Dict[str, object]]) -> Dict[str, str]
    """One entry of the result's diff list: the text before and after, and the attributes."""
    def attrs(x):
        # type: (Dict[str, object]) -> str
        return "mode %04o, owner %d:%d" % (x["mode"], x["uid"], x["gid"])

    before = "" if have is None or want["kind"] != "file" else _text(have["content"])
    after = "" if want["kind"] != "file" else _text(want["content"])
    return {
        "before_header": "%s (%s)" % (want["path"], "absent" if have is None else attrs(have)),
        "after_header": "%s (%s)" % (want["path"], attrs(want)),
        "before": before,
        "after": after,
    }


def _text(content):
    # type: (object) -> str
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return str(content)
