"""The ablation table of the levers tried to make an 8-step student beat its teacher, from the frontier rows.

    python benchmarks/levers.py

Each lever is one arm against its twin: the model that differs from it only by that lever, trained as long, sampled
at 8 steps and matched at the same reference entropy: the 1024-step teacher's T = 1 entropy, and on the small language
and the corpus also the data's. The perplexities come from benchmarks/results/frontier.jsonl; the table gives
their ratio, the SE of its log (independent sample sets), that log in SEs, and both reverse perplexities, with the
stage that trains and measures the arm. Writes benchmarks/results/levers.md. A lever whose rows are not measured
is listed as such; a selector that matches more than one row is an error.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import results_io  # noqa: E402
from quality import matched_ratio  # noqa: E402
from results_io import markdown_table, read_rows  # noqa: E402

COLUMNS = ["lever", "dataset", "source", "judge", "reference", "arm", "twin", "arm_ppl", "twin_ppl", "ratio", "log_ratio_stderr",
           "z", "arm_reverse_ppl", "twin_reverse_ppl", "stage"]
#: where each dataset's students are matched: the 1024-step teacher's T = 1 entropy, and the data's
REFERENCES = {"synthetic-textlike": ("teacher-1024",), "synthetic": ("data", "teacher-1024"),
              "web-bible": ("data", "teacher-1024")}
TEXTLIKE = "benchmarks/reproduce_textlike.sh"
IMPORTANCE = "benchmarks/reproduce_importance.sh"
STEPS = 8  # every lever is compared at the few-step student's headline step count


@dataclass(frozen=True)
class Lever:
    """``arm`` and ``twin`` select one frontier row each by their fields (method, compass, k, policy, trajectory,
    train_steps); dataset, source, judge and the reference entropy are shared."""

    name: str
    dataset: str
    source: str
    arm: dict
    twin: dict
    stage: str
    judge: str = "oracle"


def m(method: str, **fields) -> dict:
    """A row selector: the method and any fields that tell its rows apart."""
    return {"method": method, **fields}


BLIND = m("student-blind", train_steps=750)
#: the same blind student trained from a retrained teacher (same config and seed, one CPU thread: not bit for bit the
#: first), the twin of the arms trained from that teacher
RETRAINED = m("student-blind-retrained")
LEVERS = [
    # the compass: a perfect one (the oracle) against a learned one, with the selection rule and K beside
    Lever("oracle compass, argmin K=4", "synthetic-textlike", "mask", m("student-shaped", compass="oracle"), BLIND,
          f"{TEXTLIKE} students"),
    Lever("learned compass, argmin K=4", "synthetic-textlike", "mask", m("student-shaped", compass="learned"), BLIND,
          f"{TEXTLIKE} students"),
    Lever("larger K: oracle argmin K=16", "synthetic-textlike", "mask", m("student-shaped-k16"), BLIND,
          f"{TEXTLIKE} students"),
    Lever("importance resampling (oracle, K=16) instead of argmin", "synthetic-textlike", "mask",
          m("student-shaped-is16"), BLIND, f"{IMPORTANCE} textlike"),
    Lever("learned compass, Boltzmann at tau = 1 (its NCE ratio), K=16", "synthetic-textlike", "mask",
          m("student-shaped-boltzmann16"), BLIND, f"{IMPORTANCE} textlike"),
    Lever("compass negatives from the student's own jumps (on-policy), Boltzmann tau = 1, K=16", "synthetic-textlike",
          "mask", m("student-shaped-onpolicy-boltzmann16"), RETRAINED, f"{IMPORTANCE} compass-levers"),
    Lever("compass with 8x the capacity and 2x the steps, Boltzmann tau = 1, K=16", "synthetic-textlike", "mask",
          m("student-shaped-large-boltzmann16"), RETRAINED, f"{IMPORTANCE} compass-levers"),
    # what distillation keeps of the mechanism
    Lever("not distilled: the blind student guided while it samples (oracle importance K=16)", "synthetic-textlike",
          "mask", m("student-blind-sampled-is16"), BLIND, f"{IMPORTANCE} sampling"),
    Lever("not distilled: the same with argmin K=16", "synthetic-textlike", "mask", m("student-blind-sampled-argmin16"),
          BLIND, f"{IMPORTANCE} sampling"),
    # the target
    Lever("the teacher and blind student retrained (same config and seed): the run-to-run spread", "synthetic-textlike",
          "mask", RETRAINED, BLIND, f"{TEXTLIKE} teachers, students"),
    Lever("endpoint target, blind (its cost: a noisier target)", "synthetic-textlike", "mask",
          m("student-endpoint-blind"), BLIND, f"{IMPORTANCE} endpoint"),
    Lever("endpoint target, oracle importance K=16 (against its blind twin)", "synthetic-textlike", "mask",
          m("student-endpoint-shaped-is16"), m("student-endpoint-blind"), f"{IMPORTANCE} endpoint"),
    Lever("endpoint target averaged over the K candidates, oracle importance K=16", "synthetic-textlike", "mask",
          m("student-endpoint-averaged-shaped-is16"), BLIND, f"{IMPORTANCE} endpoint-averaged"),
    Lever("averaged endpoint over 4 sub-steps (3 shaped midpoints), oracle importance K=16", "synthetic-textlike",
          "mask", m("student-endpoint-averaged4-shaped-is16"), BLIND, f"{IMPORTANCE} endpoint-substeps"),
    Lever("RK4 target, blind (against blind Heun)", "synthetic-textlike", "mask", m("student-rk4-blind"), RETRAINED,
          f"{IMPORTANCE} rk4"),
    Lever("RK4 target (3 midpoints), oracle importance K=16 (against its blind twin)", "synthetic-textlike", "mask",
          m("student-rk4-shaped-is16"), m("student-rk4-blind"), f"{IMPORTANCE} rk4"),
    Lever("RK4 target, oracle importance K=16 (against blind Heun)", "synthetic-textlike", "mask",
          m("student-rk4-shaped-is16"), RETRAINED, f"{IMPORTANCE} rk4"),
    Lever("endpoint target, learned compass Boltzmann tau = 1 K=16 (against its blind twin)", "synthetic-textlike",
          "mask", m("student-endpoint-shaped-boltzmann16"), m("student-endpoint-blind"), f"{IMPORTANCE} endpoint-learned"),
    Lever("longer training: blind, 1,500 steps against 750", "synthetic-textlike", "mask", m("student-blind-1500"),
          BLIND, f"{IMPORTANCE} endpoint-longer"),
    Lever("longer training: averaged endpoint, oracle importance K=16, 1,500 steps (against blind 1,500)",
          "synthetic-textlike", "mask", m("student-endpoint-averaged-shaped-is16-1500"), m("student-blind-1500"),
          f"{IMPORTANCE} endpoint-longer"),
    # where along the path shaping acts
    Lever("shaping only from t = 0.5: oracle importance K=16", "synthetic-textlike", "mask",
          m("student-shaped-is16-from0.5"), BLIND, f"{IMPORTANCE} shape-from distilled"),
    Lever("shaping only from t = 0.5: learned argmin K=4", "synthetic-textlike", "mask", m("student-shaped-from0.5"),
          BLIND, f"{IMPORTANCE} shape-from distilled"),
    Lever("a grid that reveals few tokens first: averaged endpoint 4 sub-steps, oracle K=16 (against its blind twin)",
          "synthetic-textlike", "mask", m("student-endpoint-averaged4-shaped-is16-front"), m("student-blind-front"),
          f"{IMPORTANCE} grid front"),
    Lever("the same grid, blind (against the uniform grid)", "synthetic-textlike", "mask", m("student-blind-front"),
          BLIND, f"{IMPORTANCE} grid front"),
    # a student that is not factorised
    Lever("16 latent codes, averaged endpoint 4 sub-steps, oracle K=16 (against its factorised twin)",
          "synthetic-textlike", "mask", m("student-latent16-endpoint-averaged4-shaped-is16"),
          m("student-endpoint-averaged4-shaped-is16"), f"{IMPORTANCE} latent shaped"),
    Lever("16 latent codes, blind Heun (against its factorised twin)", "synthetic-textlike", "mask",
          m("student-latent16-init0.05-blind"), BLIND, f"{IMPORTANCE} latent blind"),
    Lever("16 latent codes, blind endpoint (against its factorised twin)", "synthetic-textlike", "mask",
          m("student-latent16-init0.05-endpoint-blind"), m("student-endpoint-blind"), f"{IMPORTANCE} latent blind-endpoint"),
    # the other source, the small language, the corpus
    Lever("uniform source, oracle importance K=16", "synthetic-textlike", "uniform", m("student-shaped-is16"),
          m("student-blind"), f"{IMPORTANCE} uniform"),
    Lever("small language, oracle importance K=16", "synthetic", "mask", m("student-shaped-is16"), m("student-blind"),
          f"{IMPORTANCE} small mask"),
    Lever("small language, endpoint target, oracle importance K=16", "synthetic", "mask",
          m("student-endpoint-shaped-is16"), m("student-blind"), f"{IMPORTANCE} small-endpoint mask"),
    Lever("small language, learned compass argmin K=4", "synthetic", "mask", m("student-shaped"), m("student-blind"),
          f"{IMPORTANCE} small-learned mask"),
    Lever("small language, oracle importance K=16", "synthetic", "uniform", m("student-shaped-is16"),
          m("student-blind"), f"{IMPORTANCE} small uniform"),
    Lever("small language, learned compass argmin K=4", "synthetic", "uniform", m("student-shaped"),
          m("student-blind"), f"{IMPORTANCE} small-learned uniform"),
    Lever("corpus, learned compass argmin K=4 (SmolLM2-135M judge)", "web-bible", "mask", m("student-shaped-argmin4"),
          m("student-blind"), f"{IMPORTANCE} corpus", judge="smollm2-135m"),
    Lever("corpus, learned compass argmin K=4 (a causal LM of another seed)", "web-bible", "mask",
          m("student-shaped-argmin4"), m("student-blind"), f"{IMPORTANCE} corpus", judge="ar:corpus_ar_judge"),
    Lever("SDTT (MDLM distilled) shaped by MDLM's own compass, argmin K=4", "synthetic", "mask",
          m("mdlm-sdtt-shaped-own"), m("mdlm-sdtt-blind"), "benchmarks/reproduce_baselines.sh synthetic-own-compass"),
    Lever("SDTT shaped by our teacher's compass, argmin K=4", "synthetic", "mask", m("mdlm-sdtt-shaped"),
          m("mdlm-sdtt-blind"), "benchmarks/reproduce_baselines.sh synthetic-frontier"),
]


def select(rows: list[dict], lever: Lever, reference: str, fields: dict) -> dict | None:
    """The one matched row of the lever's dataset, source, judge and steps at this reference with these fields, or
    None."""
    found = [r for r in rows if r.get("reference") == reference and r.get("matched_gen_ppl")
             and (r["dataset"], r["source"], r["judge"], r["steps"]) == (lever.dataset, lever.source, lever.judge, STEPS)
             and all(r.get(k) == v for k, v in fields.items())]
    if len(found) > 1:
        raise ValueError(f"lever {lever.name!r}: {fields} matches {len(found)} frontier rows; name more fields "
                         "(compass, k, policy, trajectory, train_steps) to pick one.")
    return found[0] if found else None


def lever_row(rows: list[dict], lever: Lever, reference: str) -> dict:
    arm, twin = select(rows, lever, reference, lever.arm), select(rows, lever, reference, lever.twin)
    row = {"lever": lever.name, "dataset": lever.dataset, "source": lever.source, "judge": lever.judge,
           "reference": reference,
           "arm": lever.arm["method"], "twin": lever.twin["method"], "stage": lever.stage}
    if arm is None or twin is None:
        return {**row, "ratio": "not measured"}
    ratio, stderr = matched_ratio(arm, twin)
    return {**row, "arm_ppl": arm["matched_gen_ppl"], "twin_ppl": twin["matched_gen_ppl"], "ratio": ratio,
            "log_ratio_stderr": stderr, "z": math.log(ratio) / stderr,
            "arm_reverse_ppl": arm.get("matched_reverse_ppl"), "twin_reverse_ppl": twin.get("matched_reverse_ppl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    table = write_page(read_rows("frontier"))
    print(f"wrote {results_io.RESULTS / 'levers.md'}: {sum(isinstance(r['ratio'], float) for r in table)} of "
          f"{len(table)} levers measured")


def write_page(rows: list[dict]) -> list[dict]:
    """levers.md from the frontier rows ``rows``; returns the table's rows."""
    table = [lever_row(rows, lever, reference) for lever in LEVERS for reference in REFERENCES[lever.dataset]]
    (results_io.RESULTS / "levers.md").write_text(
        "# levers\n\nGenerated from frontier.jsonl by benchmarks/levers.py. Each lever is an arm against its twin at "
        "8 sampling steps, matched at the 1024-step teacher's T = 1 entropy (reference teacher-1024) or the data's "
        "(reference data). ratio: arm_ppl / twin_ppl (below 1: the lever helps); log_ratio_stderr: SE of its log; "
        "z: the log ratio in SEs; the stage trains and measures the arm.\n\n" + markdown_table(table, COLUMNS) + "\n")
    return table


if __name__ == "__main__":
    main()
