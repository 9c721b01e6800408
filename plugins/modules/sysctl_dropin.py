#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sysctl_dropin
short_description: Own a whole sysctl.d drop-in and set its live values in one call
version_added: 0.1.0
description:
  - Writes the sysctl.d drop-in O(path) with exactly the keys of O(sysctls) that this kernel and
    network namespace expose, and with O(apply=true) sets their live values too, all in one call
    instead of one M(ansible.posix.sysctl) round-trip per key.
  - The module owns the whole file. It holds one C(key = value) line per applicable key, sorted,
    after the O(header) comment. A key no longer listed in O(sysctls) disappears from the file,
    unlike with M(ansible.posix.sysctl). Its live value is left as it is.
  - Live values are read from and written to C(/proc/sys) directly, so no C(sysctl) binary is needed.
    Values are compared whitespace-folded, as C(sysctl -n) prints them, so C(4096 131072 6291456)
    matches the tab-separated C(/proc/sys/net/ipv4/tcp_rmem).
  - A container's network namespace does not expose the kernel-wide keys (for example
    C(net.ipv4.tcp_mem) and C(net.ipv4.udp_mem)) and makes others read-only (for example
    C(net.core.rmem_max) in a child network namespace). O(missing) says what to do with them.
  - The file is written atomically with mode C(0644).
  - Live values are set before the file is written. When the kernel refuses a value (for example
    C(Invalid argument)), the module fails naming the key, and leaves the file as it was.
author:
  - omr.deploy maintainers (!UNKNOWN)
