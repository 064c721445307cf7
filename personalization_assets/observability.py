"""Structured, redacted logging: JSON lines with the Dagster run id and step; customer ids hashed, no secrets.

Three layers, from the source outwards:
- `install_log_redaction()` (called once when the code location loads) wraps Python's log-record factory, so
  every message of the `dagster` and `personalization` loggers is redacted *before* any handler sees it; the
  Dagster event log, and so the UI, stores only the redacted text.
- `log_safely(log, level, message, **fields)` is what stages call to log structured facts: `customer_id(s)`
  fields are hashed, every other value redacted, and the fields ride along as JSON.
- `JsonLogFormatter`, `json_logger` (a Dagster `@logger`) and `JsonLinesHandler` (for `dagster.yaml`) write
  one JSON object per line with `run_id`, `job`, `step`, `partition`, `event`, `message`, redacting again.

Redacted: bearer tokens, `api-key:` / `Ocp-Apim-Subscription-Key:` headers, `api_key=`-style pairs,
connection-string parts (`AccountKey=`, `SharedAccessSignature=`, `Password=`, SAS `sig=`), `sk-...` keys,
JWTs, passwords in URLs, values of environment variables whose names look secret (`*_KEY`, `*SECRET*`,
`*TOKEN*`, ...) and values passed to `register_secret`. Customer ids matching the regex in
`PERSONALIZATION_CUSTOMER_ID_PATTERN` (default: the project's `C` + 6 or more digits) become
`hash_customer_id(id)`.
"""

import datetime as dt
import functools
import json
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import Field, InitLoggerContext, logger
from pythonjsonlogger.json import JsonFormatter

from personalization_assets.config import PROJECT_ROOT
from personalization_assets.lib.privacy import hash_customer_id

ENV_CUSTOMER_ID_PATTERN = "PERSONALIZATION_CUSTOMER_ID_PATTERN"
DEFAULT_CUSTOMER_ID_PATTERN = r"\bC\d{6,}\b"
REDACTED = "[REDACTED]"
CUSTOMER_ID_FIELDS = frozenset({"customer_id", "customer_ids"})
# Loggers whose records are redacted at creation: Dagster's log manager ("dagster") and the project's own.
REDACTED_LOGGER_ROOTS = ("dagster", "personalization")

# Environment variable names that hold secrets: a secret-like word as a whole `_`-separated part of the name.
_SECRET_ENV_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|KEY|ACCESS_KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?|CREDS|CONNECTION_STRING|"
    r"CONN_STR|SAS|SIGNATURE|SALT|IDENTITY_HEADER)(?:$|_)",
    re.IGNORECASE,
)
# ... except names that hold where a secret is, not the secret itself (AZURE_OPENAI_API_KEY_ENV, ..._FILE).
_SECRET_REFERENCE_NAME = re.compile(r"_(?:ENV|VAR|FILE|PATH|DIR|NAME|ID|URL|ENDPOINT)$", re.IGNORECASE)
_ENV_VAR_NAME_VALUE = re.compile(r"[A-Z][A-Z0-9_]*")
MIN_SECRET_LENGTH = 8

_VALUE = r"[^\s\"',;&<>)\]}]+"
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> / Basic <credentials> (a length floor keeps prose like "Basic tier")
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{12,}=*", re.IGNORECASE), rf"\1 {REDACTED}"),
    # api-key: <key> headers (Azure OpenAI, Search, Content Safety) and api_key=<key> style pairs.
    (
        re.compile(
            r"(?i)\b((?:x-)?api[-_ ]?key|ocp-apim-subscription-key|subscription[-_]?key|client[-_]?secret|"
            r"access[-_]?token|refresh[-_]?token|id[-_]?token|password|passwd|pwd|secret)"
            r"(\"?'?\s*[:=]\s*\"?'?)" + _VALUE
        ),
        rf"\1\2{REDACTED}",
    ),
    # Connection-string parts (storage, service bus, SQL) and SAS query parameters.
    (
        re.compile(r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig)=" + _VALUE),
        rf"\1={REDACTED}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), REDACTED),  # OpenAI-style keys
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"), REDACTED),  # JWTs
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),  # password in a URL
)

_HASHED_ID = re.compile(r"cust_[0-9a-f]{16}")
_registered_secrets: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Redact `value` from every later log line (secrets that do not come from a secret-named env var)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _registered_lock:
            _registered_secrets.add(value)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    environ = os.environ if environ is None else environ
    values = {
        value
        for name, value in environ.items()
        if _SECRET_ENV_NAME.search(name)
        and not _SECRET_REFERENCE_NAME.search(name)
        and len(value) >= MIN_SECRET_LENGTH
        and not _ENV_VAR_NAME_VALUE.fullmatch(value)
    }
    return sorted(values, key=len, reverse=True)


@functools.lru_cache(maxsize=8)
def _literal_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(re.escape(value) for value in values)) if values else None


