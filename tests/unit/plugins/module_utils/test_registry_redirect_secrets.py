# SPDX-License-Identifier: GPL-3.0-or-later
"""A signature bundle's blob redirect must not leak its presigned URL into errors/evidence."""

from __future__ import annotations

import pytest
import requests

from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference
from ansible_collections.pinned.release.plugins.module_utils._registry import RegistryClient, RegistryError

PRESIGNED = (
    "https://bucket.s3.amazonaws.com/blobs/abc?X-Amz-Credential=AKIAREVIEWEXAMPLE%2F20261204"
    "&X-Amz-Signature=deadbeefcafe&X-Amz-Security-Token=SESSIONTOKENREVIEW"
)


class _Response:
    def __init__(self, status, headers):
        self.status_code, self.headers = status, headers

    def close(self):
        pass


class _Session:
    def request(self, method, url, **_kwargs):
        if url.startswith("https://bucket."):
            raise requests.exceptions.Timeout("read timed out")
        return _Response(307, {"Location": PRESIGNED})


def test_a_redirected_blob_that_times_out_does_not_leak_the_presigned_url():
    client = RegistryClient(retries=0, sleep=lambda _s: None)
    client._session = _Session()
    ref = parse_pinned_reference("registry.example/app@sha256:" + "1" * 64)
    with pytest.raises(RegistryError) as caught:
        client.fetch(ref, "blobs/sha256:" + "2" * 64, "*/*", 4096, "signature bundle")
    message = str(caught.value)
    assert "X-Amz-Signature=deadbeefcafe" not in message, message
    assert "SESSIONTOKENREVIEW" not in message, message
    assert "bucket.s3.amazonaws.com" in message, "the error still says where"
