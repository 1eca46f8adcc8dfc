"""experiments.readme: the README's generated tables, and the check that they (and the grid) are
the shipped checkpoints' - on copies of the committed files, each made stale in one way."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from experiments import readme
from experiments.grid import sidecar
from tests.conftest import PROJECT


@pytest.fixture
def copies(tmp_path, monkeypatch):
    """The README, both evaluations and the grid's record, copied; the module pointed at them."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in readme.EVALUATIONS:
        for suffix in (".json", ".md", ".summary.csv"):
            shutil.copy(PROJECT / "results" / "metrics" / f"{name}{suffix}", metrics / f"{name}{suffix}")
    shutil.copy(PROJECT / "README.md", tmp_path / "README.md")
    grid = tmp_path / "sample_grid.jpg"
    shutil.copy(sidecar(PROJECT / "results" / "sample_grid.jpg"), sidecar(grid))
    monkeypatch.setattr(readme, "README", tmp_path / "README.md")
    monkeypatch.setattr(readme, "METRICS_DIR", metrics)
    monkeypatch.setattr(readme, "GRID", grid)
    assert readme.problems(tmp_path / "README.md", metrics, grid) == [], (
        "the committed files are stale themselves (test_shipped says how)"
    )
    return tmp_path


def check(tmp) -> list[str]:
    return readme.problems(tmp / "README.md", tmp / "metrics", tmp / "sample_grid.jpg")


def edit_json(path, **changes):
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            meta[outer][inner] = value
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def test_splice_replaces_only_the_named_block_and_names_missing_markers():
    text = "intro\n<!-- generated: val -->\nold val\n<!-- /generated: val -->\nmiddle\n<!-- generated: test -->\nold test\n<!-- /generated: test -->\nend"
    out = readme.splice(text, {"val": "| new |"})
    assert out == text.replace("old val", "| new |")
    assert readme.blocks(out) == {"val": "| new |", "test": "old test"}
    with pytest.raises(ValueError, match="no <!-- generated: models -->"):
        readme.splice(text, {"models": "x"})


def test_a_table_made_from_a_checkpoint_that_no_longer_ships_is_named(copies):
    made = json.loads((copies / "metrics" / "val.json").read_text())["made_from"]
    edit_json(copies / "metrics" / "val.json", **{"made_from.gan": {**made["gan"], "sha256": "0" * 64}})
    found = check(copies)
    assert found[0].startswith(
        "results/metrics/val: gan rows were made from an earlier results/checkpoints/gan.pt (sha256 000000000000)"
    )
    # the README's line above that table no longer claims the shipped checkpoints, so it is out of date too
    assert found[1:] == ["README.md: the val table is not what its files render; run python -m experiments.readme"]
    assert "from checkpoints that no longer ship (stale" in readme.render("val", copies / "metrics")


def test_a_table_that_does_not_record_its_checkpoints_is_stale(copies):
    meta = json.loads((copies / "metrics" / "test.json").read_text())
    del meta["made_from"]
    (copies / "metrics" / "test.json").write_text(json.dumps(meta))
    assert any("results/metrics/test does not record the checkpoints" in p for p in check(copies))
    # and the README says so above that table, instead of claiming the shipped checkpoints
    assert "from checkpoints it does not record (stale" in readme.render("test", copies / "metrics")


def test_a_table_made_with_another_protocol_is_named(copies):
    meta = json.loads((copies / "metrics" / "val.json").read_text())
    del meta["made_from"]["neural_style"]  # a method left out
    edit_json(copies / "metrics" / "val.json", limit=100, method_limits={}, made_from=meta["made_from"])
    found = check(copies)
    assert "results/metrics/val.json: made with --limit 100, the README's protocol is 500" in found
    assert any("per-method limits {}" in p for p in found)
    assert "results/metrics/val.json: no rows of neural_style, which the README compares" in found


