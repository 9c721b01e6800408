# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the pure parts of running OMR's own VPS installer.

With `omr_vps_stack: omr` the vps role downloads OMR's installer (`debian9-x86_64.sh` of
Ysurac/openmptcprouter-vps, published as `<channel>/debian-x86_64.sh`), refuses it unless its
sha256 matches, runs it with exactly the declared environment, reboots only when allowed, checks
the kernel and harvests the Server key. This file holds what needs no host:

- `check_install` validates the role's variables (naming them) and returns the plan;
- `dpkg_compare` is dpkg's version ordering; `kernel_state` reads `uname -r` and dpkg-query
  (the #4291/#4088 trap: OMR's kernel installed, the old one still booted);
- `admin_key` / `config_txt_key` read the Server key the router needs, `install_mode` and
  `installed_version` what the installer will decide, `v0_sysctl_keys` the v0 MPTCP keys of
  OMR's sysctl file, `shorewall_interface` shorewall's interface, `restart_loop` omr-admin's health.

Names and formats were read from the installer at develop 51ac9a2 (OMR_VERSION 0.1058-rolling-test)
and master 442bb01 (0.1052). Secret values never come here: only whether each one is set.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import json
import re
from urllib.parse import urlsplit

try:
    from typing import Dict, List, Optional
except ImportError:  # pragma: no cover
    Dict = List = Optional = None

from ansible_collections.omr.deploy.plugins.module_utils._sysctl import key_to_relpath, parse_dropin

STACKS = ("native", "omr")
# The installer's `Check Kernel` (l.128-131); KERNEL=${KERNEL:-6.18} (l.9).
KERNELS = ("5.4", "6.1", "6.6", "6.10", "6.11", "6.12", "6.18")
DEFAULT_KERNEL = "6.18"
# The URL path selects the channel (omr-facts.md section 1).
CHANNELS = {"stable": "server", "rc": "server-rc", "test": "server-test"}
URL = "https://www.openmptcprouter.com/%s/debian-x86_64.sh"
# What each component switch defaults to in the installer (l.9-113). MQVPN is read on develop only.
FEATURE_DEFAULTS = {
    "SHADOWSOCKS": "yes", "SHADOWSOCKS_GO": "yes", "OBFS": "yes", "V2RAY_PLUGIN": "no", "V2RAY": "yes",
    "XRAY": "yes", "GLORYTUN_TCP": "yes", "GLORYTUN_UDP": "yes", "DSVPN": "yes", "MLVPN": "yes",
    "UBOND": "no", "MQVPN": "yes", "OPENVPN": "yes", "OPENVPN_BONDING": "yes", "WIREGUARD": "yes",
    "SOFTETHERVPN": "no", "FAIL2BAN": "yes", "BPFTUNE": "yes", "IPERF": "yes", "SPEEDTEST": "yes",
    "OMR_ADMIN": "yes", "TLS": "yes",
}
BEHAVIOUR_DEFAULTS = {
    "UPDATE_OS": "yes", "FORCE_UPDATE_OS": "no", "UPDATE": "yes", "REINSTALL": "yes", "SOURCES": "no",
    "LOCALFILES": "no", "NOINTERNET": "no", "GRETUNNELS": "yes", "LANROUTES": "yes", "CHINA": "no",
}
FEATURES = tuple(sorted(FEATURE_DEFAULTS))
BEHAVIOURS = tuple(sorted(BEHAVIOUR_DEFAULTS))
SWITCHES = tuple(sorted(FEATURES + BEHAVIOURS))
# Random by default; env values count on a fresh install only (update mode reads them back).
SECRETS = ("DSVPN_PASS", "GLORYTUN_PASS", "MLVPN_PASS", "MQVPN_KEY", "OMR_ADMIN_PASS", "OMR_ADMIN_PASS_ADMIN",
           "PSK", "SHADOWSOCKS_PASS", "SOFTETHERVPN_PASS_ADMIN", "SOFTETHERVPN_PASS_USER", "UBOND_PASS", "UPSK",
           "V2RAY_UUID", "XRAY_UUID")
# Variables that pick the kernel: the role sets KERNEL itself (UPSTREAM/UPSTREAM6=yes force 6.1).
KERNEL_VARS = ("KERNEL", "UPSTREAM", "UPSTREAM6")
TRUE_WORDS = ("yes", "true")
FALSE_WORDS = ("no", "false")

ADMIN_CONFIG = "/etc/openmptcprouter-vps-admin/omr-admin-config.json"
CONFIG_TXT = "/root/openmptcprouter_config.txt"
DEFAULT_USER = "openmptcprouter"
# omr-admin-config.json's template values, left when the install stopped before its sed (l.1068-1069).
PLACEHOLDERS = ("MySecretKey", "AdminMySecretKey")
MOTD_MARK = "OpenMPTCProuter VPS"
# The installer first rewrites this old misspelling to MOTD_MARK (l.185-190).
MOTD_MARK_OLD = "OpenMPCTProuter VPS"

# dpkg's package states (dpkg-query(1)): a kernel whose postinst ran boots; `dpkg --force-all -i`
# (how the installer installs its kernels) can leave one half-way.
INSTALLED_STATES = ("installed", "triggers-awaited", "triggers-pending")
UNFINISHED_STATES = ("half-installed", "unpacked", "half-configured")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+~-]*$")
_EPOCH = re.compile(r"^[0-9]+$")


