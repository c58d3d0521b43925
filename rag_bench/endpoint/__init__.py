"""Calling an OpenAI-compatible endpoint: what the `openai` reader and the LLM judges share.

- `client`: the endpoint's settings (`EndpointParams`, `Endpoint`), a cached
  async client (`async_client`) and the `preflight` check;
- `faults`: one line and one short kind per failed call, and the
  `CircuitBreaker` that stops calling a dead endpoint;
- `transport`: the httpx transport that answers repeated calls from the disk
  cache (imported only when a client is made; needs ``httpx``).

Nothing here imports `openai` or `httpx` at import time.
"""
