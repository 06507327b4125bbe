"""benchmarks/conditional.py end to end on a tiny text-like language: a data row and a model row per template and
temperature, the known tokens kept (guided sampling too), every row with its command, sample count, seed and entropy;
the matched-entropy rows of a temperature sweep (none where the sweep does not bracket the reference); the table;
and the registry's conditional arms. On a tiny text corpus: conditions from its validation split, continuations that
keep their prompt, a data row, a judge's NLL of the continuation alone given the prompt (a fake bigram judge checked by
hand), MAUVE of small feature sets and its noise ceiling, real continuations of other held-out blocks against the
references."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from lightning_helpers import BENCHMARKS, TINY_TEACHER, fit_checkpoint, import_benchmark

from lightning_tsdfm import SyntheticDataModule, TeacherModule
from lightning_tsdfm.data import TextDataModule
from lightning_tsdfm.metrics.judges import CausalLMJudge
from lightning_tsdfm.modules.optim import OptimizerConfig

DATA = {"family": "textlike", "vocab_size": 16, "num_topics": 2, "num_states": 4, "function_states": 1,
        "function_vocab": 4, "emissions_per_state": 2, "seq_len": 8, "num_train": 8, "num_val": 4, "batch_size": 4}


@pytest.fixture
def conditional(tmp_path, monkeypatch):
    return import_benchmark("conditional", tmp_path, monkeypatch)


def fit_teacher(root, steps: int):
    """A tiny teacher checkpoint of the language after ``steps`` steps, and a training config whose data is the
    language."""
    torch.manual_seed(0)
    module = TeacherModule(16, 8, backbone=TINY_TEACHER, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    ckpt = fit_checkpoint(module, root / "teacher", steps, SyntheticDataModule(**DATA))
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "lightning_tsdfm.SyntheticDataModule", "init_args": DATA}}))
    return ckpt, str(config)


@pytest.fixture
def teacher(tmp_path):
    return fit_teacher(tmp_path, 2)


@pytest.fixture
def sharper_teacher(tmp_path):
    """Trained long enough that its T = 1 completions are less diverse than hot ones (a sweep brackets them)."""
    return fit_teacher(tmp_path, 40)


def test_rows_for_each_template_and_model(conditional, teacher, tmp_path):
    ckpt, config = teacher
    rows = conditional.run("synthetic-textlike", config, ["prefix:3", "infill:2:6"],
                           [f"teacher:2,16:first_hitting={ckpt}"], num_conditions=12, seed=0, batch_size=5,
                           samples_dir=str(tmp_path / "samples"))
    assert {(r["template"], r["method"], r["steps"]) for r in rows} == {
        (t, m, s) for t in ("prefix:3", "infill:2:6") for m, s in (("data", None), ("teacher", 2), ("teacher", 16))}
    for r in rows:
        assert r["cond_ppl"] > 1 and r["reverse_ppl"] > 1 and r["entropy"] > 0 and r["nll_stderr"] > 0
        assert r["n_samples"] == 12 and r["seed"] == 0 and "conditional.py" in r["command"] and r["commit"]
        assert (r["known_tokens"], r["filled_tokens"]) == ((3, 5) if r["template"] == "prefix:3" else (4, 4))
    per_temperature, matched = (tmp_path / "results" / "conditional.md").read_text().split("## Matched entropy")
    assert per_temperature.count("| synthetic-textlike |") == 6 and "## Commands" in matched
    assert matched.count("no teacher-1024 T = 1 row of") == 4  # no 1024-step teacher measured: nothing is matched
    assert len(list((tmp_path / "samples").glob("*.jsonl"))) == 4
    with pytest.raises(SystemExit, match="prefix:P"):
        conditional.known_positions("prefix:8", 8)


def test_a_sweep_gives_rows_per_temperature_and_a_matched_row_at_the_teachers_entropy(conditional, sharper_teacher,
                                                                                      tmp_path):
    ckpt, config = sharper_teacher
    common = dict(num_conditions=32, seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"))
    conditional.run("synthetic-textlike", config, ["prefix:3"], [f"teacher:1024:first_hitting={ckpt}"],
                    temperatures=[1.0], **common)
    rows = conditional.run("synthetic-textlike", config, ["prefix:3"], [f"student-blind:2={ckpt}"],
                           temperatures=[0.05, 1.0, 20.0], **common)
    sweep = sorted((r for r in rows if r["method"] == "student-blind" and not r.get("reference")),
                   key=lambda r: r["sampling_temperature"])
    assert [r["sampling_temperature"] for r in sweep] == [0.05, 1.0, 20.0]
    reference = next(r for r in rows if r["method"] == "teacher" and not r.get("reference"))
    matched = {r["method"]: r for r in rows if r.get("reference")}
    assert set(matched) == {"teacher", "student-blind"}
    blind, own = matched["student-blind"], matched["teacher"]
    assert blind["reference"] == "teacher-1024" and blind["reference_entropy"] == reference["entropy"]
    low, high = (next(r for r in sweep if r["sampling_temperature"] == t) for t in blind["bracket"])
    assert low["entropy"] <= blind["reference_entropy"] <= high["entropy"]
    assert min(low["cond_ppl"], high["cond_ppl"]) <= blind["matched_cond_ppl"] <= max(low["cond_ppl"], high["cond_ppl"])
    assert 0 < blind["matched_nll_stderr"] <= max(low["nll_stderr"], high["nll_stderr"])
    # the teacher is its own reference: its T = 1 row, and the blind student is divided by it
    assert own["matched_cond_ppl"] == pytest.approx(reference["cond_ppl"]) and own["ratio_to_teacher_1024"] is None
    assert blind["ratio_to_teacher_1024"] == pytest.approx(blind["matched_cond_ppl"] / own["matched_cond_ppl"])
    assert blind["log_ratio_to_teacher_stderr"] == pytest.approx(
        math.hypot(blind["matched_nll_stderr"], own["matched_nll_stderr"]))
    assert blind["ratio_to_blind"] is None and blind["command"] == sweep[-1]["command"]
    stored = [json.loads(line) for line in (tmp_path / "results" / "conditional.jsonl").read_text().splitlines()]
    assert sum(bool(r.get("reference")) for r in stored) == 2  # recomputed, not appended twice
    assert "| prefix:3 | student-blind | 2 |" in (tmp_path / "results" / "conditional.md").read_text()


def _row(method: str, temperature: float, entropy: float, cond_ppl: float, steps: int = 8, **extra) -> dict:
    return {"dataset": "d", "template": "prefix:3", "method": method, "steps": steps, "sampler": "ancestral",
            "sampling_temperature": temperature, "entropy": entropy, "cond_ppl": cond_ppl, "nll_stderr": 0.1,
            "reverse_ppl": 5.0, "n_samples": 12, "commit": "abc", "command": "python benchmarks/conditional.py", **extra}


def test_matched_rows_interpolate_in_entropy_and_divide_by_the_blind_student(conditional):
    rows = [_row("teacher", 1.0, 2.0, 8.0, steps=1024),
            _row("student-blind", 0.8, 1.5, 10.0), _row("student-blind", 1.0, 2.5, 20.0),
            _row("student-guided", 0.8, 1.0, 6.0), _row("student-guided", 1.0, 3.0, 12.0)]
    matched = {r["method"]: r for r in conditional.matched_rows(rows)}
    blind, guided = matched["student-blind"], matched["student-guided"]
    assert blind["matched_cond_ppl"] == pytest.approx(math.exp(0.5 * math.log(10.0) + 0.5 * math.log(20.0)))
    assert blind["matched_nll_stderr"] == pytest.approx(math.hypot(0.05, 0.05)) and blind["bracket"] == [0.8, 1.0]
    assert guided["ratio_to_blind"] == pytest.approx(guided["matched_cond_ppl"] / blind["matched_cond_ppl"])
    assert guided["log_ratio_to_blind_stderr"] == pytest.approx(
        math.hypot(guided["matched_nll_stderr"], blind["matched_nll_stderr"]))
    assert matched["teacher"]["ratio_to_blind"] is None  # no blind student at 1024 steps


def test_a_sweep_that_does_not_bracket_the_reference_has_no_matched_row(conditional, tmp_path):
    rows = [_row("teacher", 1.0, 2.0, 8.0, steps=1024),
            _row("student-blind", 0.9, 2.4, 15.0), _row("student-blind", 1.0, 2.5, 20.0)]
    matched = conditional.matched_rows(rows)
    assert [r["method"] for r in matched] == ["teacher"]  # not extrapolated below the sweep's lowest entropy
    (tmp_path / "results").mkdir()
    conditional.write_report(rows + matched)
    table = (tmp_path / "results" / "conditional.md").read_text().split("## Matched entropy")[1]
    assert "entropy 2.000 outside the sweep's 2.400 .. 2.500: not extrapolated" in table


def test_guided_completions_keep_every_known_token_and_record_their_shaping(conditional, teacher, tmp_path):
    ckpt, config = teacher
    rows = conditional.run("synthetic-textlike", config, ["prefix:3", "infill:2:6"],
                           [f"student-guided:2={ckpt}@oracle:4:importance:0.0:filler_draws=1"], num_conditions=12,
                           seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"), temperatures=[0.8, 1.0])
    guided = [r for r in rows if r["method"] == "student-guided"]
    assert len(guided) == 4
    for r in guided:
        assert (r["compass"], r["compass_kind"], r["k"], r["policy"]) == ("oracle", "oracle", 4, "importance")
        assert r["sampling_shaping"]["num_candidates"] == 4 and r["sampling_shaping"]["shape_from"] == 0.0
    conditions = conditional.datamodule_from_config(config).heldout_tokens(12, 0)
    for template in ("prefix:3", "infill:2:6"):
        known = conditional.known_positions(template, 8)
        for suffix in ("_T0.8", ""):
            path = tmp_path / "samples" / f"synthetic-textlike_{template.replace(':', '-')}_student-guided_2{suffix}.jsonl"
            samples = [json.loads(line) for line in path.read_text().splitlines()]
            completions = torch.tensor([s["tokens"] for s in samples])
            assert len(completions) == 12 and torch.equal(completions[:, known], conditions[:, known])
            assert samples[0]["sampling_shaping"]["compass"] == "oracle"


def test_the_registry_refuses_a_conditional_arm_without_the_sweep_or_the_sampling_shaping(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import arms

    source = (arms.REGISTRY / "conditional.yaml").read_text()
    (tmp_path / "trainings.yaml").write_text((arms.REGISTRY / "trainings.yaml").read_text())
    broken = tmp_path / "conditional.yaml"
    broken.write_text(source.replace("temperatures: [1.0]", "temperature: 1.0", 1))
    with pytest.raises(arms.RegistryError, match=r"teacher-1024.sampling: missing \['temperatures'\]; "
                                                 r"unknown \['temperature'\]"):
        arms.load(tmp_path)
    broken.write_text(source.replace("    sampling_shaping: null\n", "", 1))
    with pytest.raises(arms.RegistryError, match=r"teacher-1024: missing \['sampling_shaping'\]"):
        arms.load(tmp_path)
    broken.write_text(source.replace("num_candidates: 16,", "", 1))
    with pytest.raises(arms.RegistryError, match=r"sampling_shaping: missing \['num_candidates'\]"):
        arms.load(tmp_path)


def test_a_guided_arms_command_passes_its_sweep_and_all_eight_settings_to_conditional_py(conditional):
    import arms
    import commands

    registry = arms.load()
    guided = registry.arms["conditional/student-guided-smallpathlm-is16-8"]
    command = commands.measure_command(guided, commands.Programs("python", "tsdfm"))
    assert command[command.index("--temperatures") + 1] == "0.6,0.7,0.8,0.9,1.0"
    method, steps, sampler, checkpoint, shaping = conditional.parse_model(command[command.index("--model") + 1])
    assert (method, steps, sampler) == ("student-guided-smallpathlm-is16", [8], "ancestral")
    assert checkpoint == guided.spec["model"]["checkpoint"] and shaping == guided.spec["sampling_shaping"]
    reference = registry.arms["conditional/teacher-1024"]
    assert reference.spec["sampling"]["temperatures"] == [1.0] and reference.spec["sampling_shaping"] is None
    assert command[command.index("--judges") + 1] == "oracle"


# ---- the corpus half

#: a fake judge's vocabulary: characters by their code modulo this
FAKE_VOCAB = 128


class BigramLM(torch.nn.Module):
    """Next-character logits from a fixed table indexed by the current character: log p(b | a) = table[a, b]."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]