class OmrInstallError(ValueError):
    pass


def _names(names):
    return ", ".join(names)


# ---------------------------------------------------------------------------------------------
# The role's variables

def check_kernel(kernel, var="omr_vps_omr_kernel"):
    # type: (object, str) -> str
    """The KERNEL value as the installer compares it (a string). YAML makes `6.10` the float 6.1,
    so a float is accepted only when exactly one offered kernel reads as that number."""
    if kernel is None or kernel == "":
        return DEFAULT_KERNEL
    if isinstance(kernel, bool) or not isinstance(kernel, (str, float, int)):
        raise OmrInstallError("%s must be one of %s (a quoted string), got %r" % (var, _names(KERNELS), kernel))
    if isinstance(kernel, float):
        same = [k for k in KERNELS if float(k) == kernel]
        if len(same) > 1:
            raise OmrInstallError("%s is the number %r, which is what YAML makes of %s alike: quote it (%s)"
                                  % (var, kernel, " and ".join(same), " or ".join("'%s'" % k for k in same)))
        if same:
            return same[0]
    text = str(kernel).strip()
    if text not in KERNELS:
        raise OmrInstallError("%s %r is not a kernel OMR's installer offers (%s)" % (var, kernel, _names(KERNELS)))
    return text


def _switch(value, var):
    # type: (object, str) -> str
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return "yes" if value.strip().lower() in TRUE_WORDS else "no"
    raise OmrInstallError("%s must be yes, no, true or false, got %r" % (var, value))


def check_features(features, var="omr_vps_omr_features"):
    # type: (object, str) -> Dict[str, str]
    """{SWITCH: yes|no} for the installer's feature and behaviour switches, sorted."""
    if features is None:
        return {}
    if not isinstance(features, dict):
        raise OmrInstallError("%s must be a dict of the installer's switches, got %s" % (var, type(features).__name__))
    result = {}
    for name in sorted(features, key=str):
        if name in KERNEL_VARS:
            raise OmrInstallError("%s sets %s; the kernel is chosen by omr_vps_omr_kernel" % (var, name))
        if name in SECRETS:
            raise OmrInstallError("%s names the secret %s; declare it in omr_vps_omr_secrets" % (var, name))
        if name not in SWITCHES:
            raise OmrInstallError("%s has %r, a switch the installer does not read; it reads: %s"
                                  % (var, name, _names(SWITCHES)))
        result[name] = _switch(features[name], "%s.%s" % (var, name))
    return result


def check_secret_names(secrets, var="omr_vps_omr_secrets"):
    # type: (object, str) -> List[str]
    """The names of the secrets the role passes, from {NAME: true|false}. A value that is not a
    boolean is refused without being shown: the planner must never see secret values."""
    if secrets is None:
        return []
    if not isinstance(secrets, dict):
        raise OmrInstallError("%s must be a dict {NAME: true|false}, got %s" % (var, type(secrets).__name__))
    names = []
    for name in sorted(secrets, key=str):
        if name in SWITCHES or name in KERNEL_VARS:
            raise OmrInstallError("%s names the switch %s; declare it in omr_vps_omr_features" % (var, name))
        if name not in SECRETS:
            raise OmrInstallError("%s has %r, a secret the installer does not read; it reads: %s"
                                  % (var, name, _names(SECRETS)))
        if not isinstance(secrets[name], bool):
            raise OmrInstallError("%s.%s must be true or false (whether the role passes it), not the secret "
                                  "itself: its value never reaches the planner" % (var, name))
        if secrets[name]:
            names.append(name)
    return names


