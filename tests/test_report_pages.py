"""The report pages as a reader sees them: headless Chromium loads compare.html and results.html from synthetic
runs, finds their tables and charts, decodes and plays every video, and saves screenshots.

Screenshots go to pytest's tmp_path; set MTPOLICY_SCREENSHOT_DIR to keep them (docs/img/ was made this way).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from envs.report_html import write_results_html
from tests.browser import PAGE_FACTS_JS, HeadlessChromium
from tests.workflows.synthetic_runs import TASKS, records_of, write_run
from workflows.compare import CompareConfig, compare
from workflows.compare.report import StatsOptions


@pytest.fixture(scope="module")
def browser():
    with HeadlessChromium(width=1280, height=900) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    for method, success in (("sum", [0.6, 0.5, 0.3, 0.8]), ("pcgrad", [0.9, 0.8, 0.6, 0.95])):
        for seed in (0, 1):
            write_run(root / "runs" / f"{method}_{seed}", method, seed, success)
    compare(CompareConfig(runs=[str(root / "runs")], out_dir=str(root / "compare"),
                          stats=StatsOptions(baseline="sum", resamples=1000), title="Synthetic MT4: sum vs pcgrad"))
    run = root / "runs" / "pcgrad_0" / "final_eval"
    results = json.loads((run / "results.json").read_text())
    write_results_html(run, results, "Synthetic MT4: pcgrad, seed 0", records_of(run.parent))
    return {"compare": root / "compare" / "compare.html", "results": run / "results.html"}


def check_videos(facts: dict) -> None:
    """Every video loaded, has a duration and a picture with content, and the first one plays."""
    assert facts["videos"], "no video on the page"
    for video in facts["videos"]:
        assert video["state"] == "ok", f"{video['src']} does not load: {video['state']}"
        assert video["readyState"] >= 2 and video["duration"] > 0 and video["width"] > 0, video
        assert video["pixelSpread"] > 20, f"{video['src']} decodes to a blank picture: {video}"
    assert facts["played"] and facts["played"] > 0, "the first video does not play"


def check_layout(facts: dict) -> None:
    assert facts["externalResources"] == [], "the page fetches from the network"
    assert facts["pageWidth"] <= facts["viewportWidth"], "the page is wider than the window"


def screenshot(browser: HeadlessChromium, tmp_path: Path, name: str) -> Path:
    path = browser.screenshot(tmp_path / name)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    keep = os.environ.get("MTPOLICY_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def test_compare_page_shows_tables_charts_curves_and_playable_videos(browser, pages, tmp_path):
    browser.open(pages["compare"])
    facts = browser.evaluate(PAGE_FACTS_JS)
    assert facts["title"] == "Synthetic MT4: sum vs pcgrad"
    assert {"methods-table", "differences-table", "tasks-table", "videos-table"} <= set(facts["tables"])
    assert {"success per task", "difference in mean success", "train/loss", "eval/success_rate"} <= set(facts["charts"])
    assert set(TASKS) <= set(facts["charts"])  # per-task loss panels
    assert facts["bars"] >= 2 * (len(TASKS) + 1) and facts["lines"] >= 4
    assert len(facts["videos"]) == 2 * len(TASKS)
    check_videos(facts)
    check_layout(facts)
    verdict = browser.evaluate("document.querySelector('#differences-table tbody tr').innerText")
    assert "pcgrad" in verdict and "better than the baseline" in verdict
    screenshot(browser, tmp_path, "compare_report.png")


def test_results_page_shows_the_table_the_bars_and_every_video(browser, pages, tmp_path):
    browser.open(pages["results"])
    facts = browser.evaluate(PAGE_FACTS_JS)
    assert {"results-table", "provenance-table"} <= set(facts["tables"])
    assert facts["charts"] == ["success per task"] and facts["bars"] == len(TASKS)
    assert len(facts["videos"]) == len(TASKS)
    check_videos(facts)
    check_layout(facts)
    screenshot(browser, tmp_path, "results_report.png")


def test_a_video_that_does_not_decode_fails_the_check(browser, pages, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(pages["results"].parent, folder)
    victim = sorted((folder / "videos").glob("*.mp4"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # cut short: the header survives, the frames do not
    browser.open(folder / "results.html")
    facts = browser.evaluate(PAGE_FACTS_JS)
    with pytest.raises(AssertionError, match=victim.name):
        check_videos(facts)
