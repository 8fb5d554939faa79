"""Python's own http.server (SimpleHTTPRequestHandler: the directory index pages of
`python3 -m http.server`, and its file serving) on loopback, with its access log on stderr.
Prints `LISTENING <port>` once bound. Usage: index_origin.py DIR"""

import functools
import http.server
import sys

handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print("LISTENING %d" % server.server_address[1], flush=True)
server.serve_forever()