class FakeJudge(CausalLMJudge):
    """A causal LM judge over characters whose per-token NLL is known, -table[previous, next], and whose last hidden
    state is the current character's one-hot."""

    def __init__(self, max_tokens: int = 128) -> None:
        table = torch.log_softmax(torch.randn(FAKE_VOCAB, FAKE_VOCAB, generator=torch.Generator().manual_seed(0)), -1)
        super().__init__("fake", BigramLM(table), lambda text: [ord(c) % FAKE_VOCAB for c in text], 0, max_tokens, 3)

    def model_outputs(self, tokens, valid):
        return self.model(tokens), torch.nn.functional.one_hot(tokens, FAKE_VOCAB).float()


def test_the_judge_scores_only_the_continuation_given_its_prompt():
    judge = FakeJudge(max_tokens=3)
    log_p = judge.model.table.double()
    read = judge.score_continuations(["ab", "wxyz", "q"], [" cd", "e", ""])
    # [BOS] a b | ' ' c d: the prompt's tokens are context only
    first = -(log_p[ord("b"), ord(" ")] + log_p[ord(" "), ord("c")] + log_p[ord("c"), ord("d")])
    # the prompt cut to its last 3 tokens: [BOS] x y z | e
    second = -log_p[ord("z"), ord("e")]
    assert read.nll.tolist() == pytest.approx([first.item(), second.item(), 0.0])
    assert read.count.tolist() == [3.0, 1.0, 0.0]
    one_hot = torch.eye(FAKE_VOCAB)
    assert torch.allclose(read.features[0], one_hot[[ord(" "), ord("c"), ord("d")]].mean(0))
    assert torch.equal(read.features[2], one_hot[ord("q")])  # no continuation: the last context token's state
    with pytest.raises(ValueError, match="one prompt per continuation"):
        judge.score_continuations(["a"], ["b", "c"])


