"""Loading and validating the content library: a folder of JSON documents, one per file.

Accepted as exported by ordinary content systems: a UTF-8 (or UTF-16) byte-order mark; keys in any case or
spacing (`Document_ID`, `documentId`); `category` in any case (`Product`); `approval_date` and
`metadata.last_updated` as ISO 8601 dates or date-times with any offset (kept as the date in UTC; a date-time
without an offset is read as UTC); `metadata.version` written as a number (kept as written, `2.10` stays
"2.10"). Hidden files and macOS `._*` companions are ignored. Required: `document_id`, `title`, `category`,
`content`, `audience`; optional: `keywords`, `approval_date` (missing = not approved yet), `source_url`,
`metadata` (and each of its keys). Unknown keys are refused (a misspelt `aproval_date` must not silently
leave a document unapproved).

One bad document does not stop the library: a document that fails validation is quarantined (file, field,
problem) and the others go on, unless fewer than `min_documents` approved documents remain. Documents whose
`approval_date` is missing or in the future are pending, not errors.

The content version is a SHA-256 over the approved documents (id + each document's own hash), so it changes
exactly when an approved document is added, removed or edited, or when a pending one becomes approved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from personalization_assets.lib.inputs import InputError, canonical_name

CATEGORIES = ("product", "promotion", "support")
REQUIRED_FIELDS = ("document_id", "title", "category", "content", "audience")
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
# The `content_quarantine` table: one row per problem of a document left out.
QUARANTINE_COLUMNS = ("file", "document_id", "field", "problem")
MAX_LISTED = 5


def _iso_date(value: object) -> object:
    """An ISO 8601 date, or date-time with any offset, as the calendar date in UTC; "" is no date."""
    if isinstance(value, str) and not value.strip():
        return None
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date such as 2025-11-01, got {type(value).__name__}")
    text = value.strip()
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 date or date-time ({text[:40]!r}); write e.g. 2025-11-01 or 2025-11-01T09:30:00Z"
        ) from None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _category(value: object) -> object:
    return canonical_name(value) if isinstance(value, str) else value


def _blank_is_none(value: object) -> object:
    """An optional text exported as "" (or only spaces) is not given."""
    return None if isinstance(value, str) and not value.strip() else value


def _integer_as_text(value: object) -> object:
    """A document id exported as a JSON integer (`123`): its digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _number_as_text(value: object) -> object:
    """`2` or `2.10` as written (JSON numbers are parsed as int or Decimal, so no digit is lost)."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
IsoDate = Annotated[date | None, BeforeValidator(_iso_date)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


OptionalText = Annotated[Text | None, BeforeValidator(_blank_is_none)]


class DocumentMetadata(_Model):
    author: OptionalText = None
    version: Annotated[Text | None, BeforeValidator(_number_as_text), BeforeValidator(_blank_is_none)] = None
    last_updated: IsoDate = None


class ContentDocument(_Model):
    """One content document as stored in its JSON file."""

    document_id: Annotated[
        str,
        Strict(),
        StringConstraints(strip_whitespace=True, pattern=DOCUMENT_ID_PATTERN, max_length=128),
        BeforeValidator(_integer_as_text),
    ]
    title: Text
    category: Annotated[Literal[CATEGORIES], BeforeValidator(_category)]  # type: ignore[valid-type]
    content: Text
    audience: Text
    keywords: Annotated[list[Text], BeforeValidator(lambda v: [] if v is None else v)] = []
    # Missing or null: not approved (excluded from retrieval), not an error.
    approval_date: IsoDate = None
    source_url: Annotated[
        Annotated[str, Strict(), StringConstraints(strip_whitespace=True, pattern=r"^https?://\S+$")] | None,
        BeforeValidator(_blank_is_none),
    ] = None
    metadata: DocumentMetadata | None = None

    def is_approved(self, as_of: date) -> bool:
        return self.approval_date is not None and self.approval_date <= as_of

    @property
    def sha256(self) -> str:
        """Hash of the document's canonical JSON (key order and whitespace of the file do not matter)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_TOP_KEYS = {canonical_name(k): k for k in ContentDocument.model_fields}
_METADATA_KEYS = {canonical_name(k): k for k in DocumentMetadata.model_fields}


