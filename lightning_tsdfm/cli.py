"""``tsdfm``: LightningCLI for fit/validate/test, plus ``sample`` and ``evaluate``.

    tsdfm fit --config configs/synthetic_tiny.yaml
    tsdfm sample --checkpoint runs/.../last.ckpt --steps 1024 --output samples.jsonl
    tsdfm evaluate samples.jsonl more.jsonl --judges oracle

An error the user can act on (:func:`lightning_tsdfm.errors.user_message`) is printed as one line on stderr and
exits with status 2; ``--debug`` anywhere on the command line shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence, get_args

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

import lightning_tsdfm  # noqa: F401  (registers the module and data classes for short class names)
from lightning_tsdfm.checkpoint_io import install_atomic_checkpoint_io
from lightning_tsdfm.checkpoints.classes import module_class
from lightning_tsdfm.checkpoints.file import check_local_checkpoint
from lightning_tsdfm.checkpoints.header import check_resumed_kind
from lightning_tsdfm.checkpoints.loading import current_hparams, read_checkpoint
from lightning_tsdfm.devices import check_device
from lightning_tsdfm.errors import UserError, user_message
from lightning_tsdfm.metrics.evaluate import evaluate_samples
from lightning_tsdfm.metrics.judges import build_judge, check_judge_fits
from lightning_tsdfm.plugins import load_plugins
from lightning_tsdfm.run_directory import (
    link_logger_to_run_directory,
    place_checkpoints_in_run_directory,
    run_directory_lock,
)
from lightning_tsdfm.samples_io import check_samples_path, generate_samples, read_jsonl, write_jsonl
from lightning_tsdfm.sampling import parse_step_sizes
from lightning_tsdfm.shaping.settings import Policy, ShapingSettings


class TsdfmCLI(LightningCLI):
    """LightningCLI in subclass mode whose data vocabulary and length are linked into the model; the run directory
    is one key, ``trainer.default_root_dir`` (the logger's ``save_dir`` and the checkpoint ``dirpath`` follow it:
    :mod:`lightning_tsdfm.run_directory`); checkpoints are written atomically
    (:class:`~lightning_tsdfm.checkpoint_io.AtomicCheckpointIO`), and ``fit`` refuses to write over a run's
    ``last.ckpt`` unless it resumes (``--ckpt_path``) or is told to (``--overwrite``), nor into a run directory
    another ``fit`` is using (:func:`~lightning_tsdfm.run_directory.run_directory_lock`)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.seq_len", "model.init_args.seq_len", apply_on="instantiate")
        link_logger_to_run_directory(parser)
        parser.add_argument("--overwrite", action="store_true",
                            help="fit: start over in a run directory that already holds a last.ckpt (default false)")

    def _parse_ckpt_path(self) -> None:
        """Lightning's step that reads a resumed checkpoint's hyper-parameters into the config, after checking that
        ``--ckpt_path`` is a readable lightning-tsdfm checkpoint of the configured model's kind (Lightning would
        otherwise swap in the checkpoint's own class), and with a checkpoint of an earlier version read under today's
        names (flat ``lr`` as ``optimizer.lr``, ...): Lightning would pass the old names to the module. A remote
        ``--ckpt_path`` (a URL, ``registry:``) is refused: Lightning would download and unpickle it unchecked."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path:
            check_local_checkpoint(ckpt_path)
        if not ckpt_path or not Path(ckpt_path).is_file():
            return  # "last", "best", "hpc" or a missing file: Lightning's checks
        checkpoint = read_checkpoint(ckpt_path)
        model = self.config[subcommand].get("model")
        class_path = model.get("class_path") if hasattr(model, "get") else None
        module_name, _, class_name = class_path.rpartition(".") if isinstance(class_path, str) else ("", "", "")
        configured = getattr(importlib.import_module(module_name), class_name, None) if module_name else None
        if getattr(configured, "checkpoint_kind", None) is not None:
            check_resumed_kind(checkpoint["tsdfm"], configured, ckpt_path)
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        hparams = current_hparams(module_class(checkpoint["tsdfm"]["class_path"], ckpt_path), hparams)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run ``subcommand``; ``fit`` holds its run directory while it runs (its first process only: the other
        processes of a multi-process run share it)."""
        root = self.config[subcommand].trainer.get("default_root_dir") if subcommand == "fit" else None
        if not root or self.trainer.global_rank != 0:
            return super()._run_subcommand(subcommand)
        with run_directory_lock(root):
            super()._run_subcommand(subcommand)

    def before_instantiate_classes(self) -> None:
        place_checkpoints_in_run_directory((self.config[self.subcommand] if self.subcommand else self.config).trainer)

    def instantiate_trainer(self, **kwargs):
        return install_atomic_checkpoint_io(super().instantiate_trainer(**kwargs))

    def before_fit(self) -> None:
        config = self.config[self.subcommand]
        for callback in self.trainer.checkpoint_callbacks:
            if not isinstance(callback, ModelCheckpoint) or not callback.dirpath:
                continue  # no dirpath: Lightning writes under a new logger version each run
            if config.get("overwrite"):
                callback._enable_version_counter = False  # write over last.ckpt, not beside it as last-v1.ckpt
                continue
            last = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
            if last.is_file() and not config.get("ckpt_path"):
                raise UserError(
                    f"{last} already exists: this run would write over it. Resume that run with --ckpt_path {last}, "
                    f"or start over with --overwrite (or write elsewhere: another --trainer.default_root_dir)."
                )