def test_mauve_of_a_set_against_itself_is_one_and_against_a_distant_set_lower():
    from lightning_tsdfm.metrics.mauve import mauve_score

    g = torch.Generator().manual_seed(0)
    p, p_again = torch.randn(100, 8, generator=g), torch.randn(100, 8, generator=g)
    far = torch.randn(100, 8, generator=g) + 3.0
    assert mauve_score(p, p) == pytest.approx(1.0, abs=1e-6)
    assert mauve_score(p, p_again) > 0.5 > mauve_score(p, far)
    with pytest.raises(ValueError, match="one featuriser"):
        mauve_score(p, far[:, :4])
    with pytest.raises(ValueError, match="n >= 4"):
        mauve_score(p[:2], p[:2])


def test_the_mauve_ceiling_of_two_draws_of_one_law_is_high_and_of_two_laws_low():
    from lightning_tsdfm.metrics.mauve import mauve_ceiling

    g = torch.Generator().manual_seed(0)
    reference, other_draw = torch.randn(100, 8, generator=g), torch.randn(100, 8, generator=g)
    other_law = torch.randn(100, 8, generator=g) + 3.0
    assert mauve_ceiling(reference, other_draw) > 0.5 > mauve_ceiling(reference, other_law)
    with pytest.raises(ValueError, match="sets of one size"):
        mauve_ceiling(reference, other_draw[:50])


