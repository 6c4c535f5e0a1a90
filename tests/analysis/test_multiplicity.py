"""The study-wide Benjamini-Hochberg step decides the threshold verdict, and the report says
so: a comparison whose raw threshold test is significant but whose adjusted one is not is
reported as "no threshold" in the verdict table, the headline and the conclusions."""

from __future__ import annotations

import numpy as np

from capstudy.analysis import headline, report, verdicts
from capstudy.analysis.simulate import simulate_study_table

DOMAINS = ("synth_a/rgb", "synth_a/ir", "synth_b/rgb", "synth_b/ir")
ALPHA = 0.05


def _one_kink_among_nulls(seed: int):
    """A study whose first eval domain has a modest kink and the other three no gain at all.

    The pretrained runs of the three null domains are replaced by their random-init partner
    plus fresh run noise, so only one of the four threshold tests carries a signal, and BH
    multiplies its p-value by up to four.
    """
    rng = np.random.default_rng(seed)
    table = simulate_study_table(rng, slope=0.035, seed_sd=0.012, eval_domains=DOMAINS)
    null = (table["init"] != "random") & (table["eval_domain"] != DOMAINS[0])
    partner = table[table["init"] == "random"].set_index(["phi", "seed", "eval_domain"])["map50"]
    keys = list(
        zip(table.loc[null, "phi"], table.loc[null, "seed"], table.loc[null, "eval_domain"])
    )
    table.loc[null, "map50"] = partner.loc[keys].to_numpy() + 0.017 * rng.standard_normal(len(keys))
    return table


def _demoted_case(max_seeds: int = 40):
    """The first simulated study in which BH demotes a raw-significant threshold."""
    for seed in range(max_seeds):
        v = verdicts.analyze_table(_one_kink_among_nulls(seed), fast=True, alpha=ALPHA)
        fits = v.fits
        demoted = fits[(fits["p_threshold"] < ALPHA) & (fits["p_threshold_adj"] >= ALPHA)]
        if not demoted.empty:
            return v, demoted.index[0]
    raise AssertionError(f"no demotion in {max_seeds} simulated studies: the test lost its case")


def test_an_adjusted_p_above_alpha_demotes_a_raw_significant_threshold():
    v, i = _demoted_case()
    row = v.fits.loc[i]
    assert row["n_threshold_tests"] == 4
    assert row["verdict"] == "no threshold" and row["direction"] == 0
    assert np.isnan(row["threshold"]) and row["best_model"] in ("constant", "linear", "smooth")
    # The headline's verdict table and the conclusion speak of no threshold for it.
    line = headline.verdict_table(v.fits.loc[[i]]).iloc[0]
    assert line["threshold (95% CI)"] == "no threshold"
    assert float(line["p (adjusted)"]) >= ALPHA
    text = report.conclusion(v.fits.loc[i], v.metric)
    assert "no threshold found" in text and "capacity threshold at about" not in text


def test_the_same_comparison_alone_keeps_its_threshold():
    """Without the other three tests there is nothing to adjust for: the raw verdict stands.
    (So the demotion above is the adjustment's doing, not the fit's.)"""
    v, i = _demoted_case()
    alone = v.selected[v.selected["eval_domain"] == v.fits.loc[i, "eval_domain"]]
    again = verdicts.analyze_table(alone, fast=True, alpha=ALPHA).fits
    assert len(again) == 1 and again.iloc[0]["n_threshold_tests"] == 1
    assert again.iloc[0]["p_threshold"] < ALPHA and again.iloc[0]["verdict"] == "threshold"
