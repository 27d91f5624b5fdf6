"""Pairs of submissions whose answer code is suspiciously alike, for a TA to look at.

Per question, each student's answer code is the code cells that are not the template's own
(starter code is shared by everyone and proves nothing). It is normalized with Python's own
tokenizer: comments, blank lines and layout dropped, identifiers renamed in order of first
appearance (``v0``, ``v1``, ...), string literals blanked; so renaming variables and rewording
comments does not hide a copy. Two students are compared by the Jaccard index of their
normalized token 5-grams. Nothing here touches a score: it is a list to read, with both
answers side by side.
"""

from __future__ import annotations

import builtins
import csv
import functools
import hashlib
import io
import itertools
import keyword
import tempfile
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from graders.config import PROJECT_ROOT
from graders.load import load_submission
from graders.questions import load_questions
from graders.questions.api import QuestionSpec
from graders.render.gradebook import spreadsheet_text

NGRAM = 5
PAIRS_SHOWN = 25
"""Pairs per question the summary page shows side by side (the most similar); the CSV beside
it lists every pair. A class that shares its solution makes thousands of pairs, and a page of
them all is one no TA reads (and megabytes to render)."""
MIN_TOKENS = 40
"""Answers shorter than this are too small to tell a copy from the obvious solution."""
DEFAULT_THRESHOLD = 0.8
MAX_ANSWER_CHARS = 100_000
"""Answer code compared per question, at most: the assignment's answers are a few kB. A 45 MiB
cell (under the notebook limit) was tokenized three times in pure Python, 3.4 minutes and 3 GB
of a grader worker outside every sandbox limit (red team, 2026-12-04); past this the rest is
not compared (nor shown: the page quotes the notebook's start)."""
_KEEP_NAMES = set(dir(builtins)) | {"self", "np", "torch", "nn", "F", "plt"}
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


@dataclass(frozen=True, kw_only=True)
class Answer:
    submission: str
    question: str
    code: str
    """The answer cells as the student wrote them (shown to the TA)."""
    size: int
    """Normalized tokens (answers under ``MIN_TOKENS`` are not compared)."""
    shingles: frozenset[int]
    lines: tuple[str, ...]
    """Each line of ``code`` normalized on its own ("" for a blank one): computed once here,
    since a class that shares its code yields a pair for most of its students."""

    @classmethod
    def of(cls, submission: str, question: str, code: str) -> Answer:
        tokens = normalize(code)
        return cls(
            submission=submission,
            question=question,
            code=code,
            size=len(tokens),
            shingles=shingles(tokens),
            lines=tuple(_normal_line(line) for line in code.splitlines()),
        )


@dataclass(frozen=True, kw_only=True)
class SimilarPair:
    question: str
    first: str
    second: str
    similarity: float
    first_code: str
    second_code: str
    shared_lines: tuple[str, ...]
    """Normalized lines both answers contain (what the two have in common)."""


def normalize(code: str) -> list[str]:
    """Tokens with layout, comments and names abstracted; unparsable code falls back to words."""
    names: dict[str, str] = {}
    out: list[str] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code.split()
    for tok in tokens:
        if tok.type in _SKIP or tok.type == tokenize.ENDMARKER:
            continue
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
            if tok.string in _KEEP_NAMES:
                out.append(tok.string)
            else:
                out.append(names.setdefault(tok.string, f"v{len(names)}"))
        elif tok.type == tokenize.STRING:
            out.append("STR")
        else:
            out.append(tok.string)
    return out


def _normal_line(line: str) -> str:
    return " ".join(normalize(line)) if line.strip() else ""


def _digest(gram: Sequence[str]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(gram).encode(), digest_size=8).digest())