TEXT_SEQ_LEN = 16


@pytest.fixture
def text_teacher(tmp_path):
    """A teacher of a tiny corpus after one step, and a training config whose data is that corpus."""
    words = "the cat sat on a mat and dog ran far".split()
    g = torch.Generator().manual_seed(0)
    (tmp_path / "corpus.txt").write_text("\n\n".join(
        " ".join(words[i] for i in torch.randint(0, 10, (30,), generator=g)) for _ in range(40)))
    data = {"corpus": str(tmp_path / "corpus.txt"), "bpe_vocab_size": 300, "seq_len": TEXT_SEQ_LEN, "batch_size": 2,
            "val_fraction": 0.25, "cache_dir": str(tmp_path / "cache")}
    datamodule = TextDataModule(**data)
    teacher = TeacherModule(datamodule.vocab_size, TEXT_SEQ_LEN, backbone=TINY_TEACHER)
    ckpt = fit_checkpoint(teacher, tmp_path / "run", 1, datamodule)
    config = tmp_path / "text_config.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "lightning_tsdfm.TextDataModule", "init_args": data}}))
    return ckpt, str(config)


def test_corpus_continuations_keep_their_validation_prompt_and_have_a_data_row(conditional, text_teacher, tmp_path,
                                                                             monkeypatch):
    import corpus_continuations

    ckpt, config = text_teacher
    monkeypatch.setattr(corpus_continuations, "build_judge", lambda spec, card: FakeJudge())
    rows = conditional.run("tiny-corpus", config, ["prefix:6"], [f"teacher:4={ckpt}"], num_conditions=8, seed=0,
                           batch_size=None, samples_dir=str(tmp_path / "samples"), temperatures=[0.8, 1.0],
                           judges=["fake"])
    data = next(r for r in rows if r["method"] == "data")
    assert data["judge"] == "fake" and data["mauve"] is None and data["cond_ppl"] > 1 and data["nll_stderr"] > 0
    assert 0.0 <= data["mauve_ceiling"] <= 1.0
    assert (data["known_tokens"], data["filled_tokens"], data["n_samples"]) == (6, TEXT_SEQ_LEN - 6, 8)
    completions = [r for r in rows if r["method"] == "teacher" and not r.get("reference")]
    assert sorted(r["sampling_temperature"] for r in completions) == [0.8, 1.0]
    for r in completions:
        assert r["judge"] == "fake" and 0.0 <= r["mauve"] <= 1.0 and r["cond_ppl"] > 1 and r["entropy"] > 0
        assert r["reverse_ppl"] is None and "conditional.py" in r["command"]
    datamodule = conditional.datamodule_from_config(config)
    conditions = datamodule.heldout_tokens(8, 0)
    validation = {tuple(row) for row in datamodule._datasets()[1].array.tolist()}
    training = {tuple(row) for row in datamodule._datasets()[0].array.tolist()}
    assert all(tuple(c) in validation and tuple(c) not in training for c in conditions.tolist())
    samples = [json.loads(line) for line in (tmp_path / "samples" / "tiny-corpus_prefix-6_teacher_4.jsonl").read_text()
               .splitlines()]
    tokens = torch.tensor([s["tokens"] for s in samples])
    assert torch.equal(tokens[:, :6], conditions[:, :6])
    prompts, _ = corpus_continuations.split_texts(corpus_continuations.decoder_from_card(datamodule.data_card()),
                                                  tokens, 6)
    assert all(s["text"].startswith(prompt) for s, prompt in zip(samples, prompts))
    assert "| tiny-corpus | prefix:6 |" in (tmp_path / "results" / "conditional.md").read_text()
    others = corpus_continuations.other_blocks(datamodule, conditions, 0)
    assert others.shape == conditions.shape and torch.equal(others, corpus_continuations.other_blocks(
        datamodule, conditions, 0))
    assert all(tuple(o) in validation and tuple(o) not in {tuple(c) for c in conditions.tolist()}
               for o in others.tolist())
    assert corpus_continuations.other_blocks(datamodule, datamodule.heldout_tokens(len(validation), 0), 0) is None


