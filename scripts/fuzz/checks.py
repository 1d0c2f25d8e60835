"""Boxoffice's own promise, checked on every answer schemathesis gets: an
error (4xx or 5xx) is RFC 9457 problem+json with a stable `code`, whatever
the request was. (Loaded by scripts/fuzz.sh through SCHEMATHESIS_HOOKS.)"""

import schemathesis


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