def sample(
    checkpoint: str,
    output: str,
    steps: Optional[int] = None,
    num_samples: int = 64,
    batch_size: Optional[int] = None,
    seed: int = 0,
    dtype: str = "float64",
    device: str = "cpu",
    shaped: Optional[str] = None,
    num_candidates: int = ShapingSettings.num_candidates,
    policy: str = ShapingSettings.policy,
    selection_temperature: float = ShapingSettings.selection_temperature,
    switch_time: float = ShapingSettings.switch_time,
    shape_from: float = ShapingSettings.shape_from,
    filler_draws: int = ShapingSettings.filler_draws,
    shape_until: float = ShapingSettings.shape_until,
    sampler: Optional[str] = None,
    temperature: float = 1.0,
    step_sizes: Optional[str] = None,
    prompt: Optional[str] = None,
    template: Optional[str] = None,
    prompts_file: Optional[str] = None,
    length: Optional[int] = None,
    stride: Optional[int] = None,
    overwrite: bool = False,
) -> None:
    """Draw samples from a teacher or student checkpoint and write them as JSONL (one sample a line, with metadata).

    Args:
        checkpoint: a checkpoint written by `tsdfm fit`.
        output: the JSONL file to write.
        steps: sampling steps (jumps of size 1/steps; default 64, or the number of ``step_sizes``).
        num_samples: number of sequences.
        batch_size: sequences per forward pass (default: all at once).
        seed: seed of the sampling generator.
        dtype: float type of the categorical draws (float64 keeps the tails of small probabilities).
        device: cpu, cuda, cuda:1, ...
        shaped: a compass checkpoint, ``oracle`` (the exact energy of a synthetic language's data path), or an energy
            over whole proposals (``ar:<causal LM checkpoint>``, ``hf:<name>``, ``oracle-sequence``): guide every jump
            with it (K candidates, about K times the cost).
        num_candidates: K, candidates per jump with --shaped (``--k`` is the same option). The shaping settings and
            their defaults are :class:`~lightning_tsdfm.shaping.ShapingSettings`, TrajectoryShaper's.
        policy: argmin | boltzmann | importance | sequence_to_token, with --shaped.
        selection_temperature: tau of the boltzmann policy.
        switch_time: t at which the sequence_to_token policy switches from sequences to tokens.
        shape_from: with --shaped, jumps that start before this time stay blind (0: every jump is guided).
        shape_until: with --shaped, jumps that start at or after this time stay blind (1: every jump is guided).
        filler_draws: M, with a proposal energy: the open positions filled M times, the energy the marginal over them.
        sampler: one of the checkpoint's samplers (teacher, student: ancestral | first_hitting; MDLM: ancestral | cached;
            SEDD: tweedie | euler); default its first.
        temperature: sampling temperature T: tokens are drawn from p^(1/T); 1 is the model itself.
        step_sizes: a non-uniform grid, one step size per step summing to one, e.g.
            ``1/64,1/64,1/32,1/16,1/8,1/4,1/4,1/4``.
        prompt: a prefix to continue (text; on a synthetic language token ids, ``t3 t17``): num_samples samples of it.
        template: known tokens anywhere, ``[MASK]`` at each position to fill (``The [MASK] sat on the [MASK] mat.``).
        prompts_file: one prompt or template a line: num_samples samples of each.
        length: tokens a sample (default the model's seq_len); longer is generated semi-autoregressively.
        stride: with --length above seq_len, new tokens a window (default seq_len / 2); the rest is the tail before.
        overwrite: write over ``output`` even when it is not a sample file (never over a ``.ckpt``).
    """
    check_samples_path(output, overwrite)
    check_device(device)
    grid = None
    if step_sizes is not None:
        grid = parse_step_sizes(step_sizes)
        if steps is not None and steps != len(grid):
            raise UserError(f"--steps {steps} but {len(grid)} --step_sizes: give one size per step, or drop --steps.")
    steps = len(grid) if grid else (64 if steps is None else steps)
    shaping = (ShapingSettings(shaped, num_candidates, policy, selection_temperature, switch_time, shape_from,
                               filler_draws, shape_until) if shaped else None)
    with _one_line_warnings():
        samples = generate_samples(checkpoint, steps, num_samples, seed, batch_size, dtype, device, shaping=shaping,
                                   sampler=sampler, temperature=temperature, step_sizes=grid, prompt=prompt,
                                   template=template, prompts_file=prompts_file, length=length, stride=stride)
    write_jsonl(samples, output, overwrite)
    print(f"wrote {len(samples.texts)} samples ({steps} steps, seed {seed}, temperature {temperature}) to {output}")
    for text in samples.texts[:3]:
        print("  ", text[:200])


