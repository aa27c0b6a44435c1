"""onnxviz batch: both engines give the same manifest and arrays, a killed run resumes with no duplicates and no
gaps, a corrupt image is one failed row, and every kind of source lists the same items."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.batch import batch
from onnxviz.batch.source import items
from onnxviz.cli import cli
from onnxviz.demo import demo_model_path
from onnxviz.errors import DependencyError, OnnxvizError, OptionError

MODEL = str(demo_model_path())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """20 digit images (from scikit-learn's digits, upscaled) in two subfolders, and one corrupt file."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("images")
    digits = load_digits()
    for i in range(20):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        image = cv2.resize((digits.images[i] / 16 * 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(sub / f"digit {i:02d}.png"), image)
    (root / "a" / "corrupt.png").write_bytes((root / "a" / "digit 01.png").read_bytes()[:70])  # truncated
    return root


def _manifest(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p)["attributions"] for p in sorted((out / "arrays").glob("*.npz"))}


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    result = batch(MODEL, str(folder), ["gradcam", "occlusion"], str(out), save="npz,png", batch_size=4,
                   options={"occlusion": {"window": 8, "stride": 4}}, progress=False)
    assert (result.done, result.failed, result.skipped) == (40, 2, 0)
    return out


def test_a_corrupt_image_is_one_failed_row_per_method_and_everything_else_is_done(reference):
    rows = _manifest(reference)
    assert len(rows) == 42 and len({(r["path"], r["method"]) for r in rows}) == 42
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["method"] for r in failed} == {"gradcam", "occlusion"}
    assert all(r["path"].endswith("corrupt.png") for r in failed)
    assert all("corrupt.png is damaged or truncated" in r["error"] for r in failed)
    done = [r for r in rows if r["status"] == "done"]
    assert all((reference / r["array"]).is_file() and (reference / r["overlay"]).is_file() for r in done)
    journal = [json.loads(line) for line in (reference / "manifest.jsonl").read_text().splitlines()]
    assert len(journal) == 42
    assert "corrupt.png" in (reference / "summary.html").read_text()


def test_batch_rows_match_the_single_image_api(reference, folder):
    model = onnxviz.load(MODEL)
    row = next(r for r in _manifest(reference) if r["method"] == "occlusion" and r["status"] == "done")
    ex = onnxviz.explain(model, [row["path"]], "occlusion", window=8, stride=4, progress=False)
    np.testing.assert_allclose(np.load(reference / row["array"])["attributions"], ex.attributions[0], rtol=1e-5,
                               atol=1e-6)
    assert row["predicted"] == int(ex.predictions[0]) and row["target"] == int(ex.targets[0])
    assert row["attr_abs_mean"] == pytest.approx(float(np.abs(ex.attributions[0]).mean()), rel=1e-5)