@functools.lru_cache(maxsize=8)
def _customer_id_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def redact(text: str) -> str:
    """`text` with secrets replaced by [REDACTED] and customer ids by their hashes."""
    if not text:
        return text
    with _registered_lock:
        literals = tuple(sorted({*secret_env_values(), *_registered_secrets}, key=len, reverse=True))
    literal = _literal_pattern(literals)
    if literal is not None:
        text = literal.sub(REDACTED, text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    ids = _customer_id_pattern(os.environ.get(ENV_CUSTOMER_ID_PATTERN) or DEFAULT_CUSTOMER_ID_PATTERN)
    return ids.sub(lambda match: hash_customer_id(match.group(0)), text)


def _pseudonym(customer_id: object) -> str:
    text = str(customer_id)
    return text if _HASHED_ID.fullmatch(text) else hash_customer_id(text)


def sanitize_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """Structured log fields made safe: customer id fields hashed (once), other text redacted, recursively."""

    def clean(key: str, value: object) -> object:
        if key in CUSTOMER_ID_FIELDS:
            if isinstance(value, str | int):
                return _pseudonym(value)
            if isinstance(value, Iterable):
                return [_pseudonym(item) for item in value]
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, Mapping):
            return {str(k): clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [clean(key, item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return redact(str(value))

    return {str(key): clean(str(key), value) for key, value in fields.items()}


def log_safely(log: logging.Logger, level: int | str, message: str, **fields: object) -> None:
    """Log `message` and structured `fields` on `log` (e.g. `context.log`): ids hashed, secrets redacted.

    The fields are appended to the message as `key=value` (so the Dagster UI shows them) and attached to the
    record as `fields` (so the JSON logs carry them as an object).
    """
    safe = sanitize_fields(fields)
    rendered = " ".join(f"{key}={json.dumps(value, default=str)}" for key, value in safe.items())
    text = redact(message) + (f" {rendered}" if rendered else "")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    log.log(numeric, text, extra={"fields": safe})


# --- Redaction at the source: the log-record factory --------------------------------------------------------

_installed = False


def _is_redacted_logger(name: object) -> bool:
    return isinstance(name, str) and any(name == root or name.startswith(f"{root}.") for root in REDACTED_LOGGER_ROOTS)


def install_log_redaction() -> None:
    """Redact every record of the `dagster` and `personalization` loggers when it is created (idempotent).

    Dagster stores `record.getMessage()` in the event log, so redacting here keeps secrets and raw customer
    ids out of the run's stored logs and the UI, not just out of one handler's output.
    """
    global _installed
    if _installed:
        return
    # dagster.yaml attaches JsonLinesHandler through Dagster's (beta) YAML handler config, which warns on
    # every run; the feature is used deliberately, so the warning would only be noise in each run's output.
    warnings.filterwarnings("ignore", message="Handling yaml-defined logging configuration")
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _is_redacted_logger(record.name):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a malformed %-format: keep the record as the caller made it
                return record
            cleaned = redact(message)
            if cleaned != message or record.args:
                record.msg, record.args = cleaned, ()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# --- JSON output --------------------------------------------------------------------------------------------


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record (python-json-logger): timestamp, level, run_id, job, step, partition, event,
    redacted message; Dagster's own fields come from the record's `dagster_meta`."""

    def __init__(self) -> None:
        super().__init__(json_default=str, json_ensure_ascii=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        tags = meta.get("job_tags") or {}
        message = meta.get("orig_message")
        log_data.update(
            timestamp=dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            logger=record.name,
            # The run id is the correlation id: it ties these lines to the run in the Dagster UI.
            run_id=meta.get("run_id") or getattr(record, "run_id", None),
            job=meta.get("job_name"),
            step=meta.get("step_key"),
            partition=tags.get("dagster/partition"),
            event=getattr(event, "event_type_value", None),
            message=redact(str(record.getMessage() if message is None else message)),
        )
        asset_key = getattr(event, "asset_key", None) if event is not None else None
        if asset_key is not None:
            log_data["asset"] = asset_key.to_user_string()
        error = _event_error(event)
        if error:
            log_data["error"] = redact(error)
        if record.exc_info:
            exception = self.formatException(record.exc_info)  # a list of lines when exc_info_as_array is set
            log_data["exception"] = (
                redact(exception) if isinstance(exception, str) else [redact(line) for line in exception]
            )
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            log_data["fields"] = sanitize_fields(fields)


def _event_error(event: object) -> str | None:
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    return error.to_string() if error is not None and hasattr(error, "to_string") else None


class JsonLinesHandler(logging.Handler):
    """Appends JSON log lines to a file; for `dagster.yaml`'s `python_logs.dagster_handler_config`, so every
    run of the instance writes them. Relative paths are under DAGSTER_HOME (./.dagster_home when it is unset).

    The file is opened per record: Dagster builds a new handler for each run and step process and never closes
    it, and short appends from parallel step processes stay whole lines.
    """

    def __init__(self, path: str = "logs/personalization.jsonl", level: int | str = logging.INFO):
        super().__init__(level=level)
        target = Path(os.path.expandvars(path)).expanduser()
        if not target.is_absolute():
            target = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home") / target
        self.path = target
        self.setFormatter(JsonLogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(line + "\n")
        except Exception:  # logging must never fail a run
            self.handleError(record)


@logger(
    config_schema={
        "log_level": Field(str, default_value="INFO", description="Threshold: DEBUG, INFO, WARNING, ERROR."),
        "path": Field(
            str,
            is_required=False,
            description="Append JSON lines to this file (relative: under DAGSTER_HOME) instead of stderr.",
        ),
    },
    description="JSON lines with run_id, step and partition; customer ids hashed and secrets redacted.",
)
def json_logger(init_context: InitLoggerContext) -> logging.Logger:
    """Select with run config `loggers: {json: {config: {log_level: INFO}}}`."""
    config = init_context.logger_config
    level = logging.getLevelName(str(config["log_level"]).upper())
    json_log = logging.Logger("personalization.json", level=level)
    if config.get("path"):
        handler: logging.Handler = JsonLinesHandler(config["path"], level=level)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
    json_log.addHandler(handler)
    return json_log