# The installer puts these secrets into files with `sed "s:PLACEHOLDER:$VALUE:g"`, some inside JSON
# strings: ':' ends the sed expression, '&' and '\' are sed specials, '"' ends the JSON string.
_SECRET_BAD = re.compile(r'[:&\\"\s]')


def check_secret_value(name, value, var="omr_vps_omr_secrets"):
    # type: (str, object, str) -> None
    """For a no_log task or a module: refuse a secret value the installer would mangle. The
    message names the secret and the offending character class, never the value."""
    where = "%s.%s" % (var, name)
    if not isinstance(value, str) or not value:
        raise OmrInstallError("%s must be a non-empty string" % where)
    if _SECRET_BAD.search(value):
        raise OmrInstallError("%s contains ':', '&', '\\', '\"' or whitespace, which the installer's sed "
                              "substitutions break on; use letters, digits, '+', '/', '=', '-' or '_'" % where)


def check_sha256(value, url, var="omr_vps_omr_installer_sha256"):
    # type: (object, str, str) -> str
    if value is None or (isinstance(value, str) and not value.strip()):
        raise OmrInstallError("%s is required: no unverified script ever runs. Download %s, review it, "
                              "and set %s to its `sha256sum`" % (var, url, var))
    text = str(value).strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:"):].strip()
    text = text.lower()
    if not _SHA256.match(text):
        raise OmrInstallError("%s must be 64 hexadecimal digits (`sha256sum` of the installer, optionally "
                              "prefixed with sha256:), got %d characters" % (var, len(text)))
    return text


def check_url(value, var="omr_vps_omr_installer_url"):
    # type: (object, str) -> str
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text) if text else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", text):
        raise OmrInstallError("%s must be an http(s) URL, got %r" % (var, value))
    return text


def check_version(value, var="omr_vps_omr_version"):
    # type: (object, str) -> str
    if isinstance(value, float):
        raise OmrInstallError("%s is the number %r: YAML drops trailing zeros (0.1050 becomes 0.105); quote it"
                              % (var, value))
    if value is not None and not isinstance(value, str):
        raise OmrInstallError("%s must be a quoted string such as '0.1052', got %r" % (var, value))
    text = (value or "").strip()
    if not text:
        raise OmrInstallError("%s is required: the omr-server version the installer puts in /etc/motd "
                              "(its OMR_VERSION, e.g. '0.1052'), which tells whether it already ran" % var)
    if not _VERSION.match(text):
        raise OmrInstallError("%s %r is not an OMR version such as 0.1052 or 0.1058-rolling-test" % (var, value))
    return text


def check_timeout(value, var="omr_vps_omr_install_timeout"):
    # type: (object, str) -> int
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        number = None
    if number is None or number <= 0:
        raise OmrInstallError("%s must be a positive number of seconds, got %r" % (var, value))
    return number


