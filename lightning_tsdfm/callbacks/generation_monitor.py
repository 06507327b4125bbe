"""GenerationMonitor: after validation, sample from the module, log sample text, generative perplexity and entropy."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_tsdfm.data.decoding import decoder_from_card
from lightning_tsdfm.metrics.entropy import unigram_entropy
from lightning_tsdfm.metrics.evaluate import evaluate_samples
from lightning_tsdfm.metrics.judges import build_judge
from lightning_tsdfm.seeding import derived_generator


class GenerationMonitor(L.Callback):
    """Every ``every_n_validations`` validations, draw ``num_samples`` sequences in ``steps`` steps.

    Logs ``val/gen_ppl`` and ``val/entropy`` (mean per-sample unigram entropy, nats) under ``judge``, and
    the first ``num_logged_texts`` decoded samples to TensorBoard. ``judge="auto"`` uses the oracle on the
    synthetic language and skips perplexity on text (pass ``ar:<ckpt>`` or ``smollm2`` there).

    Args:
        num_samples: sequences drawn per check.
        steps: sampling steps.
        judge: ``auto``, ``none``, ``oracle``, ``smollm2``, ``ar:<checkpoint>`` or ``hf:<model>``.
        every_n_validations: run on every n-th validation.
        num_logged_texts: decoded samples written to the logger.
        seed: sampling seed (combined with the global step).
    """

    def __init__(self, num_samples: int = 32, steps: int = 64, judge: str = "auto", every_n_validations: int = 1,
                 num_logged_texts: int = 4, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.steps = steps
        self.judge_spec = judge
        self.every_n_validations = every_n_validations
        self.num_logged_texts = num_logged_texts
        self.seed = seed
        self._judge = None
        self._validations = 0

    def _get_judge(self, card: dict | None):
        if self._judge is None:
            spec = self.judge_spec
            if spec == "auto":
                spec = "oracle" if card and card.get("kind") == "synthetic" else "none"
            self._judge = False if spec == "none" else build_judge(spec, card)
        return self._judge or None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(pl_module, "sample"):
            return
        self._validations += 1
        if (self._validations - 1) % self.every_n_validations:
            return
        g = derived_generator(self.seed, trainer.global_step, trainer.global_rank, pl_module.device)
        tokens = pl_module.sample(self.num_samples, self.steps, generator=g).cpu()
        card = getattr(pl_module, "data_card", None)
        texts = decoder_from_card(card)(tokens) if card else None
        judge = self._get_judge(card)
        if judge is not None:
            scores = evaluate_samples(judge, tokens, texts)
            pl_module.log("val/gen_ppl", scores["gen_ppl"], rank_zero_only=True)
            pl_module.log("val/entropy", scores["entropy"], rank_zero_only=True)
        else:
            pl_module.log("val/entropy", unigram_entropy(tokens).mean().item(), rank_zero_only=True)
        if texts and trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    shown = "\n\n".join(f"    {t}" for t in texts[: self.num_logged_texts])
                    logger.experiment.add_text(f"samples/{self.steps}_steps", shown, trainer.global_step)
