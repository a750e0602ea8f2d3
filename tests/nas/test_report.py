"""The report's arithmetic on hand-made runs: best so far, the comparison's budgets and the
budgets at which one run is not ahead, which runs compare at all, the stretches a run ran in."""

import pytest

from nas.reports.compare import (ahead_verdict, budget_rows, check_comparable, median_so_far,
                                 not_ahead)
from nas.reports.search import best_so_far, chunks


def test_best_so_far_skips_failures_and_keeps_the_maximum():
    rewards = [None, 0.2, 0.1, None, 0.5, 0.3]
    assert best_so_far([{"reward": r} for r in rewards]) == [None, 0.2, 0.2, 0.2, 0.5, 0.5]


def test_median_so_far_skips_failures_and_averages_an_even_count():
    rewards = [None, 0.2, 0.1, None, 0.5, 0.3]
    assert median_so_far([{"reward": r} for r in rewards]) == [
        None, 0.2, pytest.approx(0.15), pytest.approx(0.15), 0.2, pytest.approx(0.25)]


def test_budget_rows_every_ten_and_at_each_runs_end():
    mine = [0.0] * 5 + [0.1] * 5 + [0.2] * 5 + [0.3] * 5 + [0.4] * 3
    theirs = [0.25] * 12
    rows = budget_rows(mine, theirs)
    assert [n for n, _, _ in rows] == [10, 12, 20, 23]
    assert rows[0][1:] == (0.1, 0.25) and rows[1][1:] == (0.2, 0.25)
    assert rows[2][1:] == (0.3, None) and rows[3][1:] == (0.4, None)


def test_not_ahead_lists_the_level_and_behind_budgets_while_both_last():
    mine = [0.1, 0.3, 0.3, 0.3, 0.6]
    theirs = [0.2, 0.2, 0.3, 0.4]
    assert not_ahead(mine, theirs, 1) == [1, 3, 4]
    assert not_ahead(mine, theirs, 2) == [3, 4]
    assert not_ahead([None, 0.1], [None, None], 1) == [1]


def test_ahead_verdict_says_where_and_by_how_much():
    mine = [0.1, 0.3, 0.3, 0.3, 0.6]
    theirs = [0.3, 0.2, 0.3, 0.45]
    assert ahead_verdict(mine, theirs, 1) == ("no: level or behind at 3 of 4 budgets, first at 1, "
                                              "by up to 0.2000.")
    assert ahead_verdict(mine, theirs, 2) == ("no: level or behind at 2 of 3 budgets, first at 3, "
                                              "by up to 0.1500.")
    assert ahead_verdict(mine[1:3], theirs[1:3], 1) == "no: level or behind at 1 of 2 budgets, " \
        "first at 2, by up to 0.0000."
    assert ahead_verdict([0.3, 0.4], [0.2, 0.3, 0.5], 1) == "yes."


def test_chunks_split_at_pauses_longer_than_the_gap():
    spans = [(0, 80), (81, 170), (171, 250), (2000, 2090), (2091, 2170)]
    trials = [{"started_at": s, "finished_at": f} for s, f in spans]
    trials.append({"started_at": 3000, "finished_at": None})  # still running: not counted
    assert chunks(trials, gap_s=600) == [{"start": 0, "end": 250, "trials": 3},
                                         {"start": 2000, "end": 2170, "trials": 2}]
    assert len(chunks(trials, gap_s=5000)) == 1


def test_distance_curve_follows_the_best_so_far_and_the_populations_median():
    from nas.reports.rediscovery import distance_curve
    from search_space import builtin_spec, genome_from_spec, get_space

    space = get_space("spinenet-49")
    seed, target = (genome_from_spec(builtin_spec(n), space).to_dict()
                    for n in ("resnet50-seed", "spinenet-49"))
    trials = [{"genome": g, "reward": r}
              for g, r in ((seed, 0.1), (target, 0.3), (seed, 0.2), (seed, None))]
    curve = distance_curve(trials, genome_from_spec(builtin_spec("spinenet-49"), space), space,
                           population=2)
    # The seed is 26 decisions from SpineNet-49 (34 of 60 shared: similarity 0.5667).
    assert [p["best"]["total"] for p in curve] == [26, 0, 0, 0]
    assert [p["median"] for p in curve] == [26, 13, 13, 26]
    assert [p["trial"] for p in curve] == [1, 2, 3, 4]


def test_runs_on_another_space_objective_or_proxy_are_not_compared():
    config = {"space": "spinenet-49", "objective": {"name": "ap", "weight": 0.0},
              "proxy": {"preset": "default", "set": [], "seeds": [0]}}
    check_comparable("a", config, "b", {**config, "objective": {"name": "ap", "weight": -0.07}})
    for key, value, shown in (("space", "r0-sp53", "'spinenet-49' and 'b' space 'r0-sp53'"),
                              ("objective", {"name": "ap_flops"}, "'ap' and 'b' objective 'ap_flops'"),
                              ("proxy", {"preset": "default", "set": [], "seeds": [0, 1]},
                               "{'preset': 'default', 'set': [], 'seeds': [0]} and 'b' proxy "
                               "{'preset': 'default', 'set': [], 'seeds': [0, 1]}")):
        with pytest.raises(ValueError) as error:
            check_comparable("a", config, "b", {**config, key: value})
        assert str(error.value) == (f"--compare: 'a' searched {key} {shown}; their rewards are "
                                    "not comparable")

