"""Secrets in URIs: what counts as one, and its redacted form (SCHEMA.md §27.2, SEC-001..SEC-004).

Pure: strings in, strings out. A URI may carry a credential in two places:

* its user information: ``https://alice:s3cret@host/...`` (a password), or
  ``https://<token>@host/...`` (a token in the user-name position);
* its query: pre-signed and shared-access URLs (``X-Amz-Signature``, Azure SAS ``sig``,
  ``X-Goog-Signature``) and bearer tokens (``token``, ``access_token``, ...).

:func:`redact_uri` replaces each with ``****`` and keeps everything else byte for byte
(``https://alice:****@host/a?sig=****&sv=2024``), the form pip prints in its logs.
:func:`redact_text` does the same to every URI inside free text (an error message, a log
line). :func:`secret_of` says which secret a URI holds, for ``check``'s warning (DM183).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .schemes import names_of

#: SEC-001: query parameters whose value is a credential (compared without case, after
#: percent-decoding the name)
TOKEN_PARAMS: frozenset[str] = frozenset({
    "x-amz-signature", "x-amz-security-token",   # Amazon S3 pre-signed URLs (SigV4)
    "x-goog-signature",                           # Google Cloud Storage signed URLs (V4)
    "signature",                                  # CloudFront / GCS V2 signed URLs
    "sig",                                        # Azure shared access signatures (SAS)
    "token", "access_token", "api_key", "apikey", "password",
})

#: SEC-001: schemes whose user information without a password is a login name, kept
LOGIN_SCHEMES: frozenset[str] = names_of("ssh", "git") | {"sftp"}

MASK = "****"

_URI_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s/?#'\"<>]*)@")
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.~%\-]+)=(?P<value>[^&;#\s'\"<>]*)")


def _userinfo(scheme: str, userinfo: str) -> str:
    """The redacted user information of a URI of ``scheme`` (SEC-001)."""
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"{user}:{MASK}"
    if scheme.lower() in LOGIN_SCHEMES:
        return userinfo
    return MASK if userinfo else userinfo


def _is_token(name: str) -> bool:
    return unquote(name).lower() in TOKEN_PARAMS


def _redact_query(text: str) -> str:
    def one(m: re.Match) -> str:
        if not _is_token(m["name"]) or not m["value"] or m["value"] == MASK:
            return m.group(0)
        return f"{m['sep']}{m['name']}={MASK}"

    return _QUERY_PARAM.sub(one, text)


def redact_uri(uri: str) -> str:
    """The URI with its credentials replaced by ``****`` (SEC-001).

    A password in the user information becomes ``user:****``; a user information without
    a password is a token (``****``) except for login schemes (ssh, rsync, sshfs, git,
    sftp), where it is a login name and kept; the value of each query parameter of
    :data:`TOKEN_PARAMS` becomes ``****``. Everything else is kept byte for byte.

    Parameters
    ----------
    uri : str
        Any string; one without a credential is returned unchanged.

    Returns
    -------
    str
        The redacted form.
    """
    if "@" not in uri and "=" not in uri:
        return uri
    out = uri
    m = _URI_USERINFO.match(uri)
    if m is not None:
        new = _userinfo(m["scheme"], m["userinfo"])
        out = f"{m['scheme']}://{new}@{uri[m.end():]}"
    if "?" in out:
        head, q, rest = out.partition("?")
        out = head + _redact_query(q + rest)
    return out


def redact_text(text: str) -> str:
    """Every URI credential inside free text replaced by ``****`` (SEC-002): user
    information as :func:`redact_uri` does, and token query parameters after a ``?``,
    ``&`` or ``;``. Text without ``://`` or ``=`` is returned as it is (no regular
    expression runs)."""
    if not text or ("://" not in text and "=" not in text):
        return text
    if "://" in text:
        text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}://{_userinfo(m['scheme'], m['userinfo'])}@",
                                 text)
    if "=" in text:
        text = _redact_query(text)
    return text


def secret_of(uri: str) -> str | None:
    """What credential a URI holds (SEC-003), or None: ``"password"`` (user information
    with a password), ``"token"`` (user information that is not a login name), or
    ``"query parameter <name>"`` (the first token parameter with a value)."""
    if "@" not in uri and "=" not in uri:
        return None
    m = _URI_USERINFO.match(uri)
    if m is not None and m["userinfo"]:
        if ":" in m["userinfo"]:
            return "password"
        if m["scheme"].lower() not in LOGIN_SCHEMES:
            return "token"
    if "?" in uri:
        for q in _QUERY_PARAM.finditer("?" + uri.partition("?")[2]):
            if _is_token(q["name"]) and q["value"]:
                return f"query parameter {unquote(q['name'])}"
    return None


def where_credentials_go(uri: str) -> str:
    """SEC-003's hint: where a credential for this URI belongs instead of the manifest,
    among the routes the spec supports (FET-013, FET-015, FET-016)."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme in ("s3",):
        return ("keep credentials out of the manifest: s3:// reads them from the AWS settings "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials)")
    if scheme in ("gs", "gcs"):
        return ("keep credentials out of the manifest: gs:// reads them from "
                "GOOGLE_APPLICATION_CREDENTIALS or application default credentials")
    if scheme in ("az", "abfs"):
        return ("keep credentials out of the manifest: az:// reads them from "
                "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN or "
                "AZURE_STORAGE_ACCOUNT_KEY")
    if scheme in LOGIN_SCHEMES:
        return "keep credentials out of the manifest: use SSH keys (~/.ssh, DATAMANIFEST_SSH)"
    return ("keep credentials out of the manifest: put them in ~/.netrc (or the file $NETRC "
            "names), which HTTP downloads read (FET-013); a pre-signed or SAS URL belongs in "
            "the environment of the run, not in a committed file")
