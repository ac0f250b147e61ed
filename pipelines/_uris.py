"""Dataset URIs as trainguard records, prints and confines them.

- ``redact_uri``: the URI with the credentials of its authority (``user:password@``) replaced by ``***@`` in every
  part of a chained fsspec URL (``simplecache::ftp://u:p@host/x``), and the values of query parameters that carry
  secrets (``token``, ``sig``/``signature``, ``key``, ``secret``, ``password``, ``credential``, ``auth``,
  ``session``, ``X-Amz-*``, ``X-Goog-*``: presigned URLs) replaced by ``***``; it is what the ledger, summary.json,
  report.html and the logs hold. The real URI is used only to read the data.
- ``shown``: how a URI or path appears in a message: redacted, control characters escaped (``\\n`` as the two
  characters ``\\`` ``n``), so that every error is one line.
- ``remote_inside``: whether a remote URL lies under a remote allowed root, comparing normalised paths on
  path-component boundaries (``..`` cannot climb out, ``/landing2`` is not inside ``/landing``).

Example::

    >>> redact_uri("s3://KEY:SECRET@bucket/x.csv")
    's3://***@bucket/x.csv'
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

__all__ = ["redact_uri", "scrub", "one_line", "shown", "remote_inside"]

# scheme://userinfo@ : the userinfo runs to the last "@" before the first "/", "?" or "#" (as urllib splits it)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)@")
# a query parameter whose value is a credential: name=value up to the next "&" or "#"
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:[a-z0-9_.-]*(?:token|secret|signature|passw(?:or)?d|credentials?)|sig|key|pwd|api[-_.]?key"
    r"|access[-_.]?key|auth|authorization|session|x-amz-[^=&#]*|x-goog-[^=&#]*)=)([^&#]*)")


def _secrets(uri: str) -> set[str]:
    """The credential strings in ``uri``: each chained part's userinfo and password, secret query values."""
    found: set[str] = set()
    for part in uri.split("::"):
        match = _USERINFO.match(part)
        if match is not None:
            userinfo = match.group(2)
            password = userinfo.partition(":")[2]
            found |= {userinfo, unquote(userinfo), password, unquote(password)}
        if "://" in part:
            for m in _SECRET_PARAM.finditer(part):
                found |= {m.group(2), unquote(m.group(2))}
    return found - {""}


def redact_uri(uri: str) -> str:
    """``uri`` with its credentials replaced by ``***`` (see the module docstring); paths unchanged."""
    parts = []
    for part in uri.split("::"):
        match = _USERINFO.match(part)
        if match is not None:
            part = f"{match.group(1)}***@{part[match.end():]}"
        if "://" in part:  # a query string only in a URL: "x?key=1.csv" is a local file's name
            part = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}***", part)
        parts.append(part)
    return "::".join(parts)


def scrub(text: str, uri: str) -> str:
    """``text`` (e.g. an exception's message) with every trace of ``uri``'s credentials replaced by ``***``."""
    secrets = _secrets(uri)
    if not secrets:
        return text
    text = text.replace(uri, redact_uri(uri))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def one_line(text: str) -> str:
    """``text`` with control and other non-printable characters escaped as Python would show them."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def shown(uri: str) -> str:
    """A URI or path as it appears in a message: credentials redacted, control characters escaped."""
    return one_line(redact_uri(uri))


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme, host without userinfo, path) of ``scheme://host/path``; the path keeps any ``?`` or ``#`` part
    (some filesystems take them as part of the name), so that nothing after the host escapes normalisation."""
    scheme, _, rest = uri.partition("://")
    netloc, _, path = rest.partition("/")
    return scheme.lower(), netloc.rpartition("@")[2], "/" + path


def _normal(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def remote_inside(uri: str, root: str) -> bool:
    """Whether the remote URL ``uri`` lies strictly under the remote root ``root`` (same scheme and host; the path,
    normalised both as written and percent-decoded, below the root's normalised path)."""
    scheme, host, path = _split(uri)
    root_scheme, root_host, root_path = _split(root)
    if (scheme, host) != (root_scheme, root_host):
        return False
    prefix = _normal(root_path).rstrip("/") + "/"
    return all(_normal(p).startswith(prefix) and _normal(p) != prefix.rstrip("/") for p in (path, unquote(path)))
