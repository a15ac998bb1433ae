"""``exman report``: one self-contained HTML page, checked as text and in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from analysis_runs import GRID_SCRIPT, OPTIMIZERS, SEEDS, load_info, load_metrics, make_grid, make_messy
from conftest import env_for_subprocess

pytest.importorskip("matplotlib")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return make_grid(tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def page(grid):
    from exman.analysis.report import render

    return render(load_info(grid), load_metrics(grid), title="grid <report>")


def test_page_is_self_contained_and_complete(grid, page):
    from exman.analysis.summaries import summary

    info = load_info(grid)
    assert "<title>grid &lt;report&gt;</title>" in page
    # Two metrics, each plotted against lr and optimizer, plus its learning curve.
    assert page.count("<svg") == 2 * (2 + 1)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    # Nothing fetched from anywhere: every src/href is a fragment inside the page.
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(r.startswith("#") for r in refs), {r for r in refs if not r.startswith("#")}
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert all(r[1:] in set(ids) for r in refs)
    # The runs table: one row per run, failed one included.
    runs_table = page[page.index("<h2>Runs</h2>") :]
    assert runs_table.count("<tr>") == len(info) + 1
    assert 'class="s status-failed"' in runs_table
    # The summary tables carry the numbers summary() computes.
    table = summary(info, "acc", warn=False)
    for value in table.acc_mean:
        assert f">{value:.4g}<" in page
    assert page.count('<tr class="missing">') == 2  # one cell short of a seed, in each metric's table


def browser_flags(tmp_path) -> list[str]:
    exe = browser()
    if exe is None:
        if os.environ.get("EXMAN_REQUIRE_BROWSER"):  # set by CI, which must have one
            pytest.fail("EXMAN_REQUIRE_BROWSER is set but no chromium/chrome is on PATH")
        pytest.skip("no headless browser installed (Debian: apt-get install chromium)")
    return [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def test_page_in_a_real_browser(page, tmp_path):
    flags = browser_flags(tmp_path)
    out = tmp_path / "report.html"
    out.write_text(page)
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 6 and "</html>" in dom.stdout

    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,1400", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    import matplotlib.image

    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round()
    white = (pixels > 245).all(axis=-1).mean()
    assert white < 0.97, "screenshot is blank"
    # matplotlib's first line colour (#1f77b4) only comes from the plots: they rendered.
    blue = (abs(pixels - (31, 119, 180)).max(axis=-1) < 12).sum()
    assert blue > 200, blue


def test_report_command(grid, tmp_path, exman_cmd):
    # The default page is checked through render() above; here the command's own options.
    # lr no longer varies under --where, so acc is plotted against optimizer only, plus its curves.
    out = tmp_path / "r.html"
    proc = exman_cmd("--root", grid, "report", "--where", "lr == 0.01", "--interest", "acc", "--out", out)
    assert f"wrote {out}" in proc.stdout
    page = out.read_text()
    assert page.count("<svg") == 2 and "<h2>acc</h2>" in page and "<h2>loss</h2>" not in page
    assert page[page.index("<h2>Runs</h2>") :].count("<tr>") == len(OPTIMIZERS) * len(SEEDS) + 1
    assert "where lr == 0.01" in page


def test_report_mark_and_errors(grid, tmp_path, exman_cmd):
    names = sorted(os.listdir(grid / "runs"))[:4]
    (grid / "marked" / "best").mkdir(parents=True)
    for name in names:
        os.symlink(os.path.join("..", "..", "runs", name), grid / "marked" / "best" / name)
    out = tmp_path / "best.html"
    exman_cmd("--root", grid, "report", "--mark", "best", "--interest", "loss", "--out", out)
    page = out.read_text()
    assert page[page.index("<h2>Runs</h2>") :].count("<tr>") == len(names) + 1

    # Bad input: one clear line, exit status 1. In-process (click's runner) to spare a
    # Python start per case; the command is the same one the installed script builds.
    from click.testing import CliRunner

    from exman.cli import make_cli

    cli = make_cli()
    for args, message in [
        (["--where", "lr <"], "bad --where expression 'lr <'"),
        (["--mark", "nope"], "no mark 'nope'"),
        (["--mark", "../runs"], "mark key"),
        (["--where", "lr > 100"], "no runs to report"),
        (["--interest", "accuracy"], "no column(s) accuracy"),
        (["--interest", "optimizer"], "interest column 'optimizer' holds non-numeric values"),
        (["--out", tmp_path / "missing" / "r.html"], "does not exist"),
    ]:
        result = CliRunner().invoke(cli, ["--root", str(grid), "report", *map(str, args)])
        assert result.exit_code == 1, result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Error: ") and message in line, line


# The report command in a process of its own that says, as it exits, whether scipy was imported.
REPORT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('scipy imported:', 'scipy' in sys.modules))\n"
    "from exman.cli import main\n"
    "main(sys.argv[1:])\n"
)


def test_unchanged_runs_report_again_without_scipy_and_a_new_run_is_tested_afresh(tmp_path):
    """The root's statistics cache answers the same questions; a changed sample is a new question."""
    pytest.importorskip("scipy.stats")
    pytest.importorskip("statsmodels")
    import sys
    import textwrap

    from exman_plugins.commands.report import stats_cache

    root = make_grid(tmp_path / "project")

    def report(name, *args):
        out = tmp_path / f"{name}.html"
        proc = subprocess.run(
            [sys.executable, "-c", REPORT, "--root", str(root), "report", "--out", str(out), *args],
            capture_output=True,
            text=True,
            env=env_for_subprocess(),
        )
        assert proc.returncode == 0, proc.stderr
        # The header's "generated" minute is the only part that may change between two renders.
        page = re.sub(r"generated [^<]*", "", out.read_text())
        return page, proc.stdout.strip().splitlines()[-1] == "scipy imported: True"

    # One seed of one optimizer: no group has two replicates, so no interval and no test needs scipy.
    single, imported = report("single", "--where", "seed == 0 and optimizer == 'sgd'")
    assert not imported and "<h3>Significance:" in single and "fewer than 2 replicates a side" in single
    assert not os.path.exists(stats_cache(root))  # nothing was asked

    first, imported = report("first")
    assert imported and os.path.isfile(stats_cache(root))
    again, imported = report("again")
    assert not imported and again == first
    assert first.count("<h3>Significance:") == 4 and first.count("welch t") + first.count("paired t") > 0

    # The replicate the grid lacks is run (and the failing one again): new samples, new tests.
    (tmp_path / "project" / "more.py").write_text(
        textwrap.dedent(
            GRID_SCRIPT.format(lrs=(1.0,), optimizers=("adam",), seeds=(2,), missing=None, failing=(1.0, "adam", 3))
        )
    )
    more = subprocess.run(
        [sys.executable, "more.py"], cwd=tmp_path / "project", capture_output=True, text=True, env=env_for_subprocess()
    )
    assert more.returncode == 0, more.stderr
    changed, imported = report("changed")
    assert imported
    os.unlink(stats_cache(root))
    fresh, imported = report("fresh")
    assert imported and changed == fresh  # the cache gave nothing a fresh process would not have

    tests = re.compile(r"<h3>Significance:.*?</table>", re.S)
    assert tests.findall(changed) != tests.findall(first)  # the new replicate did change the tests

    # Without scipy (the exman[stats] extra) the intervals cannot be computed: one line, no traceback.
    blocked = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['scipy'] = None\n" + REPORT, "--root", str(root), "report"],
        capture_output=True,
        text=True,
        env=env_for_subprocess(),
        cwd=tmp_path,
    )
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr, blocked.stderr
    assert blocked.stderr.strip().splitlines()[-1].endswith('pip install "exman[stats]"'), blocked.stderr


