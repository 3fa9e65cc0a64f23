"""Fetch the AsyncAPI 3.0.0 JSON Schema (npm package @asyncapi/specs, pinned by sha256) into .cache/asyncapi/.

Idempotent: does nothing when the file is there. Tests validate contract/asyncapi.json against it.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

URL = "https://registry.npmjs.org/@asyncapi/specs/-/specs-6.11.1.tgz"
SHA256 = "01af8744dc33c0c7eb2e908f6a955319ee58b70ecadc9387d1aeb16c0cd28928"
MEMBER = "package/schemas/3.0.0.json"
TARGET = Path(__file__).resolve().parents[1] / ".cache" / "asyncapi" / "3.0.0.json"


def main() -> int:
    if TARGET.exists():
        return 0
    try:
        with urllib.request.urlopen(URL, timeout=60) as answer:
            data = answer.read()
    except OSError as exc:
        print(f"fetch_asyncapi_spec: could not download {URL}: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        print(f"fetch_asyncapi_spec: {URL} has sha256 {digest}, expected {SHA256}: not used", file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            print(f"fetch_asyncapi_spec: {MEMBER} is not in {URL}", file=sys.stderr)
            return 1
        body = member.read()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.with_suffix(".part").write_bytes(body)
    TARGET.with_suffix(".part").replace(TARGET)
    print(f"fetch_asyncapi_spec: {TARGET.relative_to(TARGET.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
