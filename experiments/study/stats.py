"""Statistics of the studies: pure functions on counts and vote tables.

- :func:`wilson`, :func:`clopper_pearson`: binomial confidence intervals for a fool rate.
- :func:`bootstrap_participants`: percentile interval of a pooled rate, resampling PARTICIPANTS
  (their answers are correlated, so resampling single votes would give too narrow an interval).
- :func:`binom_p`: two-sided exact binomial test of the fool rate against 50 % (a perfect
  colorizer: people cannot tell, so they pick at chance).
- :func:`bradley_terry`: Bradley-Terry strengths by the MM algorithm (Hunter 2004, Ann. Stat.),
  ties counted as half a win for each side (Rao-Kupper/Davidson would add a tie parameter; with
  half wins a tie says "equally good", which is what the arena's "can't tell" means). A small
  symmetric prior (``prior`` virtual games per pair, split evenly) keeps strengths finite when
  a method wins or loses every game. Reported on the natural scale (log-strength, centred at 0)
  and, for readers used to it, as an Elo-like rating 1000 + 400 log10(strength).
- :func:`fool_rate_differences`: pairwise differences of fool rates between methods with a
  participant bootstrap interval, a permutation test and Holm's correction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .protocol import REAL, VIGILANCE


# -- binomial intervals ------------------------------------------------------------------------
def _z(conf: float) -> float:
    if not 0 < conf < 1:
        raise ValueError("conf must be in (0, 1)")
    return float(sps.norm.ppf(1 - (1 - conf) / 2))


def _check(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927); ``(nan, nan)`` when n == 0."""
    _check(k, n)
    if n == 0:
        return (float("nan"), float("nan"))
    z = _z(conf)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) interval from beta quantiles; ``(nan, nan)`` when n == 0."""
    _check(k, n)
    if n == 0:
        return (float("nan"), float("nan"))
    a = 1 - conf
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - a / 2, k + 1, n - k))
    return (lo, hi)


def binom_p(k: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial test p-value of k successes in n against rate ``p``."""
    _check(k, n)
    return float(sps.binomtest(k, n, p).pvalue) if n else float("nan")


