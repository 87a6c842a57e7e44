"""OpenAI's Batch API on the gateway: input files (`files.py`), batches and their objects
(`service.py`), the background runner that runs each request line through the same steps as an
HTTP request (`runner.py`, `lines.py`) and finishes ended batches (`finish.py`). Its state is in
the database (storage/batches.py), so a batch survives a restart and no line runs twice."""
