# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: OpenWrt's UCI as the controller sees it.

An OMR router has no Python, so everything here runs on the controller: it parses what the
router's `uci` printed, and plans the minimal `uci batch` that brings it to a desired state.
The real `uci` CLI's behaviour it is written against is recorded in the project's reference
(`uci-behaviour.txt`): `batch` exits 0 even when lines fail, setting an option to its current
value records no delta, `add_list` does not de-duplicate, positional sections cannot be created
with `set`, `show` quotes as `key='value'` with `'\\''` for a quote.

A configuration is `{package: [section, ...]}`, each section
`{'name', 'type', 'anonymous', 'ref', 'options': {option: str | [str, ...]}}`, in file order.
`name` is the section's name, or for an anonymous section its `cfgXXXXXX` id when the router
printed it (`uci -X show`), else its `@type[N]` position; `ref` is what a batch line may use.

Secrets (the VPS's Server key, the proxy key) never travel back from the router: the read
replaces their values with a salted sha256 (`mask_script`), the controller compares digests,
and the values travel to the router only on the batch's stdin.

Standard library only and no imports from the collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import re

try:
    from typing import Dict, List, Optional, Tuple
except ImportError:  # pragma: no cover
    Dict = List = Optional = Tuple = None

# Option names whose values are secrets wherever they appear (OMR's server password and token,
# shadowsocks keys, WireGuard and iperf keys).
SECRET_OPTIONS = ("password", "key", "token", "psk", "upsk", "private_key", "preshared_key", "user_password")
MASK = "********"
MASK_CHANGED = "******** (changed)"
DIGEST_PREFIX = "sha256:"

_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ANON_ID_RE = re.compile(r"^cfg[0-9a-f]{6}$")
_POS_RE = re.compile(r"^@([A-Za-z0-9_]+)\[(-?[0-9]+)\]$")
# pkg.section[.option]=value, as `uci show` prints it.
_SHOW_RE = re.compile(r"^([A-Za-z0-9_-]+)\.(@[A-Za-z0-9_]+\[-?[0-9]+\]|[A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?=(.*)$")
# `uci changes`: an optional - (delete), the path, and =, += or -= with the value.
_CHANGE_RE = re.compile(r"^(-?)([A-Za-z0-9_-]+)\.([A-Za-z0-9_@\[\]-]+?)(?:\.([A-Za-z0-9_]+))?(?:(\+=|-=|=)(.*))?$")


class UciError(ValueError):
    """Input that is not UCI as the real `uci` prints or accepts it."""


# ---------------------------------------------------------------------------
# Quoting, as uci prints and as its batch tokeniser reads
# ---------------------------------------------------------------------------

def quote(value):
    # type: (str) -> str
    """One value as `uci show` prints it and `uci batch` reads it back: 'it'\\''s'."""
    return "'" + str(value).replace("'", "'\\''") + "'"


def render_value(value):
    # type: (object) -> str
    if isinstance(value, list):
        return " ".join(quote(v) for v in value)
    return quote(value)


def unquote(text, strict=True):
    # type: (str, bool) -> List[str]
    """The values of a `show` right-hand side: `'a'` -> ['a'], `'a' 'b'` -> ['a', 'b'],
    `'it'\\''s'` -> ["it's"]. A bare word is taken as is (uci prints none, users' dumps have some).
    strict: an unterminated quote raises UciError; otherwise the rest is taken as the value."""
    values = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] in "'\"":
            q = text[i]
            i += 1
            buf = []
            while True:
                j = text.find(q, i)
                if j < 0:
                    if strict:
                        raise UciError("unterminated quote in %r" % text)
                    buf.append(text[i:])
                    i = n
                    break
                buf.append(text[i:j])
                i = j + 1
                # '\'' inside single quotes: a literal quote, and the same value goes on.
                if q == "'" and text.startswith("\\''", i):
                    buf.append("'")
                    i += 3
                    continue
                break
            values.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in " \t":
                j += 1
            values.append(text[i:j])
            i = j
    return values


