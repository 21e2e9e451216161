"""Create a blob container in Azurite (object_store cannot create containers).

usage: python3 azure_container.py ENDPOINT CONTAINER
  ENDPOINT is Azurite's blob endpoint, e.g. http://127.0.0.1:10000 (account devstoreaccount1,
  the emulator's well-known development key). Signs the request with Shared Key (standard
  library only). Exit 0 when the container was created or already exists.
"""
import base64
import email.utils
import hashlib
import hmac
import sys
import urllib.error
import urllib.request

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = base64.b64decode(
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
VERSION = "2023-11-03"

endpoint, container = sys.argv[1].rstrip("/"), sys.argv[2]
date = email.utils.formatdate(usegmt=True)
CONTENT_TYPE = "application/octet-stream"  # urllib would add its own default otherwise
# VERB, Content-Encoding, -Language, -Length ("" for 0), -MD5, -Type, Date, If-Modified-Since,
# If-Match, If-None-Match, If-Unmodified-Since, Range, then the x-ms- headers and the resource.
string_to_sign = "\n".join(
    ["PUT", "", "", "", "", CONTENT_TYPE] + [""] * 6
    + [f"x-ms-date:{date}\nx-ms-version:{VERSION}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"]
)
signature = base64.b64encode(hmac.new(KEY, string_to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(
    f"{endpoint}/{ACCOUNT}/{container}?restype=container",
    data=b"",
    method="PUT",
    headers={
        "x-ms-date": date,
        "x-ms-version": VERSION,
        "Content-Length": "0",
        "Content-Type": CONTENT_TYPE,
        "Authorization": f"SharedKey {ACCOUNT}:{signature}",
    },
)
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: already exists
        sys.exit(f"create container {container}: HTTP {e.code} {e.read()[:300]!r}")
print(f"container {container} ready")
