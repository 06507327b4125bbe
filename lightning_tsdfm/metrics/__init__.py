from lightning_tsdfm.metrics.entropy import UnigramEntropy, unigram_entropy
from lightning_tsdfm.metrics.generative_perplexity import GenerativePerplexity
from lightning_tsdfm.metrics.judges import CausalLMJudge, HuggingFaceJudge, Judge, OracleJudge, build_judge, smollm2_judge

__all__ = [
    "CausalLMJudge",
    "GenerativePerplexity",
    "HuggingFaceJudge",
    "Judge",
    "OracleJudge",
    "UnigramEntropy",
    "build_judge",
    "smollm2_judge",
    "unigram_entropy",
]
