"""The compass instrument: how well each energy ranks a jump's candidates, independent of sampling and distillation.

    python benchmarks/compasses.py --teacher runs/textlike_teacher_mask/checkpoints/last.ckpt \
        --compass nce=runs/textlike_compass_mask/checkpoints/last.ckpt \
        --compass causal-lm=ar:runs/textlike_causal_lm/checkpoints/last.ckpt \
        --compass oracle --compass oracle-sequence --compass random

For each time t_j = j / N of the N-step grid and each jump size h (``--jump-sizes``; default 1/N, the grid's own
jump): states x_t of the data path (x1 drawn from the synthetic language, noised to t_j), the teacher's K candidate
jumps to t_j + h (sharing the moves, as :class:`GuidedJump` draws them), and their value under the state oracle,
v_k = log p_{t+h}(x_k) (nats). Distillation's targets jump by less than the sampler does (a Heun target of the
8-step level by h = 1/16, the averaged endpoint over 4 sub-steps by 1/32): measure there with ``--jump-sizes``. Each compass picks the candidate with the
highest score: -sum_i e_i for a state energy (the argmin of the compass); an energy over whole proposals is scored
both ways, by its importance weight -sum_i e_i - log q(y_k | x_t) (``scoring=importance``, what sampling uses) and by
its energy alone (``scoring=energy``, the mode-seeking argmin), each with M filler draws of the positions that stay
open for every M of ``--filler-draws`` (``m``; the marginal over the fillers, as sampling with ``filler_draws`` M
scores). Per compass, scoring, M and time:

- share: the oracle's selection gain that the compass's choice gets, sum_b (v_c - mean_k v) / sum_b (max_k v - mean_k v)
  (1 for the state oracle, about 0 for a random choice), with its SE over sequences;
- top1: how often its choice is the oracle's; spearman: the rank correlation of its scores with v over the K;
- is_share: what importance resampling with the compass's weights w gets of the oracle's own importance resampling,
  sum_b (E_w[v] - mean_k v) / sum_b (E_w*[v] - mean_k v), w* the state oracle's weights p_{t+h}(x_k) p(x_t | x_k) /
  q(x_k | x_t), and is_tv: the mean total-variation distance between w and w* (the law the kept candidate is drawn
  from when shaping uses ``importance``; for a state energy w = softmax(-E_k - log q(x_k | x_t) + log p(x_t | x_k)),
  for a proposal energy's importance scoring w = softmax(-E_k - log q(y_k | x_t)); none for the energy alone).

Writes benchmarks/results/compasses.{jsonl,md} (rows of this teacher and grid replaced), one table per time.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from results_io import git_commit, markdown_table, replace_rows, this_command  # noqa: E402

from lightning_tsdfm.data.hmm import HiddenMarkovLanguage  # noqa: E402
from lightning_tsdfm.data.path_oracle import OracleCompass, PathOracle  # noqa: E402
from lightning_tsdfm.modules.checkpoint import load_module  # noqa: E402
from lightning_tsdfm.shaping import GuidedJump, make_selection  # noqa: E402
from lightning_tsdfm.shaping.compasses import load_matching_compass  # noqa: E402
from lightning_tsdfm.shaping.proposals import Proposals  # noqa: E402

BENCHMARK = "compasses"
COLUMNS = ["time", "jump", "compass", "kind", "scoring", "m", "share", "share_se", "top1", "spearman", "is_share", "is_tv",
           "oracle_gain_nats", "n_states", "k"]
RANDOM = "random"
PROPOSAL_KINDS = ("causal-lm", "oracle-sequence")


def selection_share(values: torch.Tensor, scores: torch.Tensor) -> tuple[float, float]:
    """The oracle's selection gain that the choice argmax_k scores gets, and its SE (delta method over sequences).

    values, scores: [K, B]. share = sum_b (v_c - mean v) / sum_b (max v - mean v)."""
    choice = scores.argmax(0)
    mean = values.mean(0)
    got = values.gather(0, choice[None])[0] - mean
    best = values.amax(0) - mean
    share = got.sum() / best.sum()
    residual = got - share * best  # the ratio estimator's linearisation
    se = residual.std() * math.sqrt(len(got)) / best.sum() if len(got) > 1 else torch.tensor(float("nan"))
    return share.item(), se.item()


def importance_share(values: torch.Tensor, log_weights: torch.Tensor, reference_log_weights: torch.Tensor) -> tuple[float, float]:
    """What resampling by ``log_weights`` gets of resampling by ``reference_log_weights`` (the oracle's), and the mean
    total-variation distance between the two laws.

    values, log weights: [K, B]. is_share = sum_b (E_w[v] - mean v) / sum_b (E_w*[v] - mean v)."""
    w, reference = torch.softmax(log_weights, 0), torch.softmax(reference_log_weights, 0)
    mean = values.mean(0)
    share = ((w * values).sum(0) - mean).sum() / ((reference * values).sum(0) - mean).sum()
    return share.item(), (0.5 * (w - reference).abs().sum(0)).mean().item()


def rank_correlation(values: torch.Tensor, scores: torch.Tensor) -> float:
    """Spearman's rho between ``scores`` and ``values`` over the K candidates [K, B], averaged over sequences."""
    def ranks(x):
        return x.argsort(0).argsort(0).double()

    a, b = ranks(values), ranks(scores)
    a, b = a - a.mean(0), b - b.mean(0)
    rho = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-12)
    return rho.mean().item()


