"""Checks for module 10: Tokenization.

CharTokenizer: the vocabulary is sorted(set(text)), encode/decode round-trip, and an unknown
character is a KeyError naming it and its position (the policy the lesson states).

BPETokenizer (byte level): the classic low/lower/newest/widest merge sequence worked by hand
in the lesson, asserted exactly; the merges equal those of an independent, naive
recount-every-merge trainer written below (so the incremental bookkeeping is exact) on
Hypothesis-drawn texts; decode(encode(s)) == s for any Unicode string (characters never seen
in training included); the vocabulary size is exact; encoding the training text is never
longer than its UTF-8 byte count; training is reproducible; special tokens; save/load through
a JSON file; clear errors.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinytorch.tokenization import BPETokenizer, CharTokenizer

PATTERN = r"\w+|[^\w\s]+|\s+"  # the chunking rule the lesson specifies
CLASSIC = "low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3
CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
) * 3

small_texts = st.text(alphabet=st.sampled_from("aab c\n.é"), min_size=0, max_size=40)


def naive_merges(text: str, max_merges: int) -> list[tuple[int, int]]:
    """Independent trainer: recount every pair of every chunk before each merge; ties -> smallest pair."""
    words = [list(chunk.encode("utf-8")) for chunk in re.findall(PATTERN, text)]
    merges: list[tuple[int, int]] = []
    while len(merges) < max_merges:
        counts: dict[tuple[int, int], int] = {}
        for ids in words:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        new_id = 256 + len(merges)
        merges.append(best)
        merged_words = []
        for ids in words:
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            merged_words.append(out)
        words = merged_words
    return merges


# -- characters --------------------------------------------------------------------------------------


def test_char_vocabulary_is_sorted_unique_characters():
    tok = CharTokenizer("hello world\n")
    assert tok.vocab == ["\n", " ", "d", "e", "h", "l", "o", "r", "w"], "vocab is sorted(set(text))"
    assert tok.vocab_size == 9
    assert tok.encode("hello") == [4, 3, 5, 5, 6]
    assert tok.decode([4, 3, 5, 5, 6]) == "hello"
    assert tok.decode(np.array([8, 6, 7, 5, 2])) == "world", "decode accepts a numpy array of ids"
    assert tok.encode("") == [] and tok.decode([]) == ""
    assert CharTokenizer("").vocab_size == 0
    assert repr(tok) == "CharTokenizer(vocab_size=9)"


@given(vocab_text=st.text(min_size=1, max_size=30), data=st.data())
def test_char_round_trip(vocab_text, data):
    tok = CharTokenizer(vocab_text)
    s = data.draw(st.text(alphabet=st.sampled_from(sorted(set(vocab_text))), max_size=40), label="s")
    ids = tok.encode(s)
    assert len(ids) == len(s) and all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == s
    assert tok.vocab_size == len(set(vocab_text))


def test_char_unknown_character_is_a_key_error_naming_it():
    tok = CharTokenizer("abc")
    with pytest.raises(KeyError, match=r"'z'.*position 2"):
        tok.encode("abz")
    with pytest.raises(KeyError, match=r"U\+00E9"):
        tok.encode("é")
    with pytest.raises(IndexError, match=r"\b5\b"):
        tok.decode([0, 5])
    with pytest.raises(IndexError, match=r"-1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="bytes"):
        CharTokenizer(b"abc")


# -- byte-pair encoding ------------------------------------------------------------------------------


def test_bpe_classic_example_merge_sequence():
    """The hand-worked example of the lesson (Sennrich et al. 2016), merge by merge."""
    tok = BPETokenizer().train(CLASSIC, 268)
    expected = [(101, 115), (256, 116), (108, 111), (258, 119), (101, 119), (110, 260),
                (261, 257), (100, 257), (105, 263), (119, 264), (101, 114), (259, 266)]
    got = [tuple(pair) for pair in tok.merges]
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (f"merge {k} (id {256 + k}): got {g}, expected {e} = {bytes([e[0]]) if e[0] < 256 else e[0]}"
                        f" + {bytes([e[1]]) if e[1] < 256 else e[1]}; merges so far {got[:k]}")
    assert len(got) == len(expected)
    words = [tok.vocab[256 + k] for k in range(12)]
    assert words == [b"es", b"est", b"lo", b"low", b"ew", b"new", b"newest", b"dest", b"idest", b"widest",
                     b"er", b"lower"]
    assert tok.encode("lowest") == [259, 257], "an unseen word is built from learned pieces: low + est"
    assert tok.encode("newest widest") == [262, 32, 265]
    with pytest.raises(ValueError, match=r"\b12 merges"):
        BPETokenizer().train(CLASSIC, 269)


def test_bpe_ties_go_to_the_smallest_pair():
    for text in ("xy yx", "yx xy"):
        tok = BPETokenizer().train(text, 257)
        assert [tuple(p) for p in tok.merges] == [(ord("x"), ord("y"))], (
            f"train({text!r}): (x, y) and (y, x) both occur once; the tie goes to the smaller pair (120, 121)")
    tok = BPETokenizer().train("aaaa bbb", 258)
    assert [tuple(p) for p in tok.merges] == [(97, 97), (98, 98)], "aa counts 3 (zip counting), then bb 2"


@given(text=small_texts, merges=st.integers(0, 12))
@example(text="bc bc bc abc ab ab", merges=4)  # (a, b) leaves "abc" when bc merges first, then merges elsewhere
@example(text="aaaaa aaa", merges=3)  # overlapping pairs: merge left to right
def test_bpe_merges_equal_a_naive_recount(text, merges):
    expected = naive_merges(text, merges)
    tok = BPETokenizer().train(text, 256 + len(expected))
    assert [tuple(p) for p in tok.merges] == expected, (
        f"train({text!r}): merges differ from recounting every pair before each merge")


def test_bpe_merges_equal_a_naive_recount_on_a_real_text():
    expected = naive_merges(CORPUS, 60)
    assert len(expected) == 60
    assert [tuple(p) for p in BPETokenizer().train(CORPUS, 256 + 60).merges] == expected


@given(s=st.text())
def test_bpe_round_trip_any_unicode(s):
    tok = _trained()
    ids = tok.encode(s)
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == s
    assert BPETokenizer().decode(BPETokenizer().encode(s)) == s, "the untrained byte tokenizer round-trips too"


@given(s=st.lists(st.sampled_from(["<|endoftext|>", "<|pad|>", "a", " ", "é", "<", "|", "中"]), max_size=12).map("".join))
def test_bpe_special_tokens_round_trip_as_single_ids(s):
    tok = _trained()
    ids = tok.encode(s)
    assert tok.decode(ids) == s
    assert ids.count(tok.special_tokens["<|endoftext|>"]) == s.count("<|endoftext|>")


_cache: dict[str, object] = {}


def _trained():
    if "tok" not in _cache:
        _cache["tok"] = BPETokenizer().train(CORPUS + "<|endoftext|>" + CORPUS.upper(), 358,
                                             special_tokens=["<|endoftext|>", "<|pad|>"])
    return _cache["tok"]


def test_bpe_special_tokens_get_the_last_ids_and_are_never_merged():
    tok = _trained()
    assert tok.vocab_size == 358 and len(tok.merges) == 100
    assert tok.special_tokens == {"<|endoftext|>": 356, "<|pad|>": 357}
    assert not any(b"<|" in tok.vocab[i] for i in range(256, 356)), "the special token's text is cut out of training"
    assert tok.encode("<|pad|>") == [357]
    assert tok.decode([356, 357]) == "<|endoftext|><|pad|>"


@given(data=st.data(), specials=st.lists(st.sampled_from(["<s>", "</s>", "<pad>", "[X]"]), unique=True, max_size=3))
def test_bpe_vocab_size_is_exact(data, specials):
    supported = len(naive_merges(CORPUS, 10_000))
    vocab_size = data.draw(st.integers(256 + len(specials), 256 + len(specials) + supported), label="vocab_size")
    tok = BPETokenizer().train(CORPUS, vocab_size, special_tokens=specials)
    assert tok.vocab_size == vocab_size
    assert len(tok.merges) == vocab_size - 256 - len(specials)
    assert sorted(tok.special_tokens.values()) == list(range(vocab_size - len(specials), vocab_size))
    assert max(tok.encode(CORPUS + "".join(specials)), default=0) < vocab_size


@given(text=st.text(min_size=0, max_size=60), merges=st.integers(0, 3))
def test_bpe_encoding_of_the_training_text_is_never_longer_than_its_bytes(text, merges):
    text = text + " abcdefgh"  # one chunk of 8 distinct bytes: at least 3 merges are always possible
    tok = BPETokenizer().train(text, 256 + merges)
    ids = tok.encode(text)
    assert len(ids) <= len(text.encode("utf-8"))
    if merges:
        assert len(ids) < len(text.encode("utf-8")), "every learned merge occurs in the training text"
    assert tok.decode(ids) == text


@given(text=small_texts)
def test_bpe_training_is_reproducible(text):
    supported = len(naive_merges(text, 6))
    first = BPETokenizer().train(text, 256 + supported)
    second = BPETokenizer().train(text, 256 + supported)
    assert first.merges == second.merges and first.encode(text) == second.encode(text)
    again = first.train(text, 256 + supported)
    assert again.merges == second.merges, "training again from the same tokenizer starts afresh"


def test_bpe_untrained_is_the_byte_tokenizer():
    tok = BPETokenizer()
    assert tok.vocab_size == 256 and tok.merges == []
    assert tok.encode("é!") == [195, 169, 33]
    assert tok.decode([195]) == "\ufffd", "a cut multi-byte character decodes to U+FFFD (errors='replace')"
    assert tok.vocab[65] == b"A"
    assert repr(tok) == "BPETokenizer(vocab_size=256, merges=0, special_tokens=0)"


def test_bpe_save_and_load_round_trip(tmp_path):
    tok = _trained()
    path = str(tmp_path / "tokenizer.json")
    tok.save(path)
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    assert [tuple(p) for p in state["merges"]] == [tuple(p) for p in tok.merges], "merges are saved in order"
    assert state["special_tokens"] == {"<|endoftext|>": 356, "<|pad|>": 357}
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
    assert loaded.vocab_size == tok.vocab_size
    sample = CORPUS[:200] + "<|endoftext|> naïve 中文"
    assert loaded.encode(sample) == tok.encode(sample)
    assert loaded.decode(loaded.encode(sample)) == sample
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    with pytest.raises(ValueError, match="other.json"):
        BPETokenizer.load(str(other))


@pytest.mark.parametrize(
    "args, kwargs, exc, fragment",
    [(("abc", 255), {}, ValueError, "vocab_size"), (("abc", 257), {"special_tokens": ["<a>", "<b>"]}, ValueError, "258"),
     (("abc", "300"), {}, ValueError, "vocab_size"), (("abc", True), {}, ValueError, "vocab_size"),
     (("abc", 300.0), {}, ValueError, "vocab_size"), (("abc", 260), {"special_tokens": [""]}, ValueError, "special"),
     (("abc", 260), {"special_tokens": ["<a>", "<a>"]}, ValueError, "<a>"),
     ((b"abc", 260), {}, TypeError, "bytes"), (("ab", 258), {}, ValueError, r"\b1 merges")],
)
def test_bpe_train_rejects_bad_arguments(args, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        BPETokenizer().train(*args, **kwargs)


def test_bpe_encode_and_decode_errors():
    tok = BPETokenizer().train("abab", 257)
    with pytest.raises(IndexError, match=r"\b257\b"):
        tok.decode([97, 257])
    with pytest.raises(TypeError, match="bytes"):
        tok.encode(b"ab")
