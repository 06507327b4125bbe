"""Prompts and templates: parsed from text (a tokenizer's, or a synthetic language's ids), fitted to the length,
sampled through `tsdfm sample` and `generate_samples` with their known tokens kept and recorded in the sample file;
and the errors: too long, no mask, text the tokenizer cannot encode, an id that is not one."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint
from tokenizers import Tokenizer, models, pre_tokenizers

from lightning_tsdfm.cli import main
from lightning_tsdfm.data import TextDataModule
from lightning_tsdfm.data.encoding import encoder_from_card, synthetic_ids, text_ids
from lightning_tsdfm.data.tokenizer import TextTokenizer, train_byte_level_bpe
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules import TeacherModule
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.prompts import (
    MASK,
    conditions_from,
    parse_condition,
    parse_prompt,
    parse_template,
    read_prompts_file,
)
from lightning_tsdfm.samples_io import generate_samples, read_jsonl

SYNTHETIC = {"kind": "synthetic", "vocab_size": TINY_VOCAB, "seq_len": TINY_LEN}
encode_ids = encoder_from_card(SYNTHETIC)


def _text_card(tokenizer: TextTokenizer) -> dict:
    return {"kind": "text", "tokenizer_json": tokenizer.to_json(), "eos_id": tokenizer.eos_id,
            "vocab_size": tokenizer.vocab_size, "seq_len": 16}


@pytest.fixture(scope="module")
def bpe() -> TextTokenizer:
    return train_byte_level_bpe(["The cat sat on the mat. The dog sat on the log."] * 20, vocab_size=300)


# ---- parsing

@settings(max_examples=25)
@given(st.lists(st.one_of(st.none(), st.integers(0, TINY_VOCAB - 1)), min_size=1, max_size=12),
       st.sampled_from(["t{}", "{}"]))
def test_a_written_synthetic_template_parses_back_to_its_positions(positions, form):
    text = " ".join(MASK if p is None else form.format(p) for p in positions)
    condition = parse_condition(text, encode_ids)
    if None in positions:
        assert (condition.kind, condition.ids) == ("template", tuple(positions))
    else:
        assert (condition.kind, condition.ids) == ("prompt", tuple(positions))
    assert condition.known_positions == [i for i, p in enumerate(positions) if p is not None]
    known = condition.given(10 + len(positions), rows=2)
    assert known.tokens.shape == (2, 10 + len(positions)) and not known.known[:, len(positions):].any()
    assert known.known[0].nonzero().flatten().tolist() == condition.known_positions


def test_adjacent_masks_and_ids_need_no_spaces():
    assert parse_template("t1[MASK][MASK] t2", encode_ids).ids == (1, None, None, 2)


def test_a_text_template_is_its_pieces_and_one_position_a_mask(bpe):
    encode = encoder_from_card(_text_card(bpe))
    condition = parse_template("The [MASK] sat on the [MASK][MASK] mat.", encode)
    the, sat_on_the, mat = encode("The"), encode(" sat on the"), encode(" mat.")
    assert condition.ids == (*the, None, *sat_on_the, None, None, *mat)
    assert parse_template("The[MASK] sat on the[MASK][MASK] mat.", encode).ids == condition.ids  # the mask's space
    assert parse_prompt("The cat sat ", encode).ids == tuple(encode("The cat sat"))
    assert bpe.decode([i for i in condition.ids if i is not None]) == "The sat on the mat."


def test_text_the_tokenizer_cannot_encode_is_refused(bpe):
    letters = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "<|endoftext|>": 2}, merges=[]))  # drops what it lacks
    letters.pre_tokenizer = pre_tokenizers.Whitespace()
    assert text_ids(letters, "ab a") == [0, 1, 0]
    with pytest.raises(UserError, match="cannot encode 'cd' in 'ab cd c'.*no token for them"):
        text_ids(letters, "ab cd c")
    no_unknown = Tokenizer(models.WordLevel({"the": 0, "<|endoftext|>": 1}))
    no_unknown.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(UserError, match="cannot encode 'the dog': WordLevel error"):
        text_ids(no_unknown, "the dog")
    with_unknown = Tokenizer(models.WordLevel({"the": 0, "[UNK]": 1, "<|endoftext|>": 2}, unk_token="[UNK]"))
    with_unknown.pre_tokenizer = pre_tokenizers.Whitespace()
    card = _text_card(TextTokenizer(with_unknown))
    with pytest.raises(UserError, match="cannot encode 'x' in 'the x'"):
        conditions_from(card, template="the x [MASK]")
    assert text_ids(bpe.backend, "héllo 世界") == bpe.encode("héllo 世界")  # a byte-level tokenizer encodes anything


@pytest.mark.parametrize("text, match", [
    ("t3 x4", "'x4' is not a token id.*'t3 t17 t5'"),
    ("t3 t8", r"Token id 8 \('t8'\) is outside this language's vocabulary \[0, 8\)"),
])
def test_a_synthetic_item_that_is_not_an_id_is_refused(text, match):
    with pytest.raises(UserError, match=match):
        synthetic_ids(text, TINY_VOCAB)


@pytest.mark.parametrize("build, match", [
    (lambda: parse_template("t1 t2", encode_ids), r"has no \[MASK\].*--prompt"),
    (lambda: parse_prompt("t1 [MASK]", encode_ids), r"holds \[MASK\].*--template"),
    (lambda: parse_prompt("   ", encode_ids), "has no tokens"),
    (lambda: conditions_from(SYNTHETIC, prompt="t1", template="t1 [MASK]"), "not prompt and template"),
    (lambda: conditions_from(SYNTHETIC, prompts=[]), "empty"),
])
def test_a_condition_that_is_not_one_is_refused(build, match):
    with pytest.raises(UserError, match=match):
        build()


def test_a_condition_must_leave_a_position_to_fill():
    long_prompt = parse_prompt(" ".join(["t1"] * TINY_LEN), encode_ids)
    with pytest.raises(UserError, match=f"is {TINY_LEN} tokens, and the model's length is {TINY_LEN}.*--length N"):
        long_prompt.check_fits(TINY_LEN, TINY_LEN)
    long_prompt.check_fits(TINY_LEN + 1, TINY_LEN)  # continued past the model's length
    with pytest.raises(UserError, match="longer than the 8 tokens generated"):
        parse_template(" ".join(["t1"] * TINY_LEN) + " [MASK]", encode_ids).check_fits(TINY_LEN, TINY_LEN)


def test_a_prompts_file_holds_prompts_and_templates_and_names_a_bad_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("t1 t2\n\nt3 [MASK] t4\n")
    assert [(c.kind, c.ids) for c in read_prompts_file(path, encode_ids)] == [("prompt", (1, 2)),
                                                                               ("template", (3, None, 4))]
    path.write_text("t1 t2\nt3 t9 [MASK]\n")
    with pytest.raises(UserError, match="prompts.txt, line 2: Token id 9"):
        read_prompts_file(path, encode_ids)
    path.write_text("\n \n")
    with pytest.raises(UserError, match="holds no prompt"):
        read_prompts_file(path, encode_ids)


# ---- sampling them

@pytest.fixture(scope="module")
def mask_teacher(tmp_path_factory):
    from lightning_helpers import tiny_synthetic

    torch.manual_seed(0)
    teacher = TeacherModule(TINY_VOCAB, TINY_LEN, backbone=TINY_TEACHER, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return fit_checkpoint(teacher, tmp_path_factory.mktemp("teacher"), 2, tiny_synthetic())


def test_tsdfm_sample_keeps_and_records_a_template(mask_teacher, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(mask_teacher), "--output", str(out), "--steps", "4", "--num_samples", "3",
          "--template", "t1 [MASK] t2 [MASK]"])
    assert "wrote 3 samples" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        assert row["template"] == "t1 [MASK] t2 [MASK]" and row["given_positions"] == [0, 2]
        assert row["tokens"][0] == 1 and row["tokens"][2] == 2 and len(row["tokens"]) == TINY_LEN
    samples = read_jsonl(out)
    assert samples.conditions == [{"template": "t1 [MASK] t2 [MASK]", "given_positions": [0, 2]}] * 3
    assert "template" not in samples.meta and samples.meta["steps"] == 4


def test_a_prompts_file_gives_num_samples_of_each_line_guided_too(mask_teacher, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("t5 t6 t7\nt3 [MASK] [MASK] t4\n")
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(mask_teacher), "--output", str(out), "--steps", "4", "--num_samples", "2",
          "--prompts_file", str(prompts), "--shaped", "oracle", "--k", "3", "--policy", "importance"])
    samples = read_jsonl(out)
    assert [c.get("prompt") or c.get("template") for c in samples.conditions] == ["t5 t6 t7"] * 2 + \
        ["t3 [MASK] [MASK] t4"] * 2
    assert samples.tokens[:2, :3].tolist() == [[5, 6, 7]] * 2
    assert samples.tokens[2:, 0].tolist() == [3, 3] and samples.tokens[2:, 3].tolist() == [4, 4]
    assert samples.meta["sampling_shaping"]["num_candidates"] == 3


@pytest.mark.parametrize("compass, policy", [("oracle", "argmin"), ("oracle-sequence", "importance")])
def test_guided_sampling_keeps_a_template(mask_teacher, compass, policy):
    """A state compass and an energy over whole proposals (whose fillers are drawn from the clamped posterior)."""
    samples = generate_samples(mask_teacher, 4, 4, template="t6 [MASK] t2 [MASK] [MASK] t0", progress=False,
                               shaping={"compass": compass, "num_candidates": 4, "policy": policy, "filler_draws": 2})
    assert samples.tokens[:, [0, 2, 5]].tolist() == [[6, 2, 0]] * 4


def test_generate_samples_takes_a_prompt_and_given_ids(mask_teacher):
    samples = generate_samples(mask_teacher, 4, 2, prompt="t1 t2", progress=False, sampler="first_hitting")
    assert samples.tokens[:, :2].tolist() == [[1, 2]] * 2 and samples.texts[0].startswith("t1 t2 ")
    from lightning_tsdfm.conditioning import Given

    known = Given(torch.tensor([[0, 0, 0, 0, 0, 0, 0, 7]]), torch.tensor([[False] * 7 + [True]]))
    samples = generate_samples(mask_teacher, 4, 3, given=known, progress=False)
    assert samples.tokens[:, -1].tolist() == [7, 7, 7] and samples.conditions[0] == {"given_positions": [7]}


@pytest.mark.parametrize("args, message", [
    (["--prompt", " ".join(["t1"] * TINY_LEN)], "is 8 tokens, and the model's length is 8"),
    (["--template", "t1 t2"], r"has no \[MASK\]"),
    (["--prompt", "t1 t99"], "Token id 99"),
    (["--prompt", "t1", "--template", "t1 [MASK]"], "not allowed with argument"),
])
def test_tsdfm_sample_errors_are_one_line(mask_teacher, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--checkpoint", str(mask_teacher), "--output", str(tmp_path / "s.jsonl"), "--steps", "2",
              *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / "s.jsonl").exists()


def test_a_sample_file_with_bad_given_positions_is_refused(mask_teacher, tmp_path):
    out = tmp_path / "s.jsonl"
    main(["sample", "--checkpoint", str(mask_teacher), "--output", str(out), "--steps", "2", "--num_samples", "1",
          "--prompt", "t1"])
    row = json.loads(out.read_text())
    row["given_positions"] = [0, 99]
    out.write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match="'given_positions' must be a list of distinct positions in"):
        read_jsonl(out)


@pytest.fixture(scope="module")
def text_teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    words = ["light", "water", "earth", "day", "night", "and", "the", "was", "good", "said"]
    g = torch.Generator().manual_seed(0)
    (root / "corpus.txt").write_text("\n\n".join(" ".join(words[i] for i in torch.randint(0, 10, (30,), generator=g))
                                                 for _ in range(40)))
    data = TextDataModule(corpus=str(root / "corpus.txt"), bpe_vocab_size=300, seq_len=16, batch_size=2,
                          val_fraction=0.1, cache_dir=str(root / "cache"))
    teacher = TeacherModule(data.vocab_size, 16, backbone=TINY_TEACHER)
    return fit_checkpoint(teacher, root / "run", 1, data)


def test_a_text_template_is_encoded_kept_and_decoded(text_teacher, tmp_path):
    samples = generate_samples(text_teacher, 4, 2, template="the [MASK] was good and [MASK] said", progress=False)
    assert all(text.startswith("the") and " was good and" in text and " said" in text for text in samples.texts), \
        samples.texts  # an untrained teacher fills the masks with whatever it likes, the known words stay
    with pytest.raises(UserError, match="no tokens"):
        generate_samples(text_teacher, 4, 2, prompt="  ", progress=False)
