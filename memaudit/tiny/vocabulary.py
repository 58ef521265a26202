"""A CLIP byte-level BPE vocabulary trained from a word list, so no tokenizer is ever downloaded.

BPE merges are learned over the given words after CLIP's own normalisation and pre-tokenisation (from
``tokenizers``), deterministically, until every word is a single token. All 256
byte symbols, alone and as word ends, stay in the vocabulary, so any other text still tokenizes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
WORD_END = "</w>"
# transformers' CLIPTokenizer splits text into words with this pattern before byte-level BPE.
# Byte value of each byte-level symbol: printable bytes stand for themselves, the rest map to 256+.
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
BYTE_ORDER = {chr(b): b for b in _PRINTABLE} | {
    chr(256 + n): b for n, b in enumerate(b for b in range(256) if b not in _PRINTABLE)
}
CLIP_WORD_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def build_vocabulary(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Token ids and ranked merges learned from ``words``; special tokens take the last two ids."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(end_of_word_suffix=WORD_END, continuing_subword_prefix=""))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_WORD_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    pieces = sorted(
        {
            piece
            for word in set(words)
            for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(word))
        }
    )
    merges = _learn_merges(pieces)
    # Token ids as CLIP lays them out: byte symbols, byte symbols ending a word, each merge's result in
    # merge order, then the special tokens.
    symbols = sorted(alphabet, key=lambda symbol: BYTE_ORDER[symbol])
    vocab: dict[str, int] = {}
    for token in [*symbols, *(symbol + WORD_END for symbol in symbols), *(left + right for left, right in merges)]:
        vocab.setdefault(token, len(vocab))
    vocab[START_TOKEN] = len(vocab)
    vocab[END_TOKEN] = len(vocab)
    return vocab, merges


def _learn_merges(pieces: list[str]) -> list[tuple[str, str]]:
    """CLIP's merges: a word's last symbol carries the end-of-word mark."""
    return learn_merges([[*piece[:-1], piece[-1] + WORD_END] for piece in pieces])


def learn_merges(words: list[list[str]]) -> list[tuple[str, str]]:
    """Byte-pair merges of symbol sequences until every word is one symbol: the most frequent adjacent
    pair first, ties to the alphabetically first pair. (The ``tokenizers`` trainer breaks ties by hash
    order, which changes from one process to the next, and with it every tiny model's token ids.)"""
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for symbols in words:
            for pair in itertools.pairwise(symbols):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        words = [_merge(symbols, best) for symbols in words]


def _merge(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    merged, position = [], 0
    while position < len(symbols):
        if tuple(symbols[position : position + 2]) == pair:
            merged.append(symbols[position] + symbols[position + 1])
            position += 2
        else:
            merged.append(symbols[position])
            position += 1
    return merged


def write_vocabulary(words: Iterable[str], directory: Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` for ``words`` into ``directory``."""
    vocab, merges = build_vocabulary(words)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = directory / "vocab.json"
    merges_path = directory / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges), encoding="utf-8")
    return vocab_path, merges_path


def load_clip_tokenizer(vocab_path: Path, merges_path: Path, *, max_length: int = 77):
    """A ``CLIPTokenizer`` from the two files (passed as data: vocab=/merges=, never a download)."""
    from transformers import CLIPTokenizer

    vocab = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
    lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
