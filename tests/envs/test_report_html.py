"""results.html: what a single evaluation's page shows, from its results and episode records."""

from __future__ import annotations

import json

from envs.report_html import HTML_NAME, write_results_html
from tests.workflows.synthetic_runs import TASKS, records_of, write_run


def test_the_page_shows_every_task_the_suite_mean_every_video_and_the_provenance(tmp_path):
    run = write_run(tmp_path / "run", "sum", 0, [1.0, 0.5, 0.0, 0.8], episodes=10, tensorboard=False)
    out = run / "final_eval"
    results = json.loads((out / "results.json").read_text())
    records = records_of(run)
    records[1].video = "videos/missing.mp4"  # a record whose file is gone is not embedded
    html = write_results_html(out, results, "synthetic <run>", records).read_text()
    assert (out / HTML_NAME).is_file()
    assert "<title>synthetic &lt;run&gt;</title>" in html  # escaped
    assert html.count('class="bar"') == len(TASKS)
    assert f'{results["suite"]["mean_success"]:.2f} <span' in html and "suite mean" in html
    for name, task in results["tasks"].items():
        assert f"<td>{name}</td>" in html and f"[{task['ci95'][0]:.2f}, {task['ci95'][1]:.2f}]" in html
    videos = sorted(p.relative_to(out).as_posix() for p in (out / "videos").glob("*.mp4"))
    assert len(videos) == len(TASKS) and all(html.count(f'src="{v}"') == 1 for v in videos)
    assert "missing.mp4" not in html
    assert "reach-v3, episode 0: success" in html and "pick-place-v3, episode 0: failure" in html
    assert "do reach-v3 &lt;now&gt;" in html  # instructions, escaped
    assert results["metadata"]["git_commit"] in html and "protocol.goal_set" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_an_incomplete_run_without_videos_says_so(tmp_path):
    run = write_run(tmp_path / "run", "sum", 0, [0.5] * 4, episodes=4, videos=False, tensorboard=False)
    out = run / "final_eval"
    results = json.loads((out / "results.json").read_text())
    results["metadata"]["complete"] = False
    html = write_results_html(out, results, "partial", records_of(run)).read_text()
    assert "stopped before the end" in html and "No videos were recorded" in html