def batch_tokens(line):
    # type: (str) -> List[str]
    """A `uci batch` line split as uci's tokeniser does (shell-like quotes and backslashes)."""
    out, buf, i, n, started = [], [], 0, len(line), False
    while i < n:
        c = line[i]
        if c in " \t":
            if started:
                out.append("".join(buf))
                buf, started = [], False
            i += 1
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise UciError("unterminated quote in batch line %r" % line)
            buf.append(line[i + 1:j])
            started, i = True, j + 1
        elif c == '"':
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(line[i])
                i += 1
            if i >= n:
                raise UciError("unterminated quote in batch line %r" % line)
            started, i = True, i + 1
        elif c == "\\" and i + 1 < n:
            buf.append(line[i + 1])
            started, i = True, i + 2
        else:
            buf.append(c)
            started, i = True, i + 1
    if started:
        out.append("".join(buf))
    return out


# ---------------------------------------------------------------------------
# Parsing what the router printed
# ---------------------------------------------------------------------------

def _section(name, stype, anonymous, ref=None):
    return {"name": name, "type": stype, "anonymous": anonymous, "ref": ref or name, "options": {}}


def _finish(config):
    """Give positional refs to anonymous sections (@type[N], N among sections of that type)."""
    for sections in config.values():
        counts = {}
        for sec in sections:
            n = counts.get(sec["type"], 0)
            counts[sec["type"]] = n + 1
            sec["index"] = n
            if sec["anonymous"]:
                sec["position"] = "@%s[%d]" % (sec["type"], n)
                if not _ANON_ID_RE.match(sec["name"]):
                    sec["name"] = sec["position"]
                sec["ref"] = sec["name"]
    return config


def parse_show(text, strict=True):
    # type: (str, bool) -> Tuple[Dict[str, list], List[str]]
    """`uci show` or `uci -X show` output (one package or several) -> (config, skipped lines).

    strict: any line that is not `pkg.sec=type` or `pkg.sec.opt=value` raises UciError (the
    router's own output); otherwise such lines are returned as skipped (users' pasted dumps)."""
    config = {}
    index = {}
    skipped = []
    for raw in (text or "").splitlines():
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        m = _SHOW_RE.match(line)
        if not m:
            if strict:
                raise UciError("not a uci show line: %r" % line)
            skipped.append(line)
            continue
        pkg, sec, opt, rhs = m.groups()
        try:
            values = unquote(rhs, strict=strict)
        except UciError:
            if strict:
                raise
            skipped.append(line)
            continue
        sections = config.setdefault(pkg, [])
        if opt is None:
            stype = values[0] if values else rhs
            pos = _POS_RE.match(sec)
            anonymous = bool(pos) or bool(_ANON_ID_RE.match(sec))
            if (pkg, sec) in index:
                index[(pkg, sec)]["type"] = stype
            else:
                entry = _section(sec, stype, anonymous)
                sections.append(entry)
                index[(pkg, sec)] = entry
            continue
        entry = index.get((pkg, sec))
        if entry is None:
            if strict:
                raise UciError("option %s before its section %s.%s" % (line, pkg, sec))
            # An excerpt that starts mid-section: keep the option under a section of unknown type.
            pos = _POS_RE.match(sec)
            entry = _section(sec, pos.group(1) if pos else "", bool(pos) or bool(_ANON_ID_RE.match(sec)))
            sections.append(entry)
            index[(pkg, sec)] = entry
        entry["options"][opt] = values[0] if len(values) == 1 else values
    return _finish(config), skipped