def bootstrap_participants(
    k: np.ndarray, n: np.ndarray, conf: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of sum(k)/sum(n) when participants (rows) are resampled."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    if len(k) == 0 or n.sum() == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(len(k), size=(n_boot, len(k)))
    tot = n[idx].sum(1)
    rates = k[idx].sum(1)[tot > 0] / tot[tot > 0]
    a = (1 - conf) / 2
    return (float(np.quantile(rates, a)), float(np.quantile(rates, 1 - a)))


# -- Turing test -------------------------------------------------------------------------------
def turing_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Adds ``fake_side`` (where the colorized/recoloured image was), ``method`` (what made it),
    ``correct`` (the participant found the fake) and ``fooled`` (they picked the real photo)."""
    df = votes.copy()
    df["fake_side"] = np.where(df["left"] == REAL, "right", "left")
    df["method"] = np.where(df["left"] == REAL, df["right"], df["left"])
    df["correct"] = df["choice"] == df["fake_side"]
    df["fooled"] = ~df["correct"]
    return df


def vigilance(votes: pd.DataFrame, max_fail: int = 0) -> pd.DataFrame:
    """Per participant: vigilance trials seen and failed, and whether they are excluded."""
    df = turing_table(votes) if "fooled" not in votes else votes
    v = df[df["phase"] == "vigilance"]
    out = pd.DataFrame({"participant": pd.unique(df["participant"])}).set_index("participant")
    out["condition"] = df.groupby("participant")["condition"].first()
    out["vigilance_trials"] = v.groupby("participant").size()
    out["vigilance_failed"] = v.groupby("participant")["fooled"].sum()
    out = out.fillna({"vigilance_trials": 0, "vigilance_failed": 0}).astype({"vigilance_trials": int, "vigilance_failed": int})
    out["excluded"] = out["vigilance_failed"] > max_fail
    return out.reset_index()


#: Fewer included participants than this (per method) leave the participant bootstrap blank:
#: resampling one or two people gives an interval that collapses to a point.
MIN_BOOT_PARTICIPANTS = 5

FOOL_COLUMNS = [
    "method",
    "participants",
    "excluded",
    "trials",
    "fooled",
    "fool_rate",
    "wilson_lo",
    "wilson_hi",
    "cp_lo",
    "cp_hi",
    "boot_lo",
    "boot_hi",
    "p_vs_50",
    "median_rt_ms",
    "note",
]


def _included(votes: pd.DataFrame, max_fail: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored trials of the participants who passed vigilance, the vigilance table); empty votes
    give empty frames with the columns the callers read."""
    df = turing_table(votes) if len(votes) else votes.assign(method=[], fooled=[])
    vig = vigilance(df, max_fail) if len(df) else pd.DataFrame(columns=["participant", "condition", "excluded"])
    excluded = set(vig.loc[vig["excluded"].astype(bool), "participant"])
    main = df[(df["phase"] == "main") & ~df["participant"].isin(excluded)] if len(df) else df
    return main, vig


def included_main(votes: pd.DataFrame, max_fail: int = 0) -> pd.DataFrame:
    """Scored trials of the participants who passed vigilance (with turing_table's columns)."""
    return _included(votes, max_fail)[0]


def fool_rates(
    votes: pd.DataFrame,
    max_fail: int = 0,
    conf: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    methods: list[str] | None = None,
) -> pd.DataFrame:
    """Per method (every method of ``methods`` gets a row, even with no included participant):
    fool rate on scored trials of included participants, with Wilson, Clopper-Pearson and
    participant-bootstrap intervals, the binomial test against 50 %, participants included and
    excluded, and a note when an interval cannot be trusted."""
    cols = FOOL_COLUMNS
    if votes.empty and not methods:
        return pd.DataFrame(columns=cols)
    main, vig = _included(votes, max_fail)
    order = list(methods or []) + sorted(set(main["method"]) - set(methods or []))
    rows = []
    for method in order:
        g = main[main["method"] == method]
        n_excl = int(vig[(vig["condition"] == method) & vig["excluded"].astype(bool)].shape[0])
        if g.empty:
            note = f"no included participant ({n_excl} excluded)" if n_excl else "no votes yet"
            rows.append([method, 0, n_excl, 0, 0, *[np.nan] * 9, note])
            continue
        per = g.groupby("participant")["fooled"].agg(["sum", "size"])
        k, n = int(per["sum"].sum()), int(per["size"].sum())
        w, cp = wilson(k, n, conf), clopper_pearson(k, n, conf)
        if len(per) >= MIN_BOOT_PARTICIPANTS:
            b, note = bootstrap_participants(per["sum"].to_numpy(), per["size"].to_numpy(), conf, n_boot, seed), ""
        else:
            b = (np.nan, np.nan)
            note = (
                f"only {len(per)} participant(s): too few for the bootstrap interval (needs {MIN_BOOT_PARTICIPANTS}); "
                "Wilson / Clopper-Pearson treat votes as independent and are too narrow"
            )
        rt = g["rt_ms"].dropna()
        rows.append(
            [method, len(per), n_excl, n, k, k / n, *w, *cp, *b, binom_p(k, n), float(rt.median()) if len(rt) else np.nan, note]
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("fool_rate", ascending=False, ignore_index=True, na_position="last")


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    adj = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


def fool_rate_differences(
    votes: pd.DataFrame,
    max_fail: int = 0,
    conf: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    methods: list[str] | None = None,
) -> pd.DataFrame:
    """Every pair of methods: difference of fool rates (a - b) with a percentile interval from
    a bootstrap that resamples participants within each method (the Turing test is between
    subjects, so each participant's answers stay together), a two-sided permutation test that
    shuffles the method labels of participants, and Holm-adjusted p-values over all pairs."""
    cols = ["a", "b", "rate_a", "rate_b", "difference", "lo", "hi", "p", "p_holm", "participants_a", "participants_b", "note"]
    main = included_main(votes, max_fail) if len(votes) else pd.DataFrame(columns=["method", "participant", "fooled"])
    per = main.groupby(["method", "participant"])["fooled"].agg(["sum", "size"]).reset_index()
    names = [m for m in (methods or sorted(per["method"].unique()))]
    rng = np.random.default_rng(seed)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pa, pb = per[per["method"] == a], per[per["method"] == b]
            if pa.empty or pb.empty:
                rows.append([a, b, *[np.nan] * 7, len(pa), len(pb), "a method has no included participant"])
                continue
            ka, na, kb, nb = (
                pa["sum"].to_numpy(float),
                pa["size"].to_numpy(float),
                pb["sum"].to_numpy(float),
                pb["size"].to_numpy(float),
            )
            ra, rb = ka.sum() / na.sum(), kb.sum() / nb.sum()
            ia = rng.integers(len(ka), size=(n_boot, len(ka)))
            ib = rng.integers(len(kb), size=(n_boot, len(kb)))
            diffs = ka[ia].sum(1) / na[ia].sum(1) - kb[ib].sum(1) / nb[ib].sum(1)
            q = (1 - conf) / 2
            lo, hi = float(np.quantile(diffs, q)), float(np.quantile(diffs, 1 - q))
            k_all, n_all = np.concatenate([ka, kb]), np.concatenate([na, nb])
            hits = 0
            for _ in range(n_boot):
                perm = rng.permutation(len(k_all))
                sa, sb = perm[: len(ka)], perm[len(ka) :]
                d = k_all[sa].sum() / n_all[sa].sum() - k_all[sb].sum() / n_all[sb].sum()
                hits += abs(d) >= abs(ra - rb) - 1e-12
            p = (hits + 1) / (n_boot + 1)
            few = min(len(ka), len(kb)) < MIN_BOOT_PARTICIPANTS
            note = f"fewer than {MIN_BOOT_PARTICIPANTS} participants on a side: interval unreliable" if few else ""
            rows.append([a, b, ra, rb, ra - rb, lo, hi, p, np.nan, len(ka), len(kb), note])
    out = pd.DataFrame(rows, columns=cols)
    ok = out["p"].notna()
    if ok.any():
        out.loc[ok, "p_holm"] = holm(out.loc[ok, "p"].tolist())
    return out


def photo_fool_rates(votes: pd.DataFrame, max_fail: int = 0) -> pd.DataFrame:
    """Per (photo, method): how often its colorization fooled people, most fooling first."""
    df = turing_table(votes)
    vig = vigilance(df, max_fail)
    main = df[(df["phase"] == "main") & ~df["participant"].isin(set(vig.loc[vig["excluded"], "participant"]))]
    if main.empty:
        return pd.DataFrame(columns=["photo", "method", "trials", "fooled", "fool_rate"])
    g = main.groupby(["photo", "method"])["fooled"].agg(trials="size", fooled="sum").reset_index()
    g["fool_rate"] = g["fooled"] / g["trials"]
    return g.sort_values(["fool_rate", "trials"], ascending=False, ignore_index=True)


# -- Bradley-Terry -----------------------------------------------------------------------------
def win_matrix(votes: pd.DataFrame, methods: list[str]) -> np.ndarray:
    """W[i, j] = wins of method i over j, a tie adding 0.5 to both."""
    idx = {m: i for i, m in enumerate(methods)}
    W = np.zeros((len(methods), len(methods)))
    for left, right, choice in votes[["left", "right", "choice"]].itertuples(index=False):
        i, j = idx[left], idx[right]
        if choice == "left":
            W[i, j] += 1
        elif choice == "right":
            W[j, i] += 1
        else:
            W[i, j] += 0.5
            W[j, i] += 0.5
    return W


def bt_fit(W: np.ndarray, prior: float = 0.5, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) from a win matrix by Hunter's MM iteration."""
    W = np.asarray(W, float).copy()
    m = len(W)
    if prior > 0:
        W += (prior / 2) * (1 - np.eye(m))
    N = W + W.T
    wins = W.sum(1)
    p = np.ones(m)
    for _ in range(max_iter):
        denom = (N / (p[:, None] + p[None, :])).sum(1)
        new = np.where(denom > 0, wins / np.where(denom > 0, denom, 1), p)
        new = np.maximum(new, 1e-300)
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    return np.log(p) - np.mean(np.log(p))


def elo(theta: np.ndarray) -> np.ndarray:
    """Log-strengths -> Elo-like scale (400 points = 10:1 odds), centred at 1000."""
    return 1000 + 400 * np.asarray(theta) / np.log(10)


def bradley_terry(
    votes: pd.DataFrame, methods: list[str], conf: float = 0.95, n_boot: int = 1000, prior: float = 0.5, seed: int = 0
) -> pd.DataFrame:
    """Leaderboard on Bradley-Terry's natural scale: ``strength`` = log-strength, centred so the
    methods average 0 (a difference of 1 = odds of e:1), with a bootstrap interval (participants
    resampled); ``elo`` is the same number on an Elo-like scale for readers used to it; wins,
    losses and ties."""
    cols = ["rank", "method", "strength", "lo", "hi", "elo", "games", "wins", "losses", "ties", "win_rate", "note"]
    W = win_matrix(votes, methods)
    theta = bt_fit(W, prior)
    lo = hi = np.full(len(methods), np.nan)
    n_part = votes["participant"].nunique() if len(votes) else 0
    if n_part >= 2 and n_boot:
        per = np.stack([win_matrix(g, methods) for _, g in votes.groupby("participant", sort=False)])
        counts = np.random.default_rng(seed).multinomial(n_part, np.full(n_part, 1 / n_part), size=n_boot)
        boots = np.stack([bt_fit(np.tensordot(c, per, 1), prior, tol=1e-8) for c in counts])
        a = (1 - conf) / 2
        lo, hi = np.quantile(boots, a, 0), np.quantile(boots, 1 - a, 0)
    rows = []
    for i, m in enumerate(methods):
        mine = votes[(votes["left"] == m) | (votes["right"] == m)]
        won = ((mine["left"] == m) & (mine["choice"] == "left")) | ((mine["right"] == m) & (mine["choice"] == "right"))
        ties = mine["choice"] == "tie"
        games = len(mine)
        note = "no games yet" if not games else ("too few participants for an interval" if n_part < MIN_BOOT_PARTICIPANTS else "")
        rows.append(
            [
                0,
                m,
                theta[i],
                lo[i],
                hi[i],
                elo(theta)[i],
                games,
                int(won.sum()),
                int(games - won.sum() - ties.sum()),
                int(ties.sum()),
                (won.sum() + 0.5 * ties.sum()) / games if games else np.nan,
                note,
            ]
        )
    out = pd.DataFrame(rows, columns=cols).sort_values("strength", ascending=False, ignore_index=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def bt_win_probability(strengths: np.ndarray) -> np.ndarray:
    """P[i beats j] from log-strengths (the diagonal is 0.5: a method against itself)."""
    t = np.asarray(strengths, float)
    return 1 / (1 + np.exp(t[None, :] - t[:, None]))


__all__ = [
    "REAL",
    "VIGILANCE",
    "binom_p",
    "bootstrap_participants",
    "bradley_terry",
    "bt_fit",
    "bt_win_probability",
    "clopper_pearson",
    "elo",
    "fool_rate_differences",
    "fool_rates",
    "holm",
    "included_main",
    "photo_fool_rates",
    "turing_table",
    "vigilance",
    "wilson",
    "win_matrix",
]
