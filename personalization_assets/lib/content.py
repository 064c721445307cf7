"""Loading and validating the content library: a folder of JSON documents, one per file.

Every `*.json` file must hold one document with exactly the documented keys and types (pydantic, strict: no
coercion of numbers into strings, unknown keys are errors). All problems of all files are reported together,
each naming the file and the field. Documents whose `approval_date` is missing or in the future are not
errors: they are pending approval, kept out of the approved set and listed separately.

The content version is a SHA-256 over the approved documents (id + each document's own hash), so it changes
exactly when an approved document is added, removed or edited, or when a pending one becomes approved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

CATEGORIES = ("product", "promotion", "support")
# Document ids become Azure AI Search keys (letters, digits, '_', '-', '=') and appear in citations.
DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-=]*$"
# The `content_index` table, as documented in docs/architecture.md.
CONTENT_INDEX_COLUMNS = (
    "document_id",
    "title",
    "category",
    "content",
    "audience",
    "keywords",
    "approval_date",
    "source_url",
    "author",
    "version",
    "last_updated",
    "content_sha256",
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ContentLibraryError(ValueError):
    """The content library cannot be used; the message names each offending file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DocumentMetadata(_Strict):
    author: Text
    version: Text
    last_updated: date


class ContentDocument(_Strict):
    """One content document as stored in its JSON file."""

    document_id: Annotated[str, StringConstraints(pattern=DOCUMENT_ID_PATTERN, max_length=128)]
    title: Text
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    content: Text
    audience: Text
    keywords: list[Text]
    # Missing or null: not approved (excluded from retrieval), not an error.
    approval_date: date | None = None
    source_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    metadata: DocumentMetadata

    def is_approved(self, as_of: date) -> bool:
        return self.approval_date is not None and self.approval_date <= as_of

    @property
    def sha256(self) -> str:
        """Hash of the document's canonical JSON (key order and whitespace of the file do not matter)."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingDocument:
    document_id: str
    file: str
    approval_date: date | None

    def describe(self) -> str:
        when = f"approval date {self.approval_date.isoformat()}" if self.approval_date else "no approval date"
        return f"{self.document_id} ({when})"


@dataclass(frozen=True)
class ContentLibrary:
    """The approved documents (sorted by id), the ones pending approval, and the content version."""

    folder: str
    approved: tuple[ContentDocument, ...]
    pending: tuple[PendingDocument, ...]
    files: dict[str, str]  # document_id -> file name, for messages
    as_of: date

    @property
    def version(self) -> str:
        return content_version(self.approved)

    def pending_summary(self) -> str:
        if not self.pending:
            return "none"
        return "not yet approved: " + ", ".join(p.describe() for p in self.pending)

    def to_frame(self) -> pd.DataFrame:
        """The approved documents as `content_index` rows (keywords as JSON text, metadata flattened)."""
        rows = [
            {
                "document_id": d.document_id,
                "title": d.title,
                "category": d.category,
                "content": d.content,
                "audience": d.audience,
                "keywords": json.dumps(d.keywords, ensure_ascii=False),
                "approval_date": d.approval_date,
                "source_url": d.source_url,
                "author": d.metadata.author,
                "version": d.metadata.version,
                "last_updated": d.metadata.last_updated,
                "content_sha256": d.sha256,
            }
            for d in self.approved
        ]
        frame = pd.DataFrame(rows, columns=list(CONTENT_INDEX_COLUMNS))
        for column in ("approval_date", "last_updated"):
            frame[column] = pd.to_datetime(frame[column])
        return frame


def content_version(documents: tuple[ContentDocument, ...] | list[ContentDocument]) -> str:
    """SHA-256 over (document_id, document hash) of the given documents, in id order."""
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: d.document_id):
        digest.update(f"{document.document_id}\t{document.sha256}\n".encode())
    return digest.hexdigest()


def _describe_error(item: dict) -> str:
    key = ".".join(str(part) for part in item["loc"]) or "(document)"
    if item["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if item["type"] == "missing":
        return f"field '{key}': required field is missing"
    problem = item["msg"]
    value = item.get("input")
    if value is not None and not isinstance(value, dict | list):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        problem += f" (got {shown})"
    return f"field '{key}': {problem}"


def parse_document(path: Path) -> ContentDocument:
    """Parse one file; errors name the file and every offending field."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ContentLibraryError(
            f"{path.name}: not valid UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContentLibraryError(
            f"{path.name}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise ContentLibraryError(
            f"{path.name}: expected one JSON object (a document), got {type(data).__name__}"
        )
    try:
        # Validate the JSON text (not the parsed dict) so strict mode accepts ISO date strings.
        return ContentDocument.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(_describe_error(item) for item in error.errors())
        raise ContentLibraryError(f"{path.name}: {problems}") from None


def load_content_library(folder: str | Path, as_of: date | None = None) -> ContentLibrary:
    """Read and validate every `*.json` document in `folder`; split approved from pending documents.

    `as_of` (default: today, UTC) decides approval: a document is approved when its `approval_date` is on or
    before that day. Raises ContentLibraryError listing every bad file, duplicate id, or an empty library.
    """
    folder = Path(folder)
    as_of = as_of or datetime.now(UTC).date()
    if not folder.exists():
        raise ContentLibraryError(f"{folder}: content library folder not found")
    if not folder.is_dir():
        raise ContentLibraryError(f"{folder}: expected a folder of *.json documents, found a file")
    paths = sorted(p for p in folder.glob("*.json") if p.is_file())
    if not paths:
        raise ContentLibraryError(f"{folder}: the content library is empty (no *.json documents found)")

    problems: list[str] = []
    documents: list[tuple[Path, ContentDocument]] = []
    for path in paths:
        try:
            documents.append((path, parse_document(path)))
        except ContentLibraryError as error:
            problems.append(str(error))

    files_by_id: dict[str, list[str]] = {}
    for path, document in documents:
        files_by_id.setdefault(document.document_id, []).append(path.name)
    problems += [
        f"duplicate document_id {document_id!r} in {' and '.join(names)}"
        for document_id, names in sorted(files_by_id.items())
        if len(names) > 1
    ]
    if problems:
        raise ContentLibraryError(
            f"{folder}: {len(problems)} problem(s) in the content library\n"
            + "\n".join(f"  - {p}" for p in problems)
        )

    approved = tuple(sorted((d for _, d in documents if d.is_approved(as_of)), key=lambda d: d.document_id))
    pending = tuple(
        sorted(
            (
                PendingDocument(d.document_id, p.name, d.approval_date)
                for p, d in documents
                if not d.is_approved(as_of)
            ),
            key=lambda p: p.document_id,
        )
    )
    if not approved:
        raise ContentLibraryError(
            f"{folder}: no approved documents as of {as_of.isoformat()}, and retrieval may only use approved "
            f"content; not yet approved: {', '.join(p.describe() for p in pending)}"
        )
    return ContentLibrary(
        folder=str(folder),
        approved=approved,
        pending=pending,
        files={d.document_id: p.name for p, d in documents},
        as_of=as_of,
    )