def parse_export(text, strict=True):
    # type: (str, bool) -> Tuple[Dict[str, list], List[str]]
    """`uci export` output or an /etc/config file -> (config, skipped lines). A file without a
    `package` line is named by `package` lines only; pass one through `parse_export_file`."""
    config = {}
    skipped = []
    pkg, current = None, None
    anon = {}
    for raw in (text or "").splitlines():
        line = raw.rstrip("\r").strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = unquote(line, strict=strict)
        except UciError:
            if strict:
                raise
            skipped.append(raw)
            continue
        keyword = words[0] if words else ""
        if keyword == "package" and len(words) == 2:
            pkg, current = words[1], None
            config.setdefault(pkg, [])
            continue
        if keyword == "config" and len(words) in (2, 3) and pkg is not None:
            stype = words[1]
            if len(words) == 3:
                current = _section(words[2], stype, False)
            else:
                n = anon.get((pkg, stype), 0)
                anon[(pkg, stype)] = n + 1
                current = _section("@%s[%d]" % (stype, n), stype, True)
            config[pkg].append(current)
            continue
        if keyword in ("option", "list") and len(words) == 3 and current is not None:
            name, value = words[1], words[2]
            if keyword == "option":
                current["options"][name] = value
            else:
                have = current["options"].get(name)
                current["options"][name] = (have if isinstance(have, list) else ([have] if have is not None else [])) + [value]
            continue
        if strict:
            raise UciError("not a uci export line: %r" % raw)
        skipped.append(raw)
    return _finish(config), skipped


# Decoration around users' pasted dumps: markdown quotes and fences, prompts, banners.
_QUOTE_PREFIX_RE = re.compile(r"^\s*>\s?")


def read_dump(text):
    # type: (str) -> Tuple[Dict[str, list], List[str]]
    """A configuration someone pasted (an issue comment, a support request): `uci show` or
    export syntax, possibly quoted with "> ", inside fences, after a login banner, cut off in the
    middle of a line. Returns what it could read and the lines it skipped; never raises."""
    lines = []
    for raw in (text or "").splitlines():
        if raw.startswith("#"):
            continue
        line = _QUOTE_PREFIX_RE.sub("", raw).strip().strip("`")
        lines.append(line)
    body = "\n".join(lines)
    if re.search(r"^\s*config\s+\S+", body, re.M):
        # export syntax: a bare config block has no package line; name it from the dump's sections.
        if not re.search(r"^\s*package\s+\S+", body, re.M):
            body = "package network\n" + body
        return parse_export(body, strict=False)
    return parse_show(body, strict=False)


def find_section(config, package, name=None, stype=None, match=None):
    # type: (Dict[str, list], str, Optional[str], Optional[str], Optional[dict]) -> Optional[dict]
    """A section by name (or @type[N] position), or the first of `stype` whose options have
    every value in `match`."""
    for sec in config.get(package, []):
        if name is not None:
            if name in (sec["name"], sec.get("position")):
                return sec
            continue
        if stype is not None and sec["type"] != stype:
            continue
        if all(sec["options"].get(k) == v for k, v in (match or {}).items()):
            return sec
    return None


def members(value):
    # type: (object) -> List[str]
    """A list option's members: a list, one value, or a space-separated option (OpenWrt accepts
    `option network 'wan wan6'` where a list is meant)."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return str(value).split()


# ---------------------------------------------------------------------------
# Secrets: masked on the router, compared as digests
# ---------------------------------------------------------------------------

def is_secret(option, extra=()):
    return option in SECRET_OPTIONS or option in extra


def digest(salt, rhs):
    # type: (str, str) -> str
    """What mask_script prints for a secret line's right-hand side (as uci printed it)."""
    return DIGEST_PREFIX + hashlib.sha256((salt + rhs).encode("utf-8")).hexdigest()