def check_install(settings):
    # type: (Dict[str, object]) -> Dict[str, object]
    """Validate the role's settings for the installer.

    settings: {stack, channel, version, kernel, installer_url, installer_sha256, features,
    secrets ({NAME: bool}), reboot_ok, install_timeout, key_file}. With stack native, returns
    {"stack": "native"}. With omr, returns {stack, url, sha256, channel, version, kernel, env
    ({NAME: value} without secrets, KERNEL included, sorted), secret_names, omr_admin (whether
    the installer sets up omr-admin, the Server key's home), reboot_ok, timeout, key_file}.
    """
    if not isinstance(settings, dict):
        raise OmrInstallError("the installer settings must be a dict, got %s" % type(settings).__name__)
    stack = settings.get("stack")
    if stack not in STACKS:
        raise OmrInstallError("omr_vps_stack must be %s, got %r" % (" or ".join(STACKS), stack))
    if stack == "native":
        return {"stack": "native"}
    channel = settings.get("channel")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise OmrInstallError("omr_vps_omr_channel must be one of %s, got %r" % (_names(sorted(CHANNELS)), channel))
    version = check_version(settings.get("version"))
    kernel = check_kernel(settings.get("kernel"))
    url = URL % CHANNELS[channel]
    if settings.get("installer_url") not in (None, ""):
        url = check_url(settings.get("installer_url"))
    sha256 = check_sha256(settings.get("installer_sha256"), url)
    features = check_features(settings.get("features"))
    secret_names = check_secret_names(settings.get("secrets"))
    reboot_ok = settings.get("reboot_ok")
    if not isinstance(reboot_ok, bool):
        raise OmrInstallError("omr_vps_reboot_ok must be a boolean (true or false, unquoted), got %r" % (reboot_ok,))
    timeout = check_timeout(settings.get("install_timeout"))
    key_file = settings.get("key_file") or None
    if key_file is not None and (not isinstance(key_file, str) or not key_file.strip() or "\n" in key_file):
        raise OmrInstallError("omr_vps_omr_key_file must be a path, got %r" % (key_file,))
    env = dict(features)
    env["KERNEL"] = kernel
    return {
        "stack": "omr",
        "url": url,
        "sha256": sha256,
        "channel": channel,
        "version": version,
        "kernel": kernel,
        "env": dict(sorted(env.items())),
        "secret_names": secret_names,
        "omr_admin": features.get("OMR_ADMIN", FEATURE_DEFAULTS["OMR_ADMIN"]) == "yes",
        "reboot_ok": reboot_ok,
        "timeout": timeout,
        "key_file": key_file,
    }


# ---------------------------------------------------------------------------------------------
# dpkg's version ordering (lib/dpkg/version.c: parseversion, verrevcmp)

def _order(char):
    # type: (str) -> int
    if not char:
        return 0
    if "0" <= char <= "9":
        return 0
    if "a" <= char <= "z" or "A" <= char <= "Z":
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _isdigit(text, index):
    return index < len(text) and "0" <= text[index] <= "9"


def verrevcmp(a, b):
    # type: (str, str) -> int
    """dpkg's comparison of two upstream versions or two revisions: alternating non-digit parts
    (letters before non-letters, `~` before everything, even the end) and numbers."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not _isdigit(a, i)) or (j < len(b) and not _isdigit(b, j)):
            ac = _order(a[i] if i < len(a) else "")
            bc = _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while _isdigit(a, i) and _isdigit(b, j):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if _isdigit(a, i):
            return 1
        if _isdigit(b, j):
            return -1
        if first_diff:
            return first_diff
    return 0


def parse_version(version):
    # type: (str) -> tuple
    """(epoch, upstream, revision) as dpkg splits a version: epoch before the first ':', revision
    after the last '-' (empty when there is none, which compares like '0'). Raises ValueError where dpkg
    reports an error; dpkg's warnings (no leading digit, odd characters) pass."""
    text = str(version).strip()
    if not text:
        raise ValueError("version string is empty")
    if re.search(r"\s", text):
        raise ValueError("version %r has embedded spaces" % (version,))
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not _EPOCH.match(head):
            raise ValueError("version %r has an epoch that is empty or not a number" % (version,))
        if not text:
            raise ValueError("version %r has nothing after its colon" % (version,))
        epoch = int(head)
    upstream, revision = text, ""
    if "-" in text:
        upstream, revision = text.rsplit("-", 1)
        if not revision:
            raise ValueError("version %r has an empty revision" % (version,))
    if not upstream:
        raise ValueError("version %r has an empty version number" % (version,))
    return epoch, upstream, revision


def dpkg_compare(a, b):
    # type: (str, str) -> int
    """-1, 0 or 1 as `dpkg --compare-versions a lt|eq|gt b` decides (an empty version, "none",
    sorts before every other, even `~`)."""
    has_a, has_b = bool(str(a).strip()), bool(str(b).strip())
    if not (has_a and has_b):
        return int(has_a) - int(has_b)
    ea, ua, ra = parse_version(a)
    eb, ub, rb = parse_version(b)
    result = (ea > eb) - (ea < eb)
    if not result:
        result = verrevcmp(ua, ub)
    if not result:
        result = verrevcmp(ra, rb)
    return (result > 0) - (result < 0)