@dataclass(frozen=True)
class PendingDocument:
    document_id: str
    file: str
    approval_date: date | None

    def describe(self) -> str:
        when = f"approval date {self.approval_date.isoformat()}" if self.approval_date else "no approval date"
        return f"{self.document_id} ({when})"


@dataclass(frozen=True)
class Quarantined:
    """One problem of a document left out of the library."""

    file: str
    document_id: str | None
    field: str
    problem: str

    def describe(self) -> str:
        return f"{self.file}: {self.field}: {self.problem}"


class _Refused(Exception):
    def __init__(self, problems: list[tuple[str, str]], document_id: str | None = None):
        self.problems = problems
        self.document_id = document_id


@dataclass(frozen=True)
class ContentLibrary:
    """The approved documents (sorted by id), the pending and the quarantined ones, and the content version."""

    folder: str
    approved: tuple[ContentDocument, ...]
    pending: tuple[PendingDocument, ...]
    files: dict[str, str]  # document_id -> file name, for messages
    as_of: date
    quarantined: tuple[Quarantined, ...] = ()

    @property
    def version(self) -> str:
        return content_version(self.approved)

    def pending_summary(self) -> str:
        if not self.pending:
            return "none"
        return "not yet approved: " + ", ".join(p.describe() for p in self.pending)

    def quarantine_summary(self) -> str:
        if not self.quarantined:
            return "none"
        files = sorted({q.file for q in self.quarantined})
        return f"{len(files)} document(s) left out: " + "; ".join(q.describe() for q in self.quarantined)

    def quarantine_frame(self) -> pd.DataFrame:
        """The `content_quarantine` rows: file, document_id, field, problem."""
        return pd.DataFrame(
            [(q.file, q.document_id, q.field, q.problem) for q in self.quarantined],
            columns=list(QUARANTINE_COLUMNS),
            dtype="string",
        )

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
                "author": d.metadata.author if d.metadata else None,
                "version": d.metadata.version if d.metadata else None,
                "last_updated": d.metadata.last_updated if d.metadata else None,
                "content_sha256": d.sha256,
            }
            for d in self.approved
        ]
        frame = pd.DataFrame(rows, columns=list(CONTENT_INDEX_COLUMNS))
        for column in ("approval_date", "last_updated"):
            frame[column] = pd.to_datetime(frame[column])
        for column in ("source_url", "author", "version"):
            frame[column] = frame[column].astype(object)
        return frame


def content_version(documents: tuple[ContentDocument, ...] | list[ContentDocument]) -> str:
    """SHA-256 over (document_id, document hash) of the given documents, in id order."""
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: d.document_id):
        digest.update(f"{document.document_id}\t{document.sha256}\n".encode())
    return digest.hexdigest()


