"""What the module `files` changes (plugins/module_utils/_files.py); tests/integration runs the
module itself on real files."""
import pytest

from ansible_collections.omr.deploy.plugins.module_utils._files import FilesError, diff, parse_mode, plan

WANT = {"path": "/etc/x.conf", "kind": "file", "content": b"a = 1\n", "mode": 0o644, "uid": 0, "gid": 0}


def have(**change):
    return dict(WANT, **change)


def test_an_absent_file_is_created():
    assert plan(WANT, None) == ["create"]


def test_the_same_file_needs_nothing():
    assert plan(WANT, have()) == []


@pytest.mark.parametrize("change, todo", [
    ({"content": b"a = 2\n"}, ["content"]),
    ({"mode": 0o600}, ["mode"]),
    ({"uid": 1000}, ["owner"]),
    ({"gid": 4}, ["owner"]),
    ({"content": b"", "mode": 0o755, "uid": 1}, ["content", "mode", "owner"]),
])
def test_only_what_differs_is_changed(change, todo):
    assert plan(WANT, have(**change)) == todo


def test_a_directory_has_no_content_to_compare():
    want = dict(WANT, kind="directory", content=None, mode=0o700)
    assert plan(want, dict(want, content=None)) == []
    assert plan(want, dict(want, mode=0o755)) == ["mode"]


def test_a_directory_where_a_file_is_wanted_is_refused():
    with pytest.raises(FilesError, match="/etc/x.conf is a directory, not a file"):
        plan(WANT, have(kind="directory"))


@pytest.mark.parametrize("mode", ["0644", "644", "0700"])
def test_modes_are_octal_strings(mode):
    assert parse_mode(mode, "/x") == int(mode, 8)


@pytest.mark.parametrize("mode", [420, "0888", "u+rw", "00644", ""])
def test_other_modes_are_refused_naming_the_path(mode):
    with pytest.raises(FilesError, match="/x: mode .* must be an octal string"):
        parse_mode(mode, "/x")


def test_the_diff_shows_the_text_and_the_attributes():
    d = diff(WANT, have(content=b"a = 0\n", mode=0o600))
    assert d == {"before_header": "/etc/x.conf (mode 0600, owner 0:0)", "after_header": "/etc/x.conf (mode 0644, owner 0:0)",
                 "before": "a = 0\n", "after": "a = 1\n"}
    assert diff(WANT, None)["before_header"] == "/etc/x.conf (absent)"
