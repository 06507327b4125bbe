"""ShapingSettings: what shapes a run or a sampler, one frozen object with one set of defaults.

The settings of :class:`~lightning_tsdfm.shaping.TrajectoryShaper`, ``tsdfm sample --shaped`` and
:func:`~lightning_tsdfm.samples_io.generate_samples`: the compass, K = ``num_candidates`` candidates per jump, the
selection ``policy`` with the values it reads (``selection_temperature`` tau of ``boltzmann``, ``switch_time`` of
``sequence_to_token``), ``shape_from`` and ``shape_until`` (only the jumps that start at shape_from <= t < shape_until
are shaped) and, for an energy over whole proposals, ``filler_draws`` M (the open positions filled M times, the energy the marginal over them). The defaults are
the best learned-compass setting measured: ``boltzmann`` at tau = 1 over K = 16, every jump shaped.

:meth:`ShapingSettings.as_dict` is how checkpoints, result rows and sample files record them (a value the policy does
not read recorded as None), :meth:`ShapingSettings.from_dict` reads such a record back, and
:meth:`ShapingSettings.differences` names the settings a record differs in (a resumed run is refused on any).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Literal

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.shaping.energies import is_proposal_energy
from lightning_tsdfm.shaping.selection import SelectionPolicy, check_unit_interval, make_selection

Policy = Literal["argmin", "boltzmann", "importance", "sequence_to_token"]

#: the policies that read selection_temperature and switch_time
READS = {"selection_temperature": ("boltzmann",), "switch_time": ("sequence_to_token",)}

#: names an earlier version recorded a setting under: old -> current
RECORDED_AS = {"k": "num_candidates"}


@dataclass(frozen=True)
class ShapingSettings:
    """What shapes the jumps: the compass (a compass checkpoint, ``oracle``, ``ar:<checkpoint>``, ``hf:<name>``,
    ``smollm2`` or ``oracle-sequence``), K candidates per jump, the selection policy, tau of ``boltzmann``
    (k ~ softmax(-E_k / tau)), the time at which ``sequence_to_token`` switches to tokens, M filler draws per candidate
    of a proposal energy, and the shaping window: a jump that starts before ``shape_from`` or at or after
    ``shape_until`` stays blind. Checked when built: K >= 1, M >= 1, a known policy, tau > 0, the times in [0, 1],
    shape_from <= shape_until."""

    compass: str
    num_candidates: int = 16
    policy: Policy = "boltzmann"
    selection_temperature: float = 1.0
    switch_time: float = 0.5
    shape_from: float = 0.0
    filler_draws: int = 1
    shape_until: float = 1.0

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates (K) must be >= 1, got {self.num_candidates}.")
        if self.filler_draws < 1:
            raise ValueError(f"filler_draws (M) must be >= 1, got {self.filler_draws}.")
        if not self.selection_temperature > 0:  # checked whichever policy is chosen: a wrong value is a wrong command
            raise ValueError(f"selection_temperature must be > 0, got {self.selection_temperature} (use argmin for "
                             f"tau -> 0).")
        check_unit_interval("switch_time", self.switch_time)
        self.selection()  # the policy's own checks: a known name, the shaping window in [0, 1]

    def selection(self) -> SelectionPolicy:
        """The selection policy these settings name."""
        return make_selection(self.policy, self.selection_temperature, self.switch_time, self.shape_from,
                              self.shape_until)

    def as_dict(self) -> dict:
        """The eight settings by name, each value the run does not read as None (``selection_temperature`` but for
        ``boltzmann``, ``switch_time`` but for ``sequence_to_token``, ``filler_draws`` but for a proposal energy)."""
        unread = {name for name, policies in READS.items() if self.policy not in policies}
        unread |= set() if is_proposal_energy(self.compass) else {"filler_draws"}
        return {name: None if name in unread else value for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> ShapingSettings:
        """Settings from a dict of :meth:`as_dict`'s names (a missing or None value takes the default); an unknown
        name is refused rather than ignored."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise UserError(f"Unknown shaping settings {unknown}: use {names} (K is 'num_candidates').")
        if values.get("compass") is None:
            raise UserError("The shaping settings name no compass: give 'compass' (a compass checkpoint or 'oracle').")
        return cls(**{name: value for name, value in values.items() if value is not None})

    def differences(self, recorded: dict) -> list[str]:
        """``name: recorded -> ours`` for each setting that ``recorded`` (an :meth:`as_dict` record, e.g. a
        checkpoint's) gives otherwise; settings it does not record are not compared. A compass file named by another
        path is the same compass."""
        ours = self.as_dict()
        recorded = {RECORDED_AS.get(name, name): value for name, value in recorded.items()}
        return [f"{name}: {recorded[name]!r} -> {ours[name]!r}" for name in ours
                if name in recorded and recorded[name] != ours[name]
                and not (name == "compass" and _same_file(recorded[name], ours[name]))]


def _same_file(a, b) -> bool:
    """``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):
        return False
