"""Understanding a question, once: everything later stages need goes into one `Query`.

Normalization and limits, language, follow-ups that lean on the previous turn,
the names and years that choose documents, the names no document mentions, the
texts to embed and the words to match. Retrieval, selection and wording then
read the `Query`; none of them goes back to the raw question.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..errors import QuestionError
from ..text.analyzer import analyze, fold_accents, stop_words, stop_words_of, word_tokens
from ..text.counterparts import counterparts
from ..index.reader import IndexReader, per_index
from ..ingest.clean import YEAR
from ..text.language import detect_language, other_language
from ..policy import DEFAULT, QuestionPolicy

MAX_QUESTION_CHARS = DEFAULT.question.max_chars
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
WORD = re.compile(r"[\w]+", re.UNICODE)
CAPITALIZED = re.compile(r"\b[A-Z][\w’'-]*[a-z]\w*|\b[A-Z]{2,}\b")
FIRST_WORD = re.compile(r"^\W*\w+")
# A follow-up of this many words or fewer is too short for language identification: it speaks the
# language of the question it follows (which answers, not which sentences, so no set measures it).
TOO_FEW_TO_TELL_THE_LANGUAGE = 3
NAME_TOKEN = re.compile(r"\w(?:[\w.+]*\w)?")


@dataclass(frozen=True)
class Question:
    """A question read without the index: `text` as asked (normalized), `query` with the context it needs."""

    text: str
    language: str
    query: str
    context: str = ""  # the earlier question this one follows up on, if any


@dataclass(frozen=True)
class Names:
    """Names and years of a question, looked up in the index."""

    # (selecting name as written, the documents it points at: by its text or by their titles), in order
    chosen_by: tuple[tuple[str, frozenset[str]], ...] = ()
    unknown: tuple[str, ...] = ()  # names (past the first word) that no indexed sentence contains
    by_title: tuple[tuple[str, frozenset[str]], ...] = ()  # (word, documents whose title's name it is)

    @property
    def words(self) -> tuple[str, ...]:
        """The selecting names, as written."""
        return tuple(written for written, _ in self.chosen_by)

    @property
    def documents(self) -> frozenset[str]:
        """The documents that the selecting names point at."""
        return frozenset().union(*(documents for _, documents in self.chosen_by))

    def documents_of(self, word: str) -> frozenset[str]:
        return next((documents for written, documents in self.chosen_by if written == word), frozenset())


@dataclass(frozen=True)
class Query:
    """A question understood: what retrieval, selection and wording read."""

    text: str
    language: str
    query: str  # the text with the context it needs (a follow-up carries the earlier question)
    context: str
    documents: frozenset[str]  # documents chosen by a name or year of this turn, else of the earlier one
    selector_words: tuple[str, ...]
    unknown_names: tuple[str, ...]
    views: tuple[str, ...]  # texts whose mean embedding stands for the question
    lexical: str  # the words BM25 matches
    broad: bool  # asks for an overview (several sentences, grouped by source)
    compare: bool = False  # asks to lay the sources side by side, one column each
    topic: str = ""  # the question without the names that chose sources and the words that ask to compare
    # The documents of those names: "Comparez head et tail" compares the pages head and tail, not also the
    # pages that "Comparez", a capitalized first word looked up as a name, chose by their "comparer".
    compared: frozenset[str] = frozenset()
    by_title: tuple[tuple[str, frozenset[str]], ...] = ()  # words that chose documents as their titles' names
    unfamiliar_words: tuple[str, ...] = ()  # when the collection uses too few of the question's words: those it never does
    # The words, analysed once here: no later stage reads `text` again.
    terms: tuple[str, ...] = ()  # `lexical`'s terms in the question's language
    other_terms: tuple[str, ...] = ()  # … and as the other language would analyse them (names, borrowings)
    qualifier_terms: frozenset[str] = frozenset()  # terms of the names that chose documents and of `lexical`'s years
    topic_terms: frozenset[str] = frozenset()  # `topic`'s terms, in both languages' analysis
    asks: tuple[str, ...] = ()  # the kinds of answer its form asks for: "a quantity", "a time"
    cognate_words: tuple[str, ...] = ()  # `lexical`'s content words, folded: matched to another language's by their openings


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
        raise QuestionError("The question must be text.", "not_text")
    if len(raw) > max_chars * 4:  # refuse huge input before spending time normalizing it
        raise QuestionError(f"The question is too long ({len(raw)} characters); the limit is {max_chars}.",
                            "too_long", length=len(raw), limit=max_chars)
    text = normalize(raw)
    if not any(ch.isalnum() for ch in text):
        raise QuestionError("Please type a question.", "empty")
    if len(text) > max_chars:
        raise QuestionError(f"The question is too long ({len(text)} characters); the limit is {max_chars}.",
                            "too_long", length=len(text), limit=max_chars)
    return text


def names_past_first_word(text: str) -> list[str]:
    first = FIRST_WORD.match(text)
    first_end = first.end() if first else 0
    return [m.group() for m in CAPITALIZED.finditer(text) if m.start() >= first_end]


def is_follow_up(text: str, policy: QuestionPolicy = DEFAULT.question) -> bool:
    """Does `text` lean on the question before it ("Et…", or a pronoun with nothing to refer to)?

    A French inverted pronoun ("Twitter a-t-il…") refers to the name the question
    itself gives; without such a name ("Qu'a-t-elle dit ?") it points back.
    """
    if policy.follow_up_start.match(text):
        return True
    if names_past_first_word(text):
        text = policy.inverted_pronoun.sub(lambda m: m.group()[0], text)
    return any(word in policy.follow_up_words for word in re.split(r"[\s'’-]+", text.lower()))


def is_broad(text: str, policy: QuestionPolicy = DEFAULT.question) -> bool:
    return bool(policy.broad.search(text))


def is_comparison(text: str, names: "Names", policy: QuestionPolicy = DEFAULT.question) -> bool:
    """Asks to compare, or names two sources joined by and/et ("Que prévoient Kantar et Digimind…").
    Two names that one document holds together are what that document speaks of, not two sources
    ("When did Syria and Egypt launch…", "Essential, Required… or Extra"): no comparison."""
    if policy.compare.search(text):
        return True
    return len(names.documents) >= 2 and any(not names.documents_of(a) & names.documents_of(b)
                                             for a, b in joined_pairs(text, names, policy))


def joined_pairs(text: str, names: "Names", policy: QuestionPolicy = DEFAULT.question) -> list[tuple[str, str]]:
    """The names the question joins by and/et, two by two ("Kantar et Digimind"). The conjunction must
    join the names themselves, not any two words of a question that happens to hold two names ("son
    nom et son prénom… Français")."""
    if len(names.words) < 2:
        return []
    alternatives = "|".join(re.escape(w) for w in sorted(names.words, key=len, reverse=True))
    return [(found.group(1), found.group(3))
            for found in re.finditer(rf"\b({alternatives})\b(.{{1,40}}?)(?=\b({alternatives})\b)", text)
            if policy.joined_names.fullmatch(found.group(2).strip(" ,").lower())]


def joined_names(text: str, names: "Names", policy: QuestionPolicy = DEFAULT.question) -> tuple[str, ...]:
    """The names the question joins by and/et: the sources it lays side by side."""
    return tuple(dict.fromkeys(word for pair in joined_pairs(text, names, policy) for word in pair))


def parse_question(raw: object, history: list[str] | None = None, default_language: str = "fr",
                   policy: QuestionPolicy = DEFAULT.question) -> Question:
    """Normalize and check `raw`; when it follows up on the last question in `history`, join them.

    Raises QuestionError for an empty, non-text or oversized question.
    """
    text = check(raw, policy.max_chars)
    language = detect_language(text, default=default_language)
    previous = [normalize(h) for h in (history or []) if isinstance(h, str) and normalize(h)]
    if previous and is_follow_up(text, policy):
        context = previous[-1][: policy.max_chars]
        if len(WORD.findall(text)) <= TOO_FEW_TO_TELL_THE_LANGUAGE:  # "Et 2020 ?" after an English question
            language = detect_language(context, default=language)
        return Question(text, language, f"{context} {text}", context)
    return Question(text, language, text)


def title_name_keys(title: str, policy: QuestionPolicy = DEFAULT.question) -> list[str]:
    """The names a title gives its document, in lower case: the head before a separator ("cp" of
    "cp - Copier des fichiers…", each of "at, batch, atq"), or a short title whole. None for a
    title that is a sentence or a phrase. A stop word ("at", "du") is kept: the question's language decides."""
    head = policy.title_separator.split(title.strip(), maxsplit=1)[0]
    keys = []
    for part in head.split(","):
        tokens = NAME_TOKEN.findall(part.lower())
        # One word: a head of several ("Médias sociaux : …") says what the page is about, not what
        # it is called, and a name of several words is capitalized (the rule for names finds it).
        if len(tokens) != 1:
            return []
        if not (tokens[0].isdigit() or len(tokens[0]) < 2):
            keys.append(tokens[0])
    return keys


def title_names(index: IndexReader, policy: QuestionPolicy = DEFAULT.question) -> dict[str, frozenset[str]]:
    """Name (lower case) → the documents whose title gives that name; computed once per open index."""
    return per_index(("title names", policy), index, lambda: _title_names(index, policy))


def _title_names(index: IndexReader, policy: QuestionPolicy) -> dict[str, frozenset[str]]:
    names: dict[str, set[str]] = {}
    for doc_id, document in index.documents.items():
        for name in title_name_keys(document.title, policy):
            names.setdefault(name, set()).add(doc_id)
    return {name: frozenset(docs) for name, docs in names.items()}


def _named_by_title(index: IndexReader, text: str, language: str, policy: QuestionPolicy
                    ) -> list[tuple[str, frozenset[str]]]:
    """(word as written, documents) for each word of the question that is a title's name, unless
    it is a stop word of the question's language ("at" in English, "du" in French)."""
    names = title_names(index, policy)
    if not names:
        return []
    ordinary = stop_words_of(language)
    found = []
    for token in NAME_TOKEN.finditer(text):
        name = token.group().lower()
        if name in names and fold_accents(name) not in ordinary:
            found.append((token.group(), names[name]))
    return found


def _in_some_documents(index: IndexReader, words: str) -> bool:
    """Whether some documents, not all, have a sentence with every term of `words`."""
    held = None
    for term in dict.fromkeys(analyze(words, "fr")):
        docs = set(index.term_documents(term).tolist())
        held = docs if held is None else held & docs
    return held is None or len(held) < len(index.doc_ids)


def find_names(index: IndexReader, text: str, language: str, policy: QuestionPolicy = DEFAULT.question) -> Names:
    """One rule for names: capitalized words and years, looked up in the sentence index, and the
    names documents give themselves in their titles, however the question writes them.

    A name or year that only some documents contain chooses those documents; a name
    (not the question's first word, which is capitalized anyway) that no sentence
    contains, under either language's stemming or the other language's name for it (a
    day, month, country, language or city: `named_otherwise`), is unknown, and the documents
    cannot answer about it. Cost grows with the number of documents holding the word,
    not with the size of the documents.
    A title's name ("sort" of "sort - Trier les lignes…") chooses the documents it
    names, unless every document holds it (then it says nothing of which one is meant).
    """
    all_docs = len(index.doc_ids)
    first = FIRST_WORD.match(text)
    first_end = first.end() if first else 0
    chosen_by: dict[str, frozenset[str]] = {}
    unknown: list[str] = []
    matches = {m.group(): m.start() for m in CAPITALIZED.finditer(text)}  # the last place it stands
    for m in YEAR.finditer(text):
        matches.setdefault(m.group(), -1)  # a year counts wherever it stands
    for word in sorted(matches):
        name = re.sub(r"[’']s$", "", word)
        if len(name) < 3:
            continue
        spellings = {"fr": analyze(name, "fr"), "en": analyze(name, "en")}
        present = documents_holding(index, spellings)
        if name.isdigit():
            present[index.docs_of_year.get(int(name), [])] = True
        count = int(np.count_nonzero(present))
        if 0 < count < all_docs:
            chosen_by[word] = frozenset(index.doc_ids[int(code)] for code in np.flatnonzero(present))
        if matches[word] >= first_end or matches[word] < 0:
            all_terms = {term for spelling in spellings.values() for term in spelling}
            if (name.lower() not in stop_words() and all_terms and not any(index.knows(term) for term in all_terms)
                    and not (policy.name_counterparts and named_otherwise(index, name))):
                unknown.append(name)
    by_title = []
    for written, documents in _named_by_title(index, text, language, policy):
        if len(documents) < all_docs and _in_some_documents(index, written):
            by_title.append((written, documents))
            chosen_by[written] = chosen_by.get(written, frozenset()) | documents
    return Names(tuple(chosen_by.items()), tuple(unknown), tuple(by_title))


def documents_holding(index: IndexReader, spellings: dict[str, list[str]]) -> np.ndarray:
    """Which documents, in `doc_ids` order, hold a one-word name, given its terms as each language's
    stemmer reads it. A sentence's words are stemmed in its document's language ("Armenia" is "armeni"
    to the French stemmer, "armenia" to the English one), so each spelling is looked up in the
    documents of its language only ("Paris" is "pari" to the English stemmer: a bet, on a French page)."""
    english = index.doc_languages == "en"
    present = np.zeros(len(english), dtype=bool)
    for language, terms in spellings.items():
        if len(terms) == 1 and len(english):
            found = np.zeros(len(english), dtype=bool)
            found[index.term_documents(terms[0])] = True
            present |= found & (english == (language == "en"))
    return present


def named_otherwise(index: IndexReader, name: str) -> bool:
    """Whether the documents name it in the other language: "samedi" for "Saturday", "Grèce" for
    "Greece", "français" for "French" (an English day, month or language is capitalized, not a name)."""
    for other, language in counterparts(name):
        terms = analyze(other, language)
        if terms and all(index.knows(term) for term in terms):
            return True
    return False


def without_words(text: str, words: tuple[str, ...]) -> str:
    """The text with its document-selecting names removed: what the document must answer."""
    for word in words:
        text = re.sub(rf"\b{re.escape(word)}\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def query_views(question: Question, selector_words: tuple[str, ...]) -> tuple[str, ...]:
    """The texts whose mean embedding stands for the question (one model call, batched).

    A follow-up is the earlier question joined to this one, plus this one alone, so
    that what is asked now weighs more than what was asked before. When names chose
    the documents, the question without them is added: a sentence must match what
    is asked, not merely repeat "Kantar".
    """
    views = [question.query]
    if question.context:
        views.append(question.text)
    if selector_words:
        focus = without_words(question.query, selector_words)
        if any(ch.isalnum() for ch in focus):
            views.append(focus)
    return tuple(views)


def asked_kinds(text: str, policy: QuestionPolicy = DEFAULT.question) -> tuple[str, ...]:
    """"a quantity" and/or "a time" when the question's form asks for one ("Combien…", "Quand…")."""
    kinds = (("a quantity", policy.asks_quantity), ("a time", policy.asks_time))
    return tuple(kind for kind, pattern in kinds if _asks(pattern, text, policy))


def _asks(kind: re.Pattern[str], question: str, policy: QuestionPolicy) -> bool:
    """Whether `kind` is what the question asks: its words come before any other interrogative
    ("How can uniq count how many times…" asks for a way, not a number)."""
    found = kind.search(question)
    return found is not None and not policy.interrogative.search(question[: found.start()])


def understand(question: Question, index: IndexReader, policy: QuestionPolicy = DEFAULT.question) -> Query:
    """The `Query` for a parsed question: its names and years looked up in `index`."""
    names = find_names(index, question.text, question.language, policy)
    earlier = find_names(index, question.context, question.language, policy) if question.context else Names()
    named = earlier if not names.documents and question.context else names  # this turn's names outrank the last's
    documents, words, by_title = named.documents, named.words, named.by_title
    # In a follow-up, the words of this turn ("des partenariats") count twice those of the last one.
    lexical = f"{question.text} {question.query}" if question.context else question.query
    broad = is_broad(question.text, policy)
    compare = is_comparison(question.text, names, policy)
    if question.context and len(WORD.findall(question.text)) <= policy.kind_follow_up_max_words:
        # A short follow-up keeps the kind of question it follows: "Et pour 2020 ?" after
        # "Quelles sont les prédictions de Kantar pour 2019 ?" asks for the 2020 predictions.
        broad = broad or is_broad(question.context, policy)
        compare = compare or is_comparison(question.context, earlier, policy)
    # The compared sources are the names the question joins ("Kantar et Digimind"), else those their
    # titles give them; the topic is what is left once they are unnamed. A name that chose a document by
    # its text is what they are asked about ("… sur Google", "Compare the sources on TikTok") and stays.
    topic, compared = "", frozenset[str]()
    if compare:
        sources = joined_names(question.text, names, policy) or tuple(written for written, _ in by_title)
        topic = policy.compare.sub(" ", without_words(question.text, sources))
        chosen = dict(named.chosen_by)
        compared = frozenset(d for word in sources for d in chosen.get(word, ()))
    years = tuple(YEAR.findall(lexical))
    return Query(
        text=question.text, language=question.language, query=question.query, context=question.context,
        documents=documents, selector_words=words, unknown_names=names.unknown,
        views=query_views(question, words), lexical=lexical, broad=broad, compare=compare, topic=topic,
        compared=compared,
        by_title=by_title, unfamiliar_words=unfamiliar_words(index, question.text, question.language, policy),
        terms=tuple(analyze(lexical, question.language)),
        other_terms=tuple(analyze(lexical, other_language(question.language))),
        qualifier_terms=frozenset(t for w in words + years for t in analyze(w, question.language) + analyze(w, "fr")),
        topic_terms=frozenset(analyze(topic, "fr")) | frozenset(analyze(topic, "en")),
        asks=asked_kinds(question.text, policy), cognate_words=cognate_words(lexical),
    )


COGNATE_WORD = re.compile(r"[^\W\d_]{4,}")


def cognate_words(text: str) -> tuple[str, ...]:
    """A text's content words of four letters or more, accents folded (what cognates are told by)."""
    stops = stop_words()
    folded = (fold_accents(w) for w in COGNATE_WORD.findall(text.lower()))
    return tuple(dict.fromkeys(w for w in folded if w not in stops))


def content_words(text: str) -> list[str]:
    """The words of `text` that say what it is about, once each: no stop word, number or word of two letters."""
    return list(dict.fromkeys(w for w in word_tokens(text)
                              if len(w) > 2 and not w.isdigit() and fold_accents(w) not in stop_words()))


def unfamiliar_words(index: IndexReader, text: str, language: str, policy: QuestionPolicy = DEFAULT.question
                     ) -> tuple[str, ...]:
    """The content words of `text` that no sentence of the collection holds (in either language's
    stemming), when they are too many for the collection to be about the question: at least
    `policy.unfamiliar_min_words` and `policy.unfamiliar_share` of them. Empty when absence says
    nothing: a small collection, or one mostly in another language than the question's."""
    if index.sentence_count < policy.vocabulary_min_sentences or not _mostly_in(index, language):
        return ()
    words = content_words(text)
    stems = {w: {*analyze(w, language), *analyze(w, other_language(language))} for w in words}
    held = index.lexical("sentences", sorted(set().union(*stems.values())))  # one read of every term (Milvus: one query)
    unknown = [w for w in words if not any(held.frequency(t) > 0 for t in stems[w])]
    if len(unknown) >= policy.unfamiliar_min_words and len(unknown) >= policy.unfamiliar_share * len(words):
        return tuple(unknown)
    return ()


def _mostly_in(index: IndexReader, language: str) -> bool:
    """Whether at least half the collection's documents are written in `language`."""
    return language_shares(index).get(language, 0.0) >= 0.5


def language_shares(index: IndexReader) -> dict[str, float]:
    """The share of the collection's documents written in each language (kept while the index is open)."""
    return per_index("document languages", index, lambda: _language_shares(index))


def _language_shares(index: IndexReader) -> dict[str, float]:
    if not index.doc_ids:
        return {}
    languages = list(index.doc_languages)
    return {language: languages.count(language) / len(languages) for language in set(languages)}