# ---------------------------------------------------------------------------------------------
# Kernels

def _release(package):
    # type: (str) -> Optional[str]
    """The `uname -r` a linux-image package boots, or None for metapackages (linux-image-amd64,
    linux-image-cloud-amd64) and debug symbols. Signed and unsigned builds boot the same release."""
    if not package.startswith("linux-image-"):
        return None
    release = package[len("linux-image-"):]
    if release.startswith("unsigned-"):      # Ubuntu's linux-image-unsigned-6.1.0-...
        release = release[len("unsigned-"):]
    if release.endswith("-unsigned"):        # Debian's linux-image-6.1.0-18-cloud-amd64-unsigned
        release = release[:-len("-unsigned")]
    if release.endswith("-dbg") or release.endswith("-dbgsym") or not release[:1].isdigit():
        return None
    return release


def _in_family(release, family):
    # type: (str, str) -> bool
    return release == family or release.startswith(family + ".") or release.startswith(family + "-")


def _newest(images):
    # type: (List[Dict[str, str]]) -> List[Dict[str, str]]
    """Newest first. The release decides (GRUB orders its entries by release, and OMR's 5.4 package
    is versioned 1.22), the package version breaks a tie, then the plain strings."""
    def cmp(x, y):
        result = verrevcmp(x["release"], y["release"])
        if not result:
            try:
                result = dpkg_compare(x["version"], y["version"])
            except ValueError:      # a version dpkg itself would refuse: leave it to the strings
                result = 0
        return result or (x["release"] > y["release"]) - (x["release"] < y["release"])
    return sorted(images, key=functools.cmp_to_key(cmp), reverse=True)


def kernel_state(uname_r, dpkg_query, family=None):
    # type: (str, str, Optional[str]) -> Dict[str, object]
    """What runs and what is installed, from `uname -r` and
    `dpkg-query -W -f='${Package}\\t${Version}\\t${Status}\\n' 'linux-image-*'` (its text, or its lines).

    Returns {running, installed ([{package, version, release}], newest first), newest (a release,
    or None), reboot_needed, running_installed, family, family_ok (None without a family),
    container, unfinished (packages dpkg left half-installed), message}.

    With a family (the KERNEL asked for, e.g. "6.18"), `newest` is the newest installed release of
    that series when there is one: OMR pins its kernel in GRUB, and a newer distribution kernel of
    another series (Debian 13's 6.12 beside xanmod 6.6) is not what it boots.
    """
    running = (uname_r or "").strip()
    if not running:
        raise OmrInstallError("uname -r printed nothing")
    if family is not None:
        family = check_kernel(family)
    if isinstance(dpkg_query, (list, tuple)):
        dpkg_query = "\n".join(dpkg_query)
    installed = {}
    unfinished = []
    for line in (dpkg_query or "").splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        package, version, status = fields[0].strip(), fields[1].strip(), fields[2].split()
        release = _release(package)
        if release is None or not version or len(status) != 3:
            continue
        if status[2] in INSTALLED_STATES:
            # One release per boot entry; prefer the signed package's name.
            if release not in installed or installed[release]["package"].endswith("-unsigned"):
                installed[release] = {"package": package, "version": version, "release": release}
        elif status[2] in UNFINISHED_STATES:
            unfinished.append("%s (%s)" % (package, status[2]))
    images = _newest(list(installed.values()))
    candidates = images
    if family is not None and any(_in_family(i["release"], family) for i in images):
        candidates = [i for i in images if _in_family(i["release"], family)]
    newest = candidates[0]["release"] if candidates else None
    container = not images
    running_installed = running in installed
    reboot_needed = newest is not None and newest != running
    family_ok = None if family is None else _in_family(running, family)
    state = {
        "running": running,
        "installed": images,
        "newest": newest,
        "reboot_needed": reboot_needed,
        "running_installed": running_installed,
        "family": family,
        "family_ok": family_ok,
        "container": container,
        "unfinished": sorted(unfinished),
    }
    state["message"] = _kernel_message(state)
    return state


