"""``exman report``: one self-contained HTML page, checked as text and in a real browser."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from analysis_runs import OPTIMIZERS, SEEDS, load_info, load_metrics, make_grid

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
    from exman.report import render

    return render(load_info(grid), load_metrics(grid), title="grid <report>")


def test_page_is_self_contained_and_complete(grid, page):
    from exman.analysis import summary

    info = load_info(grid)
    assert "<title>grid &lt;report&gt;</title>" in page
    # Two metrics, each plotted against lr and optimizer, plus its learning curve.
    assert page.count("<svg") == 2 * (2 + 1)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    # Nothing fetched from anywhere: every src/href is a fragment inside the page.
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith("#") for r in refs), {r for r in refs if not r.startswith("#")}
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert all(r[1:] in set(ids) for r in refs)
    # The runs table: one row per run, failed one included.
    runs_table = page[page.index("<h2>Runs</h2>"):]
    assert runs_table.count("<tr>") == len(info) + 1
    assert 'class="s status-failed"' in runs_table
    # The summary tables carry the numbers summary() computes.
    table = summary(info, "acc", warn=False)
    for value in table.acc_mean:
        assert f">{value:.4g}<" in page
    assert page.count('<tr class="missing">') == 2  # one cell short of a seed, in each metric's table


def test_page_in_a_real_browser(page, tmp_path):
    exe = browser()
    if exe is None:
        if os.environ.get("EXMAN_REQUIRE_BROWSER"):  # set by CI, which must have one
            pytest.fail("EXMAN_REQUIRE_BROWSER is set but no chromium/chrome is on PATH")
        pytest.skip("no headless browser installed (Debian: apt-get install chromium)")
    out = tmp_path / "report.html"
    out.write_text(page)
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 6 and "</html>" in dom.stdout

    shot = tmp_path / "shot.png"
    proc = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,1400", out.as_uri()],
                          capture_output=True, text=True, timeout=60)
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
    assert page[page.index("<h2>Runs</h2>"):].count("<tr>") == len(OPTIMIZERS) * len(SEEDS) + 1
    assert "where lr == 0.01" in page


def test_report_mark_and_errors(grid, tmp_path, exman_cmd):
    names = sorted(os.listdir(grid / "runs"))[:4]
    (grid / "marked" / "best").mkdir(parents=True)
    for name in names:
        os.symlink(os.path.join("..", "..", "runs", name), grid / "marked" / "best" / name)
    out = tmp_path / "best.html"
    exman_cmd("--root", grid, "report", "--mark", "best", "--interest", "loss", "--out", out)
    page = out.read_text()
    assert page[page.index("<h2>Runs</h2>"):].count("<tr>") == len(names) + 1

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
        (["--out", tmp_path / "missing" / "r.html"], "does not exist"),
    ]:
        result = CliRunner().invoke(cli, ["--root", str(grid), "report", *map(str, args)])
        assert result.exit_code == 1, result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Error: ") and message in line, line