def _describe_error(item: ErrorDetails) -> tuple[str, str]:
    key = ".".join(str(part) for part in item["loc"]) or "(document)"
    if item["type"] == "extra_forbidden":
        return key, "unknown key (documented keys: see data/README.md)"
    if item["type"] == "missing":
        return key, "required field is missing"
    problem = item["msg"].removeprefix("Value error, ")
    value = item.get("input")
    if value is not None and not isinstance(value, dict | list) and "got" not in problem:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        problem += f" (got {shown})"
    return key, problem


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _documented_keys(data: dict, keys: dict[str, str], prefix: str = "") -> dict:
    """Keys written in any case or spacing under their documented names; two spellings of one key refused."""
    renamed: dict = {}
    for key, value in data.items():
        name = keys.get(canonical_name(key), key)
        if name in renamed:
            raise _Refused([(prefix + name, "the key is written twice (in different case or spacing)")])
        renamed[name] = value
    return renamed


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object; a key written twice is refused (json.loads would silently keep the last value)."""
    data: dict = {}
    for key, value in pairs:
        if key in data:
            raise _Refused([(key, "the key is written twice in one object")])
        data[key] = value
    return data


def parse_document(path: Path) -> ContentDocument:
    """Parse one file; `_Refused` lists (field, problem) of every offending field."""
    try:
        text = _decode(path.read_bytes())
    except UnicodeDecodeError as error:
        raise _Refused(
            [("(file)", f"not valid UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8")]
        ) from None
    try:
        data = json.loads(text, parse_float=Decimal, object_pairs_hook=_no_repeated_keys)
    except _Refused:
        raise
    except json.JSONDecodeError as error:
        raise _Refused(
            [("(file)", f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}")]
        ) from None
    if not isinstance(data, dict):
        raise _Refused([("(file)", f"expected one JSON object (a document), got {type(data).__name__}")])
    data = _documented_keys(data, _TOP_KEYS)
    if isinstance(data.get("metadata"), dict):
        data["metadata"] = _documented_keys(data["metadata"], _METADATA_KEYS, "metadata.")
    document_id = data.get("document_id") if isinstance(data.get("document_id"), str) else None
    try:
        return ContentDocument.model_validate(data)
    except ValidationError as error:
        raise _Refused([_describe_error(item) for item in error.errors()], document_id) from None


def is_document_file(path: Path) -> bool:
    """`*.json` files, not hidden ones nor macOS `._*` companions (AppleDouble metadata, not JSON)."""
    return path.is_file() and path.suffix.lower() == ".json" and not path.name.startswith(".")


def load_content_library(folder: str | Path, as_of: date | None = None, min_documents: int = 1) -> ContentLibrary:
    """Read and validate every `*.json` document in `folder`; split approved, pending and quarantined.

    `as_of` (default: today, UTC) decides approval: a document is approved when its `approval_date` is on or
    before that day. A document that fails validation, or repeats an earlier file's `document_id` (files in
    name order; the first is kept), is quarantined. Raises InputError when the folder is missing or empty, or
    fewer than `min_documents` approved documents remain.
    """
    folder = Path(folder)
    as_of = as_of or datetime.now(UTC).date()
    if not folder.exists():
        raise InputError(f"{folder}: content library folder not found; set PERSONALIZATION_CONTENT")
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a folder of *.json documents, found a file")
    paths = sorted((p for p in folder.iterdir() if is_document_file(p)), key=lambda p: p.name)
    if not paths:
        raise InputError(f"{folder}: the content library is empty (no *.json documents found)")

    quarantined: list[Quarantined] = []
    documents: list[tuple[Path, ContentDocument]] = []
    first_file: dict[str, str] = {}
    for path in paths:
        try:
            document = parse_document(path)
        except _Refused as refused:
            quarantined += [Quarantined(path.name, refused.document_id, f, p) for f, p in refused.problems]
            continue
        if document.document_id in first_file:
            problem = f"duplicate document_id; {first_file[document.document_id]} has it and is kept"
            quarantined.append(Quarantined(path.name, document.document_id, "document_id", problem))
            continue
        first_file[document.document_id] = path.name
        documents.append((path, document))

    approved = tuple(sorted((d for _, d in documents if d.is_approved(as_of)), key=lambda d: d.document_id))
    pending = tuple(
        sorted(
            (PendingDocument(d.document_id, p.name, d.approval_date) for p, d in documents if not d.is_approved(as_of)),
            key=lambda p: p.document_id,
        )
    )
    library = ContentLibrary(
        folder=str(folder),
        approved=approved,
        pending=pending,
        files={d.document_id: p.name for p, d in documents},
        as_of=as_of,
        quarantined=tuple(quarantined),
    )
    if len(approved) < max(min_documents, 1):
        raise InputError(_too_few(library, min_documents))
    return library


def _too_few(library: ContentLibrary, min_documents: int) -> str:
    lines = [
        f"{library.folder}: {len(library.approved)} approved document(s) as of {library.as_of.isoformat()}, "
        f"fewer than the minimum of {max(min_documents, 1)} (content.min_documents in config/pipeline.yaml); "
        "retrieval may only use approved content"
    ]
    if library.pending:
        lines.append(f"  - {library.pending_summary()}")
    files = sorted({q.file for q in library.quarantined})
    if files:
        lines.append(f"  - {len(files)} document(s) quarantined; fix them:")
        lines += [f"  - {q.describe()}" for q in library.quarantined[:MAX_LISTED]]
        if len(library.quarantined) > MAX_LISTED:
            lines.append(f"  - and {len(library.quarantined) - MAX_LISTED} more problem(s)")
    return "\n".join(lines)
