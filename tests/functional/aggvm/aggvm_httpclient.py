#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm: an HTTP client for the guest command netserve, run inside a
# fragment's network namespace (ip netns exec NS python3 THIS ...).
# Prints one JSON object on stdout.
#
#   get URL_BASE NAME... --concurrency C --requests N
#       N GETs spread over C threads, each for the next NAME in turn;
#       returns the sha256 of every body by name (all bodies of one name
#       must agree), the count, the seconds taken and requests/s.
#   put URL_BASE --mb M
#       POSTs M MiB of random bytes to /cgi-bin/up; returns what it sent
#       (length, sha256), the guest's answer and MB/s.
#   fetch URL_BASE NAME
#       one GET; returns length, sha256 and MB/s.
#
# Copyright (c) 2026 The aggvm authors

import argparse
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

TIMEOUT_S = 60


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port or 80,
                                      timeout=TIMEOUT_S)


def get(base, path):
    conn = connect(base)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError('GET %s: HTTP %d' % (path, resp.status))
        return body
    finally:
        conn.close()


def cmd_get(a):
    digests = {}
    errors = []
    lock = threading.Lock()
    counter = iter(range(a.requests))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            name = a.names[i % len(a.names)]
            try:
                d = hashlib.sha256(get(a.base, '/' + name)).hexdigest()
            except Exception as e:      # reported, not raised
                with lock:
                    errors.append('%s: %s' % (name, e))
                continue
            with lock:
                digests.setdefault(name, set()).add(d)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    return {'sha256': {k: sorted(v) for k, v in digests.items()},
            'requests': a.requests, 'errors': errors, 'seconds': secs,
            'requests_per_s': a.requests / secs}


def cmd_put(a):
    data = os.urandom(a.mb << 20)
    conn = connect(a.base)
    t0 = time.monotonic()
    try:
        conn.request('POST', '/cgi-bin/up', body=data,
                     headers={'Content-Type': 'application/octet-stream'})
        resp = conn.getresponse()
        answer = resp.read().decode(errors='replace').strip()
    finally:
        conn.close()
    secs = time.monotonic() - t0
    return {'len': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            'answer': answer, 'seconds': secs,
            'mb_per_s': a.mb / secs}


def cmd_fetch(a):
    t0 = time.monotonic()
    body = get(a.base, '/' + a.name)
    secs = time.monotonic() - t0
    result = {'len': len(body), 'sha256': hashlib.sha256(body).hexdigest(),
              'seconds': secs, 'mb_per_s': len(body) / (1 << 20) / secs}
    if a.text:
        result['text'] = body.decode(errors='replace')
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest='cmd', required=True)
    g = sub.add_parser('get')
    g.add_argument('base')
    g.add_argument('names', nargs='+')
    g.add_argument('--concurrency', type=int, default=8)
    g.add_argument('--requests', type=int, default=64)
    p = sub.add_parser('put')
    p.add_argument('base')
    p.add_argument('--mb', type=int, default=4)
    f = sub.add_parser('fetch')
    f.add_argument('base')
    f.add_argument('name')
    f.add_argument('--text', action='store_true',
                   help='also return the body as text')
    a = ap.parse_args()
    result = {'get': cmd_get, 'put': cmd_put, 'fetch': cmd_fetch}[a.cmd](a)
    json.dump(result, sys.stdout)
    print()


if __name__ == '__main__':
    main()
