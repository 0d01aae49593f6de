"""`nodegraph nodes` gives each type's first sentence whole (the first docstring line alone stopped
mid-sentence, issue 19 §2 smaller faults)."""

from __future__ import annotations

from nodegraph.cli import summary


def test_summary_is_the_first_sentence_across_wrapped_lines() -> None:
    doc = """Read a semantic label map: an index PNG (pixel value = class id) or a colour PNG painted
    in the label set's palette. Output: 1 x H x W int64 ids of ``label_set``.

    More detail."""
    assert summary(doc) == ("Read a semantic label map: an index PNG (pixel value = class id) or a colour PNG "
                            "painted in the label set's palette.")
    assert summary("One line, no stop") == "One line, no stop"
    assert summary("") == ""
