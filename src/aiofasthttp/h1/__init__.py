"""HTTP/1.1 without I/O: URLs, requests and their heads, headers, the response parser, responses."""
