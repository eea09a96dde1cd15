"""Questions: normalization, limits, language, and follow-ups that lean on the previous turn."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import QuestionError
from .segment import detect_language

MAX_QUESTION_CHARS = 2000
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
FOLLOW_UP_START = re.compile(
    r"^(?:et|mais|puis|aussi|ensuite|and|but|also|then|what about|how about|and what about)\b", re.IGNORECASE)
FOLLOW_UP_WORDS = {
    "ça", "cela", "ceci", "celui-ci", "celle-ci", "ceux-ci", "il", "elle", "ils", "elles", "eux", "lui", "leur", "leurs",
    "they", "them", "their", "it", "its", "that", "this", "those", "these", "he", "she", "him", "her", "his",
}
WORD = re.compile(r"[\w]+", re.UNICODE)


@dataclass(frozen=True)
class Question:
    """A question ready for retrieval: `text` as asked (normalized), `query` with the context it needs."""

    text: str
    language: str
    query: str
    context: str = ""  # the earlier question this one follows up on, if any


def normalize(raw: str) -> str:
    """NFC, no control or invisible characters, no lone surrogates, single spaces."""
    text = raw.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(raw) else raw
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def check(raw: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The normalized question, or QuestionError saying what to do instead."""
    if not isinstance(raw, str):
        raise QuestionError("The question must be text.")
    if len(raw) > max_chars * 4:  # refuse huge input before spending time normalizing it
        raise QuestionError(f"The question is too long ({len(raw)} characters); the limit is {max_chars}.")
    text = normalize(raw)
    if not any(ch.isalnum() for ch in text):
        raise QuestionError("Please type a question.")
    if len(text) > max_chars:
        raise QuestionError(f"The question is too long ({len(text)} characters); the limit is {max_chars}.")
    return text


def is_follow_up(text: str) -> bool:
    words = [w.lower() for w in WORD.findall(text)]
    if len(words) <= 3:
        return True
    if FOLLOW_UP_START.match(text):
        return True
    return any(word in FOLLOW_UP_WORDS for word in re.split(r"[\s'’-]+", text.lower()))


def prepare_question(raw: object, history: list[str] | None = None, default_language: str = "fr") -> Question:
    """Normalize and check `raw`; when it follows up on the last question in `history`, join them for retrieval."""
    text = check(raw)
    language = detect_language(text, default=default_language)
    previous = [normalize(h) for h in (history or []) if isinstance(h, str) and normalize(h)]
    if previous and is_follow_up(text):
        context = previous[-1][:MAX_QUESTION_CHARS]
        if len(WORD.findall(text)) <= 3:  # too few words to tell the language: keep the conversation's
            language = detect_language(context, default=language)
        return Question(text, language, f"{context} {text}", context)
    return Question(text, language, text)
