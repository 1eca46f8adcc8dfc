import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from experiments.study import stats


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (32, 100), (500, 1000), (1, 7)])
def test_intervals_match_scipy(k, n):
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert stats.clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_interval_known_values_and_validation():
    # Wilson 95 % for 0/10: (0, 0.2775) (e.g. Brown, Cai & DasGupta 2001)
    assert stats.wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert stats.clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    assert np.isnan(stats.wilson(0, 0)[0])
    with pytest.raises(ValueError):
        stats.wilson(11, 10)


def test_binomial_test_against_half():
    assert stats.binom_p(50, 100) == pytest.approx(1.0)
    assert stats.binom_p(32, 100) < 0.001  # Zhang et al.'s 32 % is far from chance with 100 votes
    assert stats.binom_p(9, 20) > 0.5


def test_bootstrap_over_participants_sees_clustering():
    # 20 participants, 40 trials each: half always fooled, half never. Pooled rate 0.5 either way,
    # but the between-participant spread makes the bootstrap far wider than the binomial interval.
    k = np.array([40] * 10 + [0] * 10)
    n = np.full(20, 40)
    lo, hi = stats.bootstrap_participants(k, n, n_boot=4000)
    w = stats.wilson(400, 800)
    assert hi - lo > 2.5 * (w[1] - w[0])
    # identical participants: the bootstrap cannot vary
    assert stats.bootstrap_participants(np.full(5, 10), np.full(5, 40)) == (0.25, 0.25)


def votes_frame(rows):
    return pd.DataFrame(rows, columns=["participant", "condition", "trial", "phase", "photo", "left", "right", "choice", "rt_ms"])


def test_fool_rates_exclude_vigilance_failures():
    rows = []
    # p1 (method a): fooled on 3 of 4 scored trials, passes vigilance
    for i, ch in enumerate(["left", "left", "left", "right"]):
        rows.append(["p1", "a", i, "main", f"x{i}", "real", "a", ch, 900])
    rows.append(["p1", "a", 9, "vigilance", "x0", "vigilance", "real", "left", 500])
    # p2 (method a): fails vigilance -> excluded though fooled every time
    for i in range(4):
        rows.append(["p2", "a", i, "main", f"x{i}", "a", "real", "right", 800])
    rows.append(["p2", "a", 9, "vigilance", "x0", "real", "vigilance", "left", 400])
    # p3 (method b): never fooled; practice trials are ignored
    for i in range(4):
        rows.append(["p3", "b", i, "main", f"x{i}", "b", "real", "left", 700])
    rows.append(["p3", "b", 20, "practice", "x9", "b", "real", "right", 700])
    df = votes_frame(rows)
    vig = stats.vigilance(df).set_index("participant")
    assert list(vig["excluded"]) == [False, True, False]
    res = stats.fool_rates(df, max_fail=0, n_boot=200).set_index("method")
    assert res.loc["a", ["participants", "excluded", "trials", "fooled"]].tolist() == [1, 1, 4, 3]
    assert res.loc["a", "fool_rate"] == 0.75 and res.loc["b", "fool_rate"] == 0.0
    assert res.loc["a", "wilson_lo"] < 0.75 < res.loc["a", "wilson_hi"]
    lenient = stats.fool_rates(df, max_fail=1, n_boot=200).set_index("method")
    assert lenient.loc["a", "trials"] == 8 and lenient.loc["a", "fooled"] == 7
    top = stats.photo_fool_rates(df)
    assert top.iloc[0]["fool_rate"] == 1.0 and top.iloc[-1]["fool_rate"] == 0.0


def test_bradley_terry_two_players_closed_form():
    W = np.array([[0.0, 30], [10, 0]])  # a beat b 30 times, lost 10
    theta = stats.bt_fit(W, prior=0.0)
    assert 1 / (1 + np.exp(theta[1] - theta[0])) == pytest.approx(0.75, abs=1e-8)


def test_bradley_terry_recovers_simulated_strengths():
    rng = np.random.default_rng(0)
    methods = ["a", "b", "c", "d"]
    true = np.array([1.0, 0.4, 0.0, -1.4])
    rows = []
    for p in range(100):
        for _ in range(40):
            i, j = rng.choice(4, 2, replace=False)
            pi = 1 / (1 + np.exp(true[j] - true[i]))
            choice = "left" if rng.random() < pi else "right"
            rows.append([f"p{p}", methods[i], methods[j], choice])
    df = pd.DataFrame(rows, columns=["participant", "left", "right", "choice"])
    board = stats.bradley_terry(df, methods, n_boot=200)
    assert list(board["method"]) == methods
    est = board.set_index("method").loc[methods, "strength"].to_numpy()
    assert est.mean() == pytest.approx(0, abs=1e-9)  # natural scale, centred
    assert np.allclose(est, true - true.mean(), atol=0.15)
    assert (board["lo"] < board["strength"]).all() and (board["strength"] < board["hi"]).all()
    assert np.allclose(board["elo"], stats.elo(board["strength"]))
    assert board["games"].sum() == 2 * len(df) and (board["wins"] + board["losses"] == board["games"]).all()


