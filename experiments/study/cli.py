"""``python -m experiments.study``: run a user study from the command line.

    create NAME --kind turing|arena --methods a,b --photos DIR [--trials N --practice N
           --vigilance F --size PX --display-ms MS --sample K --max-fail N --seed S --no-tie]
    prepare NAME [--device D]      colorize every photo with every method (progress bar; resumable)
    open NAME / close NAME         let participants in / refuse new participants and votes
    status NAME                    state, photos ready, participants, votes, invite link
    export NAME --out DIR          votes.csv, participants.csv, results.csv, results.tex, figure PNG + PDF
    analyse NAME                   print the analysis table (what the analysis page shows)

The database is the one the pages use: ``COLORIZE_STUDY_DB`` (an SQLAlchemy URL), else SQLite
under ``results/studies/``. Bad input ends with a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .errors import StudyError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like every other bad input
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m experiments.study", description="Create, prepare, run and analyse user studies.")
    db_help = "SQLAlchemy URL of the study database (default: COLORIZE_STUDY_DB, else results/studies/)"
    p.add_argument("--db", help=db_help)
    common = argparse.ArgumentParser(add_help=False)  # --db also after the command
    common.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    c = add("create", help="define a study (draft)")
    c.add_argument("name")
    c.add_argument("--kind", choices=["turing", "arena"], default="turing")
    c.add_argument("--methods", required=True, help="comma-separated method names, e.g. classification,gan")
    c.add_argument("--photos", required=True, help="folder of photos (searched recursively)")
    c.add_argument("--sample", type=int, default=0, help="draw this many photos at random (default: all)")
    c.add_argument("--trials", type=int, default=None, help="scored trials per participant (Turing 40; arena 20, 0 = unlimited)")
    c.add_argument("--practice", type=int, default=None, help="practice trials with feedback (Turing only; default 10)")
    c.add_argument("--vigilance", type=float, default=None, help="vigilance trials as a share of scored trials (Turing; 0.1)")
    c.add_argument("--max-fail", type=int, default=0, help="vigilance failures allowed before exclusion")
    c.add_argument("--size", type=int, default=256, help="image side in px")
    c.add_argument("--display-ms", type=int, default=0, help="hide the pair after this many ms (0 = stays)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-tie", action="store_true", help='arena: no "can\'t tell" answer')

    pr = add("prepare", help="generate every image the study shows (resumable)")
    pr.add_argument("name")
    pr.add_argument("--device", default="auto")
    for cmd, text in (
        ("open", "let participants in"),
        ("close", "refuse new participants and votes"),
        ("status", "show progress"),
    ):
        add(cmd, help=text).add_argument("name")
    e = add("export", help="write votes, results, LaTeX table and figures")
    e.add_argument("name")
    e.add_argument("--out", required=True)
    e.add_argument("--conf", type=float, default=0.95)
    e.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    a = add("analyse", aliases=["analyze"], help="print the analysis table")
    a.add_argument("name")
    a.add_argument("--conf", type=float, default=0.95)
    a.add_argument("--boot", type=int, default=2000)
    return p


def _create(store, args) -> str:
    from .prepare import sample_photos
    from .protocol import StudyDesign

    turing = args.kind == "turing"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    photos = sample_photos(args.photos, args.sample if args.sample > 0 else 10**9, args.seed)
    design = StudyDesign(
        name=args.name,
        kind=args.kind,
        methods=methods,
        photos=photos,
        trials=args.trials if args.trials is not None else (40 if turing else 20),
        practice=(args.practice if args.practice is not None else 10) if turing else 0,
        vigilance=(args.vigilance if args.vigilance is not None else 0.1) if turing else 0.0,
        vigilance_max_fail=args.max_fail,
        display_ms=args.display_ms,
        size=args.size,
        seed=args.seed,
        allow_tie=not args.no_tie,
    )
    if not turing and (args.practice or args.vigilance):
        print("note: --practice and --vigilance apply to Turing tests only; ignored", file=sys.stderr)
    store.create_study(design)
    from .prepare import estimate_seconds, format_duration

    est = format_duration(estimate_seconds(methods, len(photos), args.size))
    return f"created {args.kind} study {args.name!r}: {len(photos)} photos, methods {', '.join(methods)}; next: prepare {args.name} (about {est})"


def _prepare(store, args) -> str:
    from tqdm import tqdm

    from .prepare import estimate_seconds, format_duration, prepare

    s = store.require(args.name)
    est = format_duration(estimate_seconds(s.design.methods, len(s.design.photos), s.design.size))
    print(
        f"preparing {args.name}: {len(s.design.photos)} photos x {len(s.design.methods)} methods (about {est} on a 2-core CPU)",
        file=sys.stderr,
    )
    bar = tqdm(total=len(s.design.photos), unit="photo", file=sys.stderr)

    def progress(i: int, n: int, msg: str) -> None:
        bar.n = i
        bar.set_postfix_str(msg[:30])
        bar.refresh()

    try:
        report = prepare(store, args.name, device=args.device, progress=progress)
    finally:
        bar.close()
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    need = s.design.photos_needed
    tail = "" if report.ready >= need else f"; the study needs {need} ready photos to open"
    return f"{report.ready} photos ready ({report.generated} images generated){tail}"


def _status(store, args) -> str:
    from .links import invite_url

    s = store.require(args.name)
    parts, votes = store.participants_frame(args.name), store.votes_frame(args.name)
    lines = [
        f"study      {s.name} ({s.kind}), {s.status}",
        f"methods    {', '.join(s.design.methods)}",
        f"photos     {len(store.ready_photos(args.name))} ready of {len(s.design.photos)} (needs {s.design.photos_needed})",
        f"people     {len(parts)} joined, {int(parts['finished_at'].notna().sum()) if len(parts) else 0} finished",
        f"votes      {len(votes)}",
    ]
    if len(parts):
        lines.append("per group  " + ", ".join(f"{k}: {v}" for k, v in parts["condition"].value_counts().sort_index().items()))
    lines.append(f"invite     {invite_url(s.name)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .storage import StudyStore

    try:
        store = StudyStore(args.db)
        if args.command == "create":
            print(_create(store, args))
        elif args.command == "prepare":
            print(_prepare(store, args))
        elif args.command in ("open", "close"):
            store.set_status(args.name, "open" if args.command == "open" else "closed")
            print(f"{args.name}: {'open' if args.command == 'open' else 'closed'}")
        elif args.command == "status":
            print(_status(store, args))
        elif args.command in ("analyse", "analyze", "export"):
            from .analysis import analyse, export, text_table

            if not 0 < args.conf < 1 or args.boot < 100:
                raise StudyError("--conf must be in (0, 1) and --boot at least 100")
            a = analyse(store, args.name, args.conf, args.boot)
            if args.command == "export":
                for f in export(store, a, args.out):
                    print(f)
            else:
                print(
                    f"{a.study.name} ({a.kind}, {a.study.status}): {a.votes['participant'].nunique()} participants, {len(a.votes)} votes"
                )
                print(text_table(a))
                if a.differences is not None:
                    print(f"\ndifferences of fool rates ({args.conf:.0%} participant bootstrap; permutation p, Holm-adjusted):")
                    for r in a.differences.itertuples():
                        if r.difference == r.difference:  # not NaN
                            print(
                                f"  {r.a} - {r.b}: {r.difference:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}], p = {r.p:.2g} (Holm {r.p_holm:.2g})"
                            )
            for w in a.warnings:
                print(f"warning: {w}", file=sys.stderr)
    except (StudyError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - a backend that cannot run (BackendUnavailable) etc.
        from backends.errors import ColorizationError

        if isinstance(exc, ColorizationError):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    return 0