# What the browser laid out, measured by a script added to a copy of the page (the page itself
# has none): the page's width against the window's, and where every chart title, legend and
# SVG label landed against the window and against its own chart.
MEASURE = """<script>
const win = document.documentElement.clientWidth, out = {win, page: document.documentElement.scrollWidth,
  titles: [], clipped: [], outside: []};
const inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
for (const el of document.querySelectorAll("figure .title, .legend span, figcaption, h1, h2, .meta, .note")) {
  const r = el.getBoundingClientRect();
  if (el.matches("figure .title")) out.titles.push(el.textContent);
  if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== "inline") out.clipped.push(el.textContent);
  if (r.left < -1 || r.right > win + 1) out.outside.push(el.textContent);
}
for (const svg of document.querySelectorAll("svg")) {
  const box = svg.getBoundingClientRect();
  if (box.left < -1 || box.right > win + 1) out.outside.push(svg.getAttribute("aria-label"));
  for (const t of svg.querySelectorAll("text")) {
    if (!inside(t.getBoundingClientRect(), box)) out.clipped.push(svg.getAttribute("aria-label") + ": " + t.textContent);
  }
}
const pre = document.createElement("pre"); pre.id = "measured"; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return make_messy(tmp_path_factory.mktemp("messy"))


def test_messy_root_report_reads_well_in_a_browser(messy, tmp_path, exman_cmd):
    import json
    import time

    import exman
    from exman.analysis.report import render

    out = tmp_path / "messy.html"
    exman_cmd("--root", messy, "report", "--out", out)
    page = out.read_text()
    sections = re.findall(r"<h2>([^<]*)</h2>", page)
    assert sections == ["loss", "acc", "Runs"]  # epoch counts steps: not a result to study
    titles = [html_unescape(t) for t in re.findall(r'<div class="title">([^<]*)</div>', page)]
    for y in ("loss", "acc"):
        # workers is volatile: never an axis, pooled like the seeds.
        assert {t for t in titles if t.startswith(f"{y} against")} == {
            f"{y} against lr, one colour per width",
            f"{y} against optimizer, one colour per width",
            f"{y} against width, one colour per optimizer",
        }
        # 40 groups: one small chart per group on one scale, not 40 overlapping bands.
        assert len([t for t in titles if t.startswith("lr=")]) == 2 * 40
    assert "over seed, workers" in page and "against workers" not in page
    assert ">missing<" in page  # width did not exist for the first 20 runs: said so, not "None" or "nan"
    assert "None" not in page and "nan" not in page.lower().replace("nano", "")

    # Render time for 100 runs, the table and metrics already read.
    index = exman.Index(messy)
    info, metrics = index.info(include_failed=True), index.metrics()
    try:  # the statistics' library: imported once a process, not per page
        import scipy.stats  # noqa: F401
    except ImportError:
        pass
    took = []
    for _ in range(3):  # the best of three, in this process's CPU time: other work on shared cores adds wall time
        started = time.process_time()
        render(info, metrics, volatile=["workers"])
        took.append(time.process_time() - started)
    assert min(took) < 0.6, took

    flags = browser_flags(tmp_path)
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", MEASURE + "</body>"))
    for width in (1280, 800):
        dom = subprocess.run(
            [*flags, f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom", measured.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
        assert found, dom.stdout[-2000:]
        m = json.loads(html_unescape(found.group(1)))
        assert m["win"] > 0 and m["page"] <= m["win"], m  # nothing sticks out sideways: tables scroll inside
        assert sorted(m["titles"]) == sorted(titles)  # every chart title laid out, in full
        assert m["clipped"] == [] and m["outside"] == [], m


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_learning_curve_captions_say_what_is_drawn(page, tmp_path):
    """The grid has 8 lr x optimizer groups: one chart of lines without bands, so its caption
    must not promise an interval; 2 groups get bands, and their caption says so."""
    from analysis_runs import make_values

    from exman import Index
    from exman.analysis.report import render

    def curves(html, y):
        start = html.index(f'<div class="title">{y} per step</div>')
        return html[start : html.index("</figure>", start)]

    many = curves(page, "acc")
    assert "<polygon" not in many and "± 95% CI" not in many and "no CI bands: more than 4 lines" in many
    runs = [
        ({"opt": opt, "seed": s}, [0.1 * s + (opt == "b") + step for step in range(3)])
        for opt in "ab"
        for s in range(3)
    ]
    index = Index(make_values(tmp_path, runs))
    few = curves(render(index.info(), index.metrics(), interest=["y"]), "y")
    assert few.count("<polygon") == 2 and "mean ± 95% CI over seed" in few