def measure(teacher, compasses: dict[str, object], num_states: int, k: int, steps: int, seed: int,
            filler_draws: tuple[int, ...] = (1,), jump_sizes: tuple[float, ...] | None = None) -> list[dict]:
    """Rows of (time, jump, compass, scoring, M) figures for ``num_states`` data-path states at each time of the
    ``steps`` grid, for jumps of each of ``jump_sizes`` (default: 1 / ``steps``); a proposal energy is scored with the
    first M of max(``filler_draws``) fillers for each M."""
    card = teacher.data_card
    language = HiddenMarkovLanguage(card["hmm"])
    oracle = OracleCompass(PathOracle(language, teacher.path), teacher.hparams.seq_len)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for j, jump_size in tqdm([(j, s) for j in range(steps) for s in (jump_sizes or (1 / steps,))], desc="jumps"):
        t = torch.full((num_states,), j / steps, dtype=torch.float64)
        h = torch.full((num_states,), jump_size, dtype=torch.float64)
        later = (t + h).clamp(max=1.0)
        x_t = teacher.path.sample(language.sample(num_states, teacher.hparams.seq_len, g), t, g)
        with torch.no_grad():
            probs = torch.softmax(teacher(x_t, t.float()).float(), -1)
        jump = GuidedJump(lambda x, s: torch.zeros(x.shape), k, make_selection("importance"), scores="proposal",
                          filler_draws=max(filler_draws))
        jump.generator = g
        states, log_q, proposals = jump.propose(x_t, probs, t, h, teacher.path, g)
        flat = states.reshape(k * num_states, -1)
        values = -oracle.energies(flat, later.repeat(k)).double().sum(-1).reshape(k, num_states)
        log_ratio = log_q.double() - teacher.path.log_noising(states, x_t, t, later)  # a state's log q / p(x_t | x)
        candidates = InstrumentedJump(states, proposals, log_q.double(), log_ratio, later)
        for name, compass in compasses.items():
            for (scoring, m), (scores, log_weights) in _scores(compass, candidates, filler_draws, g).items():
                share, se = selection_share(values, scores)
                is_share, is_tv = (importance_share(values, log_weights, values - log_ratio)
                                   if log_weights is not None else (None, None))
                rows.append({"time": j / steps, "jump": jump_size, "compass": name, "kind": _kind(compass),
                             "scoring": scoring, "m": m, "share": share, "share_se": se,
                             "top1": (scores.argmax(0) == values.argmax(0)).double().mean().item(),
                             "spearman": rank_correlation(values, scores), "is_share": is_share, "is_tv": is_tv,
                             "oracle_gain_nats": (values.amax(0) - values.mean(0)).mean().item(),
                             "n_states": num_states, "k": k})
    return rows


@dataclass
class InstrumentedJump:
    """A jump's K candidate states [K, B, L], their whole proposals, log q of what each reveals [K, B], each state's
    log proposal ratio log q(x_k | x_t) - log p(x_t | x_k) [K, B] and the time t + h they are scored at [B]."""

    states: torch.Tensor
    proposals: Proposals
    log_q: torch.Tensor
    log_ratio: torch.Tensor
    later: torch.Tensor


def _scores(compass, candidates: InstrumentedJump, filler_draws,
            g) -> dict[tuple, tuple[torch.Tensor, torch.Tensor | None]]:
    """By (scoring, M): the compass's scores of the candidates [K, B] (higher is chosen) and the log weights [K, B]
    its ``importance`` shaping draws the kept candidate from (None where it does not: the random choice, a proposal
    energy's energy alone); M is None for a state energy."""
    k, b, n = candidates.states.shape
    if compass == RANDOM:
        return {("random", None): (torch.rand(k, b, generator=g, dtype=torch.float64), None)}
    later = candidates.later.float()
    with torch.no_grad():
        if compass.scores == "state":
            energies = compass.energies(candidates.states.reshape(k * b, n), later.repeat(k)).double()
            energies = energies.sum(-1).reshape(k, b)
            return {("energy", None): (-energies, -energies - candidates.log_ratio)}
        scores = {}
        for m in filler_draws:
            subset = Proposals(candidates.proposals.drawn[:, :m], candidates.proposals.filler_log_q[:m])
            energies = subset.energies(compass.energies, later).double().sum(-1)
            weighted = -energies - candidates.log_q
            scores |= {("importance", m): (weighted, weighted), ("energy", m): (-energies, None)}
    return scores


def _kind(compass) -> str:
    """``nce``, ``causal-lm``, ``oracle``, ``oracle-sequence`` (the loaded energy's kind) or ``random``."""
    return RANDOM if compass == RANDOM else getattr(compass, "kind", "nce")


