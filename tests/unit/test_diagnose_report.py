"""playbooks/diagnose.yml's HTML report in a real browser: Debian's chromium, headless.

The report is built with plugins/module_utils/_diagnose.py from what the playbook read for real
(tests/unit/fixtures/diagnose/*.raw.json, README.md there), written with its JSON to a temporary
directory and opened from file://. The test holds the page chromium rendered (--dump-dom) to the
JSON: it loads without a console message (its Content-Security-Policy allows nothing from outside
and no script, so anything of the kind shows there), both charts are SVG with one bar per rate
and one line per WAN, and every figure (its data-value and its visible text) is the JSON's. A
second load adds a script allowed by its hash that writes each chart element's box into the DOM:
the bars stand inside their chart, as tall as their values. Negative controls: a tampered figure,
a tampered JSON, a tampered bar and an external image must each be caught.

Skipped without chromium, except under CI=true, where it fails (`make apt` installs it).
"""
import base64
import copy
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _diagnose as D

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "diagnose")
# As the machine's notes say headless chromium must run here: as root, with no network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--enable-logging=stderr", "--v=0"]
# Elements that draw a figure rather than print it: only their data-value is compared.
GRAPHICAL = ("svg", "rect", "polyline", "line")
VOID = ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr")
# The page's data-format, written again here: the test does not take the renderer's word for it.
FORMATS = {
    "str": str, "int": lambda v: "%d" % v, "f1": lambda v: "%.1f" % v, "f2": lambda v: "%.2f" % v,
    "f3": lambda v: "%.3f" % v, "pct": lambda v: "%.1f" % (v * 100), "mb": lambda v: "%.1f" % (v / 1e6),
    "bool": lambda v: "yes" if v else "no", "list": lambda v: ", ".join(str(x) for x in v) if v else "-",
}
LAYOUT = ("for (const el of document.querySelectorAll('svg, svg [data-path], svg text')) {"
          " const b = el.getBoundingClientRect();"
          " el.setAttribute('data-bbox', [b.x, b.y, b.width, b.height].map(v => v.toFixed(2)).join(' ')); }"
          " document.body.setAttribute('data-laid-out', 'yes');")


def chromium_path():
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed, and CI=true: `make apt` installs Debian's chromium")
    pytest.skip("no chromium (Debian package chromium, `make apt`); under CI=true this test fails instead")


@pytest.fixture(scope="module")
def chromium():
    return chromium_path()


def load(chromium, path):
    """(the DOM after load, chromium's console lines) of a page."""
    with tempfile.TemporaryDirectory(prefix="omr-chromium.") as home:
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, "config"),
                   XDG_CACHE_HOME=os.path.join(home, "cache"))
        res = subprocess.run([chromium] + FLAGS + ["--user-data-dir=" + os.path.join(home, "profile"), "--dump-dom",
                                                   "file://" + path],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and "</html>" in res.stdout, "chromium failed (rc=%d): %s" % (res.returncode, res.stderr[-2000:])
    return res.stdout, [line for line in res.stderr.splitlines() if ":CONSOLE" in line or "CONSOLE(" in line]


class Element(object):
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], []

    def content(self):
        return "".join(self.text)

    def find(self, tag=None, **attrs):
        for child in self.children:
            if (tag is None or child.tag == tag) and all(child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                yield child
            yield from child.find(tag, **attrs)


class DOM(html.parser.HTMLParser):
    """The dumped DOM as a tree of Elements; an element's text includes its descendants'."""

    def __init__(self, text):
        super().__init__()
        self.root = Element("#document", {}, None)
        self.open = [self.root]
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.open[-1])
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.open[-1].children.append(Element(tag, dict(attrs), self.open[-1]))

    def handle_endtag(self, tag):
        for i in range(len(self.open) - 1, 0, -1):
            if self.open[i].tag == tag:
                del self.open[i:]
                break

    def handle_data(self, data):
        for element in self.open[1:]:
            element.text.append(data)


def lookup(report, path):
    for part in path.split("."):
        report = report[int(part)] if isinstance(report, list) else report[part]
    return report


