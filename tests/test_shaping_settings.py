"""ShapingSettings: one frozen object and one set of defaults for the callback, `tsdfm sample --shaped` and
generate_samples; the record rows and sample files keep; its checks; and what a resumed run compares."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from lightning_tsdfm import cli
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.shaping import BoltzmannSelection, ShapingSettings, TrajectoryShaper

KEYS = ["compass", "num_candidates", "policy", "selection_temperature", "switch_time", "shape_from", "filler_draws",
        "shape_until"]


def _defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if name in KEYS and p.default is not inspect.Parameter.empty}


def test_the_callback_and_the_sampler_take_the_one_set_of_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(ShapingSettings) if f.name != "compass"}
    assert defaults == {"num_candidates": 16, "policy": "boltzmann", "selection_temperature": 1.0, "switch_time": 0.5,
                        "shape_from": 0.0, "filler_draws": 1, "shape_until": 1.0}
    assert _defaults(TrajectoryShaper) == defaults
    assert _defaults(cli.sample) == defaults
    parsed = vars(cli.sample_parser().parse_args(["--checkpoint", "c.ckpt", "--output", "s.jsonl", "--shaped", "oracle"]))
    assert {name: parsed[name] for name in defaults} == defaults
    assert ShapingSettings.from_dict({"compass": "oracle"}) == ShapingSettings("oracle")
    assert TrajectoryShaper("oracle").shaping == ShapingSettings("oracle")


def test_its_record_keeps_the_row_keys_and_leaves_out_what_the_policy_does_not_read():
    assert list(ShapingSettings("oracle").as_dict()) == KEYS
    assert ShapingSettings("c.ckpt", 4, "boltzmann", 0.5).as_dict() == {
        "compass": "c.ckpt", "num_candidates": 4, "policy": "boltzmann", "selection_temperature": 0.5,
        "switch_time": None, "shape_from": 0.0, "filler_draws": None, "shape_until": 1.0}
    assert ShapingSettings("ar:lm.ckpt", 4, "importance", filler_draws=8).as_dict()["filler_draws"] == 8
    assert ShapingSettings("c.ckpt", policy="sequence_to_token", switch_time=0.25).as_dict()["switch_time"] == 0.25
    argmin = ShapingSettings("c.ckpt", 4, "argmin", shape_from=0.5)
    assert argmin.as_dict()["selection_temperature"] is None and argmin.as_dict()["switch_time"] is None
    for settings in (argmin, ShapingSettings("oracle", policy="sequence_to_token", switch_time=0.75),
                     ShapingSettings("oracle", policy="importance", shape_until=0.25),
                     ShapingSettings("oracle-sequence", policy="importance", filler_draws=4)):
        assert ShapingSettings.from_dict(settings.as_dict()) == settings
    assert TrajectoryShaper("oracle", 4, "argmin").state_dict() == {"seed": 0, **ShapingSettings("oracle", 4, "argmin").as_dict(),
                                                                     "compass_kind": "oracle", "compass_fingerprint": None}


def test_it_builds_the_policy_it_names():
    selection = ShapingSettings("oracle", policy="boltzmann", selection_temperature=0.3, shape_from=0.5).selection()
    assert isinstance(selection, BoltzmannSelection) and selection.temperature == 0.3 and selection.shape_from == 0.5


@pytest.mark.parametrize("settings,message", [
    (dict(num_candidates=0), r"num_candidates \(K\) must be >= 1, got 0."),
    (dict(filler_draws=0), r"filler_draws \(M\) must be >= 1, got 0."),
    (dict(policy="best"), "Unknown selection policy 'best'"),
    (dict(policy="argmin", selection_temperature=0.0), "selection_temperature must be > 0, got 0.0"),
    (dict(policy="argmin", switch_time=1.5), r"switch_time must lie in \[0, 1\], got 1.5."),
    (dict(shape_from=-0.5), r"shape_from must lie in \[0, 1\], got -0.5."),
    (dict(shape_until=1.5), r"shape_until must lie in \[0, 1\], got 1.5."),
    (dict(shape_from=0.5, shape_until=0.25), r"shape_until \(0.25\) is below shape_from \(0.5\).*swap them"),
])
def test_it_refuses_a_wrong_setting_whichever_policy_reads_it(settings, message):
    with pytest.raises(ValueError, match=message):
        ShapingSettings("oracle", **settings)


def test_a_record_with_an_unknown_setting_or_no_compass_is_refused():
    with pytest.raises(UserError, match=r"Unknown shaping settings \['k'\].*K is 'num_candidates'"):
        ShapingSettings.from_dict({"compass": "oracle", "k": 4})
    with pytest.raises(UserError, match="name no compass"):
        ShapingSettings.from_dict({"num_candidates": 4})


def test_it_names_the_settings_a_record_differs_in(tmp_path):
    ours = ShapingSettings(str(tmp_path / "compass.ckpt"), 16, "boltzmann")
    recorded = {**ours.as_dict(), "num_candidates": 4, "policy": "argmin", "selection_temperature": None,
                "compass_kind": "nce", "seed": 3}
    assert ours.differences(recorded) == ["num_candidates: 4 -> 16", "policy: 'argmin' -> 'boltzmann'",
                                          "selection_temperature: None -> 1.0"]
    assert ours.differences(ours.as_dict()) == []
    assert ours.differences({"k": 16, "policy": "boltzmann"}) == []  # an earlier record's name for K; unrecorded: not compared
    (tmp_path / "compass.ckpt").write_bytes(b"")
    (tmp_path / "runs").mkdir()
    moved = tmp_path / "runs" / ".." / "compass.ckpt"  # the same file by another path
    assert ours.differences({"compass": str(moved)}) == []
    assert ours.differences({"compass": "oracle"}) == [f"compass: 'oracle' -> {str(tmp_path / 'compass.ckpt')!r}"]
