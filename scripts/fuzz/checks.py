"""Boxoffice's own promises, checked on every answer schemathesis gets
(loaded by scripts/fuzz.sh through SCHEMATHESIS_HOOKS):

- an error (4xx or 5xx) is RFC 9457 problem+json with a stable `code`,
  whatever the request was;
- a rejected request wrote nothing: scripts/fuzz/writes.sql logs every row
  the API's database sessions write, and the log must not grow across a
  4xx answer. It needs requests one at a time (`--workers 1`) and
  FUZZ_WRITES_DSN, the fuzzing database's URL;
- a request the document calls valid is accepted, unless it was refused
  for what no schema can say (`valid_requests_accepted`, which the full run
  uses instead of schemathesis's `positive_data_acceptance`)."""

import os
import subprocess
import threading

import schemathesis

WRITES_DSN = os.environ.get("FUZZ_WRITES_DSN")
_marks = threading.local()


class _Psql:
    """One psql session for the whole run (a process per query cost more
    than the requests it checked): a query, then a marker to read up to."""

    MARK = "--end-of-answer--"

    def __init__(self, dsn):
        self.proc = subprocess.Popen(
            ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()

    def query(self, sql):
        with self.lock:
            self.proc.stdin.write(f"{sql};\n\\echo {self.MARK}\n")
            self.proc.stdin.flush()
            lines = []
            for line in self.proc.stdout:
                if line.rstrip("\n") == self.MARK:
                    return "\n".join(lines).strip()
                lines.append(line.rstrip("\n"))
            raise RuntimeError("psql went away")


_session = None


def _psql(sql):
    global _session
    if _session is None:
        _session = _Psql(WRITES_DSN)
    return _session.query(sql)


def _last_write():
    return int(_psql("SELECT coalesce(max(id), 0) FROM fuzz_writes"))


@schemathesis.hook
def before_call(context, case, kwargs):
    if WRITES_DSN:
        _marks.last = _last_write()


# Refusals that write on purpose: a refresh token used twice (stolen, or
# replayed) is refused and its whole session revoked (OAuth 2.0 Security
# Best Current Practice, refresh token rotation).
WRITES_OF_REFUSALS = {"POST /v1/auth/refresh": {"UPDATE refresh_tokens"}}


@schemathesis.check
def rejected_requests_write_nothing(ctx, response, case):
    if not WRITES_DSN or response.status_code < 400:
        return None
    before = getattr(_marks, "last", None)
    if before is None:
        return None
    writes = _psql(
        "SELECT string_agg(op || ' ' || tbl, ', ' ORDER BY id) "
        f"FROM fuzz_writes WHERE id > {before}"
    )
    allowed = WRITES_OF_REFUSALS.get(f"{case.method.upper()} {case.path}", set())
    if writes and not set(writes.split(", ")) <= allowed:
        raise AssertionError(f"answered {response.status_code}, yet wrote: {writes}")
    return None


# Refusals of schema-valid requests that depend on what no schema can say:
# stored state (a cursor or token this server did not issue, a provider not
# set up here, a host that does not resolve), the clock, or another field.
STATE_CODES = {
    "invalid_cursor",
    "invalid_token",
    "unsubscribe_link_invalid",
    # a door scanner reads whatever it is shown: no schema tells a ticket
    "ticket_unreadable",
    "ticket_signature_invalid",
    "ticket_unknown",
    "ticket_other_event",
    "ticket_refunded",
    "ticket_void",
}
RULES_NO_SCHEMA_STATES = (
    # another field
    "needs `near`",
    "is required to sort by distance",
    "must not be before from",
    "must not be below price_min",
    "must be after starts_at",
    "must be within 366 days of starts_at",
    "must be after sales_start_at",
    "must be after valid_from",
    "must be between 0 and quantity - 1",
    "must be between min_per_order and 100",
    "is required for a hidden tier",
    "give either account_id or bank",
    "is required with latitude",
    "is required with longitude",
    # the clock
    "must be in the future",
    "must not be in the future",
    # lists too long for the document (time zones, currencies, countries)
    "is not an IANA time zone",
    "is not a supported ISO 4217 currency code",
    "must be an ISO 3166-1 alpha-2 code",
    # stored state
    "is already registered",
    "no provider set up here",
    "must be one of the providers set up",
    "the host does not resolve",
    "must be tiers of this event",
    # the password policy beyond its length
    "is too repetitive",
    "is too common",
)
ACCEPTED = range(200, 400)
ALSO_FINE = {401, 403, 404, 409, 429}


def _explained(response):
    try:
        problem = response.json()
    except Exception:  # noqa: BLE001 - not a problem at all: not explained
        return False
    if problem.get("code") in STATE_CODES:
        return True
    if problem.get("code") != "validation_failed":
        return False
    for error in problem.get("errors") or []:
        message = error.get("message", "")
        if any(rule in message for rule in RULES_NO_SCHEMA_STATES):
            continue
        return False
    return True


@schemathesis.check
def valid_requests_accepted(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status in ACCEPTED or status in ALSO_FINE or status >= 500:
        return None
    if _explained(response):
        return None
    raise AssertionError(
        f"the document calls this request valid, yet it was refused with {status}: "
        f"{response.text[:300]}"
    )


@schemathesis.check
def errors_are_problem_json(ctx, response, case):
    if response.status_code < 400:
        return None
    content_type = ";".join(response.headers.get("content-type", []))
    if not content_type.startswith("application/problem+json"):
        raise AssertionError(
            f"{response.status_code} answered as {content_type or 'no content type'}, "
            "not application/problem+json"
        )
    try:
        body = response.json()
    except Exception as e:  # noqa: BLE001 - any parse failure is the finding
        raise AssertionError(f"{response.status_code} problem is not JSON: {e}") from None
    for field in ("type", "title", "status", "code"):
        if field not in body:
            raise AssertionError(f"{response.status_code} problem lacks `{field}`: {body}")
    if body["status"] != response.status_code:
        raise AssertionError(
            f"problem says status {body['status']}, the answer is {response.status_code}"
        )
    return None
