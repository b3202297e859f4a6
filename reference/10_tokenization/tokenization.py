"""Module 10 - Tokenization: from text to integers and back.

A language model reads and writes integers. A tokenizer fixes the mapping, and that choice
sets how long every sequence is, how big the embedding table must be (module 11), and which
strings the model can represent at all. This module builds the two classic tokenizers:

    CharTokenizer(text)        one id per character seen in `text` (nanoGPT's shakespeare_char):
                               ids in code-point order, encode/decode, vocab_size
    BPETokenizer()             byte-level byte-pair encoding (GPT-2's scheme, Sennrich et al. 2016):
                               train(text, vocab_size, special_tokens=()), encode, decode,
                               save(path) / BPETokenizer.load(path) (JSON)

Unknown-character policy of CharTokenizer: a character that is not in the vocabulary is an
error. `encode` raises `KeyError` naming the character (its repr and code point) and its
position; there is no silent <unk>. (Byte-level BPE has no unknown characters at all: every
string is a sequence of UTF-8 bytes, and the 256 byte values are always in the vocabulary.)

BPE conventions (fixed here so that results are reproducible and checkable):
* Ids 0..255 are the raw bytes; merge k creates id 256 + k; special tokens come last.
* Text is first split into chunks by PATTERN (runs of word characters, runs of other
  non-space characters, runs of whitespace); merges never cross a chunk boundary.
* Each merge picks the most frequent adjacent pair; ties go to the lexicographically
  smallest pair of ids (a, b). Training needs no randomness, so it is deterministic.
* Pair counts are updated incrementally: a merge touches only the chunks that contain
  the merged pair, instead of recounting every pair of the corpus.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

# Words, runs of punctuation/symbols, runs of whitespace: every character is in exactly one class,
# so the chunks always concatenate back to the text.
PATTERN = r"\w+|[^\w\s]+|\s+"
_CHUNK = re.compile(PATTERN)
FORMAT = "tinytorch-byte-bpe"
VERSION = 1


# ----------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------


class CharTokenizer:
    """One token per character. The vocabulary is sorted(set(text)): ids follow code-point order.

    vocab:      list of the characters, vocab[i] is the character of id i.
    vocab_size: len(vocab).
    encode(s) -> list[int]; a character outside the vocabulary is a KeyError naming it and its
                 position (no silent <unk>).
    decode(ids) -> str; an id outside [0, vocab_size) is an IndexError naming it.
    """

    def __init__(self, text: str):
        # TODO: text must be a str (TypeError naming its type); build self.vocab (sorted unique
        #       characters), self.stoi (char -> id) and self.itos (id -> char).
        # BEGIN SOLUTION
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer needs a str to build its vocabulary, got {type(text).__name__}")
        self.vocab = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        self.itos = dict(enumerate(self.vocab))
        # END SOLUTION

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """The id of each character of `text`."""
        # TODO: look every character up in self.stoi; for a missing one raise
        #       KeyError(f"character {ch!r} (U+{ord(ch):04X}) at position {i} is not in the vocabulary ...").
        # BEGIN SOLUTION
        stoi = self.stoi
        try:
            return [stoi[ch] for ch in text]
        except KeyError:
            position, ch = next((i, ch) for i, ch in enumerate(text) if ch not in stoi)
            raise KeyError(f"character {ch!r} (U+{ord(ch):04X}) at position {position} is not in the"
                           f" vocabulary of {self.vocab_size} characters") from None
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of `ids` (a list, numpy array or anything iterable of ints), joined."""
        # BEGIN SOLUTION
        itos = self.itos
        try:
            return "".join(itos[int(i)] for i in ids)
        except KeyError:
            bad = next(int(i) for i in ids if int(i) not in itos)
            raise IndexError(f"token id {bad} is out of range for vocab_size={self.vocab_size}") from None
        # END SOLUTION

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# ----------------------------------------------------------------------------
# Byte-pair encoding: helpers (given)
# ----------------------------------------------------------------------------


