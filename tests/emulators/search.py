"""Azure AI Search REST emulator, as driven by azure-search-documents 12.0.0 (api-version 2026-04-01).

Routes (paths as the SDK sends them; ``api-version`` is accepted whatever its value):

* ``POST /indexes`` (201), ``PUT /indexes('{name}')`` (201 new / 200 replaced), ``GET /indexes('{name}')``,
  ``GET /indexes``, ``DELETE /indexes('{name}')`` (204) -- SearchIndexClient.
* ``POST /indexes('{name}')/docs/search.index`` (upload / merge / mergeOrUpload / delete; 207 when an action
  fails), ``POST /indexes('{name}')/docs/search.post.search``, ``GET /indexes('{name}')/docs('{key}')``,
  ``GET /indexes('{name}')/docs/$count`` -- SearchClient.

Search: the query text is tokenized (lower-case alphanumerics; ``-term`` excludes) and documents are scored
with BM25 (k1=1.2, b=0.75) summed over searchable string fields (or ``searchFields``); ``*``/empty matches
all with score 1. Supported: ``top``/``skip``/``count``/``select``/``orderby``/``searchMode``, an OData
``filter`` subset (``eq ne gt ge lt le``, ``and or not``, parentheses, ``search.in(field, 'a,b'[,
delimiters])``, ``field/any(x: ...)``/``all``), and ``queryType: semantic`` with a semantic configuration:
the top 50 BM25 hits are re-ranked by query-term coverage of the prioritized fields into
``@search.rerankerScore`` (0-4), with ``@search.captions`` / ``@search.answers`` when ``captions`` /
``answers`` ask for ``extractive``. Filtering or sorting on a field declared non-filterable/non-sortable,
unknown fields, bad filters and unknown semantic configurations answer 400 like the service; an unknown index
answers 404.

Service answers beyond faults (each set on the emulator, as a real service would be configured or behave):

* ``semantic_enabled = False``: a semantic query answers 400 ``SemanticQueriesNotAvailable`` ("Semantic search
  is not enabled for this service"), as a service without the semantic ranker does.
* ``semantic_failure = "capacityOverloaded" | "maxWaitExceeded" | "transient"`` (with ``semantic_partial_type``
  ``"baseResults"`` (default) or ``"rerankedResults"``): the semantic ranker fails for the next queries. With the
  request's ``semanticErrorHandling: "partial"`` the answer is HTTP 206 carrying
  ``@search.semanticPartialResponseReason`` / ``@search.semanticPartialResponseType``; base results have no
  ``@search.rerankerScore`` and keep the BM25 order; reranked results miss their captions. With ``"fail"`` (the
  service default when the field is absent) the query fails: 503 for capacity and transient failures, 504 for
  an exceeded ``semanticMaxWaitInMilliseconds``. The ``semanticErrorHandling`` value is validated (400).
* ``query_key``: a second key that may query (``search.post.search``, document lookups) but gets 403 on index
  management and document writes, like an Azure query key; ``reader_token``: the same for a bearer token whose
  identity has only the Search Index Data Reader role.

Seed data without the SDK: ``emu.create_index({...})`` and ``emu.add_documents("idx", [...])``.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .base import EmulatorHTTPError, EmulatorResponse, EmulatorServer, RecordedRequest

_INDEX_PATH = re.compile(r"^/indexes\('(?P<name>[^']*)'\)(?P<rest>/.*)?$")
_DOC_PATH = re.compile(r"^/docs\('(?P<key>.*)'\)$")
_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_STRING_TYPES = ("Edm.String", "Collection(Edm.String)")
BM25_K1, BM25_B = 1.2, 0.75
SEMANTIC_RERANK_WINDOW = 50
DEFAULT_TOP = 50


def tokenize(text: Any) -> list[str]:
    if text is None:
        return []
    if isinstance(text, list):
        return [token for item in text for token in tokenize(item)]
    return _TOKEN.findall(str(text).lower())


def _bad_request(message: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(400, "InvalidRequestParameter", message)


# ---- OData filter subset -----------------------------------------------------------------------------------
_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])"
    r"|(?P<name>[A-Za-z_][\w.]*)|(?P<punct>[(),:/]))"
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}
Env = dict[str, Any]
Predicate = Callable[[dict[str, Any], Env], bool]


class _FilterParser:
    """Recursive-descent parser turning an OData filter into a predicate over (document, lambda variables)."""

    def __init__(self, text: str, check_field: Callable[[str], None]):
        self.text = text
        self.check_field = check_field
        self.tokens: list[tuple[str, Any]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _FILTER_TOKEN.match(text, position)
            if not match:
                raise _bad_request(f"Invalid expression: unexpected character at position {position} in '{text}'.")
            position = match.end()
            if match.group("str") is not None:
                self.tokens.append(("literal", match.group("str")[1:-1].replace("''", "'")))
            elif match.group("num") is not None:
                number = float(match.group("num"))
                self.tokens.append(
                    (
                        "literal",
                        int(number) if number.is_integer() and "." not in match.group("num") else number,
                    )
                )
            elif match.group("name") is not None:
                self.tokens.append(("name", match.group("name")))
            else:
                self.tokens.append(("punct", match.group("punct")))
        self.position = 0
        self._variables: set[str] = set()  # lambda variables in scope, e.g. k in keywords/any(k: ...)

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.position != len(self.tokens):
            raise _bad_request(f"Invalid expression: unexpected '{self.tokens[self.position][1]}' in '{self.text}'.")
        return predicate

    def _peek(self, kind: str | None = None, value: Any = None) -> bool:
        if self.position >= len(self.tokens):
            return False
        token_kind, token_value = self.tokens[self.position]
        return (kind is None or token_kind == kind) and (value is None or token_value == value)

    def _take(self, kind: str, value: Any = None) -> Any:
        if not self._peek(kind, value):
            found = self.tokens[self.position][1] if self.position < len(self.tokens) else "end of expression"
            raise _bad_request(f"Invalid expression: expected {value or kind} but found '{found}' in '{self.text}'.")
        self.position += 1
        return self.tokens[self.position - 1][1]

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek("name", "or"):
            self.position += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda doc, env: any(p(doc, env) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek("name", "and"):
            self.position += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda doc, env: all(p(doc, env) for p in parts))

    def _unary(self) -> Predicate:
        if self._peek("name", "not"):
            self.position += 1
            inner = self._unary()
            return lambda doc, env: not inner(doc, env)
        if self._peek("punct", "("):
            self.position += 1
            inner = self._or()
            self._take("punct", ")")
            return inner
        if self._peek("name", "search.in"):
            return self._search_in()
        left = self._operand()
        if self._peek("name") and self.tokens[self.position][1] in _COMPARISONS:
            compare = _COMPARISONS[self._take("name")]
            right = self._operand()
            return lambda doc, env: compare(left(doc, env), right(doc, env))
        if callable(getattr(left, "predicate", None)):  # field/any(...) stands alone
            return left.predicate
        return lambda doc, env: left(doc, env) is True  # bare boolean field

    def _search_in(self) -> Predicate:
        self._take("name", "search.in")
        self._take("punct", "(")
        field = self._operand()
        self._take("punct", ",")
        values_text = self._take("literal")
        delimiters = " ,"
        if self._peek("punct", ","):
            self.position += 1
            delimiters = self._take("literal")
        self._take("punct", ")")
        values = {v for v in re.split("[" + re.escape(delimiters) + "]", str(values_text)) if v != ""}
        return lambda doc, env: field(doc, env) in values

    def _operand(self) -> Callable[[dict[str, Any], Env], Any]:
        if self._peek("literal"):
            value = self._take("literal")
            return lambda doc, env: value
        name = self._take("name")
        if name in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[name]
            return lambda doc, env: constant
        if self._peek("punct", "/"):
            self.position += 1
            quantifier = self._take("name")
            if quantifier not in ("any", "all"):
                raise _bad_request(f"Invalid expression: sub-field paths are not supported ('{name}/{quantifier}').")
            return self._lambda(name, quantifier)
        is_variable = name in self._variables
        if not is_variable:
            self.check_field(name)
        return lambda doc, env: env[name] if is_variable else doc.get(name)

    def _lambda(self, field: str, quantifier: str):
        self.check_field(field)
        self._take("punct", "(")
        if self._peek("punct", ")"):  # field/any() = collection not empty
            self.position += 1
            body: Predicate | None = None
            variable = ""
        else:
            variable = self._take("name")
            self._take("punct", ":")
            self._variables = self._variables | {variable}
            body = self._or()
            self._variables = self._variables - {variable}
            self._take("punct", ")")

        def predicate(doc: dict[str, Any], env: Env) -> bool:
            items = doc.get(field) or []
            if body is None:
                return bool(items)
            matches = (body(doc, {**env, variable: item}) for item in items)
            return any(matches) if quantifier == "any" else all(matches)

        def operand(doc: dict[str, Any], env: Env) -> bool:
            return predicate(doc, env)

        operand.predicate = predicate  # type: ignore[attr-defined]
        return operand


# ---- index state -------------------------------------------------------------------------------------------
class _Index:
    def __init__(self, definition: dict[str, Any]):
        fields = definition.get("fields") or []
        keys = [f["name"] for f in fields if f.get("key")]
        if len(keys) != 1:
            raise _bad_request(f"Index '{definition.get('name')}' must have exactly one key field, found {len(keys)}.")
        self.definition = definition
        self.name: str = definition["name"]
        self.key: str = keys[0]
        self.fields: dict[str, dict[str, Any]] = {f["name"]: f for f in fields}
        self.documents: dict[str, dict[str, Any]] = {}  # key -> document, insertion ordered

    def field(self, name: str) -> dict[str, Any]:
        if name not in self.fields:
            raise _bad_request(
                f"Invalid expression: Could not find a property named '{name}' on type 'search.document'."
            )
        return self.fields[name]

    def searchable_fields(self) -> list[str]:
        return [name for name, f in self.fields.items() if f.get("type") in _STRING_TYPES and f.get("searchable", True)]

    def retrievable_fields(self) -> list[str]:
        return [name for name, f in self.fields.items() if f.get("retrievable", True) and not f.get("hidden", False)]

    def semantic_configuration(self, name: str | None) -> dict[str, Any]:
        semantic = self.definition.get("semantic") or {}
        configurations = {c["name"]: c for c in semantic.get("configurations") or []}
        chosen = name or semantic.get("defaultConfiguration")
        if not chosen:
            raise _bad_request(
                f"Semantic search on index '{self.name}' needs 'semanticConfiguration' or a defaultConfiguration."
            )
        if chosen not in configurations:
            raise _bad_request(
                f"Unknown semantic configuration '{chosen}' for index '{self.name}'; "
                f"defined: {sorted(configurations) or 'none'}."
            )
        return configurations[chosen]


class SearchEmulator(EmulatorServer):
    """In-memory Azure AI Search service (see module docstring)."""

    service_name = "search"
    key_header = "api-key"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._state_lock = threading.RLock()
        self._indexes: dict[str, _Index] = {}
        self.semantic_enabled = True
        self.semantic_failure: str | None = None
        self.semantic_partial_type = "baseResults"
        self.query_key: str | None = "emulator-query-key"
        self.reader_token: str | None = "emulated-reader-token"

    # ---- auth: admin key / full token, or query key / reader token (queries only) ----
    def _read_only_credential(self, request: RecordedRequest) -> bool:
        sent_key = request.headers.get(self.key_header.lower())
        if self.query_key is not None and sent_key is not None and hmac.compare_digest(sent_key, self.query_key):
            return True
        authorization = request.headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        return bool(self.reader_token and bearer and hmac.compare_digest(bearer, self.reader_token))

    def _authenticated(self, request: RecordedRequest) -> bool:
        return super()._authenticated(request) or self._read_only_credential(request)

    # ---- seeding / inspection for tests ----
    def create_index(self, definition: dict[str, Any]) -> None:
        with self._state_lock:
            self._indexes[definition["name"]] = _Index(definition)

    def add_documents(self, index_name: str, documents: list[dict[str, Any]]) -> None:
        self._index_batch(self._get_index(index_name), [{"@search.action": "upload", **d} for d in documents])

    def documents(self, index_name: str) -> list[dict[str, Any]]:
        with self._state_lock:
            return [dict(d) for d in self._get_index(index_name).documents.values()]

    @property
    def index_names(self) -> list[str]:
        with self._state_lock:
            return list(self._indexes)

    def reset_state(self) -> None:
        with self._state_lock:
            self._indexes.clear()
            self.semantic_enabled = True
            self.semantic_failure = None
            self.semantic_partial_type = "baseResults"

    # ---- fault bodies ----
    def empty_body(self, request: RecordedRequest) -> Any:
        if (request.json or {}).get("count"):
            return {"@odata.count": 0, "value": []}
        return {"value": []}

    def wrong_schema_body(self, request: RecordedRequest) -> Any:
        # A plausible-looking but wrong payload: results under another key, and not a list.
        return {"results": {"id": "1", "score": 1.0}, "@odata.context": "emulator"}

    # ---- routing ----
    def handle(self, request: RecordedRequest) -> EmulatorResponse:
        method, path = request.method, request.path.rstrip("/") or "/"
        reads = path.endswith("/docs/search.post.search") or (method == "GET" and "/docs" in path)
        if not reads and self._read_only_credential(request):
            raise EmulatorHTTPError(
                403,
                "Forbidden",
                "Authorization failed: the credential may query the index but not manage indexes or write "
                "documents (query key, or an identity without Search Index Data Contributor / Search Service "
                "Contributor).",
            )
        if path == "/indexes":
            if method == "POST":
                return self._create_index(request.json, replace=False)
            if method == "GET":
                with self._state_lock:
                    return EmulatorResponse(200, {"value": [self._index_json(i) for i in self._indexes.values()]})
        match = _INDEX_PATH.match(path)
        if match:
            name, rest = match.group("name"), match.group("rest") or ""
            if rest == "":
                return self._index_resource(method, name, request)
            index = self._get_index(name)
            if rest == "/docs/search.post.search" and method == "POST":
                return self._search_answer(index, request.json or {})
            if rest == "/docs/search.index" and method == "POST":
                actions = (request.json or {}).get("value")
                if not isinstance(actions, list):
                    raise _bad_request("The request body must be a JSON object with a 'value' array of index actions.")
                results, all_ok = self._index_batch(index, actions)
                return EmulatorResponse(200 if all_ok else 207, {"value": results})
            if rest == "/docs/$count" and method == "GET":
                with self._state_lock:
                    return EmulatorResponse(200, str(len(index.documents)), content_type="text/plain")
            doc_match = _DOC_PATH.match(rest)
            if doc_match and method == "GET":
                return self._get_document(index, doc_match.group("key"), request.query.get("$select"))
        raise EmulatorHTTPError(404, "ResourceNotFound", f"No search route for {method} {path}.")

    def _get_index(self, name: str) -> _Index:
        with self._state_lock:
            if name not in self._indexes:
                raise EmulatorHTTPError(
                    404, "IndexNotFound", f"The index '{name}' for service 'emulator' was not found."
                )
            return self._indexes[name]

    def _index_json(self, index: _Index) -> dict[str, Any]:
        return {"@odata.etag": f'"0x{abs(hash(index.name)):X}"', **index.definition}

    def _index_resource(self, method: str, name: str, request: RecordedRequest) -> EmulatorResponse:
        if method == "GET":
            return EmulatorResponse(200, self._index_json(self._get_index(name)))
        if method == "DELETE":
            with self._state_lock:
                existed = self._indexes.pop(name, None) is not None
            return EmulatorResponse(204 if existed else 404, None)
        if method == "PUT":
            body = request.json or {}
            if body.get("name") != name:
                raise _bad_request(f"Index name in the body ('{body.get('name')}') does not match the URL ('{name}').")
            return self._create_index(body, replace=True)
        raise EmulatorHTTPError(405, "MethodNotAllowed", f"{method} is not supported on index '{name}'.")

    def _create_index(self, body: Any, *, replace: bool) -> EmulatorResponse:
        if not isinstance(body, dict) or not body.get("name"):
            raise _bad_request("The index definition must be a JSON object with a 'name'.")
        new_index = _Index(body)
        with self._state_lock:
            existing = self._indexes.get(new_index.name)
            if existing is not None and not replace:
                raise EmulatorHTTPError(409, "ResourceNameAlreadyInUse", f"Index '{new_index.name}' already exists.")
            if existing is not None:
                new_index.documents = existing.documents  # updating the schema keeps the documents
            self._indexes[new_index.name] = new_index
        return EmulatorResponse(200 if existing else 201, self._index_json(new_index))

    # ---- documents ----
    def _index_batch(self, index: _Index, actions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        for action in actions:
            unknown = [k for k in action if k != "@search.action" and k not in index.fields]
            if unknown:
                raise _bad_request(
                    f"The request is invalid. Details: The property '{unknown[0]}' does not exist on type "
                    f"'search.documentFields' of index '{index.name}'."
                )
        results, all_ok = [], True
        with self._state_lock:
            for action in actions:
                kind = action.get("@search.action", "upload")
                document = {k: v for k, v in action.items() if k != "@search.action"}
                key = document.get(index.key)
                status, error = 200, None
                if key in (None, ""):
                    status, error = 400, f"Document key field '{index.key}' cannot be missing or empty."
                elif kind == "upload":
                    status = 200 if key in index.documents else 201
                    index.documents[key] = document
                elif kind in ("merge", "mergeOrUpload"):
                    if key in index.documents:
                        index.documents[key] = {**index.documents[key], **document}
                    elif kind == "mergeOrUpload":
                        status = 201
                        index.documents[key] = document
                    else:
                        status, error = 404, "Document not found."
                elif kind == "delete":
                    index.documents.pop(key, None)
                else:
                    status, error = 400, f"Unknown @search.action '{kind}'."
                succeeded = error is None
                all_ok &= succeeded
                results.append({"key": key, "status": succeeded, "errorMessage": error, "statusCode": status})
        return results, all_ok

    def _project(self, index: _Index, document: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        retrievable = index.retrievable_fields()
        if select:
            for name in select:
                index.field(name)
            retrievable = [name for name in select if name in retrievable]
        return {name: document.get(name) for name in retrievable}

    def _get_document(self, index: _Index, key: str, select: str | None) -> EmulatorResponse:
        key = key.replace("''", "'")
        with self._state_lock:
            document = index.documents.get(key)
        if document is None:
            raise EmulatorHTTPError(404, "DocumentNotFound", f"Document with key '{key}' not found in '{index.name}'.")
        fields = [s.strip() for s in select.split(",")] if select and select != "*" else None
        return EmulatorResponse(200, self._project(index, document, fields))

    # ---- search ----
    def _search_answer(self, index: _Index, body: dict[str, Any]) -> EmulatorResponse:
        semantic = str(body.get("queryType", "")).lower() == "semantic"
        handling = body.get("semanticErrorHandling")
        if handling is not None and handling not in ("partial", "fail"):
            raise _bad_request(f"Invalid value '{handling}' for semanticErrorHandling; expected 'partial' or 'fail'.")
        if semantic and not self.semantic_enabled:
            raise EmulatorHTTPError(
                400,
                "SemanticQueriesNotAvailable",
                "Semantic search is not enabled for this service. Enable the semantic ranker on the service "
                "(Basic tier or higher) to use queryType 'semantic'.",
            )
        failure = self.semantic_failure if semantic else None
        if failure is None:
            return EmulatorResponse(200, self._search(index, body))
        if handling != "partial":  # "fail", or absent: the service default
            status = 504 if failure == "maxWaitExceeded" else 503
            raise EmulatorHTTPError(
                status, "SemanticRankingFailed", f"Semantic ranking failed ({failure}); semanticErrorHandling is fail."
            )
        response = self._search(index, body, partial_type=self.semantic_partial_type)
        response["@search.semanticPartialResponseReason"] = failure
        response["@search.semanticPartialResponseType"] = self.semantic_partial_type
        return EmulatorResponse(206, response)

    def _search(self, index: _Index, body: dict[str, Any], partial_type: str | None = None) -> dict[str, Any]:
        if body.get("vectorQueries"):
            raise _bad_request("Vector queries are not supported by the search emulator.")
        with self._state_lock:
            documents = list(index.documents.values())

        def check_filterable(name: str) -> None:
            if index.field(name).get("filterable") is False:
                raise _bad_request(f"Invalid expression: The field '{name}' is not filterable.")

        if body.get("filter"):
            predicate = _FilterParser(body["filter"], check_filterable).parse()
            documents = [d for d in documents if predicate(d, {})]

        search_fields = _split_list(body.get("searchFields")) or index.searchable_fields()
        for name in search_fields:
            if name not in index.searchable_fields():
                raise _bad_request(f"The field '{name}' in searchFields is not a searchable string field.")
        terms, excluded = _query_terms(body.get("search"))
        if excluded:
            documents = [d for d in documents if not excluded & set(_doc_tokens(d, search_fields))]
        scores = _bm25(documents, search_fields, terms, body.get("searchMode", "any"))
        hits = [(doc, score) for doc, score in zip(documents, scores, strict=True) if score is not None]
        hits.sort(key=lambda hit: -hit[1])  # stable: ties keep upload order

        semantic = str(body.get("queryType", "")).lower() == "semantic"
        reranked = semantic and partial_type != "baseResults"
        reranker: dict[int, float] = {}
        if semantic:
            configuration = index.semantic_configuration(body.get("semanticConfiguration"))
        if reranked:
            query = body.get("semanticQuery") or body.get("search") or ""
            hits = hits[:SEMANTIC_RERANK_WINDOW]
            reranker = {id(doc): _reranker_score(doc, configuration, tokenize(query)) for doc, _ in hits}
            hits.sort(key=lambda hit: -reranker[id(hit[0])])

        hits = _order(index, hits, body.get("orderby"), reranker)
        total = len(hits)
        skip, top = int(body.get("skip") or 0), body.get("top")
        hits = hits[skip : skip + (DEFAULT_TOP if top is None else int(top))]

        select = _split_list(body.get("select"))
        captions_requested = (
            semantic and partial_type is None and str(body.get("captions", "")).lower().startswith("extractive")
        )
        highlight = "highlight-false" not in str(body.get("captions", "")).lower()
        query_tokens = set(tokenize(body.get("semanticQuery") or body.get("search")))
        results = []
        for doc, score in hits:
            result = self._project(index, doc, select if select and select != ["*"] else None)
            result["@search.score"] = round(score, 6)
            if reranked:
                result["@search.rerankerScore"] = reranker[id(doc)]
            if captions_requested or (reranked and partial_type is None and body.get("answers")):
                result["_caption"] = _caption(doc, configuration, query_tokens, highlight)
            results.append(result)

        response: dict[str, Any] = {}
        if body.get("count"):
            response["@odata.count"] = total
        if reranked and partial_type is None and str(body.get("answers", "")).lower().startswith("extractive"):
            count_match = re.search(r"count-(\d+)", str(body["answers"]))
            count = int(count_match.group(1)) if count_match else 1
            response["@search.answers"] = [
                {
                    "key": str(doc.get(index.key)),
                    "text": r["_caption"]["text"],
                    "highlights": r["_caption"]["highlights"],
                    "score": round(reranker[id(doc)] / 4, 4),
                }
                for (doc, _), r in zip(hits[:count], results[:count], strict=True)
                if r["_caption"]["text"]
            ]
        for result in results:
            caption = result.pop("_caption", None)
            if captions_requested:
                result["@search.captions"] = [caption] if caption and caption["text"] else []
        response["value"] = results
        return response


def _split_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    return [item.strip() for item in items if item.strip()] or None


def _query_terms(search: str | None) -> tuple[list[str] | None, set[str]]:
    """(required terms or None for match-all, excluded terms) from simple query syntax."""
    if search is None or search.strip() in ("", "*"):
        return None, set()
    terms, excluded = [], set()
    for word in search.split():
        if word.startswith("-") and len(word) > 1:
            excluded.update(tokenize(word[1:]))
        else:
            terms.extend(tokenize(word))
    return (terms or None), excluded


def _doc_tokens(document: dict[str, Any], fields: list[str]) -> list[str]:
    return [token for name in fields for token in tokenize(document.get(name))]


def _bm25(documents: list[dict[str, Any]], fields: list[str], terms: list[str] | None, mode: str) -> list[float | None]:
    """BM25 summed over fields; None for documents that do not match the query."""
    if terms is None:
        return [1.0] * len(documents)
    unique_terms = list(dict.fromkeys(terms))
    per_field = {name: [Counter(tokenize(d.get(name))) for d in documents] for name in fields}
    n_docs = len(documents)
    scores: list[float | None] = []
    stats = {}
    for name, counters in per_field.items():
        lengths = [sum(c.values()) for c in counters]
        average = (sum(lengths) / n_docs) if n_docs else 0.0
        document_frequency = {t: sum(1 for c in counters if t in c) for t in unique_terms}
        stats[name] = (lengths, average or 1.0, document_frequency)
    for i in range(n_docs):
        total, matched = 0.0, set()
        for name, counters in per_field.items():
            lengths, average, document_frequency = stats[name]
            for term in unique_terms:
                tf = counters[i].get(term, 0)
                if not tf:
                    continue
                matched.add(term)
                idf = math.log(1 + (n_docs - document_frequency[term] + 0.5) / (document_frequency[term] + 0.5))
                norm = tf + BM25_K1 * (1 - BM25_B + BM25_B * lengths[i] / average)
                total += idf * tf * (BM25_K1 + 1) / norm
        required = set(unique_terms) if str(mode).lower() == "all" else None
        if not matched or (required is not None and matched != required):
            scores.append(None)
        else:
            scores.append(total)
    return scores


def _semantic_fields(configuration: dict[str, Any]) -> dict[str, list[str]]:
    prioritized = configuration.get("prioritizedFields") or {}
    title = prioritized.get("titleField") or {}
    return {
        "title": [title["fieldName"]] if title.get("fieldName") else [],
        "content": [f["fieldName"] for f in prioritized.get("prioritizedContentFields") or []],
        "keywords": [f["fieldName"] for f in prioritized.get("prioritizedKeywordsFields") or []],
    }


_SEMANTIC_WEIGHTS = {"title": 0.3, "content": 0.5, "keywords": 0.2}


def _reranker_score(document: dict[str, Any], configuration: dict[str, Any], query: list[str]) -> float:
    """0-4: weighted share of distinct query terms found in the title / content / keyword fields."""
    terms = set(query)
    if not terms:
        return 0.0
    groups = _semantic_fields(configuration)
    weight_sum = sum(_SEMANTIC_WEIGHTS[g] for g, names in groups.items() if names)
    if not weight_sum:
        return 0.0
    score = 0.0
    for group, names in groups.items():
        if names:
            present = terms & set(_doc_tokens(document, names))
            score += _SEMANTIC_WEIGHTS[group] * len(present) / len(terms)
    return round(4.0 * score / weight_sum, 4)


def _caption(document: dict[str, Any], configuration: dict[str, Any], query: set[str], highlight: bool):
    names = _semantic_fields(configuration)["content"] or _semantic_fields(configuration)["title"]
    sentences = [s.strip() for name in names for s in _SENTENCE_SPLIT.split(str(document.get(name) or "")) if s.strip()]
    if not sentences:
        return {"text": "", "highlights": ""}
    best = max(sentences, key=lambda s: len(query & set(tokenize(s))))  # first best on ties
    marked = re.sub(
        r"[A-Za-z0-9]+",
        lambda m: f"<em>{m.group(0)}</em>" if m.group(0).lower() in query else m.group(0),
        best,
    )
    return {"text": best, "highlights": marked if highlight else ""}


def _order(index: _Index, hits: list, orderby: Any, reranker: dict[int, float]) -> list:
    clauses = _split_list(orderby)
    if not clauses:
        return hits
    for clause in reversed(clauses):  # stable sorts applied last-key-first
        parts = clause.split()
        name, descending = parts[0], len(parts) > 1 and parts[1].lower() == "desc"
        if name == "search.score()":
            hits = sorted(hits, key=lambda hit: hit[1], reverse=descending)
            continue
        if index.field(name).get("sortable") is False:
            raise _bad_request(f"Invalid expression: The field '{name}' is not sortable.")
        present = [h for h in hits if h[0].get(name) is not None]
        missing = [h for h in hits if h[0].get(name) is None]
        present.sort(key=lambda hit: hit[0][name], reverse=descending)
        hits = (missing + present) if not descending else (present + missing)  # nulls sort first ascending
    return hits