def check_page(dom, report):
    """How the page differs from the JSON report: a list of problems, empty when they agree."""
    problems = []
    figures = [e for e in dom.root.find() if "data-path" in e.attrs]
    for element in figures:
        path, fmt = element.attrs["data-path"], element.attrs.get("data-format")
        try:
            expected = lookup(report, path)
        except (KeyError, IndexError, TypeError, ValueError):
            problems.append("%s: not in the JSON" % path)
            continue
        if json.loads(element.attrs["data-value"]) != expected:
            problems.append("%s: data-value %s, the JSON says %r" % (path, element.attrs["data-value"], expected))
        if element.tag not in GRAPHICAL:
            shown = element.content()
            wanted = "-" if expected is None else FORMATS[fmt](expected)
            if shown != wanted:
                problems.append("%s: the page shows %r, the JSON says %r" % (path, shown, wanted))
    # The figures a reader comes for are all there.
    paths = set(e.attrs["data-path"] for e in figures)
    wanted = ["router", "bonded.download.mbps"] + ["verdicts.%d.text" % i for i in range(len(report["verdicts"]))]
    for i, _link in enumerate(report["links"]):
        wanted += ["links.%d.alone.%s" % (i, d) for d in report["directions"]]
    if report.get("vps_stats"):
        wanted += ["vps_stats.cpu.busy_pct", "vps_stats.oom_kills", "vps_stats.memory.available_mb"]
        wanted += ["vps_stats.swap.pages_out"] if report["vps_stats"].get("swap") else []
    problems += ["%s: not on the page" % p for p in wanted if p not in paths]
    # The charts: one bar per rate, one line per WAN, each point of the timeline.
    rates = list(dom.root.find("svg", id="chart-rates"))
    bars = [e for e in dom.root.find("rect") if "bar" in e.attrs.get("class", "").split()]
    expected_bars = len(report["links"]) * len(report["directions"])
    expected_bars += len([d for d in report["directions"] if (report["bonded"].get(d) or {}).get("mbps") is not None])
    expected_bars += len([d for d in ("download", "upload") if (report["unshaped"].get(d) or {}).get("mbps") is not None])
    if len(rates) != 1 or len(bars) != expected_bars or rates[0].attrs.get("data-bars") != str(expected_bars):
        problems.append("rates chart: %d chart(s), %d bars, %d expected" % (len(rates), len(bars), expected_bars))
    timeline = list(dom.root.find("svg", id="chart-timeline"))
    lines = list(dom.root.find("polyline"))
    if len(timeline) != 1 or len(lines) != len(report["timeline"]["series"]):
        problems.append("timeline chart: %d chart(s), %d lines, %d WANs" % (len(timeline), len(lines), len(report["timeline"]["series"])))
    for line in lines:
        if len(line.attrs.get("points", "").split()) != len(report["timeline"]["t"]):
            problems.append("line %s: %d points, %d samples" % (line.attrs.get("data-series"),
                                                                len(line.attrs.get("points", "").split()), len(report["timeline"]["t"])))
    return problems


def box(element):
    return [float(v) for v in element.attrs["data-bbox"].split()]


def check_layout(dom):
    """The laid-out charts: bars and lines inside their chart, bar heights proportional to their values."""
    problems = []
    if dom.root.find("body", data_laid_out="yes") is None or not list(dom.root.find("body", data_laid_out="yes")):
        return ["the layout script did not run"]
    for chart in dom.root.find("svg"):
        cx, cy, cw, ch = box(chart)
        if cw < 200 or ch < 100:
            problems.append("%s: %.0f x %.0f px" % (chart.attrs.get("id"), cw, ch))
        for element in chart.find():
            if "data-bbox" not in element.attrs or element.tag == "title":
                continue
            x, y, w, h = box(element)
            if x < cx - 1 or y < cy - 1 or x + w > cx + cw + 1 or y + h > cy + ch + 1:
                problems.append("%s %s: outside its chart" % (element.tag, element.attrs.get("data-path", "")))
    bars = [(json.loads(e.attrs["data-value"]) or 0.0, box(e)[3], e.attrs["data-path"])
            for e in dom.root.find("rect") if "bar" in e.attrs.get("class", "").split()]
    scale = [h / v for v, h, _p in bars if v]
    for value, height, path in bars:
        if not value and height > 0.5:
            problems.append("%s: %.1f px for nothing" % (path, height))
        elif value and abs(height - value * max(scale)) > 1.0:
            problems.append("%s: %.1f px for %s Mbit/s, %.1f px expected" % (path, height, value, value * max(scale)))
    lines = list(dom.root.find("polyline"))
    if not lines or any(box(line)[2] < 100 for line in lines):
        problems.append("a timeline line is missing or narrow")
    return problems