@pytest.mark.parametrize(("engine", "workers"), [("local", 2), ("ray", 2)])
def test_engines_give_identical_manifests_and_arrays(engine, workers, reference, folder, tmp_path):
    out = tmp_path / engine
    result = batch(MODEL, str(folder), ["gradcam", "occlusion"], str(out), engine=engine, workers=workers,
                   save="npz,png", batch_size=4, options={"occlusion": {"window": 8, "stride": 4}}, progress=False)
    assert (result.done, result.failed) == (40, 2)
    assert _manifest(out) == _manifest(reference)
    ours, theirs = _arrays(out), _arrays(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_a_killed_run_resumes_with_no_duplicates_and_no_gaps(folder, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "onnxviz.cli", "batch", MODEL, str(folder), "-m", "occlusion", "-o", "window",
               "2", "-o", "stride", "1", "--batch-size", "1", "--out", str(out), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / "manifest.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 4):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = len(journal.read_text().splitlines())
    assert 4 <= before < 21, "the run should have been killed half-way"
    result = CliRunner().invoke(cli, command[3:])
    assert result.exit_code == 0, result.output
    done, failed, skipped = map(int, re.search(r"done (\d+) · failed (\d+) · skipped (\d+)", result.output).groups())
    assert skipped == before and done + failed == 21 - before, result.output
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    keys = [(r["path"], r["method"]) for r in lines]
    assert len(keys) == len(set(keys)) == 21
    assert {Path(p).name for p, _ in keys} == {p.name for p in folder.rglob("*.png")}
    rerun = CliRunner().invoke(cli, command[3:])
    assert "done 0 · failed 0 · skipped 21" in rerun.output


def test_an_output_folder_inside_the_source_is_not_read_back(folder, tmp_path):
    import shutil

    source = tmp_path / "photos"
    shutil.copytree(folder / "b", source)
    first = batch(MODEL, str(source), "gradcam", str(source / "explained"), save="png", progress=False)
    again = batch(MODEL, str(source), "gradcam", str(source / "explained"), save="png", progress=False)
    assert (first.done, again.done, again.skipped) == (10, 0, 10)


def test_every_kind_of_source_lists_the_same_items(folder, tmp_path):
    from_folder = [i.path for i in items(folder)]
    assert len(from_folder) == 21 and from_folder == sorted(from_folder)
    assert [i.path for i in items(f"{folder}/**/*.png")] == from_folder
    lst = tmp_path / "list.txt"
    lst.write_text("# images\n" + "\n".join(os.path.relpath(p, tmp_path) for p in from_folder) + "\n")
    assert [i.path for i in items(lst)] == from_folder
    table = tmp_path / "list.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows([p, Path(p).stem[-1]] for p in from_folder)
    listed = list(items(table))
    assert [i.path for i in listed] == from_folder and listed[0].label == from_folder[0][-5]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": from_folder, "label": [i.label for i in listed]}), tmp_path / "list.parquet")
    assert list(items(tmp_path / "list.parquet")) == listed
    with pytest.raises(OnnxvizError, match="is not a folder, a glob, a list file"):
        list(items(tmp_path / "nothing"))


def test_labels_as_targets_retry_failed_and_settings_changes(folder, tmp_path):
    table = tmp_path / "list.csv"
    paths = [p for p in sorted(folder.rglob("*.png")) if "corrupt" not in p.name][:4]
    table.write_text("path,label\n" + "".join(f"{p},{k}\n" for k, p in enumerate(paths)) + "missing.png,1\n")
    out = tmp_path / "run"
    result = batch(MODEL, str(table), "saliency", str(out), target="label", progress=False)
    assert (result.done, result.failed) == (4, 1)
    rows = {Path(r["path"]).name: r for r in _manifest(out)}
    assert [rows[p.name]["target"] for p in paths] == [0, 1, 2, 3]
    assert "image not found" in rows["missing.png"]["error"]
    (table.parent / "missing.png").write_bytes((folder / "a" / "digit 01.png").read_bytes())
    again = batch(MODEL, str(table), "saliency", str(out), target="label", progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 0, 5)
    retried = batch(MODEL, str(table), "saliency", str(out), target="label", retry_failed=True, progress=False)
    assert (retried.done, retried.failed, retried.skipped) == (1, 0, 4)
    assert all(r["status"] == "done" for r in _manifest(out)) and len(_manifest(out)) == 5
    with pytest.raises(onnxviz.errors.OutputError, match="holds a batch run with other settings"):
        batch(MODEL, str(table), "saliency", str(out), target="top1", progress=False)
    fresh = batch(MODEL, str(table), "saliency", str(out), overwrite=True, progress=False)
    assert (fresh.done, fresh.skipped) == (5, 0)


def test_bad_requests_fail_before_any_work(folder, tmp_path, monkeypatch):
    with pytest.raises(OptionError, match="is not an explanation method"):
        batch(MODEL, str(folder), "pgd", str(tmp_path / "a"), progress=False)
    with pytest.raises(onnxviz.LayerError):
        batch(MODEL, str(folder), "gradcam", str(tmp_path / "b"), layer="nope", progress=False)
    with pytest.raises(OptionError, match="--save takes"):
        batch(MODEL, str(folder), "gradcam", str(tmp_path / "c"), save="jpg", progress=False)
    assert not any((tmp_path / n).exists() for n in "abc")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DependencyError, match=r"pip install 'onnxviz\[ray\]'"):
        batch(MODEL, str(folder), "gradcam", str(tmp_path / "d"), engine="ray", progress=False)


def test_an_in_process_run_with_threads_gives_the_callers_settings_back(folder, tmp_path):
    from onnxviz.backends import ort

    before = (ort.get_threads(), os.environ.get("OMP_NUM_THREADS"))
    result = batch(MODEL, str(folder / "a"), "occlusion", str(tmp_path / "run"), threads=1, progress=False)
    assert result.done == 10 and (ort.get_threads(), os.environ.get("OMP_NUM_THREADS")) == before