options:
  path:
    description:
      - The drop-in to write, for example C(/etc/sysctl.d/95-omr-deploy-net.conf).
      - Its directory must exist. Any content the file had is replaced.
      - Use a name ending in C(.conf), or systemd-sysctl ignores the file at boot.
    type: path
    required: true
  sysctls:
    description:
      - Sysctls to set, key to value.
      - Keys use the dotted form (C(net.ipv4.ip_forward)) or the slash form (C(net/ipv4/ip_forward)).
        In the dotted form, a dot in an interface name is written as a slash, as for sysctl(8),
        so C(net.ipv4.conf.eth0/100.rp_filter) is C(/proc/sys/net/ipv4/conf/eth0.100/rp_filter).
      - Values are strings or integers; V(true) and V(false) mean C(1) and C(0). Whitespace in a value
        is folded to single spaces before it is compared, written to the file, or set.
      - An empty dictionary leaves only the O(header) in the file.
    type: dict
    required: true
  apply:
    description:
      - Also set the live values, by writing to C(/proc/sys).
      - With V(false), only the file is managed and RV(live_changed) is empty. The keys are still
        checked against C(/proc/sys), as O(missing) describes.
    type: bool
    default: true
  missing:
    description:
      - What to do with a key this kernel or network namespace does not expose (its C(/proc/sys) file is
        missing) or does not let this process write (the file is read-only, or writing fails with
        C(EACCES), C(EPERM), C(EROFS) or C(ENOENT)).
      - V(skip) leaves the key out of the file, so that systemd-sysctl does not log an error for it at boot,
        and returns it in RV(unavailable) with the reason.
      - V(fail) fails, naming the keys, before anything is changed (unless the write itself is what fails).
    type: str
    choices: [skip, fail]
    default: skip
  header:
    description:
      - Comment at the top of the file, for example C(Managed by Ansible (omr.deploy)).
      - Each line gets C(# ) in front unless it already starts with C(#) or C(;).
    type: str
extends_documentation_fragment:
  - omr.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the file and the live values and reports what would change, but writes nothing.
      - Keys that are not writable are found by opening their C(/proc/sys) file for writing, which
        changes nothing. A write that would fail for another reason (an invalid value) only shows in a real run.
  diff_mode:
    support: full
    details:
      - The diff shows the file before and after. Live value changes are in RV(live_changed).
  platform:
    support: full
    platforms: [linux]
    details:
      - Needs Python on the target.
notes:
  - Sysctls under C(net.) are per network namespace. Run the module in the namespace they are for
    (on the host, in the container, or under C(ip netns exec)).
  - A key whose live value cannot be read (a write-only key such as C(net.ipv4.route.flush), or
    C(stable_secret) before it is set) is written on every run, and reported as changed.
  - When the kernel keeps another value than the one written (it rounds or clamps some), the module
    warns, and reports the value it reads back; the next run reports a change again.
  - Values are not validated by the module; the kernel checks them when they are set.
  - Write it under a root-owned directory that systemd-sysctl reads, for example C(/etc/sysctl.d).
seealso:
  - module: ansible.posix.sysctl
  - name: sysctl.d(5)
    description: Format and order of the drop-ins systemd-sysctl applies at boot.
    link: https://man7.org/linux/man-pages/man5/sysctl.d.5.html
"""

EXAMPLES = r"""
- name: Network sysctls of an OMR VPS, in one drop-in, set live as well
  omr.deploy.sysctl_dropin:
    path: /etc/sysctl.d/95-omr-deploy-net.conf
    header: Managed by Ansible (omr.deploy), local changes are overwritten
    sysctls:
      net.ipv4.tcp_rmem: 4096 131072 33554432
      net.ipv4.tcp_wmem: 4096 16384 33554432
      net.ipv4.tcp_mem: 56832 75776 113664
      net.ipv4.tcp_notsent_lowat: 131072
      net.mptcp.checksum_enabled: 0
      net.ipv4.ip_forward: 1
  register: net_sysctls

- name: Say which keys this container does not expose (tcp_mem in a container's namespace)
  ansible.builtin.debug:
    msg: "{{ item.key }} skipped: {{ item.value }}"
  loop: "{{ net_sysctls.unavailable | dict2items }}"

- name: Refuse to run where a key cannot be set
  omr.deploy.sysctl_dropin:
    path: /etc/sysctl.d/95-omr-deploy-forward.conf
    sysctls:
      net.ipv4.ip_forward: 1
      net.ipv6.conf.all.forwarding: 1
    missing: fail

- name: Only prepare the file for the next boot
  omr.deploy.sysctl_dropin:
    path: /etc/sysctl.d/90-omr-deploy-swap.conf
    sysctls:
      vm.swappiness: 10
    apply: false
"""

RETURN = r"""
path:
  description: The drop-in, as given in O(path).
  returned: always
  type: str
  sample: /etc/sysctl.d/95-omr-deploy-net.conf
applied:
  description:
    - The keys written to the file (in check mode, that would be written), key to normalised value.
    - Keys in RV(unavailable) are not in it.
  returned: always
  type: dict
  sample:
    net.ipv4.ip_forward: "1"
    net.ipv4.tcp_rmem: 4096 131072 33554432
live_changed:
  description:
    - Live values that were set (in check mode, that would be set), key to the value before and after.
    - Empty with O(apply=false).
  returned: always
  type: dict
  sample:
    net.ipv4.tcp_rmem:
      before: 4096 131072 6291456
      after: 4096 131072 33554432
  contains:
    before:
      description: Value read from C(/proc/sys) before, whitespace-folded; null when it could not be read.
      type: str
      returned: always
      sample: 4096 131072 6291456
    after:
      description:
        - Value read back after it was set (in check mode, the value that would be set).
      type: str
      returned: always
      sample: 4096 131072 33554432
unavailable:
  description:
    - Keys this kernel or network namespace does not expose or does not let the module write,
      key to the reason.
    - With O(missing=skip), these keys were left out of the file and not set.
      With O(missing=fail), the module failed because of them.
    - This is not called C(skipped), because Ansible would take a task result with a non-empty
      C(skipped) for a skipped task.
  returned: always
  type: dict
  sample:
    net.ipv4.tcp_mem: not exposed by this kernel or network namespace (/proc/sys/net/ipv4/tcp_mem does not exist)
    net.core.rmem_max: "not writable here (/proc/sys/net/core/rmem_max: Permission denied)"
"""

import errno
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.omr.deploy.plugins.module_utils._sysctl import (
    PROC_SYS,
    fold,
    prepare,
    render_dropin,
)

FILE_MODE = 0o644
# A write failing with one of these means: this namespace or mount does not let us set the key.
UNAVAILABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT)


def missing_reason(proc):
    return 'not exposed by this kernel or network namespace (%s does not exist)' % proc


def unwritable_reason(proc, err):
    return 'not writable here (%s: %s)' % (proc, os.strerror(err))


def probe(proc):
    """(why the key is unavailable, why the key is invalid): both None when it can be set.

    Opening a /proc/sys file for writing changes nothing, and fails the way the write would for
    a key a child network namespace only shows read-only (EACCES, even for root) or a read-only
    /proc/sys mount (EROFS).
    """
    try:
        st = os.stat(proc)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return missing_reason(proc), None
        return unwritable_reason(proc, exc.errno), None
    if stat.S_ISDIR(st.st_mode):
        return None, '%s is a directory, not a sysctl' % proc
    try:
        fd = os.open(proc, os.O_WRONLY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return missing_reason(proc), None
        return unwritable_reason(proc, exc.errno), None
    os.close(fd)
    return None, None


def read_live(proc):
    """Whitespace-folded live value, or None when it cannot be read (write-only keys)."""
    try:
        with open(proc, 'rb') as f:
            return fold(f.read().decode('utf-8', 'replace'))
    except (OSError, IOError):
        return None


def write_live(proc, value):
    """Write VALUE in one write(2), with the newline sysctl(8) and systemd-sysctl add."""
    fd = os.open(proc, os.O_WRONLY)
    try:
        os.write(fd, to_bytes(value + '\n'))
    finally:
        os.close(fd)


def read_file(module, path):
    """(content or None when absent, mode or None)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        module.fail_json(msg='cannot stat %s: %s' % (path, to_native(exc)))
    if not stat.S_ISREG(st.st_mode):
        module.fail_json(msg='%s exists and is not a regular file' % path)
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace'), stat.S_IMODE(st.st_mode)
    except (OSError, IOError) as exc:
        module.fail_json(msg='cannot read %s: %s' % (path, to_native(exc)))


def write_file(module, path, content):
    directory = os.path.dirname(path) or '.'
    # Same directory, so the rename is atomic; the suffix is not .conf, so systemd-sysctl
    # never reads a leftover.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(to_bytes(content))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # atomic_move keeps the mode of the file it replaces.
    os.chmod(path, FILE_MODE)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            sysctls=dict(type='dict', required=True),
            apply=dict(type='bool', default=True),
            missing=dict(type='str', choices=['skip', 'fail'], default='skip'),
            header=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    path = module.params['path']
    apply = module.params['apply']
    missing = module.params['missing']

    try:
        wanted = prepare(module.params['sysctls'])
    except ValueError as exc:
        module.fail_json(msg='invalid sysctls: %s' % exc)

    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        module.fail_json(msg='directory %s of the drop-in does not exist' % directory, path=path)

    unavailable = {}
    result = dict(changed=False, path=path, applied={}, live_changed={}, unavailable=unavailable)

    # 1. What this kernel and namespace expose, before anything is changed.
    errors = []
    usable = []
    for key, rel, value in wanted:
        proc = '%s/%s' % (PROC_SYS, rel)
        reason, problem = probe(proc)
        if problem:
            errors.append('%s: %s' % (key, problem))
        elif reason:
            unavailable[key] = reason
        else:
            usable.append((key, proc, value))
    if errors:
        module.fail_json(msg='invalid sysctls: %s' % '; '.join(errors), **result)
    if unavailable and missing == 'fail':
        module.fail_json(msg='sysctls not available in this kernel or network namespace: %s'
                             % '; '.join('%s %s' % item for item in sorted(unavailable.items())),
                         **result)

    # 2. Live values: set them first, so a value the kernel refuses never reaches the file.
    applied = {}
    write_errors = []
    for key, proc, value in usable:
        if apply:
            before = read_live(proc)
            if before != value:
                after = value
                if not module.check_mode:
                    try:
                        write_live(proc, value)
                    except (OSError, IOError) as exc:
                        if exc.errno in UNAVAILABLE_ERRNOS:
                            unavailable[key] = unwritable_reason(proc, exc.errno)
                            continue
                        write_errors.append('setting %s to %r (%s) failed: %s'
                                            % (key, value, proc, os.strerror(exc.errno) if exc.errno else exc))
                        continue
                    readback = read_live(proc)
                    if readback is not None:
                        after = readback
                    if readback is not None and readback != value:
                        module.warn('%s: the kernel keeps %r after %r was written; the next run will report a '
                                    'change again' % (key, readback, value))
                result['live_changed'][key] = dict(before=before, after=after)
        applied[key] = value

    # Live values set before a failure are a change.
    result['changed'] = bool(result['live_changed'])
    if write_errors:
        module.fail_json(msg='; '.join(write_errors) + ' (the drop-in %s was left as it was)' % path,
                         **result)
    if unavailable and missing == 'fail':
        module.fail_json(msg='sysctls not writable in this kernel or network namespace: %s'
                             % '; '.join('%s %s' % item for item in sorted(unavailable.items())),
                         **result)

    result['applied'] = applied

    # 3. The drop-in.
    content = render_dropin(applied, module.params['header'])
    before_content, before_mode = read_file(module, path)
    file_changed = before_content != content or before_mode != FILE_MODE
    if file_changed and not module.check_mode:
        try:
            write_file(module, path, content)
        except (OSError, IOError) as exc:
            module.fail_json(msg='cannot write %s: %s' % (path, to_native(exc)), **result)

    result['changed'] = file_changed or bool(result['live_changed'])
    if module._diff:
        result['diff'] = dict(
            before=before_content or '',
            after=content,
            before_header=path,
            after_header=path,
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
