"""Text analysis for the checklist gold: words, sentences, word matching, evidence snippets.

Everything here is deterministic and dependency-free. Word matching is case-insensitive and
accepts the plain inflections ``-s``, ``-es``, ``'s`` (``lantern`` matches ``Lanterns``), never a
longer word (``light`` does not match ``lighthouse``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_BULLET_RE = re.compile(r"^\s*[-*•]\s+\S")
_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.MULTILINE)
_TRAILING_CLOSERS = "\"”’')»*_ \t\n"
TERMINAL_PUNCT = ".!?…"

# Function words: prose has many of them, a list of stuffed keywords has almost none.
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "nor", "so", "yet", "of", "to", "in", "on", "at", "for", "with", "from", "by", "as", "into", "onto", "over", "under", "up", "down", "out", "about", "through", "after", "before", "between", "during", "without", "within", "upon", "off", "than", "then", "there", "here", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "have", "has", "had", "having", "can", "could", "will", "would", "shall", "should", "may", "might", "must", "it", "its", "it's", "this", "that", "these", "those", "i", "me", "my", "mine", "you", "your", "yours", "he", "him", "his", "she", "her", "hers", "we", "us", "our", "ours", "they", "them", "their", "theirs", "who", "whom", "whose", "which", "what", "when", "where", "why", "how", "all", "any", "each", "every", "some", "no", "not", "only", "very", "just", "too", "also", "if", "while", "because", "until", "again", "once", "more", "most", "such", "own", "same", "other", "both", "few", "many", "much", "one", "ever", "even", "still", "let", "like"]
)


def words(text: str) -> list[str]:
    """Word tokens, lower-cased (letters/digits with inner apostrophes)."""
    return [m.group(0).casefold() for m in WORD_RE.finditer(text)]


def word_pattern(word: str) -> re.Pattern[str]:
    """Case-insensitive whole-word match of ``word`` and its -s/-es/'s forms."""
    return re.compile(
        r"(?<![^\W_])" + re.escape(word) + r"(?:s|es|'s|’s)?(?![^\W_])", re.IGNORECASE
    )


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Case-insensitive match of the phrase's words separated by any non-word run."""
    parts = [re.escape(w) for w in WORD_RE.findall(phrase)]
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(parts) + r"(?![^\W_])", re.IGNORECASE)


def snippet(text: str, start: int, end: int, context: int = 2) -> str:
    """The matched span with up to ``context`` words either side, on one line."""
    spans = [(m.start(), m.end()) for m in WORD_RE.finditer(text)]
    first = next((i for i, (s, e) in enumerate(spans) if e > start), None)
    last = next((i for i in range(len(spans) - 1, -1, -1) if spans[i][0] < end), None)
    if first is None or last is None or last < first:
        s, e = start, end
    else:
        s = spans[max(0, first - context)][0]
        e = spans[min(len(spans) - 1, last + context)][1]
        s, e = min(s, start), max(e, end)
    piece = " ".join(text[s:e].split())
    return piece[:80]


def first_words(text: str, n: int) -> str:
    """The first ``n`` words of ``text`` as written (one line)."""
    spans = list(WORD_RE.finditer(text))[:n]
    if not spans:
        return text.strip()[:40]
    return " ".join(text[spans[0].start() : spans[-1].end()].split())


def last_words(text: str, n: int) -> str:
    """The last ``n`` words of ``text`` with any final punctuation (one line)."""
    spans = list(WORD_RE.finditer(text))[-n:]
    if not spans:
        return text.strip()[-40:]
    return " ".join(text[spans[0].start() :].strip().split())


@dataclass(frozen=True)
class TextStats:
    """One response, analysed once and shared by every check."""

    text: str

    @cached_property
    def words(self) -> list[str]:
        return words(self.text)

    @property
    def n_words(self) -> int:
        return len(self.words)

    @cached_property
    def lines(self) -> list[str]:
        return [ln for ln in self.text.splitlines() if ln.strip()]

    @cached_property
    def sentences(self) -> list[str]:
        """Sentences: runs ending in . ! ? or a line break, with at least one word."""
        out = []
        for m in _SENTENCE_RE.finditer(self.text):
            s = m.group(0).strip()
            if WORD_RE.search(s):
                out.append(s)
        return out

    @cached_property
    def bullet_lines(self) -> list[str]:
        return [ln.strip() for ln in self.lines if _BULLET_RE.match(ln)]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p for p in re.split(r"\n[ \t]*\n", self.text.strip()) if WORD_RE.search(p)]

    @property
    def letter_ratio(self) -> float:
        chars = [c for c in self.text if not c.isspace()]
        if not chars:
            return 0.0
        return sum(c.isalpha() for c in chars) / len(chars)

    @property
    def function_word_ratio(self) -> float:
        if not self.words:
            return 0.0
        return sum(w in STOPWORDS for w in self.words) / len(self.words)

    def ends_complete(self) -> bool:
        """True when the text ends with terminal punctuation (closing quotes/brackets allowed)."""
        t = self.text.rstrip(_TRAILING_CLOSERS)
        return bool(t) and t[-1] in TERMINAL_PUNCT

    def find_word(self, word: str) -> Iterator[re.Match[str]]:
        return word_pattern(word).finditer(self.text)


__all__ = [
    "STOPWORDS",
    "TERMINAL_PUNCT",
    "WORD_RE",
    "TextStats",
    "first_words",
    "last_words",
    "phrase_pattern",
    "snippet",
    "word_pattern",
    "words",
]
