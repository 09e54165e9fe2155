"""`fnd history --html DIR` and `--plot` (issue 31, item 3): a self-contained page with a chart per benchmark,
loaded in a real headless browser (Debian's chromium), and a PNG per benchmark.

One store and one run for the module (test_history_cmd.make_history: a real git repository, 6 commits, two
kernels 1.5x slower from commit 4), whose subjects at commits 2 and 4 are markup; the browser is started
once, as soon as the page is written, and read by the tests at the end of the file."""

import dataclasses
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from test_history_cmd import make_history
from typer.testing import CliRunner

from fndcli.cli import app
from fndcli.report.history_page import chart, history_page
from fndcli.report.plots import history_figure

pytestmark = pytest.mark.xdist_group("history-page")  # one xdist worker builds the module's store and page

KERNELS = ("kern.py:mm", "kern.py:mm2")
# a subject that would run script if it became markup (it sets a marker on <html>), at the regression's commit
IMG = '<img src=x onerror="document.documentElement.dataset.pwned=1">'
SCRIPT = "</script><script>document.documentElement.dataset.pwned=2</script>"
SUBJECTS = {2: SCRIPT, 4: IMG}
COMMITS = 6


@dataclasses.dataclass
class PageRun:
    db: str
    result: object
    page: Path
    out: Path
    browser: subprocess.Popen | None  # chromium dumping the page's DOM, or None when it is not installed