def _kernel_message(state):
    # type: (Dict[str, object]) -> str
    running, newest, family = state["running"], state["newest"], state["family"]
    if state["container"]:
        text = ("no linux-image package is installed: %s is the host's kernel (a container); "
                "neither OMR's installer nor a reboot can change it" % running)
        if state["family_ok"] is False:
            text += ", and it is not the %s series omr_vps_omr_kernel asks for" % family
    elif state["reboot_needed"]:
        text = "installed %s but still running %s: " % (newest, running)
        if not state["running_installed"]:
            text += "its package is no longer installed; "
        text += ("reboot (omr_vps_reboot_ok) or the OMR kernel is not the default in GRUB "
                 "(openmptcprouter#4291)")
    elif state["family_ok"] is False:
        text = ("running %s, the newest installed kernel, but omr_vps_omr_kernel asks for %s: "
                "the installer did not install a %s kernel (see its output)" % (running, family, family))
    else:
        text = "running %s, the newest installed kernel" % running
        if family is not None:
            text += " of the %s series" % family
    if state["unfinished"]:
        text += "; dpkg left %s unfinished: `dpkg --configure -a`" % ", ".join(state["unfinished"])
    return text


# ---------------------------------------------------------------------------------------------
# The Server key

def _check_key(key, where):
    # type: (object, str) -> str
    if not isinstance(key, str) or not key.strip():
        raise OmrInstallError("%s has no Server key: OMR_ADMIN=no, or the install did not finish" % where)
    key = key.strip()
    if key in PLACEHOLDERS:
        raise OmrInstallError("%s still holds the template's placeholder instead of a Server key: "
                              "the install did not finish; rerun it" % where)
    return key


def admin_key(json_text):
    # type: (str) -> Dict[str, str]
    """{username, key} of `.users[0].openmptcprouter` in omr-admin-config.json (the installer's
    template: {"port": 65500, "users": [{"admin": {...}, "openmptcprouter": {"username": ...,
    "user_password": ...}}]}). Old files without `users` kept the key as a top-level "pass".
    Messages never show a key."""
    where = ADMIN_CONFIG
    try:
        data = json.loads(json_text or "")
    except ValueError as exc:
        # The decoder's message gives a position, never the text.
        raise OmrInstallError("%s is not JSON (%s)" % (where, getattr(exc, "msg", "invalid")))
    if not isinstance(data, dict):
        raise OmrInstallError("%s is not a JSON object" % where)
    users = data.get("users")
    if users is None and "pass" in data:
        return {"username": DEFAULT_USER, "key": _check_key(data.get("pass"), where)}
    if not isinstance(users, list) or not users or not isinstance(users[0], dict):
        raise OmrInstallError("%s has no users list: the install did not finish" % where)
    user = users[0].get(DEFAULT_USER)
    if not isinstance(user, dict):
        raise OmrInstallError("%s has no %s user in users[0] (users: %s)"
                              % (where, DEFAULT_USER, _names(sorted(str(u) for u in users[0]))))
    username = user.get("username") or DEFAULT_USER
    return {"username": str(username), "key": _check_key(user.get("user_password"), where)}


_TXT_KEY = re.compile(r"^\s*Your OpenMPTCProuter Server key:[ \t]*(.*?)\s*$")
_TXT_USER = re.compile(r"^\s*Your OpenMPTCProuter Server username:[ \t]*(.*?)\s*$")


def config_txt_key(text):
    # type: (str) -> Dict[str, str]
    """{username, key} from /root/openmptcprouter_config.txt, the fallback (its last "Your
    OpenMPTCProuter Server key:" line; the ADMIN API key's line is another)."""
    key = username = None
    for line in (text or "").splitlines():
        found = _TXT_KEY.match(line)
        if found:
            key = found.group(1)
        found = _TXT_USER.match(line)
        if found:
            username = found.group(1)
    return {"username": username or DEFAULT_USER, "key": _check_key(key, CONFIG_TXT)}


# ---------------------------------------------------------------------------------------------
# What the installer will decide, and what it leaves

