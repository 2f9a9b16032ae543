"""The HTTP/1.1 layer without I/O: what a request and a response are, as values and bytes."""