@pytest.fixture(scope="module")
def page_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history-page")
    db, _ = make_history(
        tmp, COMMITS, slower_at=4, impls=KERNELS, subject=lambda i: SUBJECTS.get(i, f"kernel v{i}")
    )
    args = ["history", "--db", db, "--html", tmp / "page", "--plot", "--out", tmp / "out"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    page = tmp / "page" / "index.html"
    chromium = shutil.which("chromium")
    browser = chromium and subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container
            "--disable-gpu",
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=3000",  # the page's load events, in virtual time: no waiting
            "--dump-dom",
            page.as_uri(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield PageRun(db, result, page, tmp / "out", browser)
    if browser and browser.poll() is None:
        browser.kill()
        browser.wait()


class Dom(HTMLParser):
    """A dumped DOM, read: the <html> element's attributes, how many of each element and of each class
    attribute, the text."""

    def __init__(self, markup):
        super().__init__()
        self.root, self.count, self.classes, self.text = {}, Counter(), Counter(), []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.count[tag] += 1
        self.classes[dict(attrs).get("class")] += 1
        if tag == "html":
            self.root = dict(attrs)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def dom(page_run):
    if page_run.browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    stdout, _ = page_run.browser.communicate(timeout=60)
    assert page_run.browser.returncode == 0 and "<html" in stdout, stdout[-2000:]
    return Dom(stdout)


def row(i, change="", median_s=1e-5):
    return {
        "benchmark": "b",
        "threads": 1,
        "commit": f"{i:010x}",
        "date": "2026-01-01 12:00",
        "subject": f"s{i}",
        "median_s": median_s,
        "n": 8,
        "change": change,
        "size": 0.5 if change else math.nan,
        "p": 0.001 if change else math.nan,
    }


def test_the_run_writes_the_page_and_a_png_per_benchmark_listed_with_its_files(page_run):
    result = page_run.result
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in page_run.page.parent.iterdir()) == ["index.html"]  # no temporary left
    (sidecar,) = page_run.out.glob("history-*.json")
    meta = json.loads(sidecar.read_text())
    pngs = sorted(page_run.out.glob("history-*.png"))
    stem = sidecar.name[: -len(".json")]
    assert [p.name for p in pngs] == [
        f"{stem}-{k.replace(':', '-')}-4x4x4-float32-cpu-2t.png" for k in KERNELS
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert meta["files"] == [f"{stem}.csv", *(p.name for p in pngs)]
    assert meta["html"] == str(page_run.page)
    printed = result.stdout.strip().splitlines()[-5:]
    assert printed == [str(page_run.page), f"{page_run.out / stem}.csv", *map(str, pngs), str(sidecar)]


def test_user_text_is_escaped_and_the_page_fetches_nothing(page_run):
    """Without a browser: the subjects are in the page as escaped text only, its one script is its own, and
    nothing names a place to fetch from; the policy forbids any fetch."""
    html = page_run.page.read_text()
    assert escape(IMG) in html and escape(SCRIPT) in html
    assert "<img" not in html and html.count("<script") == 1 and html.count("</script>") == 1
    assert not re.search(r"https?:|url\(|@import|(src|href)=\"", html)
    assert "default-src 'none'" in html
    named = history_page({f"{IMG} 4x4x4": [row(0)]}, "store <b>x</b>", ["<i>footer</i>"])
    assert "<img" not in named and "<b>" not in named and "<i>" not in named
    assert escape(IMG) in named and "&lt;b&gt;x&lt;/b&gt;" in named


def test_each_change_is_marked_its_own_way_on_the_page_and_in_the_png():
    rows = [row(0), row(1), row(2, "REGRESSION", 2e-5), row(3, median_s=2e-5), row(4, "improved"), row(5)]
    rows.append(row(6, "not judged", 3e-5))
    svg = chart("b 1t", rows)
    points = [tag.split('"')[1] for tag in svg.split("<")[1:] if 'class="point ' in tag]
    assert points == ["point plain"] * 2 + [
        "point regression",
        "point plain",
        "point improved",
        "point plain",
    ] + ["point unjudged"]
    assert svg.count('class="at regression"') == svg.count('class="at improved"') == 1  # where each starts
    assert "REGRESSION here: +50.0%, p 0.001" in svg  # the tooltip
    ax = history_figure("b 1t", rows).axes[0]
    marked = {c.get_label(): c.get_offsets()[:, 0].tolist() for c in ax.collections}
    assert marked == {"REGRESSION": [2], "improved": [4], "not judged": [6]}
    colours = {c.get_label(): tuple(c.get_edgecolor()[0]) for c in ax.collections}
    assert len(set(colours.values())) == 3


def test_html_in_a_place_it_cannot_write_is_one_line_and_exit_2_with_nothing_written(page_run, fnd, tmp_path):
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "taken" / "index.html").mkdir(parents=True)
    read_only = (
        [(Path("/sys/fs/fnd-page"), ["'--html'", "/sys/fs/fnd-page"])] if Path("/sys/fs").is_dir() else []
    )
    for place, fragments in (
        (tmp_path / "a-file", ["'--html'", "a-file' is a file"]),
        *read_only,  # a directory no one may write in, root included
        ("", ["'--html'", "is empty: name a directory"]),
        (
            tmp_path / "taken",
            [f"cannot write {tmp_path / 'taken' / 'index.html'}: [Errno 21]", "wrote nothing"],
        ),
    ):
        result = fnd("history", "--db", page_run.db, "--html", place, "--plot", "--out", tmp_path / "out")
        assert_one_line_error(result, *fragments)
        assert not list(tmp_path.glob("out/*"))
    assert (tmp_path / "a-file").read_text() == "mine"
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["index.html"]


def test_the_page_loads_in_a_browser_without_errors_and_draws_every_series(dom):
    assert "data-errors" not in dom.root, dom.root  # no script error, no fetch the policy blocked
    assert dom.root["data-series"] == str(len(KERNELS))
    assert dom.root["data-points"] == str(COMMITS * len(KERNELS))
    assert dom.classes["point regression"] == len(KERNELS)  # each kernel's change point, at commit 4


def test_a_subject_that_is_markup_stays_text_in_the_browser(dom):
    assert "data-pwned" not in dom.root
    assert dom.count["img"] == 0 and dom.count["script"] == 1
    text = "".join(dom.text)
    assert IMG in text and SCRIPT in text


def test_the_pngs_axis_labels_2_and_5_of_each_decade_over_a_wide_range():
    """14.6 µs to 590 µs (a 40x regression and its fix): the decades alone labelled only '100 µs' on the axis;
    now 20, 50, 200 and 500 µs too. Within a decade, every minor tick is labelled, as before."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def labels(values):
        fig = history_figure("b", [row(i, median_s=v) for i, v in enumerate(values)])
        FigureCanvasAgg(fig).draw()
        ax = fig.axes[0]
        return [t.get_text() for t in (*ax.yaxis.get_majorticklabels(), *ax.yaxis.get_minorticklabels())]

    wide = labels([14.6e-6, 590e-6, 592e-6, 14.6e-6])
    assert {"20 µs", "50 µs", "200 µs", "500 µs", "100 µs"} <= set(wide)
    assert "30 µs" not in wide  # 2 and 5 only: the rest of the minor ticks unlabelled
    assert {"20 µs", "30 µs", "40 µs"} <= set(labels([20e-6, 25e-6, 40e-6]))