def chunks(text: str) -> list[str]:
    """Split text into the pieces BPE works inside: re.findall(PATTERN, text). ''.join(chunks) == text."""
    return _CHUNK.findall(text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair` in ids, left to right, by new_id.

    merge_pair([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]   (left to right: the first two 1s merge)
    """
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ----------------------------------------------------------------------------
# Byte-pair encoding
# ----------------------------------------------------------------------------


class BPETokenizer:
    """Byte-level BPE. Untrained, it is the 256-token byte tokenizer; `train` learns merges.

    merges:         list of (a, b) pairs in the order learned; merge k made id 256 + k.
    vocab:          dict id -> bytes (256 single bytes, then a merge's bytes = vocab[a] + vocab[b]).
    special_tokens: dict str -> id (ids after the merges). A special token in the text to encode
                    becomes its single id; in training it is cut out of the text, never merged.
    vocab_size:     256 + len(merges) + len(special_tokens).
    """

    def __init__(self):
        self.merges: list[tuple[int, int]] = []
        self.special_tokens: dict[str, int] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        """Derive vocab, ranks and the special-token splitter from merges and special_tokens (given)."""
        self.vocab = {i: bytes([i]) for i in range(256)}
        for k, (a, b) in enumerate(self.merges):
            self.vocab[256 + k] = self.vocab[a] + self.vocab[b]
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}
        self.inverse_special = {i: s for s, i in self.special_tokens.items()}
        # Longest first, so that a special token that contains another one wins.
        names = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    def _split_special(self, text: str) -> list[str]:
        """text split around special tokens: [plain, special, plain, ...] (given)."""
        return [text] if self._special_re is None else self._special_re.split(text)

    # -- training ------------------------------------------------------------

    def train(self, text: str, vocab_size: int, special_tokens: Iterable[str] = ()) -> "BPETokenizer":
        """Learn vocab_size - 256 - len(special_tokens) merges from `text`; returns self.

        Errors: text not a str (TypeError naming its type); vocab_size not an int (bools and
        floats are not) or below 256 + len(special_tokens) (ValueError with "vocab_size" and that
        minimum); special tokens that are empty or not str ("special tokens must be non-empty
        strings") or repeated (ValueError naming the token); a text with no adjacent pair left
        before the last merge (ValueError "the text supports only {k} merges ...").

        The algorithm (incremental): count each distinct chunk once with its frequency; keep
        counts[pair] (sum of chunk frequencies times occurrences), where[pair] (the chunks that
        contain it) and a heap of (-count, (a, b)). For each merge: pop the best live pair, rewrite
        only the chunks in where[pair], and for each of them subtract its old pairs and add its
        new ones (pushing changed counts on the heap).
        """
        # TODO: 1. Validate (see the errors above) and reset merges and special tokens.
        # TODO: 2. words: the distinct byte sequences of chunks(piece) for each piece of text
        #          between special tokens, with their frequencies (collections.Counter).
        # TODO: 3. counts, where and the heap, from every word's pairs.
        # TODO: 4. Repeat: pop heap entries until one matches counts (stale entries are skipped);
        #          none left -> ValueError. Record the merge, rewrite the affected words with
        #          merge_pair, update counts/where/heap from the difference.
        # TODO: 5. Special tokens get the ids after the merges; self._rebuild().
        # BEGIN SOLUTION
        if not isinstance(text, str):
            raise TypeError(f"train: text must be a str, got {type(text).__name__}")
        specials = list(special_tokens)
        for token in specials:
            if not isinstance(token, str) or not token:
                raise ValueError(f"train: special tokens must be non-empty strings, got {token!r}")
        if len(set(specials)) != len(specials):
            repeated = next(t for t in specials if specials.count(t) > 1)
            raise ValueError(f"train: special token {repeated!r} is given twice")
        minimum = 256 + len(specials)
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < minimum:
            raise ValueError(f"train: vocab_size must be an int >= {minimum} (256 bytes +"
                             f" {len(specials)} special tokens), got vocab_size={vocab_size!r}")
        num_merges = vocab_size - minimum
        self.merges, self.special_tokens = [], {}
        self._rebuild()
        pieces = re.split("|".join(map(re.escape, sorted(specials, key=len, reverse=True))), text) \
            if specials else [text]
        frequencies = Counter(chunk for piece in pieces for chunk in chunks(piece))
        words = [list(chunk.encode("utf-8")) for chunk in frequencies]
        freqs = list(frequencies.values())
        counts: dict[tuple[int, int], int] = {}
        where: dict[tuple[int, int], set[int]] = {}
        for w, ids in enumerate(words):
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + freqs[w]
                where.setdefault(pair, set()).add(w)
        heap = [(-c, pair) for pair, c in counts.items()]
        heapq.heapify(heap)
        for k in range(num_merges):
            while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
                heapq.heappop(heap)  # stale: the pair's count changed since it was pushed
            if not heap:
                raise ValueError(f"train: the text supports only {k} merges (no adjacent pairs left),"
                                 f" but vocab_size={vocab_size} needs {num_merges}")
            _, best = heapq.heappop(heap)
            new_id = 256 + k
            self.merges.append(best)
            changed: dict[tuple[int, int], int] = {}
            for w in where.pop(best):
                old = words[w]
                new = merge_pair(old, best, new_id)
                if len(new) == len(old):
                    continue
                words[w] = new
                for pair in zip(old, old[1:]):
                    changed[pair] = changed.get(pair, 0) - freqs[w]
                for pair in zip(new, new[1:]):
                    changed[pair] = changed.get(pair, 0) + freqs[w]
                    where.setdefault(pair, set()).add(w)
            for pair, delta in changed.items():
                if pair == best or delta == 0:
                    continue
                count = counts.get(pair, 0) + delta
                if count > 0:
                    counts[pair] = count
                    heapq.heappush(heap, (-count, pair))
                else:
                    counts.pop(pair, None)
            counts.pop(best, None)
        self.special_tokens = {token: 256 + num_merges + j for j, token in enumerate(specials)}
        self._rebuild()
        return self
        # END SOLUTION

    # -- encoding and decoding -----------------------------------------------

    def _encode_chunk(self, chunk: str) -> list[int]:
        """The ids of one chunk: its UTF-8 bytes with the learned merges applied in training order."""
        # TODO: start from list(chunk.encode("utf-8")); repeatedly merge the adjacent pair with the
        #       lowest rank (self.ranks: the order merges were learned) until no pair has a rank.
        #       Cache the result per chunk in self._cache (text repeats its words a lot).
        # BEGIN SOLUTION
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        ranks = self.ranks
        while len(ids) >= 2:
            best = min(zip(ids, ids[1:]), key=lambda pair: ranks.get(pair, len(ranks)))
            if best not in ranks:
                break
            ids = merge_pair(ids, best, 256 + ranks[best])
        self._cache[chunk] = ids
        return ids
        # END SOLUTION

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`: special tokens become their id, everything else goes through
        chunks() and _encode_chunk. Any str works (byte-level: nothing is unknown); anything else
        is a TypeError naming its type."""
        # BEGIN SOLUTION
        if not isinstance(text, str):
            raise TypeError(f"encode: text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        for piece in self._split_special(text):
            if piece in self.special_tokens:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in chunks(piece):
                ids.extend(self._encode_chunk(chunk))
        return ids
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`: their bytes joined and decoded as UTF-8.

        An id sequence that cuts a multi-byte character is decoded with errors="replace" (U+FFFD),
        as GPT-2 does; decode(encode(s)) == s always holds. An unknown id is an IndexError naming it.
        """
        # BEGIN SOLUTION
        parts: list[bytes] = []
        for i in ids:
            i = int(i)
            if i in self.vocab:
                parts.append(self.vocab[i])
            elif i in self.inverse_special:
                parts.append(self.inverse_special[i].encode("utf-8"))
            else:
                raise IndexError(f"token id {i} is out of range for vocab_size={self.vocab_size}")
        return b"".join(parts).decode("utf-8", errors="replace")
        # END SOLUTION

    # -- saving and loading --------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON: {"format": FORMAT, "version": VERSION, "pattern": PATTERN,
        "merges": [[a, b], ...], "special_tokens": {token: id}}. The merges' order is the model."""
        # BEGIN SOLUTION
        state = {"format": FORMAT, "version": VERSION, "pattern": PATTERN,
                 "merges": [list(pair) for pair in self.merges], "special_tokens": dict(self.special_tokens)}
        Path(path).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        # END SOLUTION

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """A tokenizer from a file written by save(). A file of another format (or another
        pattern or version) is a ValueError naming the path."""
        # BEGIN SOLUTION
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION \
                or state.get("pattern") != PATTERN:
            raise ValueError(f"{path}: not a {FORMAT} version {VERSION} file")
        tokenizer = cls()
        tokenizer.merges = [(int(a), int(b)) for a, b in state["merges"]]
        tokenizer.special_tokens = {str(s): int(i) for s, i in state["special_tokens"].items()}
        tokenizer._rebuild()
        return tokenizer
        # END SOLUTION

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)},"
                f" special_tokens={len(self.special_tokens)})")
