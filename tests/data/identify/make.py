#!/usr/bin/env python3
"""Writes the identification test data (tests/unit/identify/ serves them).

Debian has no MongoDB or Elasticsearch server and there is no Kubernetes API
server on a build machine, so these are not captures from live servers: they
are hand-built, byte for byte, from the published formats, with the field
values such servers send:
  - MongoDB: OP_MSG (opCode 2013, flagBits 0, one kind-0 section) as in the
    server's "OP_MSG" wire-protocol reference; BSON per bsonspec.org 1.1.
    The hello reply is that of a MongoDB 7.0 primary of replica set rs0
    (maxWireVersion 21) with every field such a reply carries, including the
    types a decoder must skip (ObjectId, Timestamp, UTC datetime, binary,
    int64, nested documents and arrays); buildInfo is 7.0.12's.
  - Elasticsearch 8.15.0: GET / (security off), GET / with security on (401),
    and the transport port's answer to HTTP.
  - kube-apiserver v1.31.0: GET /version.
This BSON encoder is written apart from the C++ decoder it tests. Run it from
anywhere; it rewrites the files next to itself.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def cstring(s):
    return s.encode() + b"\0"


def element(name, value):
    # (type byte, payload) for a Python value; tuples mark BSON-only types.
    if isinstance(value, tuple):
        kind = value[0]
        if kind == "oid": return b"\x07" + cstring(name) + bytes.fromhex(value[1])
        if kind == "ts": return b"\x11" + cstring(name) + struct.pack("<II", value[2], value[1])  # increment, seconds
        if kind == "date": return b"\x09" + cstring(name) + struct.pack("<q", value[1])
        if kind == "long": return b"\x12" + cstring(name) + struct.pack("<q", value[1])
        if kind == "bin": return b"\x05" + cstring(name) + struct.pack("<i", len(value[2])) + bytes([value[1]]) + value[2]
        raise ValueError(kind)
    if isinstance(value, bool): return b"\x08" + cstring(name) + (b"\x01" if value else b"\x00")
    if isinstance(value, int): return b"\x10" + cstring(name) + struct.pack("<i", value)
    if isinstance(value, float): return b"\x01" + cstring(name) + struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode() + b"\0"
        return b"\x02" + cstring(name) + struct.pack("<i", len(data)) + data
    if isinstance(value, dict): return b"\x03" + cstring(name) + document(value)
    if isinstance(value, list): return b"\x04" + cstring(name) + document({str(i): v for i, v in enumerate(value)})
    raise TypeError(type(value))


def document(fields):
    body = b"".join(element(k, v) for k, v in fields.items())
    return struct.pack("<i", 4 + len(body) + 1) + body + b"\0"


def op_msg_reply(response_to, body):
    section = b"\x00" + document(body)
    payload = struct.pack("<I", 0) + section  # flagBits 0
    header = struct.pack("<iiii", 16 + len(payload), 40000 + response_to, response_to, 2013)
    return header + payload


CLUSTER_TIME = {
    "clusterTime": ("ts", 1723370000, 1),
    "signature": {"hash": ("bin", 0, bytes(20)), "keyId": ("long", 0)},
}

HELLO = {
    "topologyVersion": {"processId": ("oid", "66b8a1f2c3d4e5f601234567"), "counter": ("long", 6)},
    "hosts": ["mongo1:25080", "mongo2:25080", "mongo3:25080"],
    "setName": "rs0",
    "setVersion": 1,
    "isWritablePrimary": True,
    "secondary": False,
    "primary": "mongo1:25080",
    "me": "mongo1:25080",
    "electionId": ("oid", "7fffffff0000000000000002"),
    "lastWrite": {
        "opTime": {"ts": ("ts", 1723370000, 1), "t": ("long", 2)},
        "lastWriteDate": ("date", 1723370000000),
        "majorityOpTime": {"ts": ("ts", 1723370000, 1), "t": ("long", 2)},
        "majorityWriteDate": ("date", 1723370000000),
    },
    "maxBsonObjectSize": 16777216,
    "maxMessageSizeBytes": 48000000,
    "maxWriteBatchSize": 100000,
    "localTime": ("date", 1723370001234),
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 12,
    "minWireVersion": 0,
    "maxWireVersion": 21,
    "readOnly": False,
    "ok": 1.0,
    "$clusterTime": CLUSTER_TIME,
    "operationTime": ("ts", 1723370000, 1),
}

BUILD_INFO = {
    "version": "7.0.12",
    "gitVersion": "b6513ce0781db6818e24619e8a461eae90bc94fc",
    "modules": [],
    "allocator": "tcmalloc",
    "javascriptEngine": "mozjs",
    "sysInfo": "deprecated",
    "versionArray": [7, 0, 12, 0],
    "openssl": {"running": "OpenSSL 3.0.2 15 Mar 2022", "compiled": "OpenSSL 3.0.2 15 Mar 2022"},
    "buildEnvironment": {"distmod": "ubuntu2204", "distarch": "x86_64", "cc": "/opt/mongodbtoolchain/v4/bin/gcc",
                         "target_arch": "x86_64", "target_os": "linux"},
    "bits": 64,
    "debug": False,
    "maxBsonObjectSize": 16777216,
    "storageEngines": ["devnull", "inMemory", "wiredTiger"],
    "ok": 1.0,
    "$clusterTime": CLUSTER_TIME,
    "operationTime": ("ts", 1723370000, 1),
}


def http(status, headers, body):
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + f"content-length: {len(body.encode())}\r\n\r\n" + body).encode()


ES_ROOT = """{
  "name" : "es1",
  "cluster_name" : "apinizer",
  "cluster_uuid" : "q3WmTXmzQyOQ5Nq2dF0TMg",
  "version" : {
    "number" : "8.15.0",
    "build_flavor" : "default",
    "build_type" : "docker",
    "build_hash" : "1a77947f34deddb41af25e6f0ddb8e830159c179",
    "build_date" : "2024-08-05T10:05:34.233336849Z",
    "build_snapshot" : false,
    "lucene_version" : "9.11.1",
    "minimum_wire_compatibility_version" : "7.17.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "You Know, for Search"
}
"""

ES_401 = ('{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials for '
          'REST request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
          '"Bearer realm=\\"security\\"","ApiKey"]}}],"type":"security_exception","reason":"missing authentication '
          'credentials for REST request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" '
          'charset=\\"UTF-8\\"","Bearer realm=\\"security\\"","ApiKey"]}},"status":401}')

APISERVER_VERSION = """{
  "major": "1",
  "minor": "31",
  "gitVersion": "v1.31.0",
  "gitCommit": "9edcffcde5595e8a5b1a35f88c421764e575afce",
  "gitTreeState": "clean",
  "buildDate": "2024-08-13T07:28:49Z",
  "goVersion": "go1.22.5",
  "compiler": "gc",
  "platform": "linux/amd64"
}"""

FILES = {
    "mongodb-hello-reply.bin": op_msg_reply(1, HELLO),
    "mongodb-buildinfo-reply.bin": op_msg_reply(2, BUILD_INFO),
    "elasticsearch-root.http": http("200 OK", [("X-elastic-product", "Elasticsearch"),
                                               ("content-type", "application/json")], ES_ROOT),
    "elasticsearch-security.http": http("401 Unauthorized", [
        ("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'), ("WWW-Authenticate", 'Bearer realm="security"'),
        ("WWW-Authenticate", "ApiKey"), ("X-elastic-product", "Elasticsearch"),
        ("content-type", "application/json")], ES_401),
    "elasticsearch-transport.http": http("400 Bad Request", [("content-type", "text/plain; charset=UTF-8")],
                                         "This is not an HTTP port"),
    "kube-apiserver-version.http": http("200 OK", [
        ("Audit-Id", "5d0c3c1e-5f0b-4a54-9c55-2f4a8f0e4b11"), ("Cache-Control", "no-cache, private"),
        ("Content-Type", "application/json"),
        ("X-Kubernetes-Pf-Flowschema-Uid", "2c2a8d5e-3b0f-4f7e-a7f4-0a1e3c5e9b21"),
        ("X-Kubernetes-Pf-Prioritylevel-Uid", "8f7f3a9e-1c2d-4b6e-9a0f-5e4d3c2b1a09"),
        ("Date", "Mon, 12 Aug 2024 09:00:00 GMT")], APISERVER_VERSION),
}

for name, data in FILES.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
