"""The content library loader: validation errors name the file and field; approval decides what is indexed."""

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from personalization_assets.lib.content import (
    CONTENT_INDEX_COLUMNS,
    ContentLibraryError,
    load_content_library,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "content"
TODAY = date(2026, 1, 15)


def document(document_id: str = "DOC-T-001", **overrides) -> dict:
    base = {
        "document_id": document_id,
        "title": "Trail Rewards double points",
        "category": "promotion",
        "content": "Earn double points on every order this weekend.",
        "audience": "loyal members",
        "keywords": ["double points", "trail rewards"],
        "approval_date": "2025-06-01",
        "source_url": "https://content.northwind.example/promotions/double-points",
        "metadata": {"author": "Test Author", "version": "1.0", "last_updated": "2025-06-01"},
    }
    base.update(overrides)
    return base


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_sample_library_loads_every_document_approved():
    library = load_content_library(SAMPLE, as_of=date(2026, 11, 1))
    files = sorted(SAMPLE.glob("*.json"))
    assert len(library.approved) == len(files) and not library.pending
    assert {d.category for d in library.approved} == {"product", "promotion", "support"}
    frame = library.to_frame()
    assert list(frame.columns) == list(CONTENT_INDEX_COLUMNS)
    assert frame["document_id"].is_unique
    assert json.loads(frame.loc[frame["document_id"] == "DOC-PROMO-001", "keywords"].iloc[0])[0] == "win-back"
    assert frame["content_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_future_and_missing_approval_dates_are_pending_not_errors(tmp_path):
    write(tmp_path, "a.json", document("DOC-A"))
    write(tmp_path, "b.json", document("DOC-B", approval_date="2026-03-01"))
    no_date = document("DOC-C")
    del no_date["approval_date"]
    write(tmp_path, "c.json", no_date)
    write(tmp_path, "d.json", document("DOC-D", approval_date=None))

    library = load_content_library(tmp_path, as_of=TODAY)

    assert [d.document_id for d in library.approved] == ["DOC-A"]
    assert [p.document_id for p in library.pending] == ["DOC-B", "DOC-C", "DOC-D"]
    summary = library.pending_summary()
    assert summary.startswith("not yet approved: ")
    assert "DOC-B (approval date 2026-03-01)" in summary and "DOC-C (no approval date)" in summary
    # Approval is inclusive of the day itself.
    assert [d.document_id for d in load_content_library(tmp_path, as_of=date(2026, 3, 1)).approved] == [
        "DOC-A",
        "DOC-B",
    ]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"category": "blog"}, "field 'category'"),
        ({"keywords": "win-back"}, "field 'keywords'"),
        ({"keywords": ["ok", 3]}, "field 'keywords.1'"),
        ({"title": 42}, "field 'title'"),
        ({"title": "   "}, "field 'title'"),
        ({"approval_date": "2025-13-40"}, "field 'approval_date'"),
        ({"source_url": "content.northwind.example/x"}, "field 'source_url'"),
        ({"document_id": "DOC 1"}, "field 'document_id'"),
        (
            {"metadata": {"author": "A", "version": 2.1, "last_updated": "2025-01-01"}},
            "field 'metadata.version'",
        ),
        (
            {"metadata": {"author": "A", "version": "2"}},
            "field 'metadata.last_updated': required field is missing",
        ),
        ({"owner": "marketing"}, "unknown key 'owner'"),
    ],
)
def test_bad_document_names_file_and_field(tmp_path, overrides, expected):
    write(tmp_path, "good.json", document("DOC-GOOD"))
    write(tmp_path, "broken-doc.json", document(**{"document_id": "DOC-BAD", **overrides}))
    with pytest.raises(ContentLibraryError) as error:
        load_content_library(tmp_path, as_of=TODAY)
    message = str(error.value)
    assert "broken-doc.json" in message and expected in message
    assert "good.json" not in message


def test_missing_required_field_is_named(tmp_path):
    data = document()
    del data["audience"]
    write(tmp_path, "no-audience.json", data)
    with pytest.raises(
        ContentLibraryError, match=r"no-audience\.json: field 'audience': required field is missing"
    ):
        load_content_library(tmp_path, as_of=TODAY)


def test_every_bad_file_is_reported_at_once(tmp_path):
    write(tmp_path, "one.json", "{not json")
    write(tmp_path, "two.json", [document()])
    (tmp_path / "three.json").write_bytes(b'{"title": "\xff"}')
    with pytest.raises(ContentLibraryError) as error:
        load_content_library(tmp_path, as_of=TODAY)
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "one.json: malformed JSON at line 1" in message
    assert "two.json: expected one JSON object" in message
    assert "three.json: not valid UTF-8" in message


def test_duplicate_document_ids_name_both_files(tmp_path):
    write(tmp_path, "first.json", document("DOC-SAME"))
    write(tmp_path, "second.json", document("DOC-SAME", title="Another title"))
    with pytest.raises(
        ContentLibraryError, match=r"duplicate document_id 'DOC-SAME' in first\.json and second\.json"
    ):
        load_content_library(tmp_path, as_of=TODAY)


def test_empty_missing_or_unapproved_library_is_a_clear_error(tmp_path):
    with pytest.raises(ContentLibraryError, match="content library is empty"):
        load_content_library(tmp_path, as_of=TODAY)
    write(tmp_path, "notes.txt", "not a document")
    with pytest.raises(ContentLibraryError, match=r"no \*\.json documents"):
        load_content_library(tmp_path, as_of=TODAY)
    with pytest.raises(ContentLibraryError, match="folder not found"):
        load_content_library(tmp_path / "nowhere", as_of=TODAY)
    write(tmp_path, "later.json", document("DOC-LATER", approval_date="2027-01-01"))
    with pytest.raises(ContentLibraryError, match="no approved documents.*DOC-LATER"):
        load_content_library(tmp_path, as_of=TODAY)


def test_content_version_changes_only_with_approved_content(tmp_path):
    shutil.copy(SAMPLE / "DOC-PROMO-001.json", tmp_path)
    shutil.copy(SAMPLE / "DOC-SUPP-001.json", tmp_path)
    version = load_content_library(tmp_path, as_of=TODAY).version

    # Reformatting a file (key order, indentation) is not a content change.
    data = json.loads((tmp_path / "DOC-SUPP-001.json").read_text())
    (tmp_path / "DOC-SUPP-001.json").write_text(json.dumps(dict(reversed(list(data.items()))), indent=4))
    assert load_content_library(tmp_path, as_of=TODAY).version == version

    # A pending document does not change the version until it is approved.
    write(tmp_path, "pending.json", document("DOC-PENDING", approval_date="2026-06-01"))
    assert load_content_library(tmp_path, as_of=TODAY).version == version
    assert load_content_library(tmp_path, as_of=date(2026, 6, 1)).version != version

    # Editing an approved document changes it.
    (tmp_path / "pending.json").unlink()
    data["content"] += " Updated."
    (tmp_path / "DOC-SUPP-001.json").write_text(json.dumps(data))
    assert load_content_library(tmp_path, as_of=TODAY).version != version
