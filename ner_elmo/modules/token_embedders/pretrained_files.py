"""
Local copies of the pretrained files the token embedders load (ELMo options and weights, GloVe
vectors), with one clear `ConfigurationError` while the model is built when a file cannot be had.
"""
import logging
import os
import socket
from typing import Optional
from urllib.parse import urlparse

import requests
from allennlp.common import file_utils
from allennlp.common.checks import ConfigurationError
from cached_path import find_latest_cached

logger = logging.getLogger(__name__)

#: Seconds to wait for a connection and for the answer to the reachability check.
PROBE_TIMEOUT = (10.0, 30.0)


def local_copy(path_or_url: str, what: str, key: str, variable: Optional[str] = None) -> str:
    """
    The local path of `path_or_url`: the file itself, or allennlp's cached download of a URL
    (`cached_path`, which downloads it on first use).

    An http(s) URL is first checked with one request: `cached_path` retries a host it cannot
    reach five times with backoff, failing only after 30 seconds (and hanging on a host that
    never answers).  When the host cannot be reached but an earlier download is in the cache,
    that copy is used, as `cached_path` itself does offline.

    Raises `ConfigurationError`, e.g. `cannot open ELMo weights file 'https://...': cannot
    connect to 127.0.0.1:9 (Connection refused). Set NER_ELMO_ELMO_WEIGHTS to the path of a
    local copy (see docs/configs.md, Environment variables)`.

    # Parameters

    path_or_url : `str`
        A local path or a URL `cached_path` knows (http, https, s3, gs, hf).
    what : `str`
        What the file is, for the message (`"ELMo weights file"`).
    key : `str`
        The parameter that holds it (`"weight_file"`), named when `variable` did not supply it.
    variable : `str`, optional (default = `None`)
        The environment variable the training configs fill `key` from; named in the message when
        it holds `path_or_url`.
    """
    is_url = "://" in str(path_or_url)
    try:
        if urlparse(str(path_or_url)).scheme in ("http", "https"):
            cached = _cached_copy_if_unreachable(path_or_url)
            if cached is not None:
                return cached
        local = file_utils.cached_path(path_or_url)
    except Exception as error:  # whatever the failure, the user gets the file, reason and fix
        reason = _reason(error, is_url)
        raise ConfigurationError(_message(path_or_url, what, key, variable, reason)) from error
    if os.path.isdir(local):
        reason = "a directory, not a file"
    elif not os.access(local, os.R_OK):
        reason = "not readable (permission denied)"
    else:
        return local
    raise ConfigurationError(_message(path_or_url, what, key, variable, reason))


def _cached_copy_if_unreachable(url: str) -> Optional[str]:
    """
    `None` when `url`'s host answers (go on with `cached_path`); when it cannot be reached, the
    latest cached download, or the connection error when there is none.
    """
    try:
        # A plain session: no retries.  HTTP errors (404, 5xx) are left to cached_path.
        with requests.Session() as session:
            session.head(url, allow_redirects=True, timeout=PROBE_TIMEOUT)
    except requests.RequestException as error:
        cached = find_latest_cached(url, file_utils.CACHE_DIRECTORY)
        if cached is None:
            raise
        logger.warning("%s: %s; using the copy cached at %s", url, _reason(error, True), cached)
        return str(cached)
    return None


def _message(path_or_url: str, what: str, key: str, variable: Optional[str], reason: str) -> str:
    if variable and os.environ.get(variable) == str(path_or_url):
        fix = f"Set {variable} to the path of a local copy (see docs/configs.md, Environment variables)"
    else:
        fix = f"Set {key} to the path of a local copy"
    return f"cannot open {what} '{path_or_url}': {reason}. {fix}"


def _reason(error: BaseException, is_url: bool) -> str:
    """What went wrong, in one line."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason or ''}".rstrip()
    if isinstance(error, requests.Timeout):
        return f"no answer within {PROBE_TIMEOUT[0]:g} s"
    if isinstance(error, requests.ConnectionError):
        host = urlparse(getattr(error.request, "url", None) or "").netloc or "the host"
        cause = _socket_error(error)
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host} ({cause.strerror})"
        return f"cannot connect to {host}" + (f" ({cause.strerror})" if cause else "")
    if isinstance(error, FileNotFoundError):
        # What cached_path raises for a missing local file and for an HTTP 404 alike.
        return "not found (HTTP 404)" if is_url else "no such file"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    first_line = str(error).strip().split("\n")[0]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def _socket_error(error: BaseException) -> Optional[OSError]:
    """The socket-level error (refused, unresolved) under requests' and urllib3's wrappers."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        # Wrappers (requests' and urllib3's errors, some of them OSErrors) carry no strerror.
        if isinstance(current, OSError) and current.strerror:
            return current
        # requests' ConnectionError holds urllib3's MaxRetryError (args[0]), whose `reason`
        # was raised from the socket error.
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in inner if isinstance(item, BaseException))
    return None