def shingles(tokens: Sequence[str], n: int = NGRAM) -> frozenset[int]:
    """The token ``n``-grams, each as a 64-bit digest that is the same in every process (a
    worker's answers meet the driver's; Python's own ``hash`` of a string is salted per
    process)."""
    return frozenset(_digest(tokens[i : i + n]) for i in range(max(0, len(tokens) - n + 1)))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _cells(path: Path) -> list[str]:
    nb = nbformat.read(str(path), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def template_cells(spec: QuestionSpec, template_dir: Path | None = None) -> set[str]:
    path = (template_dir or PROJECT_ROOT / "student_template") / f"{spec.notebook_stem}.ipynb"
    if not path.is_file():
        return set()
    return {" ".join(normalize(c)) for c in _cells(path)}


@functools.cache
def _templates() -> dict[str, set[str]]:
    """The starter code of every question, normalized once per process."""
    return {q.id: template_cells(q) for q in load_questions()}


def answer_code(cells: Sequence[str], template: set[str]) -> str:
    """The cells that are not starter code, cut to ``MAX_ANSWER_CHARS`` at a line's end (a
    cell past that size is no template cell, and is not tokenized to find out)."""
    kept = [c for c in cells if len(c) > MAX_ANSWER_CHARS or " ".join(normalize(c)) not in template]
    code = "\n\n".join(kept)
    if len(code) <= MAX_ANSWER_CHARS:
        return code
    cut = code[:MAX_ANSWER_CHARS]
    return cut[: cut.rfind("\n")] if "\n" in cut else cut


def answers_of(name: str, source: Path) -> list[Answer]:
    """The submission's answer per question (loaded as the grader loads it, into a scratch dir).
    A batch's worker calls it beside the grade, so the driver's scan at the end only compares."""
    questions = load_questions()
    templates = _templates()
    found = []
    with tempfile.TemporaryDirectory(prefix="dlgrade-sim-") as tmp:
        submission = load_submission(source, Path(tmp), questions)
        for ref in submission.notebooks:
            code = answer_code(_cells(ref.path), templates.get(ref.question, set()))
            answer = Answer.of(name, ref.question, code)
            if answer.size >= MIN_TOKENS:
                found.append(answer)
    return found


def similar_pairs(answers: Sequence[Answer], threshold: float) -> list[SimilarPair]:
    """Every pair of one question's answers at or above ``threshold``, most similar first."""
    pairs = []
    by_question: dict[str, list[Answer]] = {}
    for answer in answers:
        by_question.setdefault(answer.question, []).append(answer)
    for question, group in sorted(by_question.items()):
        for a, b in itertools.combinations(sorted(group, key=lambda x: x.submission), 2):
            score = jaccard(a.shingles, b.shingles)
            if score < threshold:
                continue
            lines_b = set(b.lines)
            shared = tuple(
                line
                for line, normal in zip(a.code.splitlines(), a.lines, strict=True)
                if normal and normal in lines_b
            )
            pairs.append(
                SimilarPair(
                    question=question,
                    first=a.submission,
                    second=b.submission,
                    similarity=score,
                    first_code=a.code,
                    second_code=b.code,
                    shared_lines=shared,
                )
            )
    return sorted(pairs, key=lambda p: (-p.similarity, p.question, p.first, p.second))


def find_similar(
    sources: Sequence[tuple[str, Path]],
    threshold: float = DEFAULT_THRESHOLD,
    known: Mapping[str, Sequence[Answer]] | None = None,
) -> list[SimilarPair]:
    """Compare each submission's answers pairwise, per question; ``known``: answers already
    read (by the workers, for the submissions this run graded), the rest are loaded here."""
    answers: list[Answer] = []
    for name, source in sources:
        if known is not None and name in known:
            answers += known[name]
            continue
        try:
            answers += answers_of(name, source)
        except Exception:  # a submission that cannot be loaded has no answers to compare
            continue
    return similar_pairs(answers, threshold)


def shown(pairs: Sequence[SimilarPair], per_question: int = PAIRS_SHOWN) -> list[SimilarPair]:
    """The first ``per_question`` pairs of each question, in the order given."""
    counts: dict[str, int] = {}
    kept = []
    for pair in pairs:
        counts[pair.question] = counts.get(pair.question, 0) + 1
        if counts[pair.question] <= per_question:
            kept.append(pair)
    return kept


def pairs_csv(pairs: Sequence[SimilarPair]) -> str:
    """Every pair, one row each: question, both submissions, the similarity, shared lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["question", "first", "second", "similarity", "shared_lines"])
    for p in pairs:
        writer.writerow(
            [
                p.question,
                spreadsheet_text(p.first),
                spreadsheet_text(p.second),
                f"{p.similarity:.4f}",
                len(p.shared_lines),
            ]
        )
    return buffer.getvalue()