def test_a_grid_without_its_record_or_of_another_checkpoint_is_named(copies):
    side = sidecar(copies / "sample_grid.jpg")
    made = json.loads(side.read_text())["made_from"]
    edit_json(side, **{"made_from.fusion": {**made["fusion"], "checkpoint": "results/runs/x/checkpoint.pt"}})
    assert [p for p in check(copies) if "sample_grid" in p] == [
        f"{side.with_suffix('.jpg')}: fusion rows were made from results/runs/x/checkpoint.pt, not the shipped results/checkpoints/fusion.pt"
    ]
    side.unlink()
    assert any("sample_grid.jpg does not record the checkpoints" in p for p in check(copies))


def test_a_hand_edited_readme_table_is_caught_and_rewritten_leaving_the_prose(copies):
    path = copies / "README.md"
    text = path.read_text()
    body = readme.blocks(text)["val"]
    row = next(ln for ln in body.splitlines() if ln.startswith("| gan |"))
    path.write_text(text.replace(row, row.replace("| gan |", "| gan (better) |")))
    assert check(copies) == ["README.md: the val table is not what its files render; run python -m experiments.readme"]

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert readme.main(["--check"]) == 1  # --check writes nothing
        assert "(better)" in path.read_text()
        assert readme.main([]) == 0
    assert "stale: README.md: the val table" in err.getvalue() and "rewrote README.md's val table(s)" in out.getvalue()
    assert path.read_text() == text  # the table is back; every other line as it was


def test_an_unreadable_record_is_one_line_naming_it_and_exit_2(copies):
    (copies / "metrics" / "val.json").write_text("{not json")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert readme.main(["--check"]) == 2
        readme_before = (copies / "README.md").read_text()
        assert readme.main([]) == 2
    assert (copies / "README.md").read_text() == readme_before  # nothing half-written
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 2 and all(ln.startswith(f"error: {copies / 'metrics' / 'val.json'}: not readable JSON") for ln in lines)


def test_goal_table_says_which_criterion_is_met_on_the_unrounded_numbers(copies):
    import pandas as pd

    metrics = copies / "metrics"

    def row(table: str, start: str) -> list[str]:
        line = next(ln for ln in table.splitlines() if ln.startswith(f"| {start}"))
        return [c.strip() for c in line.strip("|").split("|")]

    summary = pd.read_csv(metrics / "val.summary.csv")
    grey = float(summary.loc[summary.method == "gray", "auc_rebal"].iloc[0])
    learned = summary.method.isin(readme.LEARNED)
    summary.loc[learned, "auc_rebal"] = grey + 0.04  # every learned model exactly at the goal ...
    summary.loc[summary.method == "gan", "auc_rebal"] = grey + 0.0399  # ... but gan, which the tables round to +0.040
    summary.to_csv(metrics / "val.summary.csv", index=False)
    val = row(readme.render("goal", metrics), "val: rebalanced AuC over grey")
    assert val[2:7] == ["+0.0400"] * 4 + ["+0.0399"] and val[-1] == "no (1 of 5 short)"
    summary.loc[summary.method == "gan", "auc_rebal"] = grey + 0.061
    summary.to_csv(metrics / "val.summary.csv", index=False)
    table = readme.render("goal", metrics)
    assert row(table, "val: rebalanced AuC over grey")[-1] == "**yes**"
    best = row(table, "val: the best")
    assert best[2:7] == ["", "", "", "", "+0.0610"] and best[-1] == "**yes**"
    # colourfulness: classification and gan within 0.6-1.4 of the truth's
    summary.loc[summary.method == "gan", "colorfulness"] = 1.5 * float(
        summary.loc[summary.method == "truth", "colorfulness"].iloc[0]
    )
    summary.to_csv(metrics / "val.summary.csv", index=False)
    colour = row(readme.render("goal", metrics), "val: colourfulness")
    assert colour[6] == "1.50" and colour[-1] == "no (1 of 2 short)"


