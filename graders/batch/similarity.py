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
import io
import itertools
import keyword
import tempfile
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from graders.config import PROJECT_ROOT
from graders.load import load_submission
from graders.questions import load_questions
from graders.questions.api import QuestionSpec

NGRAM = 5
MIN_TOKENS = 40
"""Answers shorter than this are too small to tell a copy from the obvious solution."""
DEFAULT_THRESHOLD = 0.8
_KEEP_NAMES = set(dir(builtins)) | {"self", "np", "torch", "nn", "F", "plt"}
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


@dataclass(frozen=True, kw_only=True)
class Answer:
    submission: str
    question: str
    code: str
    """The answer cells as the student wrote them (shown to the TA)."""
    shingles: frozenset[int]


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


def shingles(tokens: Sequence[str], n: int = NGRAM) -> frozenset[int]:
    return frozenset(hash(tuple(tokens[i : i + n])) for i in range(max(0, len(tokens) - n + 1)))


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


def answer_code(cells: Sequence[str], template: set[str]) -> str:
    return "\n\n".join(c for c in cells if " ".join(normalize(c)) not in template)


def answers_of(name: str, source: Path, templates: dict[str, set[str]]) -> list[Answer]:
    """The submission's answer per question (loaded as the grader loads it, into a scratch dir)."""
    questions = load_questions()
    found = []
    with tempfile.TemporaryDirectory(prefix="dlgrade-sim-") as tmp:
        submission = load_submission(source, Path(tmp), questions)
        for ref in submission.notebooks:
            code = answer_code(_cells(ref.path), templates.get(ref.question, set()))
            tokens = normalize(code)
            if len(tokens) >= MIN_TOKENS:
                found.append(
                    Answer(
                        submission=name,
                        question=ref.question,
                        code=code,
                        shingles=shingles(tokens),
                    )
                )
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
            lines_b = {_normal_line(x) for x in b.code.splitlines()}
            shared = tuple(
                line
                for line in a.code.splitlines()
                if _normal_line(line) and _normal_line(line) in lines_b
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
    sources: Sequence[tuple[str, Path]], threshold: float = DEFAULT_THRESHOLD
) -> list[SimilarPair]:
    """Load each submission's answers and compare them pairwise, per question."""
    templates = {q.id: template_cells(q) for q in load_questions()}
    answers: list[Answer] = []
    for name, source in sources:
        try:
            answers += answers_of(name, source, templates)
        except Exception:  # a submission that cannot be loaded has no answers to compare
            continue
    return similar_pairs(answers, threshold)
