#!/usr/bin/env python3
"""A mail client built on Python's standard imaplib and poplib, for
mailfront's integration suite (integration/python_test.go runs it).

It connects in one of six ways, logs in, counts the messages, fetches one
and writes it, byte for byte as received, to --out. It reports on stdout:

    count N          messages in INBOX (IMAP SELECT) or the maildrop (POP3 STAT)
    size N           octets of the fetched message
    refused TEXT     the login was refused (exit code 3)

Exit codes: 0 done, 3 login refused, anything else an unexpected failure
(with a traceback on stderr).
"""

import argparse
import imaplib
import poplib
import ssl
import sys

REFUSED = 3


def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def imap(args):
    ctx = tls_context(args.cafile)
    if args.mode == "imaps":
        conn = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx, timeout=args.timeout)
    else:
        conn = imaplib.IMAP4(args.host, args.port, timeout=args.timeout)
        if args.mode == "imap-starttls":
            conn.starttls(ssl_context=ctx)
    try:
        conn.login(args.user, args.password)
    except imaplib.IMAP4.error as e:
        print("refused", e)
        return REFUSED
    typ, data = conn.select("INBOX", readonly=True)
    if typ != "OK":
        raise SystemExit("select: %s %r" % (typ, data))
    print("count", int(data[0]))
    typ, data = conn.uid("FETCH", str(args.msg), "(BODY.PEEK[])")
    if typ != "OK" or not data or not isinstance(data[0], tuple):
        raise SystemExit("fetch: %s %r" % (typ, data))
    body = data[0][1]
    write(args.out, body)
    conn.logout()
    return 0


def pop3(args):
    ctx = tls_context(args.cafile)
    if args.mode == "pop3s":
        conn = poplib.POP3_SSL(args.host, args.port, context=ctx, timeout=args.timeout)
    else:
        conn = poplib.POP3(args.host, args.port, timeout=args.timeout)
        if args.mode == "pop3-stls":
            conn.stls(context=ctx)
    try:
        conn.user(args.user)
        conn.pass_(args.password)
    except poplib.error_proto as e:
        print("refused", e)
        return REFUSED
    count, _ = conn.stat()
    print("count", count)
    _, lines, _ = conn.retr(args.msg)
    # poplib splits the message into lines, drops their CRLF and undoes
    # dot-stuffing; the stored messages end every line with CRLF.
    body = b"".join(line + b"\r\n" for line in lines)
    write(args.out, body)
    conn.quit()
    return 0


def write(path, body):
    with open(path, "wb") as f:
        f.write(body)
    print("size", len(body))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["imaps", "imap-starttls", "imap-plaintext",
                                     "pop3s", "pop3-stls", "pop3-plaintext"])
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--msg", type=int, default=1, help="UID (IMAP) or message number (POP3)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    if args.mode.startswith("imap"):
        return imap(args)
    return pop3(args)


if __name__ == "__main__":
    sys.exit(main())
