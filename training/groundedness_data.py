"""Claims with and without support in a context, built from the CISI abstracts (`../shared/data/rag/cisi`),
for the groundedness classifier (`train_groundedness.py`).

There is no public labelled set of (context, claim, supported?) among our data: HaluEval's general set has
no context. So the set is built, by rules, from real abstracts. Each example's context is a document's abstract
retrieved with two unrelated abstracts (as a retriever returns several chunks). Supported claims: a sentence of
the abstract shortened to a contiguous part, a sentence of it that holds a number, or the document's title
(its authors' own summary, in other words; in sentence case, as an answer would write it). Unsupported claims:
a sentence or the title of the most similar other document (same topic, not in the context), a sentence of
the abstract with one content word swapped for one from that similar document, or with one of its numbers
changed (the hard cases: almost every word is in the context). Documents are split dev/held-out by
`training.splits` on their id, so a held-out abstract never appears in training, not even as a distractor.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilothouse.evals.metrics.claims import STOP_WORDS, claims
from training.splits import Side, side

CISI = Path(__file__).resolve().parents[2] / "shared" / "data" / "rag" / "cisi" / "CISI.ALL"
_FIELD = re.compile(r"^\.([ITAWX])\s*(.*)$")
_SWAPPABLE = re.compile(r"^[A-Za-z][a-z]{4,}$|^\d[\d,.]*$")


@dataclass(frozen=True, slots=True)
class Document:
    id: int
    title: str
    abstract: str


@dataclass(frozen=True, slots=True)
class ClaimExample:
    doc_id: int
    context: tuple[str, ...]
    claim: str
    supported: bool
    how: str
    """sentence_part, sentence_with_number, title, neighbour_sentence, neighbour_title, word_swap, number_swap."""


def documents(path: Path = CISI) -> list[Document]:
    """The documents of CISI.ALL with a title and an abstract."""
    docs: list[Document] = []
    fields: dict[str, list[str]] = {}
    current = ""
    for line in [*path.read_text(encoding="utf-8", errors="replace").splitlines(), ".I 0"]:
        match = _FIELD.match(line)
        if match:
            current = match.group(1)
            if current == "I":
                if fields.get("I") and fields.get("W"):
                    title = " ".join(" ".join(fields.get("T", [])).split())
                    abstract = " ".join(" ".join(fields["W"]).split())
                    docs.append(Document(int(fields["I"][0]), title, abstract))
                fields = {"I": [match.group(2).strip()]}
            else:
                fields.setdefault(current, [])
                if match.group(2).strip():
                    fields[current].append(match.group(2))
        elif current in ("T", "W"):
            fields.setdefault(current, []).append(line)
    return docs


def doc_side(doc: Document) -> Side:
    return side(doc.title, key=f"cisi-{doc.id}", salt="pilothouse-evals-groundedness-v1")


def _content(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text) if w.lower() not in STOP_WORDS and len(w) > 2}


def neighbours(docs: list[Document]) -> dict[int, Document]:
    """Each document's most similar other document (Jaccard of content words of title and abstract)."""
    words = [_content(d.title + " " + d.abstract) for d in docs]
    vocabulary = {w: i for i, w in enumerate(sorted(set().union(*words)))}
    matrix = np.zeros((len(docs), len(vocabulary)), dtype=np.float32)
    for row, found in enumerate(words):
        matrix[row, [vocabulary[w] for w in found]] = 1.0
    sizes = matrix.sum(axis=1)
    shared = matrix @ matrix.T
    jaccard = shared / np.maximum(sizes[:, None] + sizes[None, :] - shared, 1.0)
    np.fill_diagonal(jaccard, -1.0)
    return {doc.id: docs[int(np.argmax(jaccard[i]))] for i, doc in enumerate(docs)}


def sentence_case(title: str) -> str:
    """A title as a sentence ("Use Made of Technical Libraries" -> "Use made of technical libraries"): Title Case
    would make every word look like a name. Acronyms (all capitals) keep their case."""
    words = title.split()
    return " ".join(w if i == 0 or (w.isupper() and len(w) > 1) else w.lower() for i, w in enumerate(words))