def parse_compass(spec: str) -> tuple[str, str]:
    """``label=name`` or ``name`` -> (label, name)."""
    return tuple(spec.split("=", 1)) if "=" in spec and not spec.startswith(("ar:", "hf:")) else (spec, spec)


def filler_draws(row: dict) -> int | None:
    """A row's M: recorded, or 1 for a proposal energy's row recorded before M existed (None for a state energy)."""
    return row.get("m") or (1 if row["kind"] in PROPOSAL_KINDS else None)


def jump_of(row: dict) -> float:
    """A row's jump size: recorded, or the grid's own 1 / steps for a row recorded before jump sizes existed."""
    return row.get("jump") or 1 / row["steps"]


def measured_here(rows: list[dict]):
    """Whether a stored row is one that ``rows`` measure again: the same compass label, scoring, M, state count and
    jump size."""
    def key(row: dict) -> tuple:
        return row["compass"], row["scoring"], filler_draws(row), row["n_states"], round(jump_of(row), 12)

    keys = set(map(key, rows))
    return lambda row: key(row) in keys


def write_report(rows: list[dict]) -> None:
    lines = ["# The compass instrument", "",
             "Each energy's choice among K teacher candidates of a jump from data-path states, against the state oracle's "
             "(share of the oracle's selection gain, top-1 agreement, rank correlation), and the law its importance "
             "shaping keeps a candidate by against the oracle's (is_share, is_tv). Generated by "
             "benchmarks/compasses.py from compasses.jsonl.", ""]
    groups = sorted({(r["teacher"], r["steps"], r["seed"], r["command"], r["commit"]) for r in rows})
    for teacher, steps, seed, command, commit in groups:
        lines += [f"## {teacher}, {steps}-step grid", "", f"Command: `{command}` (commit {commit}, seed {seed}).", ""]
        group = [r for r in rows if (r["teacher"], r["steps"], r["seed"], r["command"], r["commit"])
                 == (teacher, steps, seed, command, commit)]
        for time in sorted({r["time"] for r in group}):
            at_time = sorted(({**r, "m": filler_draws(r), "jump": jump_of(r)} for r in group if r["time"] == time),
                             key=lambda r: -r["jump"])
            lines += [f"### t = {time:.3f}", "", markdown_table(at_time, COLUMNS), ""]
    (results_io.RESULTS / f"{BENCHMARK}.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="teacher checkpoint of a synthetic language")
    parser.add_argument("--compass", action="append", required=True, metavar="[LABEL=]NAME",
                        help="a compass checkpoint, oracle, oracle-sequence, ar:<causal LM>, or random (repeatable)")
    parser.add_argument("--num-states", type=int, default=256, help="data-path states per time (default 256)")
    parser.add_argument("--k", type=int, default=16, help="candidates per jump (default 16)")
    parser.add_argument("--steps", type=int, default=8, help="the grid: N jumps of size 1/N (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filler-draws", default="1", metavar="M[,M...]",
                        help="filler draws of the open positions a proposal energy is scored with (default 1)")
    parser.add_argument("--jump-sizes", default=None, metavar="H[,H...]",
                        help="the jumps' sizes, as fractions (1/16) or decimals (default 1/steps: the grid's own jump)")
    args = parser.parse_args(argv)
    filler_draws = tuple(int(m) for m in args.filler_draws.split(","))
    jump_sizes = tuple(float(Fraction(h)) for h in args.jump_sizes.split(",")) if args.jump_sizes else None
    if jump_sizes and not all(0 < h <= 1 for h in jump_sizes):
        parser.error(f"--jump-sizes must lie in (0, 1], got {args.jump_sizes}")
    teacher = load_module(args.teacher, expected_kind="teacher").eval()
    if (teacher.data_card or {}).get("kind") != "synthetic":
        raise SystemExit(f"compasses.py: {args.teacher} was not trained on a synthetic language; the instrument needs "
                         "the state oracle of one.")
    compasses = {}
    for label, name in map(parse_compass, args.compass):
        compasses[label] = name if name == RANDOM else load_matching_compass(name, teacher).eval()
    rows = measure(teacher, compasses, args.num_states, args.k, args.steps, args.seed, filler_draws, jump_sizes)
    common = {"benchmark": BENCHMARK, "teacher": args.teacher, "steps": args.steps, "seed": args.seed,
              "commit": git_commit(), "command": this_command()}
    rows = [{**common, **row} for row in rows]
    for row in rows:
        importance = f"  is_share {row['is_share']:.3f} tv {row['is_tv']:.3f}" if row["is_share"] is not None else ""
        print(f"t={row['time']:.3f} h={row['jump']:.4f} {row['compass']:>16} {row['scoring']:>10} M={row['m']}: share "
              f"{row['share']:.3f} ({row['share_se']:.3f}) top1 {row['top1']:.3f} spearman {row['spearman']:.3f}"
              f"{importance}  gain {row['oracle_gain_nats']:.1f} nats")
    write_report(replace_rows(BENCHMARK, rows, measured_here(rows), teacher=args.teacher, steps=args.steps))


if __name__ == "__main__":
    main()