def mask_script(salt, secrets=SECRET_OPTIONS):
    # type: (str, Tuple[str, ...]) -> str
    """A POSIX sh function `omr_uci_mask` that copies stdin to stdout, replacing the value of every
    secret option (show and changes lines alike) with sha256(salt + value as printed). busybox ash
    and dash alike; sha256sum is in OpenWrt's busybox."""
    if not re.match(r"^[A-Za-z0-9]+$", salt):
        raise UciError("the salt must be alphanumeric")
    patterns = "|".join("*.%s=*|*.%s+=*|*.%s-=*" % (s, s, s) for s in secrets if _NAME_RE.match(s))
    return "\n".join([
        "omr_uci_mask() {",
        "  while IFS= read -r l || [ -n \"$l\" ]; do",
        "    case \"$l\" in",
        "      %s)" % patterns,
        "        k=${l%%=*}; v=${l#*=}",
        "        printf \"%%s='%s%%s'\\n\" \"$k\" \"$(printf '%%s%%s' '%s' \"$v\" | sha256sum | cut -d ' ' -f 1)\" ;;"
        % (DIGEST_PREFIX, salt),
        "      *) printf '%s\\n' \"$l\" ;;",
        "    esac",
        "  done",
        "}",
    ])


def masked(config, extra=(), empty=None):
    # type: (Dict[str, list], Tuple[str, ...], Optional[str]) -> Dict[str, list]
    """A copy with every secret value replaced by MASK (for facts and reports). An empty value
    (or `empty`, the digest of an empty one) stays empty: that there is no key is no secret. A
    secret a batch set is shown as MASK_CHANGED, so that a diff tells it changed."""
    out = copy.deepcopy(config)
    for sections in out.values():
        for sec in sections:
            changed = sec.pop("changed_secrets", ())
            for opt, value in sec["options"].items():
                if not is_secret(opt, extra):
                    continue
                if opt in changed:
                    sec["options"][opt] = MASK_CHANGED
                elif value in ("", empty):
                    sec["options"][opt] = ""
                else:
                    sec["options"][opt] = [MASK] * len(value) if isinstance(value, list) else MASK
    return out


# ---------------------------------------------------------------------------
# The desired state and the minimal batch
# ---------------------------------------------------------------------------
#
# A desired section (`sections` of omr.deploy.uci), keys:
#   package, type          required
#   name                   a named section; or
#   match                  {option: value}: the first section of `type` with these values, else a new
#                          anonymous one (`uci add`) that gets them
#   state                  present (default) or absent (delete the section when it is there)
#   options                {option: value}: set where different; None deletes the option if present
#   defaults               {option: value}: set only when the option is absent (OMR rewrites it later)
#   lists                  {option: [members]}: add_list each member that is absent
#   exact_lists            {option: [members]}: the list is exactly these (del_list the others)
#   remove_members         {option: [members]}: del_list these where present
#   on_change              {option: value}: set too when anything else in the section changes
#   secrets                [option, ...]: masked in every output (SECRET_OPTIONS always are)

SPEC_KEYS = ("package", "type", "name", "match", "state", "options", "defaults", "lists", "exact_lists",
             "remove_members", "on_change", "secrets")


