"""Pure decisions with time passed in: when to replay a request, the retry budget, server memory."""