def evaluate(files: list[str], judges: Sequence[str] = ("auto",), max_tokens: int = 128, reduction: str = "corpus") -> list[dict]:
    """Score JSONL sample files with judges and print one table: generative perplexity, entropy, sample count.

    Args:
        files: JSONL files written by `tsdfm sample`.
        judges: oracle, smollm2, ar:<checkpoint>, hf:<model dir or name>; auto = oracle for synthetic data, smollm2 for text.
        max_tokens: judge tokens kept per sample.
        reduction: corpus (exp of the corpus token mean) or sample (mean of per-sample perplexities).
    """
    if max_tokens < 1:
        raise UserError(f"--max_tokens must be at least 1, got {max_tokens}: the judge scores the first --max_tokens "
                        f"tokens of every sample (default 128).")
    sets = [(f, read_jsonl(f)) for f in files]
    rows = []
    built = {}
    for spec in judges:
        for name, samples in sets:
            card = samples.meta.get("data", {})
            resolved = spec if spec != "auto" else ("oracle" if card.get("kind") == "synthetic" else "smollm2")
            check_judge_fits(resolved, card, name)
            key = (resolved, json.dumps(card.get("hmm"), sort_keys=True))  # the oracle is the samples' own language
            if key not in built:
                built[key] = build_judge(resolved, card, max_tokens)
            scores = evaluate_samples(built[key], samples.tokens, samples.texts, reduction)
            rows.append({"file": Path(name).name, "steps": samples.meta.get("steps"), "seed": samples.meta.get("seed"), **scores})
    print(format_table(rows))
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"| {'file':<32} | {'steps':>5} | {'judge':<14} | {'gen_ppl':>9} | {'entropy':>7} | {'n':>5} | {'seed':>4} |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(
            f"| {r['file']:<32} | {r['steps']!s:>5} | {r['judge']:<14} | {r['gen_ppl']:>9.2f} | "
            f"{r['entropy']:>7.3f} | {r['n_samples']:>5} | {r['seed']!s:>4} |"
        )
    return "\n".join(lines)