def check_spec(spec, where):
    # type: (dict, str) -> dict
    """One desired section, checked: names as uci accepts them, values as strings."""
    if not isinstance(spec, dict):
        raise UciError("%s must be a dict" % where)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UciError("%s has unknown keys %s (allowed: %s)" % (where, ", ".join(unknown), ", ".join(SPEC_KEYS)))
    pkg, stype = spec.get("package"), spec.get("type")
    if not pkg or not _PACKAGE_RE.match(str(pkg)):
        raise UciError("%s: package %r is not a uci package name" % (where, pkg))
    if not stype or not _NAME_RE.match(str(stype)):
        raise UciError("%s: type %r is not a uci section type" % (where, stype))
    name = spec.get("name")
    if (name is None) == (spec.get("match") is None):
        raise UciError("%s: give either name or match" % where)
    if name is not None and not _NAME_RE.match(str(name)):
        raise UciError("%s: name %r is not a uci section name" % (where, name))
    state = spec.get("state", "present")
    if state not in ("present", "absent"):
        raise UciError("%s: state %r is not present or absent" % (where, state))
    out = {"package": str(pkg), "type": str(stype), "name": None if name is None else str(name), "state": state,
           "secrets": [str(s) for s in spec.get("secrets") or []]}
    for key in ("match", "options", "defaults", "on_change"):
        value = spec.get(key) or {}
        if not isinstance(value, dict):
            raise UciError("%s: %s must be a dict" % (where, key))
        for opt, v in value.items():
            if not _NAME_RE.match(str(opt)):
                raise UciError("%s: %s has option %r, not a uci option name" % (where, key, opt))
            if isinstance(v, (list, dict)):
                raise UciError("%s: %s.%s must be a single value (lists go in lists or exact_lists)" % (where, key, opt))
            if v is None and key != "options":
                raise UciError("%s: %s.%s must not be empty" % (where, key, opt))
        out[key] = dict((str(k), None if v is None else _text(v)) for k, v in value.items())
    for key in ("lists", "exact_lists", "remove_members"):
        value = spec.get(key) or {}
        if not isinstance(value, dict):
            raise UciError("%s: %s must be a dict of lists" % (where, key))
        for opt, v in value.items():
            if not _NAME_RE.match(str(opt)) or not isinstance(v, list):
                raise UciError("%s: %s.%s must be a list" % (where, key, opt))
        out[key] = dict((str(k), [_text(m) for m in v]) for k, v in value.items())
    return out


def _text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Planner(object):
    """Accumulates batch lines, the deltas `uci changes` will show, and the state after them."""

    def __init__(self, current, digests, salt):
        self.state = copy.deepcopy(current)
        self.before = current
        self.digests = digests          # True when secret values in `current` are digests
        self.salt = salt
        self.batch = []                 # the lines, values included (goes to the router's stdin)
        self.shown = []                 # the same lines with secrets masked
        self.changes = {}               # package -> predicted `uci changes` lines (secrets as digests)
        self.touched = []               # packages in the order first touched
        self.secret_options = set()

    def _touch(self, pkg):
        if pkg not in self.touched:
            self.touched.append(pkg)

    def _secret(self, opt, extra):
        return is_secret(opt, extra)

    def same(self, have, want, opt, extra):
        """Whether the current value (a digest for a secret read from the router) is `want`."""
        if have is None:
            return False
        if self._secret(opt, extra) and self.digests:
            return have == digest(self.salt, render_value(want))
        return have == want

    def emit(self, verb, pkg, ref, opt, value, delta_name, extra, delta_op="="):
        """One batch line and its delta; delta_name is the section as `uci changes` names it
        (None: a section `uci add` creates, whose id only the router knows)."""
        path = "%s.%s" % (pkg, ref) + ("" if opt is None else ".%s" % opt)
        secret = opt is not None and self._secret(opt, extra)
        if verb == "add":
            line = "add %s %s" % (pkg, value)
            self.batch.append(line)
            self.shown.append(line)
        elif verb == "delete":
            line = "delete %s" % path
            self.batch.append(line)
            self.shown.append(line)
        else:
            sep = "=" if verb in ("set", "add_list", "del_list") else None
            line = "%s %s%s%s" % (verb, path, sep, quote(value))
            self.batch.append(line)
            self.shown.append("%s %s%s%s" % (verb, path, sep, quote(MASK) if secret else quote(value)))
        self._touch(pkg)
        dname = "*" if delta_name is None else delta_name
        dpath = "%s.%s" % (pkg, dname) + ("" if opt is None else ".%s" % opt)
        if verb == "delete":
            delta = "-" + dpath
        else:
            rhs = quote(value)
            if secret:
                rhs = "'%s'" % digest(self.salt, rhs)
            delta = dpath + delta_op + rhs
        self.changes.setdefault(pkg, []).append(delta)


def _set_option(state_sec, opt, value):
    state_sec["options"][opt] = value


