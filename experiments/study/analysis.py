"""One analysis of a study, shared by the analysis page and ``python -m experiments.study``.

:func:`analyse` reads the votes and returns every table the page shows (fool rates per method
with exclusions and counts, pairwise differences, vigilance, photos; or the Bradley-Terry
leaderboard and win probabilities) plus the warnings a reader must see. :func:`export` writes
``votes.csv`` (one row per answered trial, with the side that was real), ``participants.csv``
(with completion codes of finished participants), ``results.csv``, ``results.tex`` and the
figure as PNG and PDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .protocol import REAL
from .storage import Study, StudyStore

#: Columns of the results table as printed and exported (rounded for reading).
TURING_SHOW = [c for c in stats.FOOL_COLUMNS if c not in ("cp_lo", "cp_hi", "median_rt_ms", "note")]
ARENA_SHOW = ["rank", "method", "strength", "lo", "hi", "games", "wins", "losses", "ties", "win_rate"]


@dataclass
class Analysis:
    study: Study
    votes: pd.DataFrame
    participants: pd.DataFrame
    results: pd.DataFrame
    conf: float
    differences: pd.DataFrame | None = None
    vigilance: pd.DataFrame | None = None
    photos: pd.DataFrame | None = None
    win_probability: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.study.kind

    @property
    def excluded(self) -> set[str]:
        if self.vigilance is None or self.vigilance.empty:
            return set()
        return set(self.vigilance.loc[self.vigilance["excluded"], "participant"])

    def votes_table(self) -> pd.DataFrame:
        """One row per answered trial: who, what was shown where, the side that was real
        (Turing), the answer, whether it was right, the response time, exclusion."""
        v = self.votes.copy()
        v.insert(v.columns.get_loc("photo") + 1, "photo_file", v["photo"].map(lambda p: self.sources.get(p, "")))
        if self.kind == "turing":
            v["real_side"] = np.where(v["left"] == REAL, "left", "right")
            v["method"] = np.where(v["left"] == REAL, v["right"], v["left"])
            v["correct"] = v["choice"] != v["real_side"]
            v["excluded"] = v["participant"].isin(self.excluded)
        else:
            v["real_side"] = ""
        keep = ["study", "participant", "condition", "seq", "trial", "phase", "photo", "photo_file", "left", "right", "real_side"]
        keep += ["method", "choice", "correct", "rt_ms", "excluded", "created_at"]
        return v[[c for c in keep if c in v.columns]]

    def participants_table(self, store: StudyStore) -> pd.DataFrame:
        p = self.participants.copy()
        p["votes"] = p["id"].map(self.votes.groupby("participant").size()).fillna(0).astype(int)
        p["completion_code"] = [store.code_for(i) if pd.notna(f) else "" for i, f in zip(p["id"], p["finished_at"])]
        if self.kind == "turing":
            p["excluded"] = p["id"].isin(self.excluded)
        return p

    def show(self) -> pd.DataFrame:
        """The results table with the columns a reader needs (what the CLI prints)."""
        return self.results[[c for c in (TURING_SHOW if self.kind == "turing" else ARENA_SHOW) if c in self.results]]


def analyse(store: StudyStore, name: str, conf: float = 0.95, n_boot: int = 2000) -> Analysis:
    s = store.require(name)
    d = s.design
    votes, parts = store.votes_frame(name), store.participants_frame(name)
    warnings: list[str] = []
    a = Analysis(s, votes, parts, pd.DataFrame(), conf, sources=store.photo_sources(name))
    if votes.empty:
        warnings.append("No votes yet.")
    if s.kind == "turing":
        a.vigilance = (
            stats.vigilance(votes, d.vigilance_max_fail)
            if len(votes)
            else pd.DataFrame(columns=["participant", "condition", "vigilance_trials", "vigilance_failed", "excluded"])
        )
        a.results = stats.fool_rates(votes, d.vigilance_max_fail, conf, n_boot, seed=d.seed, methods=d.methods)
        a.differences = (
            stats.fool_rate_differences(votes, d.vigilance_max_fail, conf, n_boot, seed=d.seed, methods=d.methods)
            if len(d.methods) > 1
            else None
        )
        a.photos = stats.photo_fool_rates(votes, d.vigilance_max_fail) if len(votes) else None
        if a.photos is not None:
            a.photos.insert(1, "file", a.photos["photo"].map(lambda p: Path(a.sources.get(p, p)).name))
        few = a.results[a.results["participants"] < stats.MIN_BOOT_PARTICIPANTS]
        if len(votes) and len(few):
            warnings.append(
                "Too few participants for an interval you can trust: "
                + ", ".join(f"{r.method} has {r.participants}" for r in few.itertuples())
                + f" (at least {stats.MIN_BOOT_PARTICIPANTS} included participants per method are needed for the "
                "participant bootstrap; the Wilson and Clopper-Pearson intervals count votes as independent and are too narrow)."
            )
        if len(a.excluded):
            warnings.append(f"{len(a.excluded)} of {len(a.vigilance)} participants failed vigilance and are excluded.")
    else:
        a.results = stats.bradley_terry(votes, d.methods, conf, int(min(n_boot, 5000)), seed=d.seed)
        order = list(a.results["method"])
        a.win_probability = pd.DataFrame(stats.bt_win_probability(a.results["strength"].to_numpy()), index=order, columns=order)
        n_part = votes["participant"].nunique() if len(votes) else 0
        if len(votes) and n_part < stats.MIN_BOOT_PARTICIPANTS:
            warnings.append(
                f"Only {n_part} participant(s): too few for the bootstrap interval of the strengths "
                f"(at least {stats.MIN_BOOT_PARTICIPANTS} are needed)."
            )
    a.warnings = warnings
    return a


# -- text, LaTeX and figures ------------------------------------------------------------------
def _fmt(v, col: str) -> str:
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "--"
        if col.startswith("p"):
            return f"{v:.2g}"
        return f"{v:.3f}" if col not in ("median_rt_ms",) else f"{v:.0f}"
    return str(v)


def text_table(a: Analysis) -> str:
    """The results table as plain text (what ``analyse`` prints)."""
    df = a.show()
    rows = [[_fmt(v, c) for c, v in zip(df.columns, r)] for r in df.itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(df.columns)]
    line = lambda cells: "  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line(list(df.columns)), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    return "\n".join(out)


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        s = s.replace(a, b)
    return s


def results_tex(a: Analysis) -> str:
    """A booktabs table of the results (``\\usepackage{booktabs}``)."""
    d = a.study.design
    pct = f"{a.conf:.0%}".replace("%", r"\%")
    if a.kind == "turing":
        head = ["Method", "Participants", "Excluded", "Trials", "Fool rate", f"Wilson {pct}", f"Bootstrap {pct}", "$p$ vs 50\\%"]
        body = []
        for r in a.results.itertuples():
            rate = "--" if math.isnan(r.fool_rate) else f"{100 * r.fool_rate:.1f}\\%"
            wil = "--" if math.isnan(r.wilson_lo) else f"[{100 * r.wilson_lo:.1f}, {100 * r.wilson_hi:.1f}]"
            boot = "--" if math.isnan(r.boot_lo) else f"[{100 * r.boot_lo:.1f}, {100 * r.boot_hi:.1f}]"
            p = "--" if math.isnan(r.p_vs_50) else f"{r.p_vs_50:.2g}"
            body.append([_tex_escape(r.method), str(r.participants), str(r.excluded), str(r.trials), rate, wil, boot, p])
        caption = (
            f"Colorization Turing test \\texttt{{{_tex_escape(d.name)}}}: share of scored trials in which the real photo was "
            f"taken for the fake (50\\% = indistinguishable), {d.trials} scored trials per participant, participants failing "
            f"more than {d.vigilance_max_fail} vigilance trials excluded."
        )
    else:
        head = ["Rank", "Method", "Strength", f"{pct} interval", "Games", "Wins", "Losses", "Ties"]
        body = []
        for r in a.results.itertuples():
            ci = "--" if math.isnan(r.lo) else f"[{r.lo:+.2f}, {r.hi:+.2f}]"
            body.append(
                [
                    str(r.rank),
                    _tex_escape(r.method),
                    f"{r.strength:+.2f}",
                    ci,
                    str(r.games),
                    str(r.wins),
                    str(r.losses),
                    str(r.ties),
                ]
            )
        caption = (
            f"Colorization arena \\texttt{{{_tex_escape(d.name)}}}: Bradley-Terry log-strengths (centred at 0; a difference "
            "of 1 means odds of $e$:1), ties counted as half wins, intervals from a bootstrap over participants."
        )
    cols = "l" + "r" * (len(head) - 1)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(head) + " \\\\",
        "\\midrule",
        *(" & ".join(r) + " \\\\" for r in body),
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:study-{d.name}}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def figure(a: Analysis):
    """The study's main figure (matplotlib): fool rates with Wilson intervals and the 50 % line,
    or Bradley-Terry strengths with their intervals around 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = a.results
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(r) + 2), 3.2), dpi=150, layout="constrained")
    if a.kind == "turing":
        ok = r[r["fool_rate"].notna()]
        x = np.arange(len(ok))
        ax.bar(x, 100 * ok["fool_rate"], color="#4c78a8", width=0.6)
        ax.errorbar(
            x,
            100 * ok["fool_rate"],
            yerr=[100 * (ok["fool_rate"] - ok["wilson_lo"]), 100 * (ok["wilson_hi"] - ok["fool_rate"])],
            fmt="none",
            ecolor="black",
            capsize=4,
        )
        ax.axhline(50, ls="--", color="grey", lw=1)
        if len(ok):
            ax.text(len(ok) - 0.5, 51, "chance (indistinguishable)", ha="right", va="bottom", fontsize=7, color="grey")
        ax.set_xticks(x, ok["method"])
        ax.set_ylim(0, 100)
        ax.set_ylabel(f"fool rate, % ({a.conf:.0%} Wilson)")
    else:
        x = np.arange(len(r))
        err = None
        if r["lo"].notna().all():
            err = [r["strength"] - r["lo"], r["hi"] - r["strength"]]
        ax.errorbar(x, r["strength"], yerr=err, fmt="o", color="#4c78a8", ecolor="black", capsize=4)
        ax.axhline(0, ls="--", color="grey", lw=1)
        ax.set_xticks(x, r["method"])
        ax.set_xlim(-0.5, len(r) - 0.5)
        ax.set_ylabel(f"Bradley-Terry log-strength ({a.conf:.0%})")
    if not len(r) or (a.kind == "turing" and r["fool_rate"].isna().all()):
        ax.text(0.5, 0.5, "no votes yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(a.study.name, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def export(store: StudyStore, a: Analysis, out: str | Path) -> list[Path]:
    """Write the study's tables and figure into ``out``; returns the files written."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "votes.csv": a.votes_table().to_csv(index=False),
        "participants.csv": a.participants_table(store).to_csv(index=False),
        "results.csv": a.results.to_csv(index=False),
        "results.tex": results_tex(a),
    }
    if a.differences is not None:
        files["differences.csv"] = a.differences.to_csv(index=False)
    if a.win_probability is not None:
        files["win_probability.csv"] = a.win_probability.to_csv()
    written = []
    for fname, text in files.items():
        (out / fname).write_text(text)
        written.append(out / fname)
    fig = figure(a)
    stem = "fool_rate" if a.kind == "turing" else "bradley_terry"
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{stem}.{ext}")
        written.append(out / f"{stem}.{ext}")
    plt.close(fig)
    return written
