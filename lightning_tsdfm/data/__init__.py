from lightning_tsdfm.data.hmm import HiddenMarkovLanguage, HMMSpec
from lightning_tsdfm.data.synthetic import SyntheticDataModule
from lightning_tsdfm.data.streaming import StreamingTextDataModule
from lightning_tsdfm.data.text import TextDataModule, load_corpus
from lightning_tsdfm.data.tokenizer import tokenizer_from_card

__all__ = ["HMMSpec", "HiddenMarkovLanguage", "StreamingTextDataModule", "SyntheticDataModule", "TextDataModule", "load_corpus", "tokenizer_from_card"]