def plan_batch(current, desired, digests=True, salt=""):
    # type: (Dict[str, list], List[dict], bool, str) -> dict
    """The minimal `uci batch` from `current` (parse_show of the router, secrets as digests
    when `digests`) to `desired` (a list of section specs). Returns
    {batch, shown, changes: {package: [lines]}, packages, changed, before, after, secrets}:
    `batch` holds the values (it goes to the router on stdin), `shown` and the configs have
    the secrets masked, `changes` is what `uci changes <package>` must then print (secrets as
    digests, '*' for the id of a section the batch adds)."""
    p = _Planner(current, digests, salt)
    specs = [check_spec(s, "sections[%d]" % i) for i, s in enumerate(desired or [])]
    for spec in specs:
        pkg, stype, extra = spec["package"], spec["type"], tuple(spec["secrets"])
        p.secret_options.update(extra)
        sections = p.state.setdefault(pkg, [])
        if spec["name"] is not None:
            sec = find_section(p.state, pkg, name=spec["name"])
        else:
            sec = find_section(p.state, pkg, stype=stype, match=spec["match"])
        if spec["state"] == "absent":
            if sec is not None:
                p.emit("delete", pkg, sec["ref"], None, None, sec["name"], extra)
                sections.remove(sec)
                _finish(p.state)
            continue
        mark = len(p.batch)
        if sec is None:
            if spec["name"] is not None:
                p.emit("set", pkg, spec["name"], None, stype, spec["name"], extra)
                sec = _section(spec["name"], stype, False)
            else:
                p.emit("add", pkg, None, None, stype, None, extra)
                sec = _section("@%s[-1]" % stype, stype, True)
                sec["new"] = True
            sections.append(sec)
            for opt, value in sorted(spec["match"].items()):
                _apply_set(p, pkg, sec, opt, value, extra)
        elif sec["type"] != stype and spec["name"] is not None:
            p.emit("set", pkg, sec["ref"], None, stype, sec["name"], extra)
            sec["type"] = stype
        for opt, value in spec["options"].items():
            if value is None:
                if opt in sec["options"]:
                    p.emit("delete", pkg, sec["ref"], opt, None, _delta_name(sec), extra)
                    del sec["options"][opt]
                continue
            _apply_set(p, pkg, sec, opt, value, extra)
        for opt, value in spec["defaults"].items():
            if opt not in sec["options"]:
                _apply_set(p, pkg, sec, opt, value, extra)
        for opt, wanted in spec["exact_lists"].items():
            _apply_list(p, pkg, sec, opt, wanted, extra, exact=True)
        for opt, wanted in spec["lists"].items():
            _apply_list(p, pkg, sec, opt, wanted, extra, exact=False)
        for opt, unwanted in spec["remove_members"].items():
            have = members(sec["options"].get(opt))
            for member in unwanted:
                if member in have:
                    _convert_spaced(p, pkg, sec, opt, extra)
                    p.emit("del_list", pkg, sec["ref"], opt, member, _delta_name(sec), extra, "-=")
                    have = [m for m in have if m != member]
                    sec["options"][opt] = have
                    if not have:
                        del sec["options"][opt]
        if len(p.batch) > mark:
            for opt, value in spec["on_change"].items():
                _apply_set(p, pkg, sec, opt, value, extra)
        _finish(p.state)
    for sections in p.state.values():
        for sec in sections:
            sec.pop("new", None)
    secrets = tuple(sorted(p.secret_options))
    empty = digest(salt, quote("")) if digests else None
    return {"batch": p.batch, "shown": p.shown, "changes": dict((k, v) for k, v in p.changes.items()),
            "packages": list(p.touched), "changed": bool(p.batch),
            "before": masked(current, secrets, empty), "after": masked(p.state, secrets, empty), "secrets": list(secrets)}