def test_a_corpus_takes_prefix_templates_that_fit_and_text_judges(conditional, text_teacher, teacher, tmp_path):
    ckpt, config = text_teacher
    common = dict(num_conditions=4, seed=0, batch_size=None, samples_dir=str(tmp_path / "samples"))
    with pytest.raises(SystemExit, match="use prefix:P"):
        conditional.run("tiny-corpus", config, ["infill:2:6"], [f"teacher:4={ckpt}"], judges=["fake"], **common)
    with pytest.raises(SystemExit, match=r"prefix:P \(0 <= P < 16\)"):
        conditional.run("tiny-corpus", config, ["prefix:16"], [f"teacher:4={ckpt}"], judges=["fake"], **common)
    with pytest.raises(SystemExit, match="--judges smollm2"):
        conditional.run("tiny-corpus", config, ["prefix:6"], [f"teacher:4={ckpt}"], **common)
    with pytest.raises(SystemExit, match="smaller --num-conditions"):
        conditional.run("tiny-corpus", config, ["prefix:6"], [], judges=["fake"],
                        **{**common, "num_conditions": 10_000})
    _, synthetic_config = teacher
    with pytest.raises(SystemExit, match="pass --judges oracle"):
        conditional.run("synthetic-textlike", synthetic_config, ["prefix:3"], [], judges=["smollm2"], **common)