def test_ties_count_as_half_wins():
    # a beats b 6-2 with 4 ties -> like 8-4: P(a beats b) = 2/3
    rows = [["p", "a", "b", "left"]] * 6 + [["p", "b", "a", "left"]] * 2 + [["q", "a", "b", "tie"]] * 4
    df = pd.DataFrame(rows, columns=["participant", "left", "right", "choice"])
    board = stats.bradley_terry(df, ["a", "b"], n_boot=0, prior=0.0).set_index("method")
    assert stats.bt_win_probability(board.loc[["a", "b"], "strength"].to_numpy())[0, 1] == pytest.approx(2 / 3)
    assert board.loc["a", ["wins", "losses", "ties", "games"]].tolist() == [6, 2, 4, 12]
    assert board.loc["a", "win_rate"] == pytest.approx(8 / 12)


def test_bradley_terry_all_ties_and_unbeaten_method_stay_finite():
    df = pd.DataFrame([["p", "a", "b", "tie"]] * 10, columns=["participant", "left", "right", "choice"])
    board = stats.bradley_terry(df, ["a", "b"], n_boot=50)
    assert board["strength"].tolist() == pytest.approx([0, 0], abs=1e-9)
    df = pd.DataFrame([["p", "a", "b", "left"]] * 10, columns=["participant", "left", "right", "choice"])
    board = stats.bradley_terry(df, ["a", "b"], n_boot=50)
    assert np.isfinite(board["strength"]).all() and board.iloc[0]["method"] == "a"
    p = stats.bt_win_probability(board["strength"].to_numpy())
    assert np.isfinite(p).all() and np.allclose(np.diag(p), 0.5)  # no empty cells on the diagonal


def test_every_method_gets_a_row_with_its_exclusions_and_a_warning_note():
    rows = [["p1", "a", i, "main", f"x{i}", "real", "a", "left", 900] for i in range(4)]
    rows.append(["p1", "a", 9, "vigilance", "x9", "real", "vigilance", "left", 500])  # failed: excluded
    rows += [["p2", "b", i, "main", f"x{i}", "b", "real", "right", 700] for i in range(4)]
    res = stats.fool_rates(votes_frame(rows), methods=["a", "b", "c"], n_boot=200).set_index("method")
    assert list(res.index) == ["b", "a", "c"]
    assert res.loc["a", ["participants", "excluded", "trials"]].tolist() == [0, 1, 0]
    assert "no included participant (1 excluded)" in res.loc["a", "note"] and np.isnan(res.loc["a", "fool_rate"])
    assert res.loc["c", "note"] == "no votes yet"
    assert np.isnan(res.loc["b", "boot_lo"]) and "too few" in res.loc["b", "note"]  # one participant: no bootstrap


def test_differences_between_methods_have_intervals_and_a_permutation_test():
    rng = np.random.default_rng(1)
    rows = []
    for p in range(40):
        m, rate = ("a", 0.45) if p % 2 else ("b", 0.15)
        for i in range(20):
            fooled = rng.random() < rate
            rows.append([f"p{p}", m, i, "main", f"x{i}", "real", m, "left" if fooled else "right", 800])
    d = stats.fool_rate_differences(votes_frame(rows), methods=["a", "b"], n_boot=1000).iloc[0]
    assert d["a"] == "a" and 0.15 < d["difference"] < 0.45
    assert d["lo"] < d["difference"] < d["hi"] and d["lo"] > 0
    assert d["p"] < 0.01 and d["p_holm"] == d["p"]
    same = [r[:7] + [r[7]] + r[8:] for r in rows if r[1] == "a"]
    half = [
        [r[0], "b" if int(r[0][1:]) % 4 == 1 else "a", *r[2:5], "real", "b" if int(r[0][1:]) % 4 == 1 else "a", *r[7:]]
        for r in same
    ]
    d = stats.fool_rate_differences(votes_frame(half), methods=["a", "b"], n_boot=1000).iloc[0]
    assert d["lo"] < 0 < d["hi"] and d["p"] > 0.05  # same rate: interval covers 0


def test_holm_adjustment():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
