"""The README's tables, made from the shipped checkpoints: ``python -m experiments.readme``.

README.md carries generated blocks, each between ``<!-- generated: NAME -->`` and
``<!-- /generated: NAME -->`` (invisible on GitHub):

- ``models``: the model-card table (``experiments.modelcard``: variant, images seen, crops, wall
  time, hardware, val and test rebalanced AuC with intervals);
- ``val`` and ``test``: the command that made them and the main table of ``results/metrics/<name>.md``
  (``experiments.evaluate``), with the protocol in :data:`EVALUATIONS`;
- ``goal``: the training issue's done-when (:data:`GOAL`) against those two evaluations, criterion
  by criterion, met or not.

Commands::

    python -m experiments.readme             # rewrite the blocks from the committed files
    python -m experiments.readme --check     # write nothing; exit 1 naming whatever is stale
    python -m experiments.readme --refresh   # rerun both evaluations, the grid and the model cards
                                             # from the shipped checkpoints, then rewrite the blocks
    python -m experiments.readme --refresh --methods gan   # after shipping one checkpoint: re-evaluate
                                             # gan only, keeping the others' committed rows
                                             # (evaluate --update), then the grid and cards in full

Stale means: an evaluation or the grid (``results/sample_grid.json``) was made from a checkpoint
that no longer ships, or does not record which (``experiments.provenance``); an evaluation was not
made with the README's protocol; a model card quotes numbers its evaluation summary does not hold;
a README block differs from what its files render. ``tests/test_shipped.py`` runs the check, so a
new checkpoint cannot land with the old model's numbers beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from backends.base import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
METRICS_DIR = PROJECT_ROOT / "results" / "metrics"
GRID = PROJECT_ROOT / "results" / "sample_grid.jpg"
#: The methods the README compares (the published Zhang et al. weights cannot be fetched here).
METHODS = "regression,classification,fusion,koalarization,gan,neural_style"
#: name -> the README's evaluation protocol: ``experiments.evaluate`` arguments besides --methods/--out.
EVALUATIONS: dict[str, list[str]] = {
    # the fixed 500-photo validation sample; neural_style (minutes a photo on a CPU) on its first 16
    "val": ["--data", "../shared/data/val", "--limit", "500", "--limit-method", "neural_style=16"],
    # the out-of-distribution test set, all 91 photos, every method on all of them
    "test": ["--data", "../shared/data/test"],
}
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)\n?(<!-- /generated: (?P=name) -->)", re.S)


def command(name: str) -> str:
    return " ".join(
        ["python -m experiments.evaluate", *EVALUATIONS[name], "--methods", METHODS, "--out", f"results/metrics/{name}.csv"]
    )


def _main_table(markdown: str) -> str:
    """The first Markdown table of an ``experiments.evaluate`` report (the per-method one)."""
    lines = markdown.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("| method |")), None)
    if start is None:
        raise ValueError("no method table in it")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


#: The learned models the goal applies to (koalarization, fusion's Deep Koalarization variant, too).
LEARNED = ("regression", "classification", "fusion", "koalarization", "gan")
#: Issue 10's done-when, as numbers: rebalanced AuC over grey (mean per-photo difference) on each set,
#: and colourfulness (M3) over the truth's for the two methods that predict a distribution or sample.
GOAL = {
    "val_each": 0.04,
    "val_best": 0.06,
    "test_each": 0.03,
    "colourful": (0.6, 1.4),
    "colourful_methods": ("classification", "gan"),
    # equal budgets: at least this many images seen by every learned model, all within one batch of
    # each other (the largest, 32), on one crop schedule (the cards' ``crops``)
    "budget": 300_000,
    "budget_slack": 32,
}


def budget_row(checkpoints_dir: Path | None = None) -> list[str]:
    """The equal-budget criterion, from the shipped models' cards (``results/checkpoints/<m>.json``):
    images seen per learned model, and whether all reach the budget, equally, on one crop schedule."""
    from backends.base import CHECKPOINT_DIR

    root = CHECKPOINT_DIR if checkpoints_dir is None else checkpoints_dir
    cards = {m: _read_json(root / f"{m}.json") for m in LEARNED if (root / f"{m}.json").exists()}
    seen = {m: int(c.get("images_seen") or 0) for m, c in cards.items()}
    schedules = {tuple((c.get("card") or {}).get("crops") or ()) for c in cards.values()}
    short = [m for m in LEARNED if seen.get(m, 0) < GOAL["budget"]]
    if short:
        verdict = f"no ({len(short)} of {len(LEARNED)} short)"
    elif max(seen.values()) - min(seen.values()) > GOAL["budget_slack"]:
        verdict = f"no (from {min(seen.values()):,} to {max(seen.values()):,})"
    elif len(schedules) > 1:
        verdict = f"no ({len(schedules)} crop schedules)"
    else:
        verdict = "yes"
    return ["budget: images seen, equal, one crop schedule", f">= {GOAL['budget']:,}",
            *[f"{seen[m]:,}" if m in seen else "-" for m in LEARNED], verdict]  # fmt: skip


def _summary(metrics_dir: Path, name: str) -> dict[str, dict]:
    import csv

    path = metrics_dir / f"{name}.summary.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no evaluation; run python -m experiments.readme --refresh")
    with path.open(newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def goal_rows(metrics_dir: Path | None = None, checkpoints_dir: Path | None = None) -> list[list[str]]:
    """The done-when of the training issue against the evaluations in ``metrics_dir``: a header and
    one row per criterion - what it needs, each learned model's number, and whether it is met
    (on the unrounded numbers: +0.0396 is short of +0.040); the budgets from the cards in
    ``checkpoints_dir`` (:func:`budget_row`)."""
    metrics_dir = METRICS_DIR if metrics_dir is None else metrics_dir
    rows = {n: _summary(metrics_dir, n) for n in EVALUATIONS}

    def gain(split: str, m: str) -> float | None:
        r, g = rows[split].get(m), rows[split].get("gray")
        return float(r["auc_rebal"]) - float(g["auc_rebal"]) if r and g and r.get("auc_rebal") else None

    def verdict(ok: list[bool]) -> str:
        return "yes" if ok and all(ok) else f"no ({len(ok) - sum(ok)} of {len(ok)} short)" if ok else "-"

    out = [["criterion", "needed", *LEARNED, "met"], budget_row(checkpoints_dir)]
    for split, key in (("val", "val_each"), ("test", "test_each")):
        g = {m: gain(split, m) for m in LEARNED}
        ok = [v >= GOAL[key] for v in g.values() if v is not None]
        out.append([f"{split}: rebalanced AuC over grey, each", f">= +{GOAL[key]:.3f}",
                    *[f"{v:+.4f}" if v is not None else "-" for v in g.values()], verdict(ok)])  # fmt: skip
    g = {m: gain("val", m) for m in LEARNED if gain("val", m) is not None}
    best = max(g, key=g.get) if g else None
    out.append(["val: the best, over grey", f">= +{GOAL['val_best']:.3f}", *[f"{g[m]:+.4f}" if m == best else "" for m in LEARNED],
                verdict([g[best] >= GOAL["val_best"]] if best else [])])  # fmt: skip
    lo, hi = GOAL["colourful"]
    for split in EVALUATIONS:
        truth = rows[split].get("truth")
        ratio = {m: float(rows[split][m]["colorfulness"]) / float(truth["colorfulness"])
                 for m in GOAL["colourful_methods"] if (truth or {}).get("colorfulness") and (rows[split].get(m) or {}).get("colorfulness")}  # fmt: skip
        out.append([f"{split}: colourfulness over the truth's ({' and '.join(GOAL['colourful_methods'])})", f"{lo}-{hi}",
                    *[f"{ratio[m]:.2f}" if m in ratio else "" for m in LEARNED], verdict([lo <= v <= hi for v in ratio.values()])])  # fmt: skip
    return out


def goal_table(metrics_dir: Path | None = None, checkpoints_dir: Path | None = None) -> str:
    """:func:`goal_rows` as the README's Markdown table (methods in code font, a met criterion in bold)."""
    head, *body = goal_rows(metrics_dir, checkpoints_dir)
    lines = ["| " + " | ".join(head[:2] + [f"`{m}`" for m in head[2:-1]] + head[-1:]) + " |",
             "|---|---|" + "---:|" * (len(head) - 3) + "---|"]  # fmt: skip
    for row in body:
        cells = row[:-1] + ["**yes**" if row[-1] == "yes" else row[-1]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(name: str, metrics_dir: Path | None = None) -> str:
    """What the block ``name`` holds, from the committed files."""
    metrics_dir = METRICS_DIR if metrics_dir is None else metrics_dir
    if name == "models":
        from experiments import modelcard

        return modelcard.to_markdown()
    if name == "goal":
        return goal_table(metrics_dir)
    if name not in EVALUATIONS:
        raise ValueError(f"unknown generated block {name!r}; known: models, goal, {', '.join(EVALUATIONS)}")
    md = metrics_dir / f"{name}.md"
    if not md.exists():
        raise FileNotFoundError(f"{md}: no evaluation; run python -m experiments.readme --refresh")
    try:
        table = _main_table(md.read_text())
    except ValueError as exc:
        raise ValueError(f"{md}: {exc}") from None
    meta = _read_json(metrics_dir / f"{name}.json") if (metrics_dir / f"{name}.json").exists() else {}
    from experiments import provenance
    from experiments.tables import when_made

    made = f", made {when_made(meta)}" if when_made(meta) else ""
    if not isinstance(meta.get("made_from"), dict):
        made += " from checkpoints it does not record (stale: `python -m experiments.readme --refresh`)"
    elif provenance.stale(meta["made_from"], name):
        made += " from checkpoints that no longer ship (stale: `python -m experiments.readme --refresh`)"
    else:
        made += " from the shipped checkpoints"
    return f"`{command(name)}`{made}:\n\n{table}"


def blocks(text: str) -> dict[str, str]:
    """name -> body of every generated block in ``text``."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def splice(text: str, bodies: dict[str, str]) -> str:
    """``text`` with each named block's body replaced; every name must have its markers."""
    missing = [n for n in bodies if n not in blocks(text)]
    if missing:
        raise ValueError(f"README.md has no <!-- generated: {missing[0]} --> ... <!-- /generated: {missing[0]} --> markers")
    return BLOCK.sub(lambda m: m[1] + (bodies[m["name"]] if m["name"] in bodies else m["body"]) + "\n" + m[4], text)


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a JSON object")
    return meta


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def _protocol_problems(name: str, meta: dict) -> list[str]:
    """How an evaluation's settings (its JSON sidecar) differ from the README's protocol."""
    args, where = EVALUATIONS[name], f"results/metrics/{name}.json"
    want_limit = next((int(v) for v in _values(args, "--limit")), None)
    want_methods = dict(v.split("=", 1) for v in _values(args, "--limit-method"))
    got_methods = {k: str(v) for k, v in (meta.get("method_limits") or {}).items()}
    data = _values(args, "--data")[0]
    out = []
    if meta.get("limit") != want_limit:
        out.append(f"{where}: made with --limit {meta.get('limit')}, the README's protocol is {want_limit}")
    if got_methods != want_methods:
        out.append(f"{where}: made with per-method limits {got_methods}, the README's protocol is {want_methods}")
    if Path(str(meta.get("data", ""))).name != Path(data).name:
        out.append(f"{where}: made on {meta.get('data')}, the README's protocol is {data}")
    if isinstance(meta.get("made_from"), dict):
        absent = [m for m in METHODS.split(",") if m not in meta["made_from"]]
        if absent:
            out.append(f"{where}: no rows of {', '.join(absent)}, which the README compares")
    return out


def problems(readme: Path | None = None, metrics_dir: Path | None = None, grid: Path | None = None) -> list[str]:
    """Everything that makes the README's numbers other than the shipped models' (``[]``: none)."""
    readme, metrics_dir, grid = readme or README, metrics_dir or METRICS_DIR, grid or GRID
    from experiments import modelcard, provenance
    from experiments.grid import sidecar

    out: list[str] = []
    ships = provenance.shipped()
    for name in EVALUATIONS:
        side = metrics_dir / f"{name}.json"
        if not side.exists():
            out.append(f"{side}: no evaluation; run python -m experiments.readme --refresh")
            continue
        meta = _read_json(side)
        out += provenance.stale(meta.get("made_from"), f"results/metrics/{name}", ships)
        out += _protocol_problems(name, meta)
    side = sidecar(grid)
    shown = str(grid.relative_to(PROJECT_ROOT)) if grid.is_relative_to(PROJECT_ROOT) else str(grid)
    out += provenance.stale(_read_json(side).get("made_from") if side.exists() else None, shown, ships)
    for method in ships:
        meta = _read_json(provenance.CHECKPOINT_DIR / f"{method}.json")
        card, now = meta.get("card") or {}, modelcard.make_card(method, meta)
        for split in EVALUATIONS:
            if card.get(split) != now.get(split):
                out.append(f"results/checkpoints/{method}.json: its card's {split} numbers are not results/metrics/{split}.summary.csv's; "
                           f"run python -m experiments.modelcard")  # fmt: skip
    text = readme.read_text()
    have = blocks(text)
    for name in ["models", *EVALUATIONS, "goal"]:
        if name not in have:
            out.append(f"{readme.name}: no <!-- generated: {name} --> block")
            continue
        try:
            body = render(name, metrics_dir)
        except (OSError, ValueError) as exc:
            out.append(str(exc))
            continue
        if have[name] != body:
            out.append(f"{readme.name}: the {name} table is not what its files render; run python -m experiments.readme")
    return out


def refresh(device: str = "auto", methods: list[str] | None = None) -> int:
    """Evaluate the shipped checkpoints with the README's protocol, redraw the grid, rewrite the cards.
    With ``methods``, only those are re-evaluated and the other methods' rows of the committed
    evaluations are kept (``experiments.evaluate --update``: same protocol, same photos) - for a
    newly shipped checkpoint; after a change to a backend's code, refresh everything."""
    from experiments import evaluate, grid, modelcard

    known = METHODS.split(",")
    if methods and (unknown := [m for m in methods if m not in known]):
        print(f"error: --methods: {', '.join(unknown)} not among the README's methods ({METHODS})", file=sys.stderr)
        return 2
    which = ["--methods", ",".join(methods), "--update"] if methods else ["--methods", METHODS]
    for name in EVALUATIONS:
        print(f"$ {command(name)}" + (f"  (only {', '.join(methods)}: --update)" if methods else ""), file=sys.stderr)
        rc = evaluate.main([*EVALUATIONS[name], *which, "--out", str(METRICS_DIR / f"{name}.csv"), "--device", device, "--quiet"])
        if rc:
            return rc
    rc = grid.main(["--methods", METHODS, "--out", str(GRID), "--device", device])
    if rc:
        return rc
    modelcard.update_cards()
    return 0


def write(readme: Path | None = None, metrics_dir: Path | None = None) -> list[str]:
    """Rewrite every generated block of ``readme``; the names of those that changed."""
    readme = readme or README
    text = readme.read_text()
    bodies = {name: render(name, metrics_dir) for name in blocks(text)}
    changed = [n for n, b in bodies.items() if blocks(text)[n] != b]
    if changed:
        readme.write_text(splice(text, bodies))
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.readme", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="write nothing; exit 1 naming whatever is stale")
    g.add_argument(
        "--refresh",
        action="store_true",
        help="re-evaluate the shipped checkpoints, redraw the grid, rewrite the cards and tables",
    )
    p.add_argument("--device", default="auto", help="for --refresh: auto | cpu | cuda")
    p.add_argument("--methods", help="for --refresh: re-evaluate only these (comma-separated), keeping the others' committed rows")
    args = p.parse_args(argv)
    if args.methods and not args.refresh:
        p.error("--methods goes with --refresh")
    if args.check:
        return _report_problems(summary=True)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if args.refresh and (rc := refresh(args.device, methods)):
        return rc
    try:
        changed = write()
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"rewrote README.md's {', '.join(changed)} table(s)" if changed else "README.md's tables were already current")
    return _report_problems(summary=False)


def _report_problems(summary: bool) -> int:
    """Print what is stale (stderr): exit status 0 none, 1 some, 2 an unreadable record."""
    try:
        found = problems()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in found:
        print(f"stale: {line}", file=sys.stderr)
    if summary:
        print("the README's tables and grid are the shipped checkpoints'" if not found else f"{len(found)} stale item(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