def test_the_corpus_arms_judge_prefixes_of_make_demos_models_with_smollm2(conditional):
    import arms
    import commands

    registry = arms.load()
    corpus = {name: arm for name, arm in registry.arms.items() if "reproduce_conditional.sh corpus" in arm.stages}
    assert set(corpus) == {"conditional/corpus-teacher-1024", "conditional/corpus-teacher-8",
                           "conditional/corpus-student-blind-8", "conditional/corpus-student-guided-pathlm-is16-8",
                           "conditional/corpus-student-shaped-pathlm-is16-8"}
    for arm in corpus.values():
        conditions = arm.spec["conditions"]
        assert (conditions["dataset"], conditions["judges"], conditions["num_conditions"], conditions["seed"]) == (
            "web-bible", ["smollm2"], 128, 0)
        assert set(arm.needs()) <= {"demo/teacher", "demo/student_blind", "demo/path_lm", "demo/student_pathlm_is16"}
    guided = corpus["conditional/corpus-student-guided-pathlm-is16-8"]
    command = commands.measure_command(guided, commands.Programs("python", "tsdfm"))
    assert command[command.index("--judges") + 1: command.index("--judges") + 2] == ["smollm2"]
    assert command[command.index("--template") + 1] == "prefix:32"
    _, _, _, checkpoint, shaping = conditional.parse_model(command[command.index("--model") + 1])
    assert checkpoint == "runs/demo/student_blind/checkpoints/last.ckpt" and shaping == guided.spec["sampling_shaping"]
    distilled = corpus["conditional/corpus-student-shaped-pathlm-is16-8"]
    blind = corpus["conditional/corpus-student-blind-8"]
    assert distilled.needs() == ["demo/student_pathlm_is16"] and distilled.spec["sampling_shaping"] is None
    assert distilled.spec["sampling"] == blind.spec["sampling"]
    assert distilled.spec["conditions"] == blind.spec["conditions"]
    assert distilled.compare_with == ("conditional/corpus-student-blind-8", "conditional/corpus-teacher-1024")
    assert corpus["conditional/corpus-teacher-1024"].spec["sampling"] == {
        "sampler": "first_hitting", "steps": [1024], "temperatures": [1.0], "batch_size": 64}
