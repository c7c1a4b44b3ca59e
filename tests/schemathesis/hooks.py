"""Checks of our own for tests/schemathesis/run.sh (loaded through SCHEMATHESIS_HOOKS)."""

import schemathesis

# What the server answers when it cannot read a request: the document promised it could.
_UNREADABLE = ("malformed request body", "malformed query string")


@schemathesis.check
def schema_valid_requests_are_readable(ctx, response, case):
    """A request the document allows may be refused for its meaning (400 with a documented code),
    never because the server cannot parse it: not as a malformed body or query string, not as an
    id that is not a UUID."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None  # not the envelope: status and schema conformance report it
    code, message = error.get("code", ""), error.get("message", "")
    if code.endswith(".invalid_id") or message.startswith(_UNREADABLE):
        raise AssertionError(f"A schema-valid request was refused as unreadable: {code}: {message}")
    return None