def _delta_name(sec):
    """How `uci changes` names a section: its name or cfg id; None for one the batch adds."""
    if sec.get("new"):
        return None
    return sec["name"]


def _apply_set(p, pkg, sec, opt, value, extra):
    have = sec["options"].get(opt)
    if isinstance(have, list) or not p.same(have, value, opt, extra):
        p.emit("set", pkg, sec["ref"], opt, value, _delta_name(sec), extra)
        _set_option(sec, opt, value)
        if is_secret(opt, extra):
            sec.setdefault("changed_secrets", set()).add(opt)


def _convert_spaced(p, pkg, sec, opt, extra):
    """A space-separated option used as a list becomes a real list before members change."""
    have = sec["options"].get(opt)
    if isinstance(have, list) or have is None or len(str(have).split()) < 2:
        return
    p.emit("delete", pkg, sec["ref"], opt, None, _delta_name(sec), extra)
    for member in str(have).split():
        p.emit("add_list", pkg, sec["ref"], opt, member, _delta_name(sec), extra, "+=")
    sec["options"][opt] = str(have).split()


def _apply_list(p, pkg, sec, opt, wanted, extra, exact):
    have = members(sec["options"].get(opt))
    if exact and have == wanted:
        return
    _convert_spaced(p, pkg, sec, opt, extra)
    if exact:
        for member in sorted(set(have) - set(wanted), key=have.index):
            p.emit("del_list", pkg, sec["ref"], opt, member, _delta_name(sec), extra, "-=")
        have = [m for m in have if m in wanted]
        # Duplicates (add_list does not de-duplicate) and a wrong order are put right from scratch.
        if have != [m for m in wanted if m in have]:
            if opt in sec["options"]:
                p.emit("delete", pkg, sec["ref"], opt, None, _delta_name(sec), extra)
            have = []
    for member in wanted:
        if member not in have:
            p.emit("add_list", pkg, sec["ref"], opt, member, _delta_name(sec), extra, "+=")
            have.append(member)
    if have:
        sec["options"][opt] = have
    else:
        sec["options"].pop(opt, None)


# ---------------------------------------------------------------------------
# Reports: `uci changes` against the plan, and the diff
# ---------------------------------------------------------------------------

def changes_match(predicted, actual):
    # type: (List[str], List[str]) -> bool
    """Whether `uci changes <package>` printed exactly the predicted deltas; '*' in a predicted
    line stands for the cfg id of a section the batch added."""
    actual = [line for line in actual if line.strip()]
    if len(predicted) != len(actual):
        return False
    for want, have in zip(predicted, actual):
        if "*" in want:
            pattern = "^" + re.escape(want).replace(r"\*", "cfg[0-9a-f]{6}") + "$"
            if not re.match(pattern, have):
                return False
        elif want != have:
            return False
    return True


def show_lines(config, packages=None):
    # type: (Dict[str, list], Optional[List[str]]) -> List[str]
    """`uci show` lines of `packages` (all when None), anonymous sections by position."""
    lines = []
    for pkg in packages if packages is not None else sorted(config):
        for sec in config.get(pkg, []):
            ref = sec.get("position") or sec["name"] if sec["anonymous"] else sec["name"]
            lines.append("%s.%s=%s" % (pkg, ref, sec["type"]))
            for opt, value in sec["options"].items():
                lines.append("%s.%s.%s=%s" % (pkg, ref, opt, render_value(value)))
    return lines


def diff(plan):
    # type: (dict) -> dict
    """Ansible's diff of a planned batch: the touched packages before and after, secrets masked."""
    pkgs = plan["packages"]
    return {"before": "\n".join(show_lines(plan["before"], pkgs)) + ("\n" if pkgs else ""),
            "after": "\n".join(show_lines(plan["after"], pkgs)) + ("\n" if pkgs else ""),
            "before_header": "uci show " + " ".join(pkgs), "after_header": "uci show " + " ".join(pkgs)}