def sample_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsdfm sample", description=sample.__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a teacher or student checkpoint written by `tsdfm fit`")
    p.add_argument("--output", required=True, help="the JSONL file to write")
    p.add_argument("--overwrite", action="store_true",
                   help="write over --output even when it is not a sample file (default: refuse; never a .ckpt)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps, jumps of size 1/steps (default 64, or the number of --step_sizes)")
    p.add_argument("--num_samples", type=int, default=64, help="number of sequences (default 64)")
    p.add_argument("--batch_size", type=int, default=None, help="sequences per forward pass (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling generator (default 0)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float type of the categorical draws; float64 keeps the tails of small probabilities")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--shaped", metavar="COMPASS", default=None,
                   help="guide every jump with this compass checkpoint, 'oracle' (a synthetic language's exact "
                        "data-path energy) or an energy over whole proposals (ar:<causal LM checkpoint>, hf:<name>, "
                        "oracle-sequence); optional, beyond the paper: K times the cost")
    p.add_argument("--num_candidates", "--k", type=int, default=ShapingSettings.num_candidates,
                   help="K, candidates per jump with --shaped (default %(default)s)")
    p.add_argument("--policy", choices=get_args(Policy), default=ShapingSettings.policy,
                   help="selection policy with --shaped (default %(default)s)")
    p.add_argument("--selection_temperature", type=float, default=ShapingSettings.selection_temperature,
                   help="tau of the boltzmann policy with --shaped (default %(default)s)")
    p.add_argument("--switch_time", type=float, default=ShapingSettings.switch_time,
                   help="t at which the sequence_to_token policy switches from sequences to tokens (default %(default)s)")
    p.add_argument("--shape_from", type=float, default=ShapingSettings.shape_from,
                   help="with --shaped, jumps that start before this time (t = 0 the source) stay blind (default %(default)s)")
    p.add_argument("--shape_until", type=float, default=ShapingSettings.shape_until,
                   help="with --shaped, jumps that start at or after this time stay blind (default %(default)s)")
    p.add_argument("--filler_draws", type=int, default=ShapingSettings.filler_draws,
                   help="M, with a proposal energy (ar:, hf:, oracle-sequence): the positions a jump leaves open are "
                        "filled M times and a candidate's energy is the marginal over them (default %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature T: tokens drawn from p^(1/T); 1 (default) is the model itself, "
                        "< 1 trades entropy for perplexity")
    p.add_argument("--step_sizes", metavar="H1,...,HN", default=None,
                   help="a non-uniform grid: one step size per step, summing to 1 (sets --steps), e.g. "
                        "1/64,1/64,1/32,1/16,1/8,1/4,1/4,1/4 (few tokens first); default: h = 1/steps")
    conditions = p.add_mutually_exclusive_group()
    conditions.add_argument("--prompt", default=None,
                            help="a prefix to continue: text, or on a synthetic language token ids ('t3 t17 t5'); "
                                 "--num_samples samples of it")
    conditions.add_argument("--template", default=None,
                            help="known tokens anywhere and [MASK] at each position to fill, e.g. "
                                 "'The [MASK] sat on the [MASK][MASK] mat.' (synthetic: 't3 [MASK] t17'); the positions "
                                 "after it are generated too")
    conditions.add_argument("--prompts_file", metavar="FILE", default=None,
                            help="one prompt or template a line (a line with [MASK] is a template): --num_samples "
                                 "samples of each")
    p.add_argument("--length", type=int, default=None,
                   help="tokens a sample (default: the model's seq_len); longer samples are generated in windows of "
                        "seq_len, each conditioned on the tail of what came before (semi-autoregressive)")
    p.add_argument("--stride", type=int, default=None,
                   help="with --length above seq_len: new tokens a window (default seq_len / 2)")
    p.add_argument("--sampler", default=None,
                   help="one of the model's samplers: ancestral (default) | first_hitting (mask source: the same law, "
                        "<= L forwards) for teachers and students; cached for MDLM; tweedie | euler for SEDD")
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsdfm evaluate", description=evaluate.__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="JSONL files written by `tsdfm sample`")
    p.add_argument("--judges", nargs="+", default=["auto"],
                   help="oracle | smollm2 | ar:<checkpoint> | hf:<model>; auto = oracle on synthetic data, smollm2 on text")
    p.add_argument("--max_tokens", type=int, default=128, help="judge tokens kept per sample (default 128)")
    p.add_argument("--reduction", choices=["corpus", "sample"], default="corpus",
                   help="corpus: exp of the corpus token mean; sample: mean of per-sample perplexities")
    return p


USAGE = """usage: tsdfm {fit,validate,test,predict,sample,evaluate} ...

  fit, validate, test, predict   LightningCLI subcommands (tsdfm fit --help)
  sample                         draw samples from a checkpoint to JSONL (tsdfm sample --help)
  evaluate                       score JSONL samples with judges (tsdfm evaluate --help)

example: tsdfm fit --config configs/synthetic_tiny.yaml --trainer.max_steps=100
--debug (anywhere): show the full traceback of an error instead of its one-line message
"""


@contextlib.contextmanager
def _one_line_warnings():
    """Warnings raised inside print as one line each, ``tsdfm: warning: <message>``, on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for warning in caught:
                print(f"tsdfm: warning: {warning.message}", file=sys.stderr)


def main(argv: Optional[list[str]] = None) -> None:
    """The ``tsdfm`` entry point: an error the user can act on is one line on stderr and exit status 2
    (``--debug``: the traceback instead); a run stopped by SIGTERM exits with 143, so a script does not take it
    for a finished one."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    if argv is None:
        sys.argv = [a for a in sys.argv if a != "--debug"]  # LightningCLI reads sys.argv itself
    else:
        argv = [a for a in argv if a != "--debug"]
    try:
        run(argv)
    except SIGTERMException:  # Lightning exits 0 after SIGTERM (its SystemExit has no code): the run did not finish
        print("tsdfm: stopped by SIGTERM before the run finished; its last.ckpt resumes it (--ckpt_path).",
              file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except Exception as error:  # noqa: BLE001 - anything not recognised is re-raised with its traceback
        message = None if debug else user_message(error)
        if message is None:
            raise
        print(f"tsdfm: error: {message}", file=sys.stderr)
        sys.exit(2)


def run(argv: Optional[list[str]] = None) -> None:
    """Dispatch a ``tsdfm`` command line (``argv`` default: ``sys.argv[1:]``); errors propagate."""
    given = argv
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] == "sample":
        sample(**vars(sample_parser().parse_args(argv[1:])))
        return
    if argv[0] == "evaluate":
        evaluate(**vars(evaluate_parser().parse_args(argv[1:])))
        return
    load_plugins()  # model families installed as plugins (MDLM, SEDD, ...) become --model choices
    TsdfmCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=given,
    )


if __name__ == "__main__":
    main()