def test_goal_table_checks_equal_budgets_from_the_cards(copies, tmp_path):
    """The budget row: images seen from each shipped card, met only when every learned model saw at
    least 300,000 images, all within one batch of each other, on one crop schedule."""
    cards = tmp_path / "cards"
    cards.mkdir()
    for m in readme.LEARNED:
        shutil.copy(PROJECT / "results" / "checkpoints" / f"{m}.json", cards / f"{m}.json")

    def budget() -> list[str]:
        line = next(ln for ln in readme.goal_table(copies / "metrics", cards).splitlines() if ln.startswith("| budget"))
        return [c.strip() for c in line.strip("|").split("|")]

    for m in readme.LEARNED:
        edit_json(cards / f"{m}.json", images_seen=300_000 + 8 * (m == "gan"),
                  card={"crops": ["64 px (batch 32)", "160 px (batch 12) from 200,000 images"]})  # fmt: skip
    assert budget()[2:] == ["300,000"] * 4 + ["300,008", "**yes**"]
    edit_json(cards / "fusion.json", images_seen=340_008)
    assert budget()[-1] == "no (from 300,000 to 340,008)"
    edit_json(cards / "fusion.json", images_seen=292_000)
    assert budget()[4] == "292,000" and budget()[-1] == "no (1 of 5 short)"
    edit_json(cards / "fusion.json", images_seen=300_000, card={"crops": ["64 px (batch 32)", "128 px (batch 16) from 200,000 images"]})
    assert budget()[-1] == "no (2 crop schedules)"
    (cards / "gan.json").unlink()  # a model with no card has no budget to count
    assert budget()[6] == "-" and budget()[-1] == "no (1 of 5 short)"


def test_an_empty_block_is_filled():
    text = "a\n<!-- generated: goal -->\n<!-- /generated: goal -->\nb"
    assert readme.blocks(text) == {"goal": ""}
    assert readme.splice(text, {"goal": "| x |"}) == "a\n<!-- generated: goal -->\n| x |\n<!-- /generated: goal -->\nb"


def test_refresh_with_methods_updates_only_them_then_remakes_grid_and_cards(monkeypatch):
    """``--refresh --methods gan``: each evaluation re-run for gan alone with ``--update`` (the
    README's protocol, its files), the grid of every method, the cards; a method the README does not
    compare is refused before anything runs."""
    from experiments import evaluate, grid, modelcard

    calls = []
    monkeypatch.setattr(evaluate, "main", lambda argv: calls.append(("evaluate", argv)) or 0)
    monkeypatch.setattr(grid, "main", lambda argv: calls.append(("grid", argv)) or 0)
    monkeypatch.setattr(modelcard, "update_cards", lambda: calls.append(("cards", None)))
    monkeypatch.setattr(readme, "write", lambda: [])
    monkeypatch.setattr(readme, "_report_problems", lambda summary: 0)
    assert readme.main(["--refresh", "--methods", "gan"]) == 0
    evals = [argv for kind, argv in calls if kind == "evaluate"]
    assert len(evals) == len(readme.EVALUATIONS)
    for name, argv in zip(readme.EVALUATIONS, evals):
        assert argv[: len(readme.EVALUATIONS[name])] == readme.EVALUATIONS[name]
        assert argv[argv.index("--methods") + 1] == "gan" and "--update" in argv
        assert argv[argv.index("--out") + 1] == str(readme.METRICS_DIR / f"{name}.csv")
    assert calls[-2][0] == "grid" and calls[-2][1][calls[-2][1].index("--methods") + 1] == readme.METHODS
    assert calls[-1] == ("cards", None)

    calls.clear()
    assert readme.main(["--refresh"]) == 0  # everything: no --update
    assert all("--update" not in argv and argv[argv.index("--methods") + 1] == readme.METHODS for k, argv in calls if k == "evaluate")

    calls.clear()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert readme.main(["--refresh", "--methods", "gan,deoldify"]) == 2
    assert calls == [] and "deoldify not among the README's methods" in err.getvalue()


def test_an_updated_evaluation_says_when_each_methods_rows_were_made(copies):
    meta = json.loads((copies / "metrics" / "val.json").read_text())
    methods = [m for m in meta["made_from"]]
    rows_made = {m: "2026-12-03 12:02:21" for m in methods} | {"gan": "2026-12-04 09:15:00"}
    edit_json(copies / "metrics" / "val.json", rows_made=rows_made, created="2026-12-04 09:15:00")
    others = ", ".join(m for m in methods if m != "gan")
    assert f", made 2026-12-04 09:15:00 (gan); 2026-12-03 12:02:21 ({others}) from the shipped checkpoints:" in readme.render("val", copies / "metrics")
