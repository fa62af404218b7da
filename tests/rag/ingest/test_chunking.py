"""Chunking by structure and tokens, and the loaders' sections."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pilothouse.rag.chunking import ChunkingOptions, Section, chunk_sections
from pilothouse.rag.embedders import embedder_for
from pilothouse.rag.loaders import load_path
from pilothouse.rag.loaders.document import LoaderError
from pilothouse.rag.loaders.html import load_html
from pilothouse.rag.loaders.jsonl import load_jsonl
from pilothouse.rag.loaders.markdown import load_markdown


def _count(texts: list[str]) -> list[int]:
    return embedder_for("all-MiniLM-L6-v2").count_tokens(texts)


def test_chunks_stay_within_the_token_budget_and_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
    chunks = chunk_sections([Section(" ".join(sentences))], _count, ChunkingOptions(max_tokens=64, overlap_tokens=16))
    assert len(chunks) > 5
    for chunk in chunks:
        assert _count([chunk.text])[0] <= 64 + 2  # the joins may merge a token or two at most
    for a, b in itertools.pairwise(chunks):
        first_of_b = b.text.split(". ")[0]
        assert first_of_b in a.text  # the next chunk starts with the end of the previous one
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_a_long_sentence_is_cut_at_words() -> None:
    text = " ".join(["word"] * 600)
    chunks = chunk_sections([Section(text)], _count, ChunkingOptions(max_tokens=100, overlap_tokens=0))
    assert len(chunks) >= 6 and all(c.tokens <= 100 for c in chunks)


def test_sections_are_never_mixed_and_keep_headings() -> None:
    doc = load_markdown(
        "---\ntitle: Guide\nteam: infra\n---\n# Setup\n\nInstall it.\n\n"
        "## Linux\n\nUse apt.\n\n```\n# not a header\n```\n",
        source="g.md",
    )
    assert doc.title == "Guide" and doc.metadata == {"team": "infra"}
    chunks = chunk_sections(doc.sections, _count, ChunkingOptions())
    assert [(c.headings, c.text) for c in chunks] == [
        (("Setup",), "Install it."),
        (("Setup", "Linux"), "Use apt.\n\n``` # not a header ```"),  # lines of a paragraph join
    ]


def test_html_skips_hidden_and_script_text() -> None:
    doc = load_html(
        "<html><title>T</title><body><h2>Part</h2><p>Seen.</p><div hidden>unseen</div>"
        "<script>var x='unseen';</script><span style='display: none'>unseen</span></body></html>",
        source="p.html",
    )
    assert doc.title == "T" and [(s.headings, s.text) for s in doc.sections] == [(("Part",), "Seen.")]


def test_jsonl_records_are_checked() -> None:
    docs = load_jsonl('{"id": "a", "text": "x", "metadata": {"year": 2024}, "users": ["u1"]}\n', source="f.jsonl")
    assert docs[0].source == "f.jsonl#a" and docs[0].metadata == {"year": 2024} and docs[0].users == ("u1",)
    with pytest.raises(LoaderError, match="reserved"):
        load_jsonl('{"text": "x", "metadata": {"_acl": ["*"]}}\n', source="f.jsonl")
    with pytest.raises(LoaderError, match=r"f\.jsonl:2: not JSON"):
        load_jsonl('{"text": "x"}\nnope\n', source="f.jsonl")


def _pdf(pages: list[str]) -> bytes:
    """A minimal PDF with one line of text per page (Helvetica), built by hand with a correct xref table."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        content = len(objects) + 2
        kids.append(f"{len(objects) + 1} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_pages_become_sections_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(_pdf(["Install the pump first.", "Then open the valve slowly."]))
    [doc] = load_path(path)
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "Install the pump first."),
        (2, "Then open the valve slowly."),
    ]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(LoaderError, match=r"broken\.pdf"):
        load_path(broken)
