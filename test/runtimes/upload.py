#!/usr/bin/env python3
"""An HTTP client not written in JavaScript, for test/runtimes/run.cjs:
python's http.client sends the whole body before it reads the response, so
a server that answers early and closes with the body unread resets it
unless it lingers. Prints one JSON line: status and bytes, or the error."""
import http.client, json, sys

port, size = int(sys.argv[1]), int(sys.argv[2])
try:
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=15)
    c.request('POST', '/upload', body=b'u' * size, headers={'Content-Type': 'application/octet-stream'})
    r = c.getresponse()
    data = r.read()
    print(json.dumps({'status': r.status, 'bytes': len(data), 'error': None}))
except Exception as e:
    print(json.dumps({'status': None, 'bytes': 0, 'error': type(e).__name__}))
