"""Tokenizers made in code (CLIP, T5, Gemma, BERT) and tiny random text encoders for the model families.

Each tokenizer is the family's own ``transformers`` class built from a vocabulary passed as data, so
that ``save_pretrained``/``from_pretrained`` of a whole pipeline round-trips from a local folder and
nothing is ever downloaded. Every word of the word list is one token; other text still tokenizes
(into characters, bytes for Gemma, or the unknown token).
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterable
from pathlib import Path

from memaudit.tiny.vocabulary import learn_merges, load_clip_tokenizer, write_vocabulary

SPACE = "▁"  # SentencePiece's word-start marker, used by the T5 and Gemma vocabularies
CHARACTERS = string.ascii_letters + string.digits + string.punctuation
MAX_LENGTH = 32  # tiny tokenizers' model_max_length (CLIP keeps 77: SD-family pipelines pad to it)
# Gemma's: Sana and Lumina 2 prepend a long instruction (about 850 and 140 tokens in this vocabulary) and
# pass their own max_length; within the tiny Gemma's positions, so long prompts raise no length warning.
GEMMA_MAX_LENGTH = 4096


def clip_tokenizer(words: Iterable[str], *, max_length: int = 77):
    """A ``CLIPTokenizer`` over ``words`` (the SD 1.x builder's byte-level BPE vocabulary)."""
    with tempfile.TemporaryDirectory() as scratch:
        return load_clip_tokenizer(*write_vocabulary(words, Path(scratch)), max_length=max_length)


def t5_tokenizer(words: Iterable[str], *, max_length: int = MAX_LENGTH):
    """T5's Unigram tokenizer: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then whole words, then characters."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), (SPACE, -2.0)]
    pieces += [(SPACE + word, -1.0) for word in sorted(set(words))]
    pieces += [(character, -10.0) for character in CHARACTERS]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=max_length)


def gemma_tokenizer(words: Iterable[str], *, max_length: int = GEMMA_MAX_LENGTH):
    """Gemma's BPE tokenizer with byte fallback; merges learned from ``words`` so each is one token."""
    from transformers import GemmaTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    words = set(words)  # each word both at the start of the text and after a space, as Gemma's vocabulary has
    merges = learn_merges([list(piece) for piece in sorted(words | {SPACE + word for word in words})])
    vocab: dict[str, int] = {}
    for token in [*specials, *byte_tokens, SPACE, *CHARACTERS, *(left + right for left, right in merges)]:
        vocab.setdefault(token, len(vocab))
    return GemmaTokenizerFast(
        vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False, model_max_length=max_length
    )


def bert_tokenizer(words: Iterable[str], *, max_length: int = MAX_LENGTH):
    """A lower-casing WordPiece ``BertTokenizerFast``: specials, whole words, characters and ``##``-pieces."""
    from transformers import BertTokenizerFast

    characters = string.ascii_lowercase + string.digits + string.punctuation
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    tokens += [*characters, *("##" + character for character in characters)]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    return BertTokenizerFast(vocab=vocab, model_max_length=max_length)


def clip_text_model(tokenizer, *, hidden: int = 32, projection: int | None = None):
    """A 2-layer CLIP text encoder; with ``projection``, the ``CLIPTextModelWithProjection`` variant."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=projection or hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    return model.eval()


def t5_encoder(tokenizer, *, hidden: int = 32):
    """A 2-layer ``T5EncoderModel`` (T5 v1.1 style: gated GELU, untied head)."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=hidden,
        d_kv=8,
        d_ff=2 * hidden,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config).eval()


def gemma2_model(tokenizer, *, hidden: int = 32):
    """A 2-layer ``Gemma2Model`` (grouped-query attention, sliding-window layers as in Gemma 2)."""
    from transformers import Gemma2Config, Gemma2Model

    config = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=GEMMA_MAX_LENGTH,
        sliding_window=64,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return Gemma2Model(config).eval()


def bert_model(tokenizer, *, hidden: int = 32):
    """A 2-layer ``BertModel`` (CXR-BERT-style text encoder, as RadEdit uses in place of CLIP)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config).eval()