def write(tmp_path, report, name="report"):
    page = tmp_path / (name + ".html")
    page.write_text(D.render_html(report), encoding="utf-8")
    (tmp_path / (name + ".json")).write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    return page


def with_layout_script(page):
    """The page with LAYOUT appended, its CSP allowing that script by hash and nothing else."""
    text = page.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(LAYOUT.encode()).digest()).decode()
    text = text.replace("default-src 'none';", "default-src 'none'; script-src 'sha256-%s';" % digest, 1)
    text = text.replace("</body>", "<script>%s</script></body>" % LAYOUT, 1)
    out = page.with_name(page.stem + "-layout.html")
    out.write_text(text, encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def reports():
    out = {}
    for name in ("linux-shaped", "curl"):
        with open(os.path.join(FIXTURES, name + ".raw.json"), encoding="utf-8") as f:
            out[name] = D.report(json.load(f))
    return out


@pytest.mark.parametrize("name", ["linux-shaped", "curl"])
def test_the_report_in_chromium_is_its_json(chromium, reports, tmp_path, name):
    page = write(tmp_path, reports[name])
    dom_text, console = load(chromium, str(page))
    assert console == [], "the page logged to the console: %s" % console
    dom = DOM(dom_text)
    with open(str(tmp_path / "report.json"), encoding="utf-8") as f:
        written = json.load(f)
    assert check_page(dom, written) == []
    assert list(dom.root.find("title"))[0].content() == "OMR diagnosis: omr-dg-router"


def test_the_charts_are_laid_out_as_their_values(chromium, reports, tmp_path):
    page = with_layout_script(write(tmp_path, reports["linux-shaped"]))
    dom_text, console = load(chromium, str(page))
    assert console == []
    assert check_layout(DOM(dom_text)) == []


def test_a_tampered_figure_or_json_is_caught(chromium, reports, tmp_path):
    report = reports["linux-shaped"]
    page = write(tmp_path, report)
    text = page.read_text(encoding="utf-8")
    # The visible text of wan2's rate alone, and the data-value of the bonded bar.
    shown = '%s</span>' % FORMATS["f1"](report["links"][1]["alone"]["download"])
    span = re.search(r'data-path="links\.1\.alone\.download"[^>]*>' + re.escape(shown), text)
    assert span
    text = text[:span.start()] + span.group(0).replace(shown, "99.9</span>") + text[span.end():]
    bonded = 'data-path="bonded.download.mbps" data-format="f1" data-value="%s"' % json.dumps(report["bonded"]["download"]["mbps"])
    assert bonded in text
    text = text.replace(bonded, bonded.replace('data-value="', 'data-value="1'), 1)
    page.write_text(text, encoding="utf-8")
    dom = DOM(load(chromium, str(page))[0])
    problems = check_page(dom, report)
    assert [p for p in problems if p.startswith("links.1.alone.download: the page shows '99.9'")]
    assert [p for p in problems if p.startswith("bonded.download.mbps: data-value 1")]
    # The page as rendered, against a JSON that says something else.
    other = copy.deepcopy(report)
    other["vps_stats"]["oom_kills"] = 3
    other["timeline"]["series"].pop()
    problems = check_page(DOM(load(chromium, str(write(tmp_path, report, "again")))[0]), other)
    assert [p for p in problems if p.startswith("vps_stats.oom_kills: data-value 0")]
    assert [p for p in problems if p.startswith("timeline chart: 1 chart(s), 2 lines, 1 WANs")]


def test_a_bar_of_the_wrong_height_is_caught(chromium, reports, tmp_path):
    page = with_layout_script(write(tmp_path, reports["curl"]))
    text = page.read_text(encoding="utf-8")
    match = re.search(r'(<rect class="bar alone download" x="\d+" y="[0-9.]+" width="\d+" height=")([0-9.]+)', text)
    text = text[:match.start(2)] + "%.1f" % (float(match.group(2)) / 2) + text[match.end(2):]
    page.write_text(text, encoding="utf-8")
    problems = check_layout(DOM(load(chromium, str(page))[0]))
    assert [p for p in problems if p.startswith("links.0.alone.download: ")], problems


def test_an_external_resource_is_blocked_and_logged(chromium, reports, tmp_path):
    page = write(tmp_path, reports["curl"])
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", '<img src="http://192.0.2.1/x.png"></body>'),
                    encoding="utf-8")
    _dom, console = load(chromium, str(page))
    assert [line for line in console if "Content Security Policy" in line], console
