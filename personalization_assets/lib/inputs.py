"""What the input stage shares: its one refusal type and the matching of names written by other tools."""

from __future__ import annotations

import re


class InputError(ValueError):
    """An input file (customers, content library) cannot be used as it is.

    The message is one or a few lines a person reads: the file, the line and column (or the document and key),
    the value (customer ids only as pseudonyms) and the fix. Raised by the readers and validators in
    `lib/customers.py` and `lib/content.py`; the CLI prints it without a traceback.
    """


_SEPARATORS = re.compile(r"[\s_\-]+")


def canonical_name(name: object) -> str:
    """`Customer_ID`, `CUSTOMER ID`, ` customer-id ` and `customerId` all become `customerid`.

    Column headers, JSON keys and enum values are matched on this form: case, spaces, underscores and
    hyphens are how tools differ in writing the same name, never what tells two names apart.
    """
    return _SEPARATORS.sub("", str(name).replace("\ufeff", "").strip().lower())