_DIGITS = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _number_swap(sentence: str, rng: random.Random) -> str | None:
    """The sentence with one of its numbers changed (the commonest invented detail in a real answer)."""
    found = list(_DIGITS.finditer(sentence))
    if not found:
        return None
    match = rng.choice(found)
    value = float(match.group(0).replace(",", ""))
    new = value + rng.choice([-1, 1]) * max(1.0, round(value * rng.uniform(0.1, 0.9)))
    text = f"{new:g}" if new >= 0 else f"{value + 1:g}"
    return sentence[: match.start()] + text + sentence[match.end() :]


def _part(sentence: str, rng: random.Random) -> str:
    words = sentence.split()
    keep = max(4, int(len(words) * rng.uniform(0.6, 1.0)))
    start = rng.randint(0, len(words) - keep) if len(words) > keep else 0
    return " ".join(words[start : start + keep]).rstrip(",;:") + "."


def _swap(sentence: str, context: str, donor: str, rng: random.Random) -> str | None:
    """The sentence with one content word (or number) replaced by one of the donor's that the context lacks."""
    words = sentence.split()
    positions = [i for i, w in enumerate(words) if _SWAPPABLE.match(w.strip(".,;:")) and w.lower() not in STOP_WORDS]
    in_context = {w.lower().strip(".,;:") for w in context.split()}
    pool = [w.strip(".,;:") for w in donor.split() if _SWAPPABLE.match(w.strip(".,;:"))]
    pool = [w for w in pool if w.lower() not in in_context and w.lower() not in STOP_WORDS]
    if not positions or not pool:
        return None
    at = rng.choice(positions)
    old = words[at]
    new = rng.choice(pool)
    words[at] = new + old[len(old.rstrip(".,;:")) :]
    return " ".join(words)


def examples(which: Side, *, limit_docs: int | None = None, seed: int = 7) -> list[ClaimExample]:
    """The claim examples of one side of the split (about 3 supported and 3 unsupported per document)."""
    docs = [d for d in documents() if len(claims(d.abstract)) >= 3]
    near = neighbours(docs)
    mine = [d for d in docs if doc_side(d) == which]
    rng = random.Random(seed)
    if limit_docs is not None:
        mine = mine[:limit_docs]
    pool = mine  # distractors come from the same documents (each is embedded once)
    out: list[ClaimExample] = []
    for doc in mine:
        neighbour = near[doc.id]
        if doc_side(neighbour) != which:  # never let the other side's text in
            continue
        distractors = [d.abstract for d in rng.sample(pool, 3) if d.id not in (doc.id, neighbour.id)][:2]
        context = tuple(rng.sample([doc.abstract, *distractors], k=len(distractors) + 1))
        sentences = [s for s in claims(doc.abstract) if len(s.split()) >= 6]
        other = [s for s in claims(neighbour.abstract) if len(s.split()) >= 6]
        if len(sentences) < 2 or not other:
            continue
        for sentence in rng.sample(sentences, 2):
            out.append(ClaimExample(doc.id, context, _part(sentence, rng), True, "sentence_part"))
        if len(doc.title.split()) >= 3:
            out.append(ClaimExample(doc.id, context, sentence_case(doc.title), True, "title"))
        out.append(ClaimExample(doc.id, context, rng.choice(other), False, "neighbour_sentence"))
        if len(neighbour.title.split()) >= 3:
            out.append(ClaimExample(doc.id, context, sentence_case(neighbour.title), False, "neighbour_title"))
        with_numbers = [s for s in sentences if _DIGITS.search(s)]
        if with_numbers:
            numbered = rng.choice(with_numbers)
            out.append(ClaimExample(doc.id, context, numbered, True, "sentence_with_number"))
            swapped_number = _number_swap(numbered, rng)
            if swapped_number is not None:
                out.append(ClaimExample(doc.id, context, swapped_number, False, "number_swap"))
        swapped = _swap(rng.choice(sentences), " ".join(context), neighbour.abstract, rng)
        if swapped is not None:
            out.append(ClaimExample(doc.id, context, swapped, False, "word_swap"))
    return out
