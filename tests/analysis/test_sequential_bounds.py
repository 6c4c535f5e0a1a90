"""Group-sequential boundaries: spending, boundaries, decisions, adjusted p (fast, exact)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from capstudy.analysis import sequential as seq


def test_spending_functions_spend_alpha_by_the_last_look():
    looks = (3, 5, 8)
    obf = seq.spent_alpha(looks, 0.05, "obf")
    pocock = seq.spent_alpha(looks, 0.05, "pocock")
    for spent in (obf, pocock):
        assert spent[-1] == pytest.approx(0.05) and np.all(np.diff(spent) > 0)
    # O'Brien-Fleming keeps nearly everything for the end; Pocock spends half by t = 0.375.
    assert obf[0] == pytest.approx(2 - 2 * stats.norm.cdf(1.959964 / np.sqrt(3 / 8)))
    assert obf[0] < 0.002 < 0.02 < pocock[0]
    with pytest.raises(ValueError, match="unknown alpha spending"):
        seq.spent_alpha(looks, 0.05, "linear")


def test_obrien_fleming_bounds_match_the_published_two_look_design():
    # Lan-DeMets O'Brien-Fleming, two equally spaced looks, one-sided alpha 0.025:
    # upper bounds 2.963 and 1.969 (gsDesign::gsDesign(k = 2, test.type = 1, sfu = sfLDOF)).
    looks = (4, 8)
    z = seq.efficacy_bounds(seq.canonical_correlation(looks), seq.spent_alpha(looks, 0.025, "obf"))
    assert z == pytest.approx([2.963, 1.969], abs=0.01)


def test_bounds_keep_the_overall_rate_on_fresh_null_draws():
    looks = (3, 5, 8)
    corr = seq.canonical_correlation(looks)
    spent = seq.spent_alpha(looks, 0.05, "obf")
    z = seq.efficacy_bounds(corr, spent, seed=0)
    fresh = np.random.default_rng(99).standard_normal((400_000, 3)) @ np.linalg.cholesky(corr).T
    crossed = np.zeros(len(fresh), dtype=bool)
    for k in range(3):
        crossed |= fresh[:, k] >= z[k]
        # By each look, the spent share (MC SE of 0.05 at 400 k draws: 0.00034).
        assert crossed.mean() == pytest.approx(spent[k], abs=4 * np.sqrt(spent[k] / 4e5) + 1e-4)


def test_correlation_estimated_from_null_p_values():
    looks = (3, 5, 8)
    corr = seq.canonical_correlation(looks)
    z = np.random.default_rng(1).standard_normal((3000, 3)) @ np.linalg.cholesky(corr).T
    p = stats.norm.sf(z)
    # A p-value that piles up at 1 (a maximum over nulls) keeps its rank correlation.
    p = np.where(p > 0.7, 1.0, p)
    est = seq.estimate_correlation(p)
    assert np.allclose(np.diag(est), 1.0)
    assert est[0, 2] == pytest.approx(corr[0, 2], abs=0.08)
    assert np.all(np.linalg.eigvalsh(est) > 0)


def _bounds(futility=0.5) -> seq.Boundaries:
    null = stats.norm.sf(np.random.default_rng(2).standard_normal((200, 3)))
    return seq.boundaries_from_null((3, 5, 8), 0.05, "obf", futility, null)


def test_decisions_at_each_look():
    b = _bounds()
    assert seq.decide(b, 1, b.p[0] / 2) == seq.STOP_THRESHOLD
    assert seq.decide(b, 1, 0.2) == seq.CONTINUE
    assert seq.decide(b, 2, 0.5) == seq.STOP_FUTILITY
    assert seq.decide(b, 3, 0.9) == seq.STOP_FINAL  # the last look: no futility, no threshold
    assert seq.decide(b, 3, b.p[2]) == seq.STOP_THRESHOLD
    assert seq.decide(b, 1, float("nan")) == seq.CONTINUE  # not testable yet: the seeds decide
    assert seq.decide(_bounds(futility=None), 2, 0.99) == seq.CONTINUE
    assert seq.first_stop(b, [0.3, 0.01, 0.04]) == (2, seq.STOP_THRESHOLD)
    assert seq.first_stop(b, [0.3, 0.1, 0.2]) == (3, seq.STOP_FINAL)
    # The bootstrap can reach every boundary: one exceedance is still a crossing.
    assert all(1 / (b.n_boot(k) + 1) < b.p[k - 1] for k in (1, 2, 3))
    assert seq.Boundaries.from_dict(b.to_dict()) == b


def test_stagewise_adjusted_p_is_below_alpha_exactly_when_a_boundary_was_crossed():
    b = _bounds()
    for look in (1, 2, 3):
        crossed = seq.adjusted_p(b, look, b.p[look - 1] * 0.99)
        short = seq.adjusted_p(b, look, b.p[look - 1] * 1.05)
        assert crossed <= b.alpha + 2e-3 and short > crossed
    # Stopping early with the same p is stronger evidence than at the last look.
    assert seq.adjusted_p(b, 1, 1e-4) < seq.adjusted_p(b, 3, 1e-4)
    assert seq.adjusted_p(b, 3, b.p[2] * 0.99) == pytest.approx(b.alpha, abs=3e-3)


def test_apply_design_judges_the_shared_row_by_the_looks_boundary():
    b = _bounds()
    design = {"boundaries": b.to_dict(), "looks": [{"look": 1, "decision": "continue"}]}
    row = pd.DataFrame([{"verdict": "threshold", "p": 0.02, "best_model": "hinge"}])
    # At look 1 (3 seeds), p = 0.02 is a fixed-design threshold but not past the boundary.
    early = seq.apply_design(row, design, n_seeds=3).iloc[0]
    assert early["verdict"] == "no threshold" and early["decision"] == seq.CONTINUE
    assert early["recorded"] == "continue" and early["look"] == 1
    assert "continues to the next look" in seq.design_statement(early)
    final = seq.apply_design(row, design, n_seeds=8).iloc[0]
    assert final["verdict"] == "threshold" and final["look"] == 3
    assert final["p_adjusted"] <= 0.05


def test_the_design_keeps_alpha_when_the_test_is_exact():
    """Looks of an exact test (uniform p-values, correlated as seeds accumulate): the
    boundaries fitted on one set of null studies keep the overall false-threshold rate of
    another at alpha, where testing at alpha on every look would not."""
    looks = (4, 5, 6, 8)
    chol = np.linalg.cholesky(seq.canonical_correlation(looks))
    rng = np.random.default_rng(7)
    fit = stats.norm.sf(rng.standard_normal((400, 4)) @ chol.T)
    b = seq.boundaries_from_null(looks, 0.05, "obf", 0.5, fit)
    judged = stats.norm.sf(rng.standard_normal((40_000, 4)) @ chol.T)
    stops = [seq.first_stop(b, row) for row in judged[:8000]]
    rate = np.mean([d == seq.STOP_THRESHOLD for _, d in stops])
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 8000)
    # Without futility the boundaries spend alpha itself (futility only lowers the rate).
    crossed = (judged <= np.array(b.p)).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 40_000) + 0.004)
    naive = (judged <= 0.05).any(axis=1).mean()
    assert naive > 0.08


def test_expected_seeds_of_the_textbook_model():
    """The dry run's quick model: a drift for a given fixed power, and what the looks cost."""
    plain = seq.boundaries_from_correlation(
        (4, 8), 0.05, "obf", None, seq.canonical_correlation((4, 8))
    )
    _, rate = seq.expected_seeds(plain, 0.0)
    assert rate == pytest.approx(0.05, abs=0.004)  # no effect: alpha, spent over both looks
    _, power = seq.expected_seeds(plain, seq.drift_for_power(0.9, 0.05))
    assert 0.86 < power < 0.9  # O'Brien-Fleming costs a little power at the same seeds
    futile = seq.boundaries_from_correlation(
        (4, 8), 0.05, "obf", 0.5, seq.canonical_correlation((4, 8))
    )
    seeds, _ = seq.expected_seeds(futile, 0.0)
    # Under no effect half the studies are below the null median at look 1 and stop there.
    assert seeds == pytest.approx(0.5 * 4 + 0.5 * 8, abs=0.05)
    assert seq.drift_for_power(0.05, 0.05) == pytest.approx(0.0)