def install_mode(motd_text, config_txt_exists, update=True):
    # type: (Optional[str], bool, object) -> str
    """"update" or "fresh", as the installer decides (l.192-204): with UPDATE=yes, an update when
    /etc/motd or /etc/motd.head (pass both texts, concatenated) mentions "OpenMPTCProuter VPS"
    or /root/openmptcprouter_config.txt exists. A fresh install makes new keys."""
    if _switch(update, "omr_vps_omr_features.UPDATE") != "yes":
        return "fresh"
    text = motd_text or ""
    if MOTD_MARK in text or MOTD_MARK_OLD in text or config_txt_exists:
        return "update"
    return "fresh"


_MOTD_VERSION = re.compile(r"<\s*OpenMP(?:TC|CT)Prouter VPS\s+(\S+)\s*>")


def installed_version(motd_text):
    # type: (Optional[str]) -> Optional[str]
    """The OMR_VERSION the installer wrote into /etc/motd(.head) as "< OpenMPTCProuter VPS 0.1052 >",
    or None. The installer exits 1 when it equals its own version and REINSTALL=no."""
    found = None
    for match in _MOTD_VERSION.finditer(motd_text or ""):
        found = match.group(1)
    return found


def v0_sysctl_keys(text):
    # type: (Optional[str]) -> List[str]
    """The out-of-tree MPTCP (v0) keys, net.mptcp.mptcp_*, a sysctl.d file sets, in file order.
    Upstream kernels have none of them: OMR's installer hides the errors with `sysctl -p || true`."""
    keys = []
    for key in parse_dropin(text):
        try:
            rel = key_to_relpath(key)
        except ValueError:
            continue
        if rel.startswith("net/mptcp/mptcp_"):
            keys.append(key)
    return keys


_PARAM = re.compile(r"""^\s*(?:export\s+)?NET_IFACE=(?:"([^"]*)"|'([^']*)'|([^\s#;]*))""")


def shorewall_interface(params_text, default_interface):
    # type: (Optional[str], Optional[str]) -> Dict[str, object]
    """Whether shorewall's NET_IFACE (/etc/shorewall/params.net; the installer replaces the
    template's eth0 with the default-route interface it saw) is the interface the default route
    leaves by now. Returns {interface, ok, message}."""
    interface = None
    for line in (params_text or "").splitlines():
        found = _PARAM.match(line)
        if found:
            interface = next(g for g in found.groups() if g is not None)
    default_interface = (default_interface or "").strip() or None
    if not interface:
        return {"interface": None, "ok": False,
                "message": "/etc/shorewall/params.net sets no NET_IFACE: shorewall has no net interface to filter"}
    if default_interface is None:
        return {"interface": interface, "ok": False,
                "message": "no IPv4 default route: cannot tell whether shorewall's %s is the right interface" % interface}
    if interface != default_interface:
        return {"interface": interface, "ok": False,
                "message": "params.net names %s but the default route leaves by %s: shorewall filters the wrong "
                           "interface (#4137, #4194)" % (interface, default_interface)}
    return {"interface": interface, "ok": True,
            "message": "shorewall filters %s, the default route's interface" % interface}


def restart_loop(nrestarts, active_state, threshold=3):
    # type: (object, str, int) -> Dict[str, object]
    """omr-admin's health from `systemctl show -p NRestarts -p ActiveState omr-admin` (values with
    or without their `Name=`). Not ok when it is not active or systemd restarted it `threshold`
    times or more. Returns {ok, message}."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise OmrInstallError("threshold must be a positive integer, got %r" % (threshold,))
    text = str(nrestarts).strip()
    if text.startswith("NRestarts="):
        text = text[len("NRestarts="):]
    if isinstance(nrestarts, bool) or not text.isdigit():
        raise OmrInstallError("NRestarts must be a number, got %r" % (nrestarts,))
    count = int(text)
    state = str(active_state or "").strip()
    if state.startswith("ActiveState="):
        state = state[len("ActiveState="):]
    looping = count >= threshold
    if state == "active" and not looping:
        return {"ok": True, "message": "omr-admin is active (%d restarts)" % count}
    if looping:
        message = ("omr-admin has been restarted %d times by systemd and is %s: a restart loop; "
                   "`journalctl -u omr-admin` says why (Debian 13 broke it, #4137)" % (count, state or "in no state"))
    else:
        message = "omr-admin is %s, not active; `journalctl -u omr-admin` says why" % (state or "in no state")
    return {"ok": False, "message": message}
