#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: files
short_description: A concern's directories and small files, in one run on the host
version_added: 0.1.0
author:
  - omr.deploy maintainers (!UNKNOWN)
description:
  - Makes O(directories) and writes O(files) with their mode and owner, all in one module run,
    where a task per file costs one or two runs on the host even when nothing changes.
    The roles use it for each concern's program, unit, drop-in and data, rendered on the controller
    with the C(ansible.builtin.template) and C(ansible.builtin.file) lookups.
  - Only what differs is written. Content is written to a temporary file next to the target,
    which gets the mode and owner first and then takes the target's place, so that the target
    never has the wrong content or mode, not even briefly.
  - All names and modes are checked before anything is changed.
extends_documentation_fragment:
  - omr.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - One diff entry per directory or file that changes, with the mode and owner in its headers.
  platform:
    platforms: posix
options:
  directories:
    description: Directories to make, in order (so a parent comes first); their parent must exist.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Its mode, an octal string (a YAML integer is refused).
        type: raw
        default: "0755"
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group.
        type: str
        default: root
  files:
    description: Files to write, after O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file; its directory must exist or be in O(directories).
        type: path
        required: true
      content:
        description:
          - Its whole content, as text. A secret in it needs C(no_log) on the task, which also hides the diff.
        type: str
        required: true
      mode:
        description: Its mode, an octal string such as V('0644') (a YAML integer is refused).
        type: raw
        required: true
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group.
        type: str
        default: root
      validate:
        description:
          - A command that checks the new content before it takes the target's place, C(%s) standing for the
            temporary file, for example V(nft -c -f %s). Run only when the content changes; when it fails the
            target is left as it was and the module fails.
        type: str
notes:
  - Meant for small files (configuration, scripts, units), as each content travels in the module's arguments.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Install the program, its unit and its data
  omr.deploy.files:
    directories:
      - path: /usr/local/lib/omr-deploy
    files:
      - path: /usr/local/lib/omr-deploy/restore.py
        content: "{{ lookup('ansible.builtin.file', 'restore.py', rstrip=false) }}"
        mode: "0644"
      - path: /etc/systemd/system/omr-restore.service
        content: "{{ lookup('ansible.builtin.template', 'omr-restore.service.j2') }}"
        mode: "0644"
      - path: /etc/omr-vps/firewall.nft
        content: "{{ lookup('ansible.builtin.template', 'firewall.nft.j2') }}"
        mode: "0644"
        validate: nft -c -f %s
  register: written
  notify: Restart it

- name: Enable the unit unless its handler will
  ansible.builtin.systemd_service:
    name: omr-restore.service
    enabled: true
  when: "'/etc/systemd/system/omr-restore.service' not in written.paths"
"""

RETURN = r"""
paths:
  description: The directories and files made or changed (content, mode or owner), in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/omr-restore.service]
"""

import grp
import os
import pwd
import shlex
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omr.deploy.plugins.module_utils._files import FilesError, diff, parse_mode, plan
from ansible_collections.omr.deploy.plugins.module_utils._host import write_atomic


def current(path, kind):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    have = {"kind": "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other",
            "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "content": None}
    if have["kind"] == "file" and kind == "file":
        with open(path, "rb") as f:
            have["content"] = f.read()
    return have


def wanted(item, kind):
    try:
        uid = pwd.getpwnam(item["owner"]).pw_uid
    except KeyError:
        raise FilesError("%s: no user %r" % (item["path"], item["owner"]))
    try:
        gid = grp.getgrnam(item["group"]).gr_gid
    except KeyError:
        raise FilesError("%s: no group %r" % (item["path"], item["group"]))
    content = item["content"].encode("utf-8") if kind == "file" else None
    return {"path": item["path"], "kind": kind, "mode": parse_mode(item["mode"], item["path"]), "uid": uid,
            "gid": gid, "content": content, "validate": item.get("validate")}


def write(module, want):
    directory = os.path.dirname(want["path"])
    # write_atomic would make a missing parent; here it must exist or be in `directories`.
    if not os.path.isdir(directory):
        raise FileNotFoundError("no directory %s" % directory)

    def validate(tmp):
        argv = [a.replace("%s", tmp) for a in shlex.split(want["validate"])]
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg="%s: %s refused the new content (rc=%d): %s" % (
                want["path"], want["validate"], rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)

    write_atomic(want["path"], want["content"].decode("utf-8"), want["mode"], owner=(want["uid"], want["gid"]),
                 check=validate if want["validate"] else None)


def main():
    owner = dict(type="str", default="root")
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True), mode=dict(type="raw", default="0755"),
                owner=owner, group=owner)),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True), content=dict(type="str", required=True),
                mode=dict(type="raw", required=True), owner=owner, group=owner, validate=dict(type="str"))),
        ),
        supports_check_mode=True,
    )
    try:
        wants = [wanted(d, "directory") for d in module.params["directories"]]
        wants += [wanted(f, "file") for f in module.params["files"]]
        for want in wants:
            if want["validate"] is not None and "%s" not in want["validate"]:
                raise FilesError("%s: validate %r has no %%s" % (want["path"], want["validate"]))
        todo = []
        for want in wants:
            have = current(want["path"], want["kind"])
            todo.append((want, have, plan(want, have)))
    except (FilesError, OSError) as exc:
        module.fail_json(msg=str(exc))
    paths, diffs = [], []
    for want, have, changes in todo:
        if not changes:
            continue
        if module._diff:
            diffs.append(diff(want, have))
        paths.append(want["path"])
        if module.check_mode:
            continue
        try:
            if want["kind"] == "directory":
                if have is None:
                    os.mkdir(want["path"], want["mode"])
                os.chmod(want["path"], want["mode"])
                os.chown(want["path"], want["uid"], want["gid"])
            elif "create" in changes or "content" in changes:
                write(module, want)
            else:
                os.chmod(want["path"], want["mode"])
                os.chown(want["path"], want["uid"], want["gid"])
        except OSError as exc:
            module.fail_json(msg="%s: %s" % (want["path"], exc), paths=paths)
    result = dict(changed=bool(paths), paths=paths)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
